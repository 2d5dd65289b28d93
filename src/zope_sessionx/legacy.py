"""zope.session's sessions, read and copied.

zope.session is not imported: its containers and session data are used
through the few attributes every version since 3.9 has (a container's
``data`` mapping of client ids and ``timeout``; session data's
``getLastAccessTime`` and ``items``).
"""
from zope_sessionx.data import SessionData
from zope_sessionx.data import SessionPkgData


__all__ = [
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
