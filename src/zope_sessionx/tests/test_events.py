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

    def test_events_of_a_real_container(self):
        # What handlers get: the client id where the container knows it
        # (it stores only a digest, so not when the cleaner removes).
        import zope.component

        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.data import SessionData
        from zope_sessionx.tests.helpers import installClock
        from zope_sessionx.tests.helpers import setUpComponents
        from zope_sessionx.tests.helpers import tearDownComponents
        setUpComponents()
        self.addCleanup(tearDownComponents)
        clock = installClock()
        seen = []
        zope.component.provideHandler(seen.append,
                                      (interfaces.ISessionEvent,))
        sdc = PersistentSessionDataContainer()
        sdc.targetNumber = 1
        first = sdc['first'] = SessionData()
        # A step of the index later: the first is the least recent.
        clock.advance(sdc.indexStep)
        sdc['second'] = SessionData()
        del sdc['second']
        sdc['third'] = SessionData()
        sdc.cleanup()
        self.assertEqual(
            [(type(e).__name__, e.clientId, getattr(e, 'reason', None))
             for e in seen],
            [('SessionCreatedEvent', 'first', None),
             ('SessionCreatedEvent', 'second', None),
             ('SessionRemovedEvent', 'second', 'invalidated'),
             ('SessionCreatedEvent', 'third', None),
             ('SessionRemovedEvent', None, 'evicted')])
        self.assertIs(seen[-1].sessionData, first)
        self.assertTrue(all(e.container is sdc for e in seen))

    def test_round_event_counts_start_at_zero(self):
        event = events.CleanupRoundEvent('sdc')
        self.assertEqual(
            (event.timeout, event.lifetime, event.evicted, event.stale,
             event.transactions, event.conflicts), (0, 0, 0, 0, 0, 0))
