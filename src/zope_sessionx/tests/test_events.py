import unittest

from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from zope_sessionx import events
from zope_sessionx import interfaces


class EventClassesTests(unittest.TestCase):

    def test_conform(self):
        sdc, data = object(), object()
        for klass, iface, args in [
            (events.SessionCreatedEvent, interfaces.ISessionCreatedEvent,
             (sdc, data, 'id')),
            (events.SessionRemovedEvent, interfaces.ISessionRemovedEvent,
             (sdc, data, 'timeout')),
            (events.SessionLimitReachedEvent,
             interfaces.ISessionLimitReachedEvent, (sdc, 10)),
            (events.CleanupRoundEvent, interfaces.ICleanupRoundEvent,
             (sdc,)),
        ]:
            verifyClass(iface, klass)
            verifyObject(iface, klass(*args))

    def test_removed_event_carries_reason_and_id(self):
        event = events.SessionRemovedEvent('sdc', 'data', 'evicted')
        self.assertEqual((event.reason, event.clientId), ('evicted', None))

    def test_round_event_counts_start_at_zero(self):
        event = events.CleanupRoundEvent('sdc')
        self.assertEqual(
            (event.timeout, event.lifetime, event.evicted, event.stale,
             event.transactions, event.conflicts), (0, 0, 0, 0, 0, 0))
