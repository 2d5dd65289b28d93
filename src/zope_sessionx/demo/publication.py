"""The demo's browser publication: zope.app.publication's, waiting a
little, at random, before each retry.

zope.publisher tries a request again, up to three times, when its commit
conflicts, and does so at once.  Over RelStorage on PostgreSQL that is
not always enough: an object the transaction only read but must find
unchanged at commit (``readCurrent``; BTrees do it for the nodes above a
changed bucket, a session for its access-time record) is locked without
waiting, so while another transaction commits a change to it, every
immediate retry fails the same way, and the fourth failure is a 500.
Waiting a random time, twice as long at each retry, lets the other commit
finish (docs/reliability.rst, "What it found").
"""
import random
import time

from zope.app.publication.browser import BrowserPublication
from zope.app.publication.requestpublicationfactories import BrowserFactory
from zope.publisher.interfaces import Retry


__all__ = [
    'BackoffBrowserFactory',
    'BackoffBrowserPublication',
]


class BackoffBrowserPublication(BrowserPublication):
    """A `BrowserPublication` that waits before each retry: *delay*
    seconds before the first, twice as long before each next one, each
    wait scaled by a random factor between 0.5 and 1.5 (so that the
    requests that conflicted do not meet again)."""

    #: The mean wait before the first retry, in seconds.
    delay = 0.025
    #: Replaceable in tests: a float in [0, 1), and a pause.
    random = staticmethod(random.random)
    sleep = staticmethod(time.sleep)

    def handleException(self, object, request, exc_info,
                        retry_allowed=True):
        """As `BrowserPublication`'s; when it asks for a retry the
        request still allows, wait first."""
        try:
            return super().handleException(object, request, exc_info,
                                           retry_allowed)
        except Retry:
            # (Raised for the last attempt too; the publisher then
            # answers with the error, and nothing is to wait for.)
            if request.supportsRetry():
                retried = getattr(request, '_retry_count', 0)
                self.sleep(self.wait(retried))
            raise

    def wait(self, retried):
        """The wait, in seconds, before the retry that follows *retried*
        earlier ones."""
        return self.delay * 2 ** retried * (0.5 + self.random())


class BackoffBrowserFactory(BrowserFactory):
    """The request-publication factory of `BackoffBrowserPublication`,
    for a ``<publisher>`` directive of higher priority than
    zope.app.publication's ``BROWSER``."""

    def __call__(self):
        request_class, _ = super().__call__()
        return request_class, BackoffBrowserPublication
