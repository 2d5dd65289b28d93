"""The time source: the `IClock` utility, or :func:`time.time`."""
import time

import zope.component

from zope_sessionx.interfaces import IClock


def currentTime():
    """Return the current time in seconds since the epoch.

    Asks the `IClock` utility if one is registered, :func:`time.time`
    otherwise; both are looked up now, never bound at import.
    """
    clock = zope.component.queryUtility(IClock)
    if clock is None:
        return time.time()
    return clock()
