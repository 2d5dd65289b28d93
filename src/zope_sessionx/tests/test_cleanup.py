"""The cleaner: rounds, lease, retries, damaged records, threads."""
import sys
import types
import unittest

import transaction
import zope.component
from zope.interface.verify import verifyObject

from zope_sessionx import cleanup
from zope_sessionx.interfaces import ICleanupResult
from zope_sessionx.interfaces import ICleanupRoundEvent
from zope_sessionx.interfaces import ISessionRemovedEvent
from zope_sessionx.session import PersistentSessionDataContainer
from zope_sessionx.session import RAMSessionDataContainer
from zope_sessionx.session import SessionData
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


class LeaseTests(unittest.TestCase):

    def _makeOne(self):
        return cleanup.Lease()

    def test_conforms(self):
        from zope_sessionx.interfaces import ILease
        verifyObject(ILease, self._makeOne())

    def test_acquire_free_held_and_lapsed(self):
        lease = self._makeOne()
        self.assertTrue(lease.acquire('a', 100, 10))
        self.assertEqual((lease.holder, lease.expires), ('a', 110))
        self.assertFalse(lease.acquire('b', 105, 10))
        self.assertFalse(lease.acquire('b', 110, 10))
        self.assertTrue(lease.acquire('a', 108, 10))
        self.assertEqual(lease.expires, 118)
        self.assertTrue(lease.acquire('b', 119, 10))
        self.assertEqual(lease.holder, 'b')

    def test_release(self):
        lease = self._makeOne()
        lease.acquire('a', 100, 10)
        lease.release('b')
        self.assertEqual(lease.expires, 110)
        lease.release('a')
        self.assertTrue(lease.acquire('b', 101, 10))


class CleanupResultTests(unittest.TestCase):

    def test_conforms(self):
        result = cleanup.CleanupResult()
        verifyObject(ICleanupResult, result)
        result.timeout, result.evicted = 2, 3
        self.assertEqual(result.removed(), 5)
        self.assertEqual(
            repr(result),
            '<CleanupResult timeout=2 lifetime=0 evicted=3 stale=0'
            ' more=False>')


class _DatabaseTestCase(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        self.clock = installClock()
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        self.app = transaction.TransactionManager()
        self.conn = self.fs.db.open(self.app)
        self.addCleanup(self.conn.close)
        self.addCleanup(self.app.abort)
        sdc = self.conn.root()['sdc'] = PersistentSessionDataContainer()
        sdc.timeout = 600
        sdc.cleanup_batch = 3
        self.app.commit()
        self.sdc = sdc
        self.sleeps = []

    def tearDown(self):
        tearDownComponents()

    def _cleaner(self, holder='me'):
        cleaner = cleanup.Cleaner(
            cleanup.storedOpener(self.fs.db, self.sdc._p_oid),
            holder=holder, sleep=self.sleeps.append)
        self.addCleanup(cleaner.transaction_manager.abort)
        return cleaner

    def _populate(self, n, prefix='client'):
        self.app.begin()
        for i in range(n):
            self.sdc['%s%d' % (prefix, i)] = SessionData()
        self.app.commit()

    def _expire(self):
        self.clock.advance(600 + self.sdc.grace + self.sdc.index_step)


class CleanerRoundTests(_DatabaseTestCase):

    def test_round_removes_expired_in_short_transactions(self):
        events = []
        zope.component.provideHandler(events.append, (ICleanupRoundEvent,))
        self._populate(7)
        self._expire()
        before = self.fs.lastTransaction()
        stats = self._cleaner().round()
        self.assertEqual((stats.timeout, stats.transactions, stats.conflicts),
                         (7, 3, 0))
        self.assertEqual(events, [stats])
        self.assertNotEqual(self.fs.lastTransaction(), before)
        self.app.begin()
        self.assertEqual(len(self.sdc), 0)
        self.assertEqual(self.sdc.lease.holder, 'me')

    def test_idle_hour_costs_nothing(self):
        self._populate(20)
        cleaner = self._cleaner()
        connection = cleaner._open(cleaner.transaction_manager)._p_jar
        cleaner.transaction_manager.abort()
        connection.cacheMinimize()
        connection.getTransferCounts(True)
        before = self.fs.lastTransaction()
        rounds = 0
        # A fake-clock hour without traffic; nothing can expire before the
        # sessions' timeout (and grace) has passed.
        for _ in range(0, 540, self.sdc.cleanup_period):
            self.assertIsNone(cleaner.round())
            rounds += 1
            loads, stores = connection.getTransferCounts(True)
            self.assertLessEqual(loads, 10)
            self.assertEqual(stores, 0)
            connection.cacheMinimize()
            self.clock.advance(self.sdc.cleanup_period)
        self.assertEqual(rounds, 54)
        self.assertEqual(self.fs.lastTransaction(), before)
        self.clock.advance(3600)
        self.assertEqual(cleaner.round().timeout, 20)

    def test_idle_round_after_a_setting_change_stays_cheap(self):
        # Enough sessions that the fronts of the index's shards are in
        # different buckets: were the schedule not worked out when the
        # timeout changes, each idle round would read all of them.
        self._populate(1500)
        self.app.begin()
        self.sdc.timeout = 900
        self.app.commit()
        cleaner = self._cleaner()
        connection = cleaner._open(cleaner.transaction_manager)._p_jar
        cleaner.transaction_manager.abort()
        for _ in range(3):
            connection.cacheMinimize()
            connection.getTransferCounts(True)
            self.assertIsNone(cleaner.round())
            self.assertEqual(connection.getTransferCounts(True), (2, 0))
            self.clock.advance(self.sdc.cleanup_period)
        # And the new timeout is what the schedule follows.
        self.clock.advance(900 + self.sdc.grace + self.sdc.index_step)
        self.assertEqual(cleaner.round().timeout, 1500)

    def test_empty_container_costs_nothing(self):
        cleaner = self._cleaner()
        before = self.fs.lastTransaction()
        for _ in range(360):
            self.assertIsNone(cleaner.round())
            self.clock.advance(10)
        self.assertEqual(self.fs.lastTransaction(), before)

    def test_lease_held_elsewhere(self):
        self._populate(2)
        self._expire()
        other = self._cleaner('other')
        self.app.begin()
        self.sdc.lease.acquire('other', self.clock(), 10)
        self.app.commit()
        mine = self._cleaner()
        before = self.fs.lastTransaction()
        self.assertIsNone(mine.round())
        self.assertEqual(self.fs.lastTransaction(), before)
        # The holder goes on; once it lapses, another takes over.
        self.clock.advance(11)
        self.assertEqual(mine.round().timeout, 2)
        self.app.begin()
        self.assertEqual(self.sdc.lease.holder, 'me')
        self.assertIsNone(other.round())

    def test_conflict_with_a_request_is_retried_and_request_wins(self):
        self._populate(1)
        self._expire()
        cleaner = self._cleaner()
        # While the cleaner removes the session, a request (of a client
        # whose clock says it is not expired yet) records an access.
        request_tm = transaction.TransactionManager()
        request_conn = self.fs.db.open(request_tm)
        self.addCleanup(request_conn.close)
        done = []

        def concurrentRequest(event):
            if not done:
                done.append(True)
                request_tm.begin()
                data = request_conn.root()['sdc']._sessions.values()[0]
                data.setLastAccessTime(int(self.clock()))
                request_tm.commit()

        zope.component.provideHandler(
            concurrentRequest, (ISessionRemovedEvent,))
        stats = cleaner.round()
        self.assertEqual((stats.conflicts, stats.timeout, stats.stale),
                         (1, 0, 1))
        self.assertEqual(self.sleeps, [0.05])
        self.app.begin()
        self.assertEqual(len(self.sdc), 1)

    def test_gives_up_after_repeated_conflicts(self):
        from ZODB.POSException import ConflictError
        self._populate(1)
        self._expire()
        cleaner = self._cleaner()

        def alwaysConflict(event):
            raise ConflictError('simulated')

        zope.component.provideHandler(
            alwaysConflict, (ISessionRemovedEvent,))
        with self.assertLogs('zope_sessionx.cleanup', 'WARNING'):
            self.assertIsNone(cleaner.round())
        self.assertEqual(self.sleeps, [0.05, 0.1, 0.2, 0.4, 0.8])

    def test_failing_round_handler_logged(self):
        def failing(event):
            raise RuntimeError('bug')

        zope.component.provideHandler(failing, (ICleanupRoundEvent,))
        self._populate(1)
        self._expire()
        with self.assertLogs('zope_sessionx.cleanup', 'ERROR'):
            self.assertEqual(self._cleaner().round().timeout, 1)

    def test_damaged_record_logged_once_and_skipped(self):
        module = types.ModuleType('zope_sessionx_gone')

        class Vanishing(SessionData):
            pass

        Vanishing.__module__ = module.__name__
        Vanishing.__qualname__ = 'Vanishing'
        module.Vanishing = Vanishing
        self._populate(2)
        sys.modules[module.__name__] = module
        try:
            self.app.begin()
            self.sdc['damaged'] = Vanishing()
            self.app.commit()
        finally:
            del sys.modules[module.__name__]
        self._expire()
        cleaner = self._cleaner()
        with self.assertLogs('zope_sessionx.session', 'ERROR') as logs:
            stats = cleaner.round()
        self.assertEqual(stats.timeout, 2)
        self.assertEqual(len(logs.records), 1)
        self.assertIn('damaged session record', logs.output[0])
        self.assertIsNone(cleaner.round())
        self.app.abort()
        self.conn.cacheMinimize()
        self.app.begin()
        self.assertEqual(len(self.sdc), 1)

    def test_damaged_record_without_cleaner_is_logged_by_container(self):
        self._populate(1)
        self._expire()
        self.app.begin()
        data = self.sdc._sessions.values()[0]
        data.__class__ = _Unreadable
        with self.assertLogs('zope_sessionx.session', 'ERROR'):
            result = self.sdc.cleanup()
        self.assertEqual(result.removed(), 0)
        self.app.abort()


class RAMCleanerTests(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        self.clock = installClock()

    def tearDown(self):
        tearDownComponents()

    def test_round_on_unsaved_ram_container(self):
        import threading
        sdc = RAMSessionDataContainer()
        sdc.timeout = 60
        sdc['a'] = SessionData()
        transaction.commit()
        self.clock.advance(60 + sdc.grace + sdc.index_step)
        results = []

        def clean():
            # The cleaner thread's own transactions (thread-local).
            cleaner = cleanup.Cleaner(lambda tm: sdc,
                                      transaction.manager)
            results.append(cleaner.round())

        thread = threading.Thread(target=clean)
        thread.start()
        thread.join(30)
        self.assertEqual(results[0].timeout, 1)
        transaction.begin()
        self.assertEqual(len(sdc), 0)


class _Unreadable(SessionData):

    def getLastAccessTime(self):
        raise AttributeError('_last')


class CleanerThreadTests(_DatabaseTestCase):

    def tearDown(self):
        cleanup.stopAll(5)
        cleanup.setAutostart(False)
        super().tearDown()

    def test_started_on_first_use_once_and_stoppable(self):
        cleanup.setAutostart(True)
        self.app.begin()
        self.sdc.get('someone')
        cleaner = self.sdc._v_cleaner
        self.assertTrue(cleaner.running)
        self.assertIs(cleanup.cleanerFor(self.sdc), cleaner)
        cleanup.stopAll(5)
        self.assertFalse(cleaner.running)

    def test_not_started_when_off_or_not_stored(self):
        self.assertIsNone(cleanup.cleanerFor(self.sdc))
        self.assertIsNone(
            cleanup.cleanerFor(PersistentSessionDataContainer(), start=True))

    def test_ram_container_gets_its_own(self):
        sdc = RAMSessionDataContainer()
        cleaner = cleanup.cleanerFor(sdc, start=True)
        self.assertTrue(cleaner.running)
        cleaner.stop(5)
        self.assertFalse(cleaner.running)

    def test_thread_loop_runs_rounds_until_stopped(self):
        self.sdc.cleanup_period = 1
        self.app.commit()
        self._populate(2)
        self._expire()
        rounds = []

        class Counting(cleanup.Cleaner):
            def round(self):
                rounds.append(super().round())
                if len(rounds) == 2:
                    self.stop()

        cleaner = Counting(
            cleanup.storedOpener(self.fs.db, self.sdc._p_oid))
        cleaner.start()
        cleaner._thread.join(30)
        self.assertFalse(cleaner.running)
        self.assertEqual([r and r.timeout for r in rounds], [2, None])

    def _stopLogs(self, cleaner):
        # Run *cleaner*'s thread to its end; return what it logged.
        with self.assertLogs('zope_sessionx.cleanup', 'INFO') as logs:
            cleaner.start()
            cleaner._thread.join(30)
        self.assertFalse(cleaner.running)
        return [(r.levelname, r.getMessage()) for r in logs.records]

    def test_thread_stops_quietly_when_database_closes(self):
        self.sdc.cleanup_period = 1
        self.app.commit()
        db = self.fs.db
        rounds = []

        class Closing(cleanup.Cleaner):
            def round(self):
                rounds.append(True)
                return super().round()

            def _period(self):
                period = super()._period()
                # Shut down while the cleaner waits for its next round.
                db.close()
                return period

        cleaner = Closing(cleanup.storedOpener(db, self.sdc._p_oid),
                          holder='me')
        self.assertEqual(self._stopLogs(cleaner), [(
            'INFO', 'cleaner me stops: its database is closed or its'
            ' container gone')])
        self.assertEqual(len(rounds), 2)

    def test_thread_stops_when_ram_container_is_gone(self):
        class Failing(cleanup.Cleaner):
            def round(self):
                raise RuntimeError('container gone')

        cleaner = Failing(lambda tm: None, holder='me')
        self.assertEqual(self._stopLogs(cleaner), [(
            'INFO', 'cleaner me stops: its database is closed or its'
            ' container gone')])

    def test_thread_waits_out_a_lost_zeo_server(self):
        # While the ZEO server is out of reach, rounds fail with a
        # transient error: the cleaner warns and tries again a period
        # later.  Another error then is logged with its traceback, and does
        # not stop the thread either: the container cannot be opened, but
        # for a transient reason.  Once the server is back, it goes on.
        from ZEO.Exceptions import ClientDisconnected
        sdc = self.sdc
        sdc.cleanup_period = 1
        self.app.commit()
        opener = cleanup.storedOpener(self.fs.db, sdc._p_oid)
        calls = []

        def flaky_opener(tm):
            if len(calls) in (2, 3):
                raise ClientDisconnected('server gone')
            return opener(tm)

        class Flaky(cleanup.Cleaner):
            def round(self):
                calls.append(True)
                if len(calls) == 2:
                    raise ClientDisconnected('server gone')
                if len(calls) == 3:
                    raise RuntimeError('trouble')
                if len(calls) == 4:
                    # From the thread itself: the round still finishes.
                    self.stop()
                return super().round()

        cleaner = Flaky(flaky_opener)
        with self.assertLogs('zope_sessionx.cleanup', 'WARNING') as logs:
            cleaner.start()
            cleaner._thread.join(30)
        self.assertFalse(cleaner.running)
        self.assertEqual(len(calls), 4)
        self.assertEqual(
            [(r.levelname, r.getMessage()) for r in logs.records],
            [('WARNING', 'cleanup round failed, retrying in 1 s: '
              "ClientDisconnected('server gone')"),
             ('ERROR', 'cleanup round failed')])

    def test_thread_survives_a_failing_round(self):
        calls = []

        class Flaky(cleanup.Cleaner):
            def round(self):
                calls.append(True)
                if len(calls) == 1:
                    raise RuntimeError('passing trouble')
                self.stop()

        sdc = self.sdc
        sdc.cleanup_period = 1
        self.app.commit()
        cleaner = Flaky(cleanup.storedOpener(self.fs.db, sdc._p_oid))
        with self.assertLogs('zope_sessionx.cleanup', 'ERROR'):
            cleaner.start()
            cleaner._thread.join(30)
        self.assertEqual(len(calls), 2)

    def test_conforms(self):
        from zope_sessionx.interfaces import ICleaner
        verifyObject(ICleaner, cleanup.Cleaner(lambda tm: None))

    def test_stop_without_start(self):
        cleaner = cleanup.Cleaner(lambda tm: None)
        cleaner.stop()
        self.assertFalse(cleaner.running)

    def test_holder_name_names_the_process(self):
        import os
        cleaner = cleanup.Cleaner(lambda tm: None)
        self.assertIn(':%d:' % os.getpid(), cleaner.holder)
        self.assertEqual(EPOCH, self.clock())
