"""Moving a site from zope.session to zope_sessionx.

`SiteMigration` moves a site whose site manager holds zope.session's
local utilities (``zope-sessionx migrate`` runs it); `importZopeSessions`
copies the sessions of one container into another.
"""
import secrets

from ZODB.POSException import ConflictError

from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.legacy import copyLegacySession
from zope_sessionx.legacy import liveLegacySession
from zope_sessionx.ram import RAMSessionDataContainer


__all__ = [
    'SiteMigration',
    'importZopeSessions',
]

#: The interfaces zope.session's utilities are registered for, by dotted
#: name: zope.session need not be importable to find them (only to load
#: them).
OLD_IDS = 'zope.session.interfaces.IClientIdManager'
OLD_CONTAINERS = 'zope.session.interfaces.ISessionDataContainer'

#: zope.session's cookie settings that zope_sessionx's manager shares
#: (zope.session 4.0 and later have them all).
COOKIE_SETTINGS = ('cookieLifetime', 'thirdparty', 'domain', 'secure',
                   'postOnly', 'httpOnly')

#: The prefix of the names the new utilities get in the site's folder.
PREFIX = 'zope_sessionx-'


def importZopeSessions(source, target):
    """Copy the live sessions of a zope.session container into *target*.

    *source* is a ``zope.session.session.PersistentSessionDataContainer``
    (or ``RAMSessionDataContainer``); *target* an
    `~zope_sessionx.interfaces.IExpiringSessionDataContainer`.  Sessions
    keep their client ids, so that a
    `~zope_sessionx.http.CookieClientIdManager` configured with
    zope.session's secret (and ``acceptLegacyIds``) finds them: on each
    client's next request its id is re-issued and its session follows the
    new id.  Sessions that *source* would consider expired are skipped; the
    copied ones count as accessed now.  Values are copied by reference, not
    deep-copied.  Returns the number of sessions copied.

    Run it once, in one transaction, while zope.session is still
    importable; then remove the old container.  For a whole site, in
    batches and resumable, use `SiteMigration`.
    """
    now = target.now()
    copied = 0
    for client_id in list(source.data.keys()):
        old = liveLegacySession(source, client_id, now)
        if old is None:
            continue
        target[client_id] = copyLegacySession(old)
        copied += 1
    return copied


def _registered(site_manager, dotted_name):
    """(name, component, interface) of the utilities registered for the
    interface *dotted_name*."""
    return sorted(
        ((registration.name, registration.component, registration.provided)
         for registration in site_manager.registeredUtilities()
         if registration.provided.__identifier__ == dotted_name),
        key=lambda found: found[0])


class SiteMigration:
    """Move the site of *site_manager* from zope.session to zope_sessionx.

    Three steps, each safe to run again, so that a migration interrupted
    at any point is finished by running it again:

    1. `prepare` registers, in one transaction, a zope_sessionx utility
       next to each of zope.session's, under the same name: the client id
       manager keeps the cookie's name and settings, signs with a fresh
       secret and verifies zope.session's ids with the old one
       (``acceptLegacyIds``); each container keeps the timeout and
       resolution and gets the old container as its ``legacySource``.
       From then on the site works: a client's session is adopted (copied
       here, removed there) the first time the new container looks for it.
    2. `copy` moves the remaining sessions, *batch* per transaction: each
       is copied and removed from the old container in the same
       transaction, so that it is copied exactly once, and a client using
       it meanwhile makes one of the two transactions conflict (and be
       retried) rather than copy it twice.
    3. `finish` lets go of the old containers, then unregisters and
       removes zope.session's utilities.

    *transaction_manager* commits each transaction; *secret* (default:
    random) is the new signing secret.
    """

    max_attempts = 5

    def __init__(self, site_manager, transaction_manager, batch=1000,
                 secret=None):
        self.site_manager = site_manager
        self.transaction_manager = transaction_manager
        self.batch = batch
        self.secret = secret or secrets.token_urlsafe(32)
        #: Transactions of `copy` that conflicted, and were retried.
        self.conflicts = 0

    @property
    def folder(self):
        return self.site_manager['default']

    def oldUtilities(self):
        """zope.session's utilities still registered: (name, component,
        interface)."""
        return (_registered(self.site_manager, OLD_IDS)
                + _registered(self.site_manager, OLD_CONTAINERS))

    def containers(self):
        """The zope_sessionx containers still adopting sessions."""
        return [component for _, component, _ in _registered(
                    self.site_manager, ISessionDataContainer.__identifier__)
                if getattr(component, 'legacySource', None) is not None]

    def _add(self, kind, name, component, provided):
        folder = self.folder
        key = PREFIX + kind + ('-' + name if name else '')
        while key in folder:
            key += '_'
        folder[key] = component
        self.site_manager.registerUtility(component, provided, name)

    def prepare(self):
        """Step 1; return what it registered, as lines to show."""
        done = []
        new_ids = {name for name, _, _ in _registered(
            self.site_manager, IClientIdManager.__identifier__)}
        new_containers = {name for name, _, _ in _registered(
            self.site_manager, ISessionDataContainer.__identifier__)}
        for name, old, provided in self.oldUtilities():
            if provided.__identifier__ == OLD_IDS:
                if name in new_ids:
                    continue
                manager = CookieClientIdManager(old.namespace, self.secret)
                manager.secrets = (self.secret, old.secret)
                manager.acceptLegacyIds = True
                for setting in COOKIE_SETTINGS:
                    setattr(manager, setting, getattr(old, setting))
                self._add('ids', name, manager, IClientIdManager)
                done.append('client id manager {!r}: cookie {!r}, a fresh '
                            'secret, zope.session\'s ids accepted'
                            .format(name, old.namespace))
            elif name not in new_containers:
                ram = type(old).__name__ == 'RAMSessionDataContainer'
                container = (RAMSessionDataContainer() if ram
                             else PersistentSessionDataContainer())
                container.timeout = old.timeout
                container.resolution = old.resolution
                container.legacySource = old
                self._add('sessions', name, container, ISessionDataContainer)
                done.append('session data container {!r}: timeout {}, '
                            'resolution {}'.format(
                                name, old.timeout, old.resolution))
        self.transaction_manager.commit()
        return done

    def remaining(self):
        """How many sessions the old containers still hold."""
        return sum(len(container.legacySource.data)
                   for container in self.containers())

    def copy(self, progress=None):
        """Step 2; return the number of sessions copied.

        *progress*, if given, is called with the number of sessions each
        transaction moved (copied or, expired, dropped).
        """
        copied = 0
        for container in self.containers():
            source = container.legacySource
            while True:
                moved, adopted = self._batch(container, source)
                copied += adopted
                if progress is not None and moved:
                    progress(moved)
                if not moved:
                    break
        return copied

    def _batch(self, container, source):
        tm = self.transaction_manager
        for attempt in range(self.max_attempts):
            try:
                keys = list(source.data.keys()[:self.batch])
                adopted = 0
                for client_id in keys:
                    if container.adoptLegacySession(client_id):
                        adopted += 1
                tm.commit()
                return len(keys), adopted
            except ConflictError:
                # A client used one of them meanwhile: try again.
                tm.abort()
                self.conflicts += 1
        raise ConflictError('gave up after {} conflicts; run the '
                            'migration again'.format(self.max_attempts))

    def finish(self):
        """Step 3; return what it removed, as lines to show."""
        done = []
        for container in self.containers():
            if len(container.legacySource.data):
                raise ValueError('sessions are left to copy: run copy first')
            del container.legacySource
        for name, old, provided in self.oldUtilities():
            self.site_manager.unregisterUtility(old, provided, name)
            for key, value in list(self.folder.items()):
                if value is old:
                    del self.folder[key]
            done.append('removed zope.session\'s {} {!r}'.format(
                provided.__name__, name))
        self.transaction_manager.commit()
        return done

    def run(self, progress=None):
        """All three steps."""
        self.prepare()
        self.copy(progress)
        return self.finish()
