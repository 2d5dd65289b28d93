"""When a session expires: the container's settings, or the session's own
idle timeout and lifetime ("remember me"), bounded by the container.

`SessionExpiry` is a base of the containers.
"""
from zope_sessionx.clock import currentTime
from zope_sessionx.interfaces import LIFETIME
from zope_sessionx.interfaces import TIMEOUT
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.storage import digest


__all__ = [
    'SessionExpiry',
]


class SessionExpiry:
    """See `~zope_sessionx.interfaces.IExpiringSessionDataContainer`."""

    def now(self):
        """See `IExpiringSessionDataContainer`."""
        return currentTime()

    def _own(self, value, default, longest):
        # A session's own setting, bounded by the longest the container
        # allows now (an operator may lower it at any time).
        if value is None or not default:
            return default
        return min(value, max(default, longest))

    def timeoutOf(self, session_data):
        """See `IExpiringSessionDataContainer`."""
        return self._own(session_data.timeout, self.timeout,
                         self.longestTimeout)

    def lifetimeOf(self, session_data):
        """See `IExpiringSessionDataContainer`."""
        return self._own(session_data.maxLifetime, self.maxLifetime,
                         self.longestLifetime)

    def effectiveResolution(self, session_data=None):
        """See `IExpiringSessionDataContainer`."""
        timeout = (self.timeout if session_data is None
                   else self.timeoutOf(session_data))
        if timeout and self.resolution:
            return min(self.resolution, timeout / 8)
        return self.resolution

    def expiresAt(self, session_data):
        """See `IExpiringSessionDataContainer`."""
        due = None
        timeout = self.timeoutOf(session_data)
        if timeout:
            due = session_data.getLastAccessTime() + timeout
        lifetime = self.lifetimeOf(session_data)
        if lifetime:
            end = session_data.created + lifetime
            due = end if due is None else min(due, end)
        return due

    def isExpired(self, session_data, now=None):
        """See `IExpiringSessionDataContainer`."""
        due = self.expiresAt(session_data)
        if due is None:
            return False
        return due < (self.now() if now is None else now)

    def _expiryReason(self, session_data):
        # Whichever limit was reached first ended the session.
        lifetime = self.lifetimeOf(session_data)
        if lifetime:
            timeout = self.timeoutOf(session_data)
            end = session_data.created + lifetime
            if (not timeout
                    or end <= session_data.getLastAccessTime() + timeout):
                return LIFETIME
        return TIMEOUT

    def checkExpiry(self, timeout=None, maxLifetime=None):
        """See `IExpiringSessionDataContainer`."""
        for name, value, default, longest in [
                ('timeout', timeout, self.timeout, self.longestTimeout),
                ('maxLifetime', maxLifetime, self.maxLifetime,
                 self.longestLifetime)]:
            if value is None:
                continue
            if (not isinstance(value, int) or isinstance(value, bool)
                    or value < 1):
                raise InvalidSettingError(
                    name, value, 'must be a whole number of seconds, '
                    'at least 1')
            if not default:
                raise InvalidSettingError(
                    name, value, 'this container has no {} of its own to '
                    'bound it'.format(name))
            if value > max(default, longest):
                raise InvalidSettingError(
                    name, value, 'longer than this container allows ({} '
                    'seconds)'.format(max(default, longest)))

    def setExpiry(self, client_id, timeout=None, maxLifetime=None):
        """See `IExpiringSessionDataContainer`."""
        self.checkExpiry(timeout, maxLifetime)
        session_data = self.get(client_id)
        if session_data is None or (session_data.timeout == timeout
                                    and session_data.maxLifetime
                                    == maxLifetime):
            return session_data
        session_data.timeout = timeout
        session_data.maxLifetime = maxLifetime
        # Due earlier, it must be found earlier; due later, the entry it
        # has is found first, and re-indexed then.
        self._store.index.insert(
            self._indexEntry(session_data, digest(client_id)))
        return session_data
