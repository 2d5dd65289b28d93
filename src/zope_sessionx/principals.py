"""Which sessions belong to which principal: "your sessions", "log out
everywhere".

`PrincipalSessions` is the part of a container that keeps the index;
`RequestPrincipals` the part of `~zope_sessionx.session.Session` that
uses it.  Requests write the index only when they give a session a
principal (at log-in); it follows the session when it moves and goes with
it when it is removed, by the cleaner too.
"""
from zope.interface import implementer

from zope_sessionx.interfaces import INVALIDATED
from zope_sessionx.interfaces import MAX_LABEL_LENGTH
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import IPrincipalSession
from zope_sessionx.interfaces import ISessionDataContainerMaintenance
from zope_sessionx.storage import digest
from zope_sessionx.storage import principalKey


__all__ = [
    'PrincipalSession',
    'PrincipalSessions',
    'RequestPrincipals',
]


class PrincipalSessions:
    """A base of the containers: see
    `~zope_sessionx.interfaces.ISessionDataContainerMaintenance`."""

    def setPrincipal(self, client_id, principal_id, label=None):
        """See `ISessionDataContainerMaintenance`."""
        session_data = self.get(client_id)
        if session_data is None or (session_data.principal == principal_id
                                    and session_data.label == label):
            return session_data
        key = digest(client_id)
        self._unindexPrincipal(key, session_data)
        session_data.principal = principal_id
        session_data.label = label
        self._store.principals.insert(principalKey(principal_id), key)
        return session_data

    def principalSessions(self, principal_id):
        """See `ISessionDataContainerMaintenance`."""
        now = self.now()
        sessions = self._store.sessions
        found = []
        for key in self._store.principals.keys(principalKey(principal_id)):
            session_data = sessions.get(key)
            if (session_data is not None
                    and session_data.principal == principal_id
                    and not self.isExpired(session_data, now)):
                found.append((key, session_data))
        return found

    def removeSession(self, key):
        """See `ISessionDataContainerMaintenance`."""
        session_data = self._store.sessions.get(key)
        if session_data is None:
            return False
        self._remove(key, session_data, INVALIDATED)
        return True

    def _unindexPrincipal(self, key, session_data):
        principal = session_data.principal
        if principal is not None:
            self._store.principals.remove(principalKey(principal), key)

    def _reindexPrincipal(self, old_key, new_key, session_data):
        # The session moved to a new id: its entry follows it.
        principal = session_data.principal
        if principal is not None:
            index = self._store.principals
            index.remove(principalKey(principal), old_key)
            index.insert(principalKey(principal), new_key)


@implementer(IPrincipalSession)
class PrincipalSession:
    """See `IPrincipalSession`: a session, merged across containers."""

    def __init__(self, key, session_data, current):
        self.handle = key.hex()
        self.created = session_data.created
        self.lastUsed = session_data.getLastAccessTime()
        self.label = session_data.label
        self.current = current

    def add(self, session_data):
        """Merge in the same client's session of another container."""
        self.created = min(self.created, session_data.created)
        self.lastUsed = max(self.lastUsed, session_data.getLastAccessTime())
        self.label = self.label or session_data.label

    def __repr__(self):
        return '<PrincipalSession {}{}>'.format(
            self.handle[:8], ' (current)' if self.current else '')


class RequestPrincipals:
    """A base of `~zope_sessionx.session.Session`: see `IPrincipalSessions`.

    Uses the session's ``_clientId(create)``, ``_containers()``,
    ``_newSession``, ``_refreshCookie`` and ``invalidate``.
    """

    def _maintained(self):
        # The containers that know principals.
        return [sdc for sdc in self._containers()
                if ISessionDataContainerMaintenance.providedBy(sdc)]

    def setPrincipal(self, principal_id, label=None):
        """See `IPrincipalSessions`."""
        if not isinstance(principal_id, str) or not principal_id:
            raise InvalidSettingError('principal', principal_id,
                                      'must be a non-empty string')
        if label is not None and (not isinstance(label, str)
                                  or len(label) > MAX_LABEL_LENGTH):
            raise InvalidSettingError(
                'label', label, 'must be a string of at most {} '
                'characters'.format(MAX_LABEL_LENGTH))
        client_id = self._clientId()
        containers = self._maintained()
        found = [sdc for sdc in containers
                 if sdc.setPrincipal(client_id, principal_id, label)
                 is not None]
        if not found:
            sdc, client_id = self._newSession(containers, client_id)
            if sdc is not None:
                self._refreshCookie()
                sdc.setPrincipal(client_id, principal_id, label)

    @property
    def principal(self):
        """See `IPrincipalSessions`."""
        client_id = self._clientId(create=False)
        if client_id is not None:
            for sdc in self._maintained():
                session_data = sdc.peek(client_id)
                if (session_data is not None
                        and session_data.principal is not None):
                    return session_data.principal
        return None

    def principalSessions(self):
        """See `IPrincipalSessions`."""
        principal = self.principal
        if principal is None:
            return []
        current = digest(self._clientId(create=False))
        merged = {}
        for sdc in self._maintained():
            for key, session_data in sdc.principalSessions(principal):
                found = merged.get(key)
                if found is None:
                    merged[key] = PrincipalSession(key, session_data,
                                                   key == current)
                else:
                    found.add(session_data)
        return sorted(merged.values(), key=lambda found: -found.lastUsed)

    def endSession(self, handle):
        """See `IPrincipalSessions`."""
        ended = [found for found in self.principalSessions()
                 if found.handle == handle]
        self._end(ended)
        return bool(ended)

    def endOtherSessions(self):
        """See `IPrincipalSessions`."""
        others = [found for found in self.principalSessions()
                  if not found.current]
        self._end(others)
        return len(others)

    def endAllSessions(self):
        """See `IPrincipalSessions`."""
        every = self.principalSessions()
        self._end(every)
        return len(every)

    def _end(self, sessions):
        for found in sessions:
            if found.current:
                self.invalidate()
                continue
            key = bytes.fromhex(found.handle)
            for sdc in self._maintained():
                sdc.removeSession(key)
