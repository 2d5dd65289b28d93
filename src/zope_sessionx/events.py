"""Event classes; their interfaces are in `zope_sessionx.interfaces`."""
from zope.interface import implementer

from zope_sessionx.interfaces import ICleanupRoundEvent
from zope_sessionx.interfaces import ISessionCreatedEvent
from zope_sessionx.interfaces import ISessionLimitReachedEvent
from zope_sessionx.interfaces import ISessionRemovedEvent


@implementer(ISessionCreatedEvent)
class SessionCreatedEvent:
    """See `ISessionCreatedEvent`."""

    def __init__(self, container, session_data, client_id):
        self.container = container
        self.sessionData = session_data
        self.clientId = client_id


@implementer(ISessionRemovedEvent)
class SessionRemovedEvent:
    """See `ISessionRemovedEvent`."""

    def __init__(self, container, session_data, reason, client_id=None):
        self.container = container
        self.sessionData = session_data
        self.reason = reason
        self.clientId = client_id


@implementer(ISessionLimitReachedEvent)
class SessionLimitReachedEvent:
    """See `ISessionLimitReachedEvent`."""

    def __init__(self, container, limit):
        self.container = container
        self.limit = limit


@implementer(ICleanupRoundEvent)
class CleanupRoundEvent:
    """See `ICleanupRoundEvent`."""

    def __init__(self, container, timeout=0, lifetime=0, evicted=0,
                 stale=0, transactions=0, conflicts=0):
        self.container = container
        self.timeout = timeout
        self.lifetime = lifetime
        self.evicted = evicted
        self.stale = stale
        self.transactions = transactions
        self.conflicts = conflicts
