import unittest

import transaction
import zope.component
from ZODB.POSException import ConflictError
from zope.interface import implementer
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionData
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.interfaces import ISessionPkgData
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest


class SessionPkgDataTests(unittest.TestCase):

    def _getTargetClass(self):
        from zope_sessionx.session import SessionPkgData
        return SessionPkgData

    def _makeOne(self):
        return self._getTargetClass()()

    def test_class_conforms(self):
        verifyClass(ISessionPkgData, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ISessionPkgData, self._makeOne())

    def test_mapping(self):
        data = self._makeOne()
        data['color'] = 'red'
        self.assertEqual(data['color'], 'red')
        self.assertEqual(data.get('missing', 'x'), 'x')
        self.assertIn('color', data)
        self.assertEqual(list(data.items()), [('color', 'red')])
        del data['color']
        self.assertEqual(len(data), 0)


class SessionDataTests(unittest.TestCase):

    def _getTargetClass(self):
        from zope_sessionx.session import SessionData
        return SessionData

    def _makeOne(self):
        return self._getTargetClass()()

    def test_class_conforms(self):
        verifyClass(ISessionData, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ISessionData, self._makeOne())

    def test_new_has_no_times(self):
        data = self._makeOne()
        self.assertEqual(data.created, 0)
        self.assertEqual(data.getLastAccessTime(), 0)
        self.assertEqual(data.lastAccessTime, 0)

    def test_setLastAccessTime_keeps_the_largest(self):
        data = self._makeOne()
        data.setLastAccessTime(20)
        data.lastAccessTime = 10
        self.assertEqual(data.getLastAccessTime(), 20)

    def test_mapping_of_packages(self):
        from zope_sessionx.session import SessionPkgData
        data = self._makeOne()
        pkg = data['products.foo'] = SessionPkgData()
        self.assertIs(data['products.foo'], pkg)
        self.assertIs(data.get('products.foo'), pkg)
        self.assertIsNone(data.get('products.bar'))
        self.assertIn('products.foo', data)
        self.assertEqual(list(data), ['products.foo'])
        self.assertEqual(list(data.keys()), ['products.foo'])
        self.assertEqual(list(data.values()), [pkg])
        self.assertEqual(list(data.items()), [('products.foo', pkg)])
        self.assertEqual(len(data), 1)
        del data['products.foo']
        self.assertRaises(KeyError, data.__getitem__, 'products.foo')


class ContainerTestsMixin:
    """What both containers promise; run for each of them."""

    default_resolution = 600

    def _getTargetClass(self):
        raise NotImplementedError  # pragma: no cover

    def _makeOne(self):
        return self._getTargetClass()()

    def _makeData(self):
        from zope_sessionx.session import SessionData
        return SessionData()

    def test_class_conforms(self):
        verifyClass(IExpiringSessionDataContainer, self._getTargetClass())

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
        for name in ('timeout', 'resolution', 'max_lifetime',
                     'target_number', 'max_number', 'cleanup_period',
                     'cleanup_batch'):
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
            sdc.cleanup_period = 0

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
        sdc.cleanup_batch = 2
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
        sdc = self._makeOne()
        data = sdc['old'] = self._makeData()
        self.clock.advance(10)
        self.assertIs(sdc.moveSession('old', 'new'), data)
        self.assertNotIn('old', sdc)
        self.assertIs(sdc['new'], data)
        self.assertEqual(data.created, EPOCH)
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
        self.assertIs(sdc.moveSession('old', 'new'), data)
        self.assertIs(sdc['new'], data)
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
        sdc.max_lifetime = 600
        self.assertEqual(sdc.expiresAt(data), EPOCH + 600)
        sdc.timeout = 0
        self.assertEqual(sdc.effectiveResolution(), sdc.resolution)
        self.assertEqual(sdc.expiresAt(data), EPOCH + 600)
        sdc.max_lifetime = 0
        self.assertIsNone(sdc.expiresAt(data))

    def test_max_lifetime_ends_a_session_in_use(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.max_lifetime = 1000
        sdc['client'] = self._makeData()
        for _ in range(10):
            self.clock.advance(100)
            sdc['client']
        self.assertIn('client', sdc)
        self.clock.advance(1)
        self.assertNotIn('client', sdc)
        self.assertRaises(KeyError, sdc.__getitem__, 'client')

    def test_max_lifetime_without_timeout(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        sdc.max_lifetime = 100
        data = sdc['client'] = self._makeData()
        self.clock.advance(100)
        self.assertIs(sdc['client'], data)
        self.clock.advance(1)
        self.assertNotIn('client', sdc)

    def test_max_number_refuses_one_more(self):
        from zope_sessionx.interfaces import SessionError
        from zope_sessionx.interfaces import SessionLimitError
        sdc = self._makeOne()
        sdc.max_number = 2
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
        sdc.max_number = 1
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
            [(type(e).__name__, e.session_data, getattr(e, 'reason', None),
              e.client_id, e.container) for e in events],
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
        self.clock.advance(sdc.grace + sdc.index_step)
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
        self.clock.advance(600 + sdc.grace + sdc.index_step)
        self.assertTrue(sdc.hasCleanupWork())
        self.assertEqual(sdc.cleanup().timeout, 1)
        self.assertNotIn('short', sdc)
        # The older one is expired too (refused on read); its index entry
        # is visited at the hour it was indexed for.
        self.assertNotIn('long', sdc)
        self.assertFalse(sdc.hasCleanupWork())
        self.clock.advance(3600)
        self.assertEqual(sdc.cleanup().timeout, 1)
        self.assertEqual(len(sdc), 0)

    def test_cleanup_reindexes_sessions_in_use(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.resolution = 60
        sdc['busy'] = self._makeData()
        for _ in range(10):
            self.clock.advance(61)
            sdc['busy']
        self.clock.advance(sdc.grace + sdc.index_step)
        self.assertTrue(sdc.hasCleanupWork())
        result = sdc.cleanup()
        self.assertEqual((result.removed(), result.stale), (0, 1))
        self.assertFalse(sdc.hasCleanupWork())
        self.assertIn('busy', sdc)
        # Left alone, it expires and goes at its new time.
        self.clock.advance(600 + sdc.grace + sdc.index_step)
        self.assertEqual(sdc.cleanup().timeout, 1)
        self.assertEqual(len(sdc), 0)

    def test_cleanup_of_lifetime_reports_reason(self):
        from zope_sessionx.interfaces import ISessionRemovedEvent
        events = []
        zope.component.provideHandler(
            events.append, (ISessionRemovedEvent,))
        sdc = self._makeOne()
        sdc.max_lifetime = 100
        sdc['client'] = self._makeData()
        self.clock.advance(100 + sdc.grace + sdc.index_step)
        result = sdc.cleanup()
        self.assertEqual((result.lifetime, result.timeout), (1, 0))
        self.assertEqual([(e.reason, e.client_id) for e in events],
                         [('lifetime', None)])

    def test_cleanup_drops_entries_of_removed_sessions(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['client'] = self._makeData()
        del sdc['client']
        self.clock.advance(60 + sdc.grace + sdc.index_step)
        result = sdc.cleanup()
        self.assertEqual((result.removed(), result.stale), (0, 1))
        self.assertFalse(sdc.hasCleanupWork())

    def test_cleanup_in_batches(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        for n in range(7):
            sdc['client%d' % n] = self._makeData()
        self.clock.advance(60 + sdc.grace + sdc.index_step)
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
        self.clock.advance(60 + sdc.grace + sdc.index_step)
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
        self.clock.advance(60 + sdc.grace + sdc.index_step)
        with self.assertLogs('zope_sessionx.session', 'ERROR') as logs:
            self.assertEqual(sdc.cleanup().timeout, 2)
        self.assertEqual(len(logs.records), 2)
        self.assertEqual(len(sdc), 0)
        # In a request, the same handler's error is the request's.
        sdc['c'] = self._makeData()
        self.assertRaises(RuntimeError, sdc.__delitem__, 'c')

    def test_target_number_evicts_least_recently_used(self):
        sdc = self._makeOne()
        sdc.timeout = 600
        sdc.resolution = 10
        sdc.target_number = 2
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

    def test_target_number_in_batches_and_without_timeout(self):
        sdc = self._makeOne()
        sdc.timeout = 0
        sdc.target_number = 1
        # Eviction follows the index: least recently used first, to the
        # index's step.
        for n in range(4):
            sdc['client%d' % n] = self._makeData()
            self.clock.advance(sdc.index_step)
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
        sdc.target_number = 1
        sdc['gone'] = self._makeData()
        del sdc['gone']
        self.clock.advance(sdc.index_step)
        sdc['a'] = self._makeData()
        self.clock.advance(sdc.index_step)
        sdc['b'] = self._makeData()
        result = sdc.cleanup()
        self.assertEqual((result.evicted, result.stale), (1, 1))
        self.assertIn('b', sdc)

    def test_target_number_wo_index_entries(self):
        sdc = self._makeOne()
        sdc.target_number = 1
        sdc['a'] = self._makeData()
        sdc['b'] = self._makeData()
        # Drain the index: nothing is left to evict by.
        sdc.timeout = 0
        for entry in list(sdc._index.heads().values()):
            sdc._index.remove(entry)
        self.assertEqual(sdc._index.heads(), {})
        result = sdc.cleanup()
        self.assertEqual(result.evicted, 0)
        self.assertFalse(result.more)

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
        from zope_sessionx.session import PersistentSessionDataContainer
        return PersistentSessionDataContainer

    def test_subclass_may_set_due_settings_before_setting_up(self):
        class Short(self._getTargetClass()):
            def __init__(self):
                self.timeout = 600
                super().__init__()

        sdc = Short()
        sdc['client'] = self._makeData()
        # The schedule follows the ten minutes from the start: nothing to
        # do before they (and the grace) are over.
        self.clock.advance(600)
        self.assertFalse(sdc.hasCleanupWork())
        self.clock.advance(sdc.grace + sdc.index_step)
        self.assertTrue(sdc.hasCleanupWork())
        self.assertEqual(sdc.cleanup().timeout, 1)


class RAMSessionDataContainerTests(ContainerTestsMixin, ComponentsTestCase):

    default_resolution = 300

    def _getTargetClass(self):
        from zope_sessionx.session import RAMSessionDataContainer
        return RAMSessionDataContainer

    def test_containers_do_not_share_data(self):
        one, two = self._makeOne(), self._makeOne()
        one['client'] = self._makeData()
        self.assertNotIn('client', two)

    def test_data_joins_the_request_transaction(self):
        sdc = self._makeOne()
        sdc['committed'] = self._makeData()
        transaction.commit()
        sdc['aborted'] = self._makeData()
        transaction.abort()
        self.assertIn('committed', sdc)
        self.assertNotIn('aborted', sdc)

    def test_sweep_frees_removed_data(self):
        sdc = self._makeOne()
        sdc.timeout = 60
        sdc['client'] = self._makeData()
        transaction.commit()
        self.clock.advance(61)
        self.assertEqual(sdc.sweep(), 1)
        transaction.commit()
        self.assertEqual(len(sdc), 0)

    def test_cleanup_rounds_free_memory(self):
        from unittest import mock

        from zope_sessionx.session import _getRAMStore
        store = _getRAMStore()
        sdc = self._makeOne()
        sdc.timeout = 60
        for n in range(20):
            sdc['client%d' % n] = self._makeData()
        transaction.commit()
        self.clock.advance(60 + sdc.grace + sdc.index_step)
        self.assertEqual(sdc.cleanup().timeout, 20)
        transaction.commit()
        before = store.db.getSize()
        # The next round with work, a period later, frees what the last
        # one removed; packing happens at most once per period.
        sdc['again'] = self._makeData()
        transaction.commit()
        self.clock.advance(60 + sdc.grace + sdc.index_step)
        last_pack = store.last_pack
        with mock.patch('time.time', return_value=last_pack + 1):
            sdc.cleanup()
            transaction.commit()
        self.assertEqual(store.last_pack, last_pack)
        with mock.patch('time.time',
                        return_value=store.last_pack + sdc.cleanup_period):
            sdc.cleanup()
            transaction.commit()
        self.assertLess(store.db.getSize(), before)

    def test_stored_container_keeps_data_outside_the_database(self):
        db = FileStorageDB()
        self.addCleanup(db.close)
        manager = transaction.TransactionManager()
        conn = db.db.open(manager)
        sdc = conn.root()['sdc'] = self._makeOne()
        manager.commit()
        sdc['client'] = self._makeData()
        manager.commit()
        # The container's records hold its settings, not the sessions.
        self.assertLess(db.db.getSize(), 1000)
        other = transaction.TransactionManager()
        other_conn = db.db.open(other)
        self.assertIn('client', other_conn.root()['sdc'])
        other.abort()
        manager.abort()


class ClientIdTests(ComponentsTestCase):

    def _getTargetClass(self):
        from zope_sessionx.session import ClientId
        return ClientId

    def setUp(self):
        super().setUp()
        from zope_sessionx.http import CookieClientIdManager
        self.manager = CookieClientIdManager('cookie', 'secret')
        zope.component.provideUtility(self.manager, IClientIdManager)

    def test_class_conforms(self):
        verifyClass(IClientId, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(IClientId, self._getTargetClass()(makeRequest()))

    def test_same_request_same_id(self):
        request = makeRequest()
        first = self._getTargetClass()(request)
        self.assertEqual(first, self._getTargetClass()(request))
        self.assertEqual(str(first), self.manager.getClientId(request))


class SessionTests(ComponentsTestCase):

    def _getTargetClass(self):
        from zope_sessionx.session import Session
        return Session

    def _makeOne(self, request=None):
        return self._getTargetClass()(request or makeRequest())

    def setUp(self):
        super().setUp()
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import PersistentSessionDataContainer
        zope.component.provideUtility(
            CookieClientIdManager('cookie', 'secret'), IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        self.sdc = PersistentSessionDataContainer()
        zope.component.provideUtility(self.sdc, ISessionDataContainer)

    def test_class_conforms(self):
        verifyClass(ISession, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ISession, self._makeOne())

    def test_get_is_lazy(self):
        request = makeRequest()
        session = self._makeOne(request)
        self.assertEqual(session.get('products.foo', 'default'), 'default')
        self.assertIsNone(session.get('products.foo'))
        self.assertEqual(len(self.sdc), 0)

    def test_get_w_session_wo_package(self):
        session = self._makeOne()
        session['products.foo']
        self.assertIsNone(session.get('products.bar'))

    def test_getitem_creates_on_first_write(self):
        request = makeRequest()
        pkg = self._makeOne(request)['products.foo']
        self.assertTrue(ISessionPkgData.providedBy(pkg))
        self.assertIs(self._makeOne(request)['products.foo'], pkg)
        self.assertIs(self._makeOne(request).get('products.foo'), pkg)
        self.assertEqual(len(self.sdc), 0)
        self.assertIsNone(request.response.getCookie('cookie'))
        pkg['color'] = 'red'
        self.assertEqual(len(self.sdc), 1)
        client_id = request.response.getCookie('cookie')['value']
        self.assertIs(self.sdc[client_id]['products.foo'], pkg)
        self.assertIs(self._makeOne(request)['products.foo'], pkg)
        self.assertEqual(self._makeOne(request).client_id, client_id)

    def test_read_only_request_of_new_client_stores_nothing(self):
        request = makeRequest()
        session = self._makeOne(request)
        pkg = session['products.foo']
        self.assertEqual(pkg.get('color', 'none'), 'none')
        self.assertNotIn('color', pkg)
        self.assertEqual(list(pkg.items()), [])
        self.assertRaises(KeyError, pkg.__getitem__, 'color')
        self.assertIsNone(session.get('products.bar'))
        self.assertEqual(len(self.sdc), 0)
        self.assertIsNone(request.response.getCookie('cookie'))
        self.assertEqual(
            [name for name, value in request.response.getHeaders()
             if name == 'Set-Cookie'], [])

    def test_read_only_request_w_expired_session_stores_nothing(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        self.clock.advance(3601)
        following = nextRequest(request, 'cookie')
        pkg = self._makeOne(following)['products.foo']
        self.assertNotIn('color', pkg)
        self.assertIsNone(following.response.getCookie('cookie'))
        self.assertFalse(self.sdc.get(self._makeOne(following).client_id))

    def test_every_mutator_stores_pending_data(self):
        calls = [
            ('__setitem__', ('k', 1)), ('__delitem__', ('k',)),
            ('clear', ()), ('insert', ('k', 1)), ('pop', ('k', None)),
            ('setdefault', ('k', 1)), ('update', ({'k': 1},)),
        ]
        for method, args in calls:
            request = makeRequest()
            pkg = self._makeOne(request)['products.foo']
            try:
                getattr(pkg, method)(*args)
            except KeyError:
                pass
            client_id = request.response.getCookie('cookie')['value']
            self.assertIs(self.sdc[client_id]['products.foo'], pkg, method)
        request = makeRequest()
        pkg = self._makeOne(request)['products.foo']
        self.assertRaises(KeyError, pkg.popitem)
        self.assertIsNotNone(request.response.getCookie('cookie'))

    def test_pending_data_merges_data_stored_meanwhile(self):
        from zope_sessionx.session import SessionData
        from zope_sessionx.session import SessionPkgData
        request = makeRequest()
        pkg = self._makeOne(request)['products.foo']
        client_id = self._makeOne(request).client_id
        stored = SessionPkgData()
        stored['size'] = 'L'
        self.sdc[client_id] = SessionData()
        self.sdc[client_id]['products.foo'] = stored
        pkg['color'] = 'red'
        self.assertIs(self.sdc[client_id]['products.foo'], pkg)
        self.assertEqual(dict(pkg), {'size': 'L', 'color': 'red'})

    def test_packages_do_not_share_a_namespace(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        self._makeOne(request)['products.bar']['color'] = 'blue'
        self._makeOne()['products.bar']['color'] = 'green'
        self.assertEqual(self._makeOne(request)['products.foo']['color'],
                         'red')
        self.assertEqual(self._makeOne(request)['products.bar']['color'],
                         'blue')

    def test_named_container_wins_unnamed_is_fallback(self):
        from zope_sessionx.session import PersistentSessionDataContainer
        named = PersistentSessionDataContainer()
        zope.component.provideUtility(
            named, ISessionDataContainer, 'products.foo')
        request = makeRequest()
        session = self._makeOne(request)
        foo = session['products.foo']
        bar = session['products.bar']
        foo['color'] = bar['color'] = 'red'
        self.assertIs(named[session.client_id]['products.foo'], foo)
        self.assertIs(self.sdc[session.client_id]['products.bar'], bar)
        self.assertNotIn('products.foo', self.sdc[session.client_id])

    def test_expired_session_is_replaced_by_a_fresh_one(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        self.clock.advance(3601)
        self.assertIsNone(self._makeOne(request).get('products.foo'))
        fresh = self._makeOne(request)['products.foo']
        self.assertNotIn('color', fresh)
        self.assertEqual(len(self.sdc), 1)

    def test_thirdparty_without_id_reads_default_and_refuses_writes(self):
        from zope_sessionx.interfaces import MissingClientIdException
        manager = zope.component.getUtility(IClientIdManager)
        manager.thirdparty = True
        session = self._makeOne()
        self.assertIsNone(session.get('products.foo'))
        pkg = session['products.foo']
        self.assertRaises(MissingClientIdException, pkg.__setitem__, 'k', 1)
        self.assertRaises(MissingClientIdException, pkg.__setitem__, 'k', 1)
        self.assertEqual(len(self.sdc), 0)

    def test_not_a_container(self):
        session = self._makeOne()
        self.assertRaises(TypeError, lambda: 'products.foo' in session)
        self.assertRaises(NotImplementedError, iter, session)


class _Picky:
    """A value that refuses to be pickled."""

    def __reduce__(self):
        raise TypeError('_Picky objects cannot be pickled')


class _TwoRequestsTestCase(ComponentsTestCase):
    """Two requests at once: two transaction managers on one FileStorage.

    Each request goes through the real `Session` adapter, with its
    connection's copy of the container registered as the utility.
    """

    def setUp(self):
        super().setUp()
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import PersistentSessionDataContainer
        self.ids = CookieClientIdManager('sid', 's3cret')
        zope.component.provideUtility(self.ids, IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        manager = transaction.TransactionManager()
        conn = self.fs.db.open(manager)
        sdc = conn.root()['sdc'] = PersistentSessionDataContainer()
        sdc.timeout = 3600
        sdc.resolution = 600
        manager.commit()
        conn.close()
        self.requests = []

    def _open(self):
        """Start a request: its own transaction manager and connection."""
        manager = transaction.TransactionManager()
        conn = self.fs.db.open(manager)
        manager.begin()
        self.addCleanup(conn.close)
        self.addCleanup(manager.abort)
        return manager, conn

    def _session(self, conn, cookie=None):
        from zope_sessionx.session import Session
        zope.component.provideUtility(conn.root()['sdc'],
                                      ISessionDataContainer)
        request = makeRequest({'sid': cookie} if cookie else None)
        return Session(request)

    def _createClient(self, **data):
        manager, conn = self._open()
        session = self._session(conn)
        session['products.foo'].update(data)
        manager.commit()
        return session.client_id

    def _read(self, client_id):
        manager, conn = self._open()
        return dict(self._session(conn, client_id)['products.foo'])


class ConcurrencyTests(_TwoRequestsTestCase):

    def test_concurrent_reads_across_resolution_boundary_commit(self):
        client_id = self._createClient(color='red')
        self.clock.advance(601)
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self.assertEqual(
            self._session(conn1, client_id)['products.foo']['color'], 'red')
        self.assertEqual(
            self._session(conn2, client_id)['products.foo']['color'], 'red')
        before = self.fs.lastTransaction()
        tm1.commit()
        tm2.commit()  # the access-time bumps merge: no ConflictError
        self.assertNotEqual(self.fs.lastTransaction(), before)
        tm3, conn3 = self._open()
        data = conn3.root()['sdc'][client_id]
        self.assertEqual(data.getLastAccessTime(), EPOCH + 601)

    def test_concurrent_writes_of_different_keys_commit(self):
        client_id = self._createClient(color='red')
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self._session(conn1, client_id)['products.foo']['size'] = 'L'
        self._session(conn2, client_id)['products.foo']['shape'] = 'round'
        tm1.commit()
        tm2.commit()
        self.assertEqual(self._read(client_id),
                         {'color': 'red', 'size': 'L', 'shape': 'round'})

    def test_concurrent_new_clients_commit(self):
        for existing in (False, True):
            if existing:
                self._createClient(color='red')
            tm1, conn1 = self._open()
            tm2, conn2 = self._open()
            one = self._session(conn1)
            two = self._session(conn2)
            one['products.foo']['who'] = 'one'
            two['products.foo']['who'] = 'two'
            tm1.commit()
            tm2.commit()
            self.assertEqual(self._read(one.client_id), {'who': 'one'})
            self.assertEqual(self._read(two.client_id), {'who': 'two'})
        tm, conn = self._open()
        self.assertEqual(len(conn.root()['sdc']), 5)

    def test_concurrent_creations_rarely_conflict(self):
        # Two requests creating sessions at once, 2000 times, among 10,000
        # sessions, with a new expiry step every 100 pairs.  Sessions
        # created at the same moment are indexed under the same step: were
        # that step one range at the end of the index, each split of its
        # last bucket would conflict with the concurrent creation.  And a
        # BTree insert reads every node on its path, so in one big tree of
        # sessions a split anywhere below a node conflicts with every
        # concurrent insert below it.  With one tree of sessions and one
        # of the index, in sixteen ranges: 26 pairs conflict, 5 of them on
        # the tree of sessions (with one range: 215).  With 256 trees of
        # sessions and 64 of the index: 4.
        from zope_sessionx.session import SessionData
        tm, conn = self._open()
        sdc = conn.root()['sdc']
        for n in range(10000):
            sdc['old-%d' % n] = SessionData()
        tm.commit()
        (tm1, conn1), (tm2, conn2) = self._open(), self._open()
        conflicts = []
        for n in range(2000):
            if n % 100 == 0:
                self.clock.advance(sdc.index_step)
            tm1.begin()
            tm2.begin()
            conn1.root()['sdc']['one-%d' % n] = SessionData()
            conn2.root()['sdc']['two-%d' % n] = SessionData()
            tm1.commit()
            try:
                tm2.commit()
            except ConflictError as error:
                tm2.abort()
                conflicts.append(type(conn2.get(error.oid)).__name__)
        self.assertLessEqual(len(conflicts), 10)
        self.assertNotIn('_SessionTree', conflicts)
        tm.begin()
        self.assertEqual(len(sdc), 14000 - len(conflicts))

    def test_read_of_recent_session_writes_nothing(self):
        client_id = self._createClient(color='red')
        # The effective resolution is min(600, 3600 / 8) = 450 seconds.
        self.clock.advance(450)
        before = self.fs.lastTransaction()
        manager, conn = self._open()
        session = self._session(conn, client_id)
        self.assertEqual(session['products.foo']['color'], 'red')
        self.assertEqual(session.get('products.foo')['color'], 'red')
        manager.commit()
        self.assertEqual(self.fs.lastTransaction(), before)

    def test_get_for_new_client_writes_nothing(self):
        before = self.fs.lastTransaction()
        manager, conn = self._open()
        self.assertIsNone(self._session(conn).get('products.foo'))
        manager.commit()
        self.assertEqual(self.fs.lastTransaction(), before)

    def test_expired_data_never_returned_and_sweep_removes_it(self):
        client_id = self._createClient(color='red')
        self.clock.advance(3601)
        manager, conn = self._open()
        self.assertIsNone(self._session(conn, client_id).get('products.foo'))
        manager.commit()
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        self.assertEqual(len(sdc), 1)
        self.assertEqual(sdc.sweep(), 1)
        manager.commit()
        manager, conn = self._open()
        self.assertEqual(len(conn.root()['sdc']), 0)

    def test_unpicklable_value_fails_commit_and_keeps_stored_session(self):
        client_id = self._createClient(color='red')
        manager, conn = self._open()
        pkg = self._session(conn, client_id)['products.foo']
        pkg['color'] = 'blue'
        pkg['oops'] = _Picky()
        with self.assertRaises(TypeError) as caught:
            manager.commit()
        self.assertIn('cannot be pickled', str(caught.exception))
        manager.abort()
        self.assertEqual(self._read(client_id), {'color': 'red'})


@implementer(IClientIdManager)
class _FixedIdManager:
    """An id manager of another kind: one id for everybody."""

    def getClientId(self, request):
        return 'always-the-same'


class SessionLifecycleTests(ComponentsTestCase):
    """invalidate() and rotateClientId(), with a stored container."""

    def setUp(self):
        super().setUp()
        from zope.configuration import xmlconfig

        import zope_sessionx
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import PersistentSessionDataContainer
        xmlconfig.file('configure.zcml', zope_sessionx)
        self.ids = CookieClientIdManager('sid', 's3cret')
        zope.component.provideUtility(self.ids, IClientIdManager)
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        self.conn = self.fs.db.open()
        self.addCleanup(self.conn.close)
        root = self.conn.root()
        self.sdc = root['sdc'] = PersistentSessionDataContainer()
        self.other = root['other'] = PersistentSessionDataContainer()
        zope.component.provideUtility(self.sdc, ISessionDataContainer)
        zope.component.provideUtility(
            self.other, ISessionDataContainer, 'products.other')
        transaction.commit()

    def _login(self):
        """A client with data in both containers, committed."""
        request = makeRequest()
        ISession(request)['products.foo']['cart'] = ['book']
        ISession(request)['products.other']['step'] = 2
        transaction.commit()
        return nextRequest(request, 'sid')

    def _data(self, client_id):
        return {name: {pkg: dict(data) for pkg, data in sdc[client_id].items()}
                for name, sdc in (('main', self.sdc), ('other', self.other))
                if client_id in sdc}

    def test_rotate_moves_data_and_kills_old_id(self):
        request = self._login()
        old = ISession(request).client_id
        new = ISession(request).rotateClientId()
        self.assertNotEqual(new, old)
        self.assertEqual(request.response.getCookie('sid')['value'], new)
        self.assertEqual(ISession(request)['products.foo']['cart'], ['book'])
        transaction.commit()
        self.assertEqual(self._data(new), {
            'main': {'products.foo': {'cart': ['book']}},
            'other': {'products.other': {'step': 2}}})
        self.assertEqual(self._data(old), {})
        attacker = makeRequest({'sid': old})
        self.assertIsNone(ISession(attacker).get('products.foo'))
        self.assertEqual(dict(ISession(attacker)['products.foo']), {})
        self.assertEqual(len(self.sdc), 1)

    def test_rotate_skips_containers_that_cannot_move(self):
        from zope.interface import implementer

        @implementer(ISessionDataContainer)
        class Minimal(dict):
            timeout = 3600
            resolution = 600

        minimal = Minimal()
        zope.component.provideUtility(
            minimal, ISessionDataContainer, 'products.minimal')
        request = self._login()
        old = ISession(request).client_id
        ISession(request)['products.minimal']['x'] = 1
        new = ISession(request).rotateClientId()
        self.assertIn(new, self.sdc)
        self.assertEqual(list(minimal), [old])

    def test_rotate_aborted_changes_nothing(self):
        request = self._login()
        old = ISession(request).client_id
        ISession(request).rotateClientId()
        transaction.abort()
        self.assertIsNone(request.response.getCookie('sid'))
        self.assertEqual(ISession(request).client_id, old)
        self.assertEqual(self._data(old)['main'],
                         {'products.foo': {'cart': ['book']}})

    def test_rotate_for_client_without_session(self):
        request = makeRequest()
        new = ISession(request).rotateClientId()
        self.assertEqual(request.response.getCookie('sid')['value'], new)
        self.assertEqual(len(self.sdc), 0)
        self.assertEqual(self.ids.getClientIdSource(request), 'new')

    def test_rotate_refused_for_third_party_ids(self):
        from zope_sessionx.interfaces import SessionError
        self.ids.thirdparty = True
        request = makeRequest({'sid': 'from-the-front-end'})
        with self.assertRaises(SessionError) as caught:
            ISession(request).rotateClientId()
        self.assertIn("namespace='sid'", str(caught.exception))

    def test_rotate_refused_for_other_managers(self):
        from zope_sessionx.interfaces import SessionError
        zope.component.provideUtility(_FixedIdManager(), IClientIdManager)
        session = ISession(makeRequest())
        session['products.foo']['x'] = 1
        self.assertEqual(session.client_id, 'always-the-same')
        self.assertRaises(SessionError, session.rotateClientId)

    def test_invalidate_deletes_data_and_expires_cookie(self):
        request = self._login()
        old = ISession(request).client_id
        ISession(request).invalidate()
        self.assertEqual(self._data(old), {})
        self.assertEqual(request.response.getCookie('sid')['max_age'], 0)
        # The request goes on with a fresh session.
        self.assertIsNone(ISession(request).get('products.foo'))
        ISession(request)['products.foo']['fresh'] = True
        new = request.response.getCookie('sid')['value']
        self.assertNotEqual(new, old)
        transaction.commit()
        self.assertEqual(self._data(new),
                         {'main': {'products.foo': {'fresh': True}}})
        self.assertEqual(self._data(old), {})

    def test_invalidate_drops_pending_data(self):
        request = makeRequest()
        pending = ISession(request)['products.foo']
        ISession(request).invalidate()
        pending['lost'] = True
        self.assertEqual(len(self.sdc), 0)
        self.assertIsNot(ISession(request)['products.foo'], pending)

    def test_invalidate_aborted_changes_nothing(self):
        request = self._login()
        old = ISession(request).client_id
        ISession(request).invalidate()
        transaction.abort()
        self.assertIsNone(request.response.getCookie('sid'))
        self.assertEqual(ISession(request).client_id, old)
        self.assertIn('main', self._data(old))

    def test_invalidate_w_other_manager_deletes_data(self):
        zope.component.provideUtility(_FixedIdManager(), IClientIdManager)
        request = makeRequest()
        ISession(request)['products.foo']['x'] = 1
        ISession(request).invalidate()
        self.assertNotIn('always-the-same', self.sdc)

    def test_data_follows_id_reissued_under_new_secret(self):
        request = self._login()
        old = ISession(request).client_id
        self.ids.secrets = ('new', 's3cret')
        # Any use of the id moves the data: here the IClientId adapter.
        following = makeRequest({'sid': old})
        new = str(IClientId(following))
        self.assertNotEqual(new, old)
        self.assertEqual(str(IClientId(following)), new)
        transaction.commit()
        self.assertEqual(self._data(old), {})
        self.assertEqual(self._data(new)['other'],
                         {'products.other': {'step': 2}})
        self.assertEqual(
            ISession(nextRequest(following, 'sid'))['products.foo']['cart'],
            ['book'])

    def test_data_follows_reissued_id_on_read_through_session(self):
        old = ISession(self._login()).client_id
        self.ids.secrets = ('new', 's3cret')
        following = makeRequest({'sid': old})
        self.assertEqual(ISession(following).get('products.foo')['cart'],
                         ['book'])
        transaction.commit()
        self.assertEqual(len(self.sdc), 1)
        self.assertIn(following.response.getCookie('sid')['value'],
                      self.sdc)


class SessionDataConflictTests(_TwoRequestsTestCase):
    """What concurrent requests (and the cleaner) do to one session."""

    def test_new_packages_and_access_time_merge(self):
        client_id = self._createClient(color='red')
        self.clock.advance(451)
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self._session(conn1, client_id)['products.bar']['x'] = 1
        self._session(conn2, client_id)['products.baz']['y'] = 2
        tm1.commit()
        tm2.commit()
        tm3, conn3 = self._open()
        data = conn3.root()['sdc'][client_id]
        self.assertEqual(sorted(data.keys()),
                         ['products.bar', 'products.baz', 'products.foo'])
        self.assertEqual(data.getLastAccessTime(), EPOCH + 451)

    def test_same_new_package_conflicts(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self._session(conn1, client_id)['products.bar']['x'] = 1
        self._session(conn2, client_id)['products.bar']['x'] = 2
        tm1.commit()
        self.assertRaises(ConflictError, tm2.commit)

    def test_removal_and_use_never_both_commit(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        self.clock.advance(451)
        for remover_first in (True, False):
            if not remover_first:
                client_id = self._createClient(color='blue')
                self.clock.advance(451)
            tm1, conn1 = self._open()
            tm2, conn2 = self._open()
            # One request uses the session (recording the access) ...
            self._session(conn1, client_id)['products.foo']
            # ... while another removes it.
            del conn2.root()['sdc'][client_id]
            first, second = (tm2, tm1) if remover_first else (tm1, tm2)
            first.commit()
            self.assertRaises(ConflictError, second.commit)

    def test_resolver_merges_references_by_oid(self):
        from ZODB.ConflictResolution import PersistentReference

        from zope_sessionx.session import SessionData

        def ref(oid):
            return PersistentReference((oid, 'SessionPkgData'))

        old = {'created': 1, '_last': 5, '_pkgs': {'a': ref(b'1')}}
        committed = {'created': 1, '_last': 7,
                     '_pkgs': {'a': ref(b'1'), 'b': ref(b'2')}}
        new = {'created': 1, '_last': 6, '_pkgs': {'c': ref(b'3')},
               'extra': 'x'}
        result = SessionData()._p_resolveConflict(old, committed, new)
        self.assertEqual(result['_last'], 7)
        self.assertEqual(result['extra'], 'x')
        self.assertEqual(sorted((k, v.oid) for k, v in
                                result['_pkgs'].items()),
                         [('b', b'2'), ('c', b'3')])

    def test_resolver_refuses(self):
        from ZODB.ConflictResolution import PersistentReference
        from ZODB.POSException import ConflictError

        from zope_sessionx.session import SessionData

        def ref(oid):
            return PersistentReference((oid, 'SessionPkgData'))

        resolve = SessionData()._p_resolveConflict
        base = {'created': 1, '_last': 5, '_pkgs': {}}
        cases = [
            (base, dict(base, _removed=True), base),
            (base, base, dict(base, _removed=True)),
            (base, dict(base, created=2), dict(base, created=3)),
            (base, dict(base, _pkgs={'a': ref(b'1')}),
             dict(base, _pkgs={'a': ref(b'2')})),
        ]
        for old, committed, new in cases:
            self.assertRaises(ConflictError, resolve, old, committed, new)
        # Removing an attribute on one side only is kept.
        result = resolve(dict(base, extra=1), dict(base, extra=1), base)
        self.assertNotIn('extra', result)
