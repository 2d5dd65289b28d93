
import zope.component
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from zope_sessionx.data import SessionData
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import ISessionDataContainerMaintenance
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import TwoRequestsTestCase


class ContainerTestsMixin:
    """What both containers promise; run for each of them."""

    default_resolution = 600

    def _getTargetClass(self):
        raise NotImplementedError  # pragma: no cover

    def _makeOne(self):
        sdc = self._getTargetClass()()
        # These tests run cleanup by hand, under the fake clock.
        sdc.cleanerThread = False
        return sdc

    def _makeData(self):
        from zope_sessionx.data import SessionData
        return SessionData()

    def test_class_conforms(self):
        verifyClass(IExpiringSessionDataContainer, self._getTargetClass())
        verifyClass(ISessionDataContainerMaintenance,
                    self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(IExpiringSessionDataContainer, self._makeOne())

    def test_defaults(self):
        sdc = self._makeOne()
        self.assertEqual(sdc.timeout, 3600)
        self.assertEqual(sdc.resolution, self.default_resolution)
        self.assertEqual(len(sdc), 0)

    def test_bad_settings_refused_naming_the_setting(self):
        from zope_sessionx.interfaces import InvalidSettingError
        sdc = self._makeOne()
        for name in ('timeout', 'resolution', 'maxLifetime',
                     'targetNumber', 'maxNumber', 'cleanupPeriod',
                     'cleanupBatch'):
            before = getattr(sdc, name)
            for bad in (-1, 1.5, '10', None):
                with self.assertRaises(InvalidSettingError) as caught:
                    setattr(sdc, name, bad)
                self.assertEqual(caught.exception.setting, name)
                self.assertEqual(caught.exception.value, bad)
                self.assertTrue(str(caught.exception).startswith(
                    '{}={!r} refused: '.format(name, bad)))
                self.assertIsInstance(caught.exception, ValueError)
            self.assertEqual(getattr(sdc, name), before)
        with self.assertRaises(InvalidSettingError):
            sdc.cleanupPeriod = 0

    def test_restored_session_due_early_brings_cleanup_forward(self):
        from zope_sessionx.storage import digest
        sdc = self._makeOne()
        self.assertFalse(sdc.hasCleanupWork())
        # Restored (imported, say) with times of long ago: due already.
        data = self._makeData()
        data.created = self.clock() - 7200
        data.setLastAccessTime(self.clock() - 7200)
        sdc.restoreSession(digest('old'), data)
        self.assertTrue(sdc.hasCleanupWork())
        self.assertEqual(sdc.cleanup().timeout, 1)
        # One due later than the schedule leaves it as it is.
        later = self._makeData()
        later.created = self.clock()
        later.setLastAccessTime(self.clock() + 10 ** 5)
        step = sdc._store.schedule.step
        sdc.restoreSession(digest('later'), later)
        self.assertEqual(sdc._store.schedule.step, step)

    def test_now_follows_clock(self):
        sdc = self._makeOne()
        self.assertEqual(sdc.now(), EPOCH)
        self.clock.advance(10)
        self.assertEqual(sdc.now(), EPOCH + 10)

    def test_setitem_stamps_creation_and_access(self):
        sdc = self._makeOne()
        data = sdc['client'] = self._makeData()
        self.assertEqual(data.created, EPOCH)
        self.assertEqual(data.getLastAccessTime(), EPOCH)
        self.assertIs(sdc['client'], data)
        self.assertEqual(len(sdc), 1)

    def test_getitem_w_missing(self):
        sdc = self._makeOne()
        self.assertRaises(KeyError, sdc.__getitem__, 'nobody')
        self.assertIsNone(sdc.get('nobody'))
        self.assertNotIn('nobody', sdc)

    def test_getitem_w_expired_session(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc.resolution = 5
        sdc['client'] = self._makeData()
        self.clock.advance(60)
        self.assertIn('client', sdc)
        self.clock.advance(1)
        # Expired, though nothing swept: never returned.
        self.assertRaises(KeyError, sdc.__getitem__, 'client')
        self.assertEqual(sdc.get('client', 'gone'), 'gone')
        self.assertNotIn('client', sdc)
        self.assertEqual(len(sdc), 1)

    def test_getitem_bumps_access_time_once_per_resolution(self):
        sdc = self._makeOne()
        sdc.resolution = 100
        data = sdc['client'] = self._makeData()
        self.clock.advance(100)
        sdc['client']
        self.assertEqual(data.getLastAccessTime(), EPOCH)
        self.clock.advance(1)
        sdc['client']
        self.assertEqual(data.getLastAccessTime(), EPOCH + 101)

    def test_access_keeps_session_alive(self):
        sdc = self._makeOne()
        sdc.timeout = 80
        sdc.resolution = 600
        sdc['client'] = self._makeData()
        # The effective resolution is timeout / 8 = 10 s: a client reading
        # every 11 s is never timed out, whatever the resolution says.
        for _ in range(20):
            self.clock.advance(11)
            sdc['client']
        self.clock.advance(80)
        self.assertIn('client', sdc)

    def test_zero_timeout_never_expires_nor_writes(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        data = sdc['client'] = self._makeData()
        self.clock.advance(10 ** 8)
        self.assertIs(sdc['client'], data)
        self.assertEqual(data.getLastAccessTime(), EPOCH)
        self.assertFalse(sdc.isExpired(data))
        self.assertEqual(sdc.sweep(), 0)

    def test_zero_resolution_records_every_access(self):
        sdc = self._makeOne()
        sdc.resolution = 0
        data = sdc['client'] = self._makeData()
        self.clock.advance(1)
        sdc['client']
        self.assertEqual(data.getLastAccessTime(), EPOCH + 1)

    def test_replacing_expired_session_counts_once(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        old = sdc['client'] = self._makeData()
        self.clock.advance(61)
        new = sdc['client'] = self._makeData()
        self.assertIsNot(new, old)
        self.assertIs(sdc['client'], new)
        self.assertEqual(new.created, EPOCH + 61)
        self.assertEqual(len(sdc), 1)

    def test_setitem_keeps_creation_time_of_moved_data(self):
        sdc = self._makeOne()
        data = sdc['old'] = self._makeData()
        self.clock.advance(30)
        sdc['new'] = data
        self.assertEqual(data.created, EPOCH)
        self.assertEqual(data.getLastAccessTime(), EPOCH + 30)

    def test_delitem(self):
        sdc = self._makeOne()
        sdc['client'] = self._makeData()
        del sdc['client']
        self.assertNotIn('client', sdc)
        self.assertEqual(len(sdc), 0)
        self.assertRaises(KeyError, sdc.__delitem__, 'client')

    def test_sweep_ignores_grace_and_steps(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['client'] = self._makeData()
        self.clock.advance(61)
        self.assertEqual(sdc.sweep(), 1)

    def test_sweep_in_several_batches(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc.cleanupBatch = 2
        for n in range(5):
            sdc['client%d' % n] = self._makeData()
        self.clock.advance(61)
        self.assertEqual(sdc.sweep(), 5)

    def test_sweep_removes_expired_only(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc.resolution = 5
        sdc['old'] = self._makeData()
        self.clock.advance(30)
        sdc['young'] = self._makeData()
        self.clock.advance(31)
        self.assertEqual(sdc.sweep(), 1)
        self.assertEqual(len(sdc), 1)
        self.assertIn('young', sdc)
        self.assertEqual(sdc.sweep(), 0)

    def test_moveSession(self):
        from zope_sessionx.data import SessionPkgData
        sdc = self._makeOne()
        data = sdc['old'] = self._makeData()
        pkg = data['pkg'] = SessionPkgData()
        self.clock.advance(10)
        moved = sdc.moveSession('old', 'new')
        self.assertNotIn('old', sdc)
        self.assertIs(sdc['new'], moved)
        # A new record, with the same packages and times (the old one is
        # marked removed: see test_session's RotationRaceTests).
        self.assertIsNot(moved, data)
        self.assertIs(moved['pkg'], pkg)
        self.assertEqual(moved.created, EPOCH)
        self.assertEqual(moved.getLastAccessTime(), EPOCH)
        self.assertEqual(len(sdc), 1)

    def test_storing_the_same_session_again(self):
        sdc = self._makeOne()
        data = sdc['client'] = self._makeData()
        self.clock.advance(10)
        sdc['client'] = data
        self.assertEqual(len(sdc), 1)
        self.assertEqual(data.getLastAccessTime(), EPOCH + 10)

    def test_moveSession_from_nobody_to_live_session(self):
        sdc = self._makeOne()
        target = sdc['new'] = self._makeData()
        self.assertIs(sdc.moveSession('nobody', 'new'), target)

    def test_moveSession_keeps_live_target(self):
        sdc = self._makeOne()
        sdc['old'] = self._makeData()
        target = sdc['new'] = self._makeData()
        self.assertIs(sdc.moveSession('old', 'new'), target)
        self.assertNotIn('old', sdc)
        self.assertEqual(len(sdc), 1)

    def test_moveSession_over_expired_target(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['new'] = self._makeData()
        self.clock.advance(61)
        data = sdc['old'] = self._makeData()
        moved = sdc.moveSession('old', 'new')
        self.assertEqual(moved.created, data.created)
        self.assertIs(sdc['new'], moved)
        self.assertEqual(len(sdc), 1)

    def test_moveSession_w_expired_or_missing_source(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['old'] = self._makeData()
        self.clock.advance(61)
        self.assertIsNone(sdc.moveSession('old', 'new'))
        self.assertEqual(len(sdc), 0)
        self.assertIsNone(sdc.moveSession('nobody', 'new'))
        self.assertNotIn('new', sdc)

    def test_expiresAt_and_effectiveResolution(self):
        sdc = self._makeOne()
        data = sdc['client'] = self._makeData()
        self.assertEqual(sdc.effectiveResolution(),
                         min(self.default_resolution, 450))
        self.assertEqual(sdc.expiresAt(data), EPOCH + 3600)
        sdc.maxLifetime = 600
        self.assertEqual(sdc.expiresAt(data), EPOCH + 600)
        sdc.timeout = 0
        self.assertEqual(sdc.effectiveResolution(), sdc.resolution)
        self.assertEqual(sdc.expiresAt(data), EPOCH + 600)
        sdc.maxLifetime = 0
        self.assertIsNone(sdc.expiresAt(data))

    def test_maxLifetime_ends_a_session_in_use(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.maxLifetime = 1000
        sdc['client'] = self._makeData()
        for _ in range(10):
            self.clock.advance(100)
            sdc['client']
        self.assertIn('client', sdc)
        self.clock.advance(1)
        self.assertNotIn('client', sdc)
        self.assertRaises(KeyError, sdc.__getitem__, 'client')

    def test_maxLifetime_without_timeout(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        sdc.maxLifetime = 100
        data = sdc['client'] = self._makeData()
        self.clock.advance(100)
        self.assertIs(sdc['client'], data)
        self.clock.advance(1)
        # Refused on read, by every way of reading.
        self.assertNotIn('client', sdc)
        self.assertIsNone(sdc.get('client'))
        self.assertRaises(KeyError, sdc.__getitem__, 'client')

    def test_maxNumber_refuses_one_more(self):
        from zope_sessionx.interfaces import SessionError
        from zope_sessionx.interfaces import SessionLimitError
        sdc = self._makeOne()
        sdc.maxNumber = 2
        first = sdc['a'] = self._makeData()
        sdc['b'] = self._makeData()
        with self.assertRaises(SessionLimitError) as caught:
            sdc['c'] = self._makeData()
        self.assertEqual(caught.exception.limit, 2)
        self.assertIn('limit of 2 sessions', str(caught.exception))
        self.assertIsInstance(caught.exception, SessionError)
        self.assertNotIn('c', sdc)
        self.assertIs(sdc['a'], first)
        self.assertEqual(len(sdc), 2)
        # Replacing a client's session is not one more.
        sdc['a'] = self._makeData()
        self.assertEqual(len(sdc), 2)

    def test_limit_handler_may_make_room(self):
        from zope_sessionx.interfaces import ISessionLimitReachedEvent
        sdc = self._makeOne()
        sdc.maxNumber = 1
        sdc['old'] = self._makeData()
        seen = []

        def makeRoom(event):
            seen.append((event.container, event.limit))
            del event.container['old']

        zope.component.provideHandler(
            makeRoom, (ISessionLimitReachedEvent,))
        sdc['new'] = self._makeData()
        self.assertEqual(seen, [(sdc, 1)])
        self.assertIn('new', sdc)
        self.assertNotIn('old', sdc)

    def test_events_in_the_transaction_that_changes(self):
        from zope_sessionx.interfaces import ISessionCreatedEvent
        from zope_sessionx.interfaces import ISessionRemovedEvent
        events = []
        zope.component.provideHandler(
            events.append, (ISessionCreatedEvent,))
        zope.component.provideHandler(
            events.append, (ISessionRemovedEvent,))
        sdc = self._makeOne()
        sdc.timeout = 60
        old = sdc['client'] = self._makeData()
        self.clock.advance(61)
        new = sdc['client'] = self._makeData()
        del sdc['client']
        self.assertEqual(
            [(type(e).__name__, e.sessionData, getattr(e, 'reason', None),
              e.clientId, e.container) for e in events],
            [('SessionCreatedEvent', old, None, 'client', sdc),
             ('SessionRemovedEvent', old, 'timeout', 'client', sdc),
             ('SessionCreatedEvent', new, None, 'client', sdc),
             ('SessionRemovedEvent', new, 'invalidated', 'client', sdc)])

    def test_replacing_live_session_reports_invalidated(self):
        from zope_sessionx.interfaces import ISessionRemovedEvent
        events = []
        zope.component.provideHandler(
            events.append, (ISessionRemovedEvent,))
        sdc = self._makeOne()
        sdc['client'] = self._makeData()
        sdc['client'] = self._makeData()
        self.assertEqual([e.reason for e in events], ['invalidated'])

    def test_cleanup_removes_expired_after_grace(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc['old'] = self._makeData()
        self.clock.advance(300)
        sdc['young'] = self._makeData()
        self.assertFalse(sdc.hasCleanupWork())
        self.clock.advance(301)
        # Expired, refused on read, but within the grace: left for now.
        self.assertNotIn('old', sdc)
        self.assertFalse(sdc.hasCleanupWork())
        self.assertEqual(sdc.cleanup().removed(), 0)
        self.clock.advance(sdc.grace + sdc.indexStep)
        self.assertTrue(sdc.hasCleanupWork())
        result = sdc.cleanup()
        self.assertEqual((result.timeout, result.lifetime, result.more),
                         (1, 0, False))
        self.assertEqual(len(sdc), 1)
        self.assertIn('young', sdc)
        self.assertFalse(sdc.hasCleanupWork())

    def test_shorter_timeout_brings_cleanup_forward(self):
        sdc = self._makeOne()
        sdc['long'] = self._makeData()
        # Sessions created from now on expire after ten minutes, not an
        # hour: the cleaner must not wait for the hour.
        sdc.timeout = 600
        sdc['short'] = self._makeData()
        self.clock.advance(600 + sdc.grace + sdc.indexStep)
        self.assertTrue(sdc.hasCleanupWork())
        # The older one, indexed for the hour, is expired too, and found.
        self.assertEqual(sdc.cleanup().timeout, 2)
        self.assertEqual(len(sdc), 0)
        self.assertFalse(sdc.hasCleanupWork())

    def test_sweep_after_shortening_timeout_removes_what_expired(self):
        # The reported case: a session, then timeout = 1, two seconds.
        sdc = self._makeOne()
        sdc['client'] = self._makeData()
        sdc.timeout = 1
        self.clock.advance(2)
        self.assertEqual(sdc.sweep(), 1)
        self.assertEqual(len(sdc), 0)

    def test_shortening_visits_only_what_it_made_due(self):
        sdc = self._makeOne()
        for n in range(10):
            sdc['idle%d' % n] = self._makeData()
        self.clock.advance(2000)
        for n in range(30):
            sdc['busy%d' % n] = self._makeData()
        sdc.timeout = 1800
        result = sdc.cleanup(limit=100, grace=0)
        self.assertEqual((result.timeout, result.stale), (10, 0))
        self.assertEqual(len(sdc), 30)
        # Sessions indexed from now on are due at the new timeout, not
        # earlier.
        sdc['new'] = self._makeData()
        self.clock.advance(1799)
        self.assertEqual(sdc.cleanup(limit=100, grace=0).removed(), 0)
        self.clock.advance(2)
        self.assertEqual(sdc.cleanup(limit=100, grace=0).timeout, 31)

    def test_turning_max_lifetime_on_finds_old_sessions(self):
        sdc = self._makeOne()
        sdc.resolution = 0
        sdc['old'] = self._makeData()
        for _ in range(5):
            # Kept alive, and re-indexed by the cleanup: its index entry
            # stays up to an hour ahead.
            self.clock.advance(3000)
            self.assertIsNotNone(sdc.get('old'))
            self.assertEqual(sdc.cleanup(grace=0).removed(), 0)
        sdc['young'] = self._makeData()
        sdc.maxLifetime = 7200
        self.assertEqual(sdc.sweep(), 1)
        self.assertIn('young', sdc)

    def test_shortening_lifetime_finds_old_sessions(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        sdc.maxLifetime = 86400
        sdc['old'] = self._makeData()
        self.clock.advance(7200)
        sdc['young'] = self._makeData()
        sdc.maxLifetime = 3600
        self.assertEqual(sdc.sweep(), 1)
        self.assertIn('young', sdc)
        self.assertNotIn('old', sdc)

    def test_cleanup_waits_out_the_grace_of_a_session_used_late(self):
        # Used after it was indexed, a session's entry comes due before
        # the session does; when the cleaner visits it just after the
        # session expired, a request that read it just in time may still
        # run: the grace keeps it until that request is surely done.
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.resolution = 0
        sdc['client'] = self._makeData()
        self.clock.advance(500)
        self.assertIsNotNone(sdc.get('client'))
        self.clock.advance(600 + sdc.grace // 2)
        self.assertNotIn('client', sdc)
        result = sdc.cleanup()
        self.assertEqual((result.removed(), result.stale), (0, 1))
        self.assertEqual(len(sdc), 1)
        self.clock.advance(sdc.grace + sdc.indexStep)
        self.assertEqual(sdc.cleanup().timeout, 1)

    def test_cleanup_reindexes_sessions_in_use(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.resolution = 60
        sdc['busy'] = self._makeData()
        for _ in range(10):
            self.clock.advance(61)
            sdc['busy']
        self.clock.advance(sdc.grace + sdc.indexStep)
        self.assertTrue(sdc.hasCleanupWork())
        result = sdc.cleanup()
        self.assertEqual((result.removed(), result.stale), (0, 1))
        self.assertFalse(sdc.hasCleanupWork())
        self.assertIn('busy', sdc)
        # Left alone, it expires and goes at its new time.
        self.clock.advance(600 + sdc.grace + sdc.indexStep)
        self.assertEqual(sdc.cleanup().timeout, 1)
        self.assertEqual(len(sdc), 0)

    def test_cleanup_of_lifetime_reports_reason(self):
        from zope_sessionx.interfaces import ISessionRemovedEvent
        events = []
        zope.component.provideHandler(
            events.append, (ISessionRemovedEvent,))
        sdc = self._makeOne()
        sdc.maxLifetime = 100
        sdc['client'] = self._makeData()
        self.clock.advance(100 + sdc.grace + sdc.indexStep)
        result = sdc.cleanup()
        self.assertEqual((result.lifetime, result.timeout), (1, 0))
        self.assertEqual([(e.reason, e.clientId) for e in events],
                         [('lifetime', None)])

    def test_cleanup_drops_entries_of_removed_sessions(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['client'] = self._makeData()
        del sdc['client']
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        result = sdc.cleanup()
        self.assertEqual((result.removed(), result.stale), (0, 1))
        self.assertFalse(sdc.hasCleanupWork())

    def test_cleanup_in_batches(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        for n in range(7):
            sdc['client%d' % n] = self._makeData()
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        results = [sdc.cleanup(limit=3) for _ in range(3)]
        self.assertEqual([(r.timeout, r.more) for r in results],
                         [(3, True), (3, True), (1, False)])
        self.assertEqual(len(sdc), 0)

    def test_cleanup_bounds_visits_of_outdated_entries(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        for n in range(25):
            sdc['client%d' % n] = self._makeData()
            del sdc['client%d' % n]
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        first = sdc.cleanup(limit=2)
        self.assertEqual((first.stale, first.more), (20, True))
        second = sdc.cleanup(limit=2)
        self.assertEqual((second.stale, second.more), (5, False))

    def test_cleanup_failing_removal_handler_does_not_stop_it(self):
        from zope_sessionx.interfaces import ISessionRemovedEvent

        def failing(event):
            raise RuntimeError('handler bug')

        zope.component.provideHandler(failing, (ISessionRemovedEvent,))
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['a'] = self._makeData()
        sdc['b'] = self._makeData()
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        with self.assertLogs('zope_sessionx.container', 'ERROR') as logs:
            self.assertEqual(sdc.cleanup().timeout, 2)
        self.assertEqual(len(logs.records), 2)
        self.assertEqual(len(sdc), 0)
        # In a request, the same handler's error is the request's.
        sdc['c'] = self._makeData()
        self.assertRaises(RuntimeError, sdc.__delitem__, 'c')

    def test_targetNumber_evicts_least_recently_used(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.resolution = 10
        sdc.targetNumber = 2
        for name in ('a', 'b', 'c', 'd'):
            sdc[name] = self._makeData()
            self.clock.advance(60)
        sdc['a']  # used again: no longer the least recently used
        self.assertTrue(sdc.hasCleanupWork())
        result = sdc.cleanup()
        self.assertEqual(result.evicted, 2)
        self.assertEqual(len(sdc), 2)
        self.assertEqual([n for n in 'abcd' if n in sdc], ['a', 'd'])
        self.assertFalse(sdc.hasCleanupWork())

    def test_targetNumber_in_batches_and_without_timeout(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        sdc.targetNumber = 1
        # Eviction follows the index: least recently used first, to the
        # index's step.
        for n in range(4):
            sdc['client%d' % n] = self._makeData()
            self.clock.advance(sdc.indexStep)
        first = sdc.cleanup(limit=1)
        self.assertEqual((first.evicted, first.more), (1, True))
        self.assertEqual(sdc.cleanup().evicted, 2)
        self.assertEqual([n for n in range(4) if 'client%d' % n in sdc], [3])

    def test_no_cleanup_work_when_nothing_can_expire(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        sdc['client'] = self._makeData()
        self.clock.advance(10 ** 6)
        self.assertFalse(sdc.hasCleanupWork())

    def test_eviction_skips_entries_of_removed_sessions(self):
        sdc = self._makeOne()
        sdc.targetNumber = 1
        sdc['gone'] = self._makeData()
        del sdc['gone']
        self.clock.advance(sdc.indexStep)
        sdc['a'] = self._makeData()
        self.clock.advance(sdc.indexStep)
        sdc['b'] = self._makeData()
        result = sdc.cleanup()
        self.assertEqual((result.evicted, result.stale), (1, 1))
        self.assertIn('b', sdc)

    def test_targetNumber_wo_index_entries(self):
        # Records that cannot be read lose their index entries (and are
        # logged once): then nothing is left to evict by, and eviction
        # stops rather than loop.
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc.targetNumber = 1
        damaged = [self._makeData(), self._makeData()]
        sdc['a'], sdc['b'] = damaged
        for data in damaged:
            data.__class__ = _Unreadable
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        with self.assertLogs('zope_sessionx.container', 'ERROR') as logs:
            result = sdc.cleanup()
        self.assertEqual(len(logs.records), 2)
        self.assertEqual((result.removed(), result.more), (0, False))
        self.assertEqual(len(sdc), 2)
        self.assertEqual(sdc.cleanup().removed(), 0)

    def test_subclass_may_set_due_settings_before_setting_up(self):
        class Short(self._getTargetClass()):
            def __init__(self):
                self.timeout = 600
                super().__init__()

        sdc = Short()
        sdc.cleanerThread = False
        sdc['client'] = self._makeData()
        # The schedule follows the ten minutes from the start: nothing to
        # do before they (and the grace) are over.
        self.clock.advance(600)
        self.assertFalse(sdc.hasCleanupWork())
        self.clock.advance(sdc.grace + sdc.indexStep)
        self.assertTrue(sdc.hasCleanupWork())
        self.assertEqual(sdc.cleanup().timeout, 1)

    def test_winding_the_access_time_back_expires_a_session(self):
        # What zope.session's doctests (and users' suites) do.
        sdc = self._makeOne()
        sdc['client'] = self._makeData()
        sdc['client'].setLastAccessTime(EPOCH - sdc.timeout - 1)
        self.assertNotIn('client', sdc)
        self.assertIsNone(sdc.get('client'))

    def test_no_setting_change_loses_a_live_session(self):
        sdc = self._makeOne()
        sdc.resolution = 60
        sdc['client'] = self._makeData()
        self.clock.advance(100)
        for name, value in [('timeout', 600), ('resolution', 10),
                            ('maxLifetime', 7200), ('targetNumber', 5),
                            ('maxNumber', 10), ('cleanupPeriod', 3),
                            ('cleanupBatch', 7), ('timeout', 300),
                            ('maxLifetime', 0), ('timeout', 3600)]:
            setattr(sdc, name, value)
            self.assertIn('client', sdc, name)
            self.assertEqual(sdc.sweep(), 0, name)
        self.assertEqual(sdc.cleanup().removed(), 0)
        self.assertEqual(len(sdc), 1)

    def test_timeout_change_keeps_sessions(self):
        sdc = self._makeOne()
        sdc['client'] = self._makeData()
        self.clock.advance(3000)
        sdc.timeout = 7200
        sdc.resolution = 60
        self.clock.advance(3000)
        self.assertIn('client', sdc)


class PersistentSessionDataContainerTests(ContainerTestsMixin,
                                          ComponentsTestCase):

    def _getTargetClass(self):
        from zope_sessionx.container import PersistentSessionDataContainer
        return PersistentSessionDataContainer


class _Unreadable(SessionData):
    """A session record whose class can no longer read it."""

    def getLastAccessTime(self):
        raise AttributeError('_last')


class RealConnectionsTests(ComponentsTestCase):
    """Settings and access times changed in one connection, seen by
    another, on a FileStorage."""

    def setUp(self):
        super().setUp()
        import transaction

        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.tests.helpers import FileStorageDB
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        self.tm = transaction.TransactionManager()
        conn = self.fs.db.open(self.tm)
        self.addCleanup(conn.close)
        sdc = conn.root()['sdc'] = PersistentSessionDataContainer()
        sdc.cleanerThread = False
        for n in range(21):
            sdc['client%d' % n] = SessionData()
        self.tm.commit()
        self.sdc = sdc

    def _other(self):
        import transaction
        tm = transaction.TransactionManager()
        conn = self.fs.db.open(tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        return tm, conn.root()['sdc']

    def test_sweep_after_a_shorter_timeout_committed_elsewhere(self):
        tm, other = self._other()
        other.timeout = 1
        tm.commit()
        self.clock.advance(2)
        tm2, third = self._other()
        self.assertEqual(third.sweep(), 21)
        tm2.commit()
        self.tm.begin()
        self.assertEqual(len(self.sdc), 0)

    def test_winding_back_an_access_time_committed_elsewhere(self):
        tm, other = self._other()
        other['client0'].setLastAccessTime(EPOCH - other.timeout - 1)
        tm.commit()
        self.tm.begin()
        self.assertNotIn('client0', self.sdc)
        self.assertIn('client1', self.sdc)

    def test_limit_exceeded_by_at_most_the_concurrent_creations(self):
        # Documented (maxNumber, docs/expiry.rst): each request checks the
        # count it reads; two creating at once, at one below the limit,
        # both commit (the counts merge), and the next is refused.
        from zope_sessionx.interfaces import SessionLimitError
        self.sdc.maxNumber = 22
        self.tm.commit()
        (tm1, one), (tm2, two) = self._other(), self._other()
        one['new1'] = SessionData()
        two['new2'] = SessionData()
        tm1.commit()
        tm2.commit()
        tm3, three = self._other()
        self.assertEqual(len(three), 23)
        with self.assertRaises(SessionLimitError):
            three['new3'] = SessionData()


AFTER_GRACE = 60 + 2 * 60 + 1


class RemovalWithoutWriteTests(TwoRequestsTestCase):
    """The cleaner removes an expired session without writing its records:
    the requests that could still write to it conflict instead (see
    "Removing without writing" in docs/design.rst)."""

    # Past the grace (60 s), and past the index step (60 s) the entry is
    # in, so that the cleaner finds it.
    def _expire(self, client_id, extra):
        # Past the session's expiry by *extra* seconds.
        manager, conn = self._open()
        data = conn.root()['sdc'].peek(client_id)
        due = conn.root()['sdc'].expiresAt(data)
        manager.abort()
        self.clock.now = due + extra

    def _cleanup(self, grace=None):
        manager, conn = self._open()
        result = conn.root()['sdc'].cleanup(grace=grace)
        return manager, conn, result

    def test_cleanup_writes_nothing_of_the_removed_session(self):
        client_id = self._createClient(color='red')
        manager, conn = self._open()
        data = conn.root()['sdc'].peek(client_id)
        oids = {data._p_oid, data._access._p_oid,
                data['products.foo']._p_oid}
        manager.abort()
        self._expire(client_id, AFTER_GRACE)
        manager, conn, result = self._cleanup()
        self.assertEqual(result.timeout, 1)
        written = {obj._p_oid for obj in conn._registered_objects}
        self.assertTrue(written)
        self.assertFalse(written & oids)
        manager.commit()
        self.assertFalse(self._read(client_id))

    def test_request_committing_after_the_grace_conflicts(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        self._expire(client_id, -1)
        # A long request reads the session just before it expires ...
        manager, conn = self._open()
        session = self._session(conn, client_id)
        self.assertEqual(session['products.foo']['color'], 'red')
        # ... the cleaner removes it after expiry and grace ...
        self._expire(client_id, AFTER_GRACE)
        cleaner, _, result = self._cleanup()
        self.assertEqual(result.timeout, 1)
        cleaner.commit()
        # ... and the request's write cannot land in the removed session.
        session['products.foo']['color'] = 'blue'
        self.assertRaises(ConflictError, manager.commit)

    def test_request_committing_within_half_the_grace_commits(self):
        client_id = self._createClient(color='red')
        self._expire(client_id, -1)
        manager, conn = self._open()
        session = self._session(conn, client_id)
        session['products.foo']['color'] = 'blue'
        self._expire(client_id, 30)
        manager.commit()

    def test_access_recorded_meanwhile_makes_the_cleaner_conflict(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        # The cleaner's transaction starts (its snapshot is fixed) ...
        cleaner, cconn = self._open()
        cconn.root()['sdc']
        # ... a request records an access, and commits in time ...
        self._expire(client_id, -1)
        due = self.clock.now + 1
        manager, conn = self._open()
        self._session(conn, client_id)['products.foo'].get('color')
        manager.commit()
        # ... and the cleaner, reading the old access time, must not
        # remove the session the request just kept alive.
        self.clock.now = due + AFTER_GRACE
        self.assertEqual(cconn.root()['sdc'].cleanup().timeout, 1)
        self.assertRaises(ConflictError, cleaner.commit)
        cleaner.abort()
        self.assertEqual(self._read(client_id), {'color': 'red'})

    def test_sweep_without_grace_marks_the_session(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        self._expire(client_id, -1)
        manager, conn = self._open()
        session = self._session(conn, client_id)
        session['products.foo'].get('color')
        # No grace: a request that read the session in time may still be
        # running, so the removal writes the session's mark.
        self._expire(client_id, 1)
        sweeper, sconn = self._open()
        self.assertEqual(sconn.root()['sdc'].sweep(), 1)
        sweeper.commit()
        session['products.foo']['color'] = 'blue'
        self.assertRaises(ConflictError, manager.commit)

    def test_guard_keeps_the_earliest_deadline(self):
        import transaction

        from zope_sessionx.guard import CommitGuard
        txn = transaction.TransactionManager().begin()
        CommitGuard.limit(txn, self.clock, 20)
        CommitGuard.limit(txn, self.clock, 10)
        CommitGuard.limit(txn, self.clock, 30)
        self.assertEqual(txn.data(CommitGuard).deadline, 10)
        self.assertEqual(len(list(txn.getBeforeCommitHooks())), 1)
