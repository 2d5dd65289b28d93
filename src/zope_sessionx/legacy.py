"""zope.session's sessions, read, copied, and adopted by a container
while a site moves (see `zope_sessionx.migration.SiteMigration`).

zope.session is not imported: its containers and session data are used
through the few attributes every version since 3.9 has (a container's
``data`` mapping of client ids and ``timeout``; session data's
``getLastAccessTime`` and ``items``).
"""
from zope_sessionx.data import SessionData
from zope_sessionx.data import SessionPkgData
from zope_sessionx.storage import digest


__all__ = [
    'LegacyAdoption',
    'copyLegacySession',
    'liveLegacySession',
]


def liveLegacySession(source, client_id, now):
    """The session zope.session's container *source* holds for
    *client_id*, if it is live at *now*; else None.

    Reads the container's data directly: no sweep, no access recorded.
    """
    old = source.data.get(client_id)
    if old is None:
        return None
    timeout = source.timeout
    if timeout and old.getLastAccessTime() + timeout < now:
        return None
    return old


def copyLegacySession(old):
    """A new `~zope_sessionx.data.SessionData` holding copies of the
    packages of zope.session's session data *old*.

    The packages' values are copied by reference, not deep-copied.
    """
    new = SessionData()
    for pkg_id, old_pkg in old.items():
        pkg = SessionPkgData()
        pkg.update(dict(old_pkg.items()))
        new[pkg_id] = pkg
    return new


class LegacyAdoption:
    """The part of a container that adopts zope.session's sessions."""

    #: While a site moves from zope.session (see
    #: `zope_sessionx.migration.SiteMigration`): zope.session's container
    #: whose live sessions this one adopts on first use.
    legacySource = None

    def _lookup(self, client_id):
        """The stored session of *client_id*, expired or not, or None."""
        key = digest(client_id)
        session_data = self._store.sessions.get(key)
        if (session_data is None and self.legacySource is not None
                and self.adoptLegacySession(client_id)):
            session_data = self._store.sessions.get(key)
        return session_data

    def adoptLegacySession(self, client_id):
        """See `ISessionDataContainerMaintenance`."""
        source = self.legacySource
        old = liveLegacySession(source, client_id, self.now())
        if client_id in source.data:
            del source.data[client_id]
        if (old is None
                or self._store.sessions.get(digest(client_id)) is not None):
            return False
        self[client_id] = copyLegacySession(old)
        return True
