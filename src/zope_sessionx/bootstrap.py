"""Site bootstrap: give the root site its session utilities.

A subscriber for ``zope.processlifetime.IDatabaseOpenedWithRoot``,
registered by ``bootstrap.zcml`` (include it to use it), as
``zope.app.appsetup``'s own bootstrap does for other utilities.  When the
root site has no `~zope_sessionx.interfaces.IClientIdManager` or no
`~zope_sessionx.interfaces.ISessionDataContainer` (neither a local one
nor a global one from ZCML), it adds and registers one as a local utility:
a `~zope_sessionx.http.CookieClientIdManager` with a fresh secret from
:mod:`secrets`, stored with it, and a
`~zope_sessionx.container.PersistentSessionDataContainer`.  A site
administrator can then change them like any local utility.  Running it
again changes nothing.
"""
import transaction
from zope.app.appsetup.bootstrap import addConfigureUtility
from zope.app.appsetup.bootstrap import getInformationFromEvent
from zope.component.interfaces import ISite

from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISessionDataContainer


__all__ = [
    'bootstrapSessions',
]

#: What the root site gets, under these names in its ``default`` folder.
UTILITIES = [
    (IClientIdManager, 'zope_sessionx-ids', CookieClientIdManager),
    (ISessionDataContainer, 'zope_sessionx-sessions',
     PersistentSessionDataContainer),
]


def bootstrapSessions(event):
    """Add the session utilities the root site lacks; commit if any."""
    db, connection, root, root_folder = getInformationFromEvent(event)
    try:
        if not ISite.providedBy(root_folder):
            # No root folder, or not a site (zope.app.appsetup's own
            # bootstrap makes it one before this runs).
            return
        site_manager = root_folder.getSiteManager()
        added = False
        for interface, name, factory in UTILITIES:
            if site_manager.queryUtility(interface) is None:
                addConfigureUtility(root_folder, interface, name, factory)
                added = True
        if added:
            transaction.commit()
    finally:
        transaction.abort()
        connection.close()
