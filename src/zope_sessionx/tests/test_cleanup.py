"""The cleaner: rounds, lease, retries, damaged records, threads."""
import sys
import types
import unittest

import transaction
import zope.component
from zope.interface.verify import verifyObject

from zope_sessionx import cleanup
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.data import SessionData
from zope_sessionx.interfaces import ICleanupResult
from zope_sessionx.interfaces import ICleanupRoundEvent
from zope_sessionx.interfaces import ISessionRemovedEvent
from zope_sessionx.ram import RAMSessionDataContainer
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


class LeaseTests(unittest.TestCase):

    def _makeOne(self):
        from zope_sessionx.storage import Lease
        return Lease()

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
        from zope_sessionx.cleanup import CleanupResult
        result = CleanupResult()
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
        sdc.cleanerThread = False
        sdc.timeout = 600
        sdc.cleanupBatch = 3
        self.app.commit()
        self.sdc = sdc
        self.sleeps = []

    def tearDown(self):
        tearDownComponents()

    def _cleaner(self, holder='me'):
        self.opener = cleanup.StoredOpener(self.fs.db, self.sdc._p_oid)
        # A timer that stands still: no pauses (see CleanerPacingTests).
        cleaner = cleanup.Cleaner(
            self.opener, holder=holder, sleep=self.sleeps.append,
            timer=lambda: 0.0)
        self.addCleanup(cleaner.stop)
        return cleaner

    def _cleanerConnection(self, cleaner):
        # The connection the cleaner's rounds use.
        connection = self.opener(cleaner.transaction_manager)._p_jar
        cleaner.transaction_manager.abort()
        return connection

    def _populate(self, n, prefix='client'):
        """Store *n* sessions; return them."""
        self.app.begin()
        stored = []
        for i in range(n):
            data = self.sdc['%s%d' % (prefix, i)] = SessionData()
            stored.append(data)
        self.app.commit()
        return stored

    def _expire(self):
        self.clock.advance(600 + self.sdc.grace + self.sdc.indexStep)


class CleanerPacingTests(_DatabaseTestCase):
    """The cleaner takes its share of the interpreter, in slices."""

    def _ticking(self, cleaner, tick=0.001):
        # Every look at the timer finds *tick* seconds of work done.
        ticks = iter(range(10 ** 6))
        cleaner._timer = lambda: next(ticks) * tick
        return cleaner

    def test_pauses_to_keep_its_share(self):
        self._populate(7)
        self._expire()
        cleaner = self._ticking(self._cleaner())
        self.assertEqual((cleaner.share, cleaner.sliceSeconds),
                         (0.25, 0.002))
        self.assertEqual(cleaner.round().timeout, 7)
        # After each 2 ms slice, 6 ms of sleep: a quarter of the time.
        self.assertGreaterEqual(len(self.sleeps), 3)
        for pause in self.sleeps:
            self.assertAlmostEqual(pause, 0.006)

    def test_whole_share_never_pauses(self):
        self._populate(7)
        self._expire()
        cleaner = self._cleaner()
        cleaner.share = 1
        self.assertEqual(self._ticking(cleaner).round().timeout, 7)
        self.assertEqual(self.sleeps, [])

    def test_share_can_be_given(self):
        cleaner = cleanup.Cleaner(None, share=0.5)
        self.assertEqual(cleaner.share, 0.5)

    def test_cleanup_pauses_before_each_session_it_visits(self):
        self._populate(5)
        self._expire()
        self._populate(4, prefix='live')
        self.app.begin()
        self.sdc.cleanupBatch = 100
        self.sdc.targetNumber = 2
        pauses = []
        result = self.sdc.cleanup(pause=lambda: pauses.append(1))
        # Five expired, then two of the four live ones evicted.
        self.assertEqual((result.timeout, result.evicted), (5, 2))
        self.assertEqual(len(pauses), 7)

    def test_cleanup_releases_what_it_looked_at(self):
        stored = self._populate(3)
        self.clock.advance(500)
        self.app.begin()
        # One of them is used: its entry is outdated.
        self.sdc['client0']
        self.app.commit()
        self.clock.advance(100 + self.sdc.grace + 2 * self.sdc.indexStep)
        self.app.begin()
        result = self.sdc.cleanup()
        self.assertEqual((result.timeout, result.stale), (2, 1))
        for data in stored:
            self.assertIsNone(data._p_changed)
            self.assertIsNone(data._access._p_changed)


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

    def test_round_that_removed_logs_one_info_line(self):
        import re
        clients = ['client%d' % n for n in range(7)]
        self._populate(7)
        self._expire()
        with self.assertLogs('zope_sessionx.cleanup', 'INFO') as logs:
            self._cleaner().round()
        self.assertEqual(len(logs.records), 1)
        self.assertTrue(re.match(
            r'cleaner me removed 7 sessions \(timeout 7, lifetime 0, '
            r'evicted 0\) in \d+\.\d\d s, 3 transactions, 0 conflicts$',
            logs.records[0].getMessage()), logs.records[0].getMessage())
        # No client id is ever logged.
        self.assertFalse(any(c in logs.output[0] for c in clients))

    def test_lease_taken_over_logs_a_warning(self):
        self._populate(2)
        self._expire()
        self.app.begin()
        self.sdc.lease.acquire('departed', self.clock(), 5)
        self.app.commit()
        self.clock.advance(6)
        with self.assertLogs('zope_sessionx.cleanup', 'WARNING') as logs:
            self._cleaner().round()
        self.assertEqual(
            [r.getMessage() for r in logs.records
             if r.levelname == 'WARNING'],
            ['cleaner me took the lease over from departed'])

    def test_lease_kept_logs_no_warning(self):
        self._populate(2)
        self._expire()
        cleaner = self._cleaner()
        self.app.begin()
        self.sdc.lease.acquire('me', self.clock(), 5)
        self.app.commit()
        with self.assertLogs('zope_sessionx.cleanup', 'INFO') as logs:
            cleaner.round()
        self.assertEqual([r.levelname for r in logs.records], ['INFO'])

    def test_lease_lasts_half_a_period(self):
        # So that a dead holder is replaced within one and a half periods.
        self._populate(2)
        self._expire()
        self._cleaner().round()
        self.app.begin()
        self.assertEqual(self.sdc.lease.expires,
                         self.clock() + self.sdc.cleanupPeriod / 2)

    def test_idle_hour_costs_nothing(self):
        self._populate(20)
        cleaner = self._cleaner()
        connection = self._cleanerConnection(cleaner)
        connection.cacheMinimize()
        connection.getTransferCounts(True)
        before = self.fs.lastTransaction()
        rounds = 0
        # A fake-clock hour without traffic; nothing can expire before the
        # sessions' timeout (and grace) has passed.
        for _ in range(0, 540, self.sdc.cleanupPeriod):
            self.assertIsNone(cleaner.round())
            rounds += 1
            loads, stores = connection.getTransferCounts(True)
            self.assertLessEqual(loads, 10)
            self.assertEqual(stores, 0)
            connection.cacheMinimize()
            self.clock.advance(self.sdc.cleanupPeriod)
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
        connection = self._cleanerConnection(cleaner)
        for _ in range(3):
            connection.cacheMinimize()
            connection.getTransferCounts(True)
            self.assertIsNone(cleaner.round())
            self.assertEqual(connection.getTransferCounts(True), (2, 0))
            self.clock.advance(self.sdc.cleanupPeriod)
        # And the new timeout is what the schedule follows.
        self.clock.advance(900 + self.sdc.grace + self.sdc.indexStep)
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

    def test_two_processes_taking_the_lease_at_once_conflict(self):
        from ZODB.POSException import ConflictError
        self._populate(1)
        takers = []
        for name in ('one', 'two'):
            tm = transaction.TransactionManager()
            conn = self.fs.db.open(tm)
            self.addCleanup(conn.close)
            self.addCleanup(tm.abort)
            lease = conn.root()['sdc'].lease
            self.assertTrue(lease.acquire(name, self.clock(), 5))
            takers.append(tm)
        takers[0].commit()
        self.assertRaises(ConflictError, takers[1].commit)
        self.app.begin()
        self.assertEqual(self.sdc.lease.holder, 'one')

    def test_conflict_with_a_request_is_retried_and_request_wins(self):
        oid = self._populate(1)[0]._p_oid
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
                data = request_conn.get(oid)
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
        with self.assertLogs('zope_sessionx.container', 'ERROR') as logs:
            stats = cleaner.round()
        self.assertEqual(stats.timeout, 2)
        self.assertEqual(len(logs.records), 1)
        self.assertIn('damaged session record', logs.output[0])
        # A digest prefix at most: never the id, nor the whole digest.
        from zope_sessionx.storage import digest
        self.assertNotIn('damaged\'', logs.output[0])
        self.assertNotIn(digest('damaged').hex(), logs.output[0])
        self.assertIn(digest('damaged').hex()[:8], logs.output[0])
        self.assertIsNone(cleaner.round())
        self.app.abort()
        self.conn.cacheMinimize()
        self.app.begin()
        self.assertEqual(len(self.sdc), 1)

    def test_damaged_record_without_cleaner_is_logged_by_container(self):
        data, = self._populate(1)
        self._expire()
        self.app.begin()
        data.__class__ = _Unreadable
        with self.assertLogs('zope_sessionx.container', 'ERROR'):
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
        sdc.cleanerThread = False
        sdc.timeout = 60
        sdc['a'] = SessionData()
        transaction.commit()
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
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

    def _threads(self):
        import threading
        return [thread for thread in threading.enumerate()
                if thread.name == 'zope_sessionx cleaner']

    def test_started_on_first_use_once_and_stoppable(self):
        before = len(self._threads())
        self.sdc.cleanerThread = True
        self.app.commit()
        self.sdc.get('someone')
        self.sdc['someone'] = SessionData()
        self.assertEqual(len(self._threads()), before + 1)
        cleaner = cleanup.cleanerFor(self.sdc)
        self.assertTrue(cleaner.running)
        # The same one, for this database and container.
        self.assertIs(cleanup.cleanerFor(self.sdc), cleaner)
        self.assertEqual(len(self._threads()), before + 1)
        cleanup.stopAll(5)
        self.assertFalse(cleaner.running)

    def test_not_started_when_off(self):
        before = len(self._threads())
        self.app.begin()
        self.sdc['someone'] = SessionData()
        self.sdc.get('someone')
        self.assertEqual(len(self._threads()), before)

    def test_not_started_when_not_stored(self):
        sdc = PersistentSessionDataContainer()
        self.assertIsNone(sdc.cleanerTarget())
        self.assertIsNone(cleanup.cleanerFor(sdc))
        before = len(self._threads())
        sdc['someone'] = SessionData()
        self.assertEqual(len(self._threads()), before)

    def test_ram_container_gets_its_own(self):
        sdc = RAMSessionDataContainer()
        before = len(self._threads())
        sdc['someone'] = SessionData()
        self.assertEqual(len(self._threads()), before + 1)
        cleaner = cleanup.cleanerFor(sdc)
        self.assertTrue(cleaner.running)
        cleaner.stop(5)
        self.assertFalse(cleaner.running)

    def test_stopped_cleaner_closes_its_connection(self):
        import ZODB
        db = ZODB.DB(None)
        self.addCleanup(db.close)
        tm = transaction.TransactionManager()
        conn = db.open(tm)
        sdc = conn.root()['sdc'] = PersistentSessionDataContainer()
        tm.commit()
        cleaner = cleanup.cleanerFor(sdc)
        self.assertTrue(cleaner.running)
        self.assertEqual(len([c for c in db.pool.all if c.opened]), 2)
        cleaner.stop(5)
        self.assertEqual([c for c in db.pool.all if c.opened], [conn])
        conn.close()

    def test_opener_close_lets_go_of_the_database(self):
        opener = cleanup.StoredOpener(self.fs.db, self.sdc._p_oid)
        tm = transaction.TransactionManager()
        self.assertEqual(opener(tm)._p_oid, self.sdc._p_oid)
        tm.abort()
        opener.close()
        self.assertIsNone(opener.db)
        self.assertEqual([c for c in self.fs.db.pool.all if c.opened],
                         [self.conn])
        opener.close()

    def test_registry_does_not_keep_a_container_alive(self):
        import gc
        import weakref
        sdc = RAMSessionDataContainer()
        cleaner = cleanup.cleanerFor(sdc)
        cleaner.stop(5)
        ref = weakref.ref(sdc)
        del sdc
        gc.collect()
        self.assertIsNone(ref())
        # A new container gets a new cleaner.
        other = RAMSessionDataContainer()
        self.assertIsNot(cleanup.cleanerFor(other), cleaner)

    def test_thread_loop_runs_rounds_until_stopped(self):
        self.sdc.cleanupPeriod = 1
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
            cleanup.StoredOpener(self.fs.db, self.sdc._p_oid))
        cleaner.start()
        cleaner.join(30)
        self.assertFalse(cleaner.running)
        self.assertEqual([r and r.timeout for r in rounds], [2, None])

    def _stopLogs(self, cleaner):
        # Run *cleaner*'s thread to its end; return what it logged.
        with self.assertLogs('zope_sessionx.cleanup', 'INFO') as logs:
            cleaner.start()
            cleaner.join(30)
        self.assertFalse(cleaner.running)
        return [(r.levelname, r.getMessage()) for r in logs.records]

    def test_thread_stops_quietly_when_database_closes(self):
        self.sdc.cleanupPeriod = 1
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

        cleaner = Closing(cleanup.StoredOpener(db, self.sdc._p_oid),
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

    def test_thread_stops_when_stored_container_is_gone(self):
        # Packed away, say: its database is open, the container is not.
        from ZODB.POSException import POSKeyError

        def gone(tm):
            raise POSKeyError(b'\0' * 8)

        gone.closed = lambda: False
        cleaner = cleanup.Cleaner(gone, holder='me')
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
        sdc.cleanupPeriod = 1
        self.app.commit()
        opener = cleanup.StoredOpener(self.fs.db, sdc._p_oid)
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
            cleaner.join(30)
        self.assertFalse(cleaner.running)
        self.assertEqual(len(calls), 4)
        self.assertEqual(
            [(r.levelname, r.getMessage()) for r in logs.records],
            [('WARNING', 'cleanup round failed, retrying in 1 s: '
              "ClientDisconnected('server gone')"),
             ('ERROR', 'cleanup round failed')])

    def test_thread_waits_out_a_lost_relstorage_server(self):
        # RelStorage's errors for a server out of reach are not transient
        # ones, and aborting fails too (it polls the server when a
        # transaction ends): the cleaner neither dies nor stops, and
        # cleans once the server is back.
        class OutOfReach(Exception):
            pass

        sdc = self.sdc
        sdc.cleanupPeriod = 1
        self.app.commit()
        self._populate(2)
        self._expire()
        opener = cleanup.StoredOpener(self.fs.db, sdc._p_oid)
        calls, rounds = [], []

        server = {'away': True}

        def away():
            return server['away']

        def flaky_opener(tm):
            if away():
                raise OutOfReach('server closed the connection')
            return opener(tm)

        flaky_opener.closed = opener.closed

        class Aborting(transaction.TransactionManager):
            def abort(self):
                super().abort()
                if away():
                    raise OutOfReach('server closed the connection')

        class Flaky(cleanup.Cleaner):
            def round(self):
                calls.append(True)
                result = super().round()
                if result is not None:
                    rounds.append(result)
                    self.stop()
                return result

            def _period(self):
                # Back before the next round.
                server['away'] = False
                return super()._period()

        cleaner = Flaky(flaky_opener, Aborting())
        with self.assertLogs('zope_sessionx.cleanup', 'ERROR') as logs:
            cleaner.start()
            cleaner.join(30)
        self.assertFalse(cleaner.running)
        self.assertEqual([r.getMessage() for r in logs.records],
                         ['cleanup round failed'])
        self.assertEqual(len(calls), 2)
        self.assertEqual(rounds[0].timeout, 2)
        opener.close()

    def test_thread_survives_a_failing_round(self):
        calls = []

        class Flaky(cleanup.Cleaner):
            def round(self):
                calls.append(True)
                if len(calls) == 1:
                    raise RuntimeError('passing trouble')
                self.stop()

        sdc = self.sdc
        sdc.cleanupPeriod = 1
        self.app.commit()
        cleaner = Flaky(cleanup.StoredOpener(self.fs.db, sdc._p_oid))
        with self.assertLogs('zope_sessionx.cleanup', 'ERROR'):
            cleaner.start()
            cleaner.join(30)
        self.assertEqual(len(calls), 2)

    def test_conforms(self):
        from zope_sessionx.interfaces import ICleaner
        verifyObject(ICleaner, cleanup.Cleaner(lambda tm: None))

    def test_stop_without_start(self):
        cleaner = cleanup.Cleaner(lambda tm: None)
        cleaner.stop()
        cleaner.join()
        self.assertFalse(cleaner.running)

    def test_holder_name_names_the_process(self):
        import os
        cleaner = cleanup.Cleaner(lambda tm: None)
        self.assertIn(':%d:' % os.getpid(), cleaner.holder)
        self.assertEqual(EPOCH, self.clock())
