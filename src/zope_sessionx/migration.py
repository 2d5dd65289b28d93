"""Moving a site's sessions from zope.session to zope_sessionx."""
from zope_sessionx.session import SessionData
from zope_sessionx.session import SessionPkgData


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
    importable; then remove the old container.
    """
    now = target.now()
    timeout = source.timeout
    copied = 0
    for client_id, old in source.data.items():
        if timeout and old.getLastAccessTime() + timeout < now:
            continue
        new = SessionData()
        for pkg_id, old_pkg in old.items():
            pkg = SessionPkgData()
            pkg.update(dict(old_pkg.items()))
            new[pkg_id] = pkg
        target[client_id] = new
        copied += 1
    return copied
