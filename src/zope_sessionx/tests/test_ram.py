import threading
import time
import unittest

import transaction
import zope.component
from ZODB.POSException import ConflictError

from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.tests.helpers import SECRET
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.test_container import ContainerTestsMixin


class RAMSessionDataContainerTests(ContainerTestsMixin, ComponentsTestCase):

    default_resolution = 300

    def _getTargetClass(self):
        from zope_sessionx.ram import RAMSessionDataContainer
        return RAMSessionDataContainer

    def setUp(self):
        super().setUp()
        from zope_sessionx import ram

        # A store of this test's own.
        self.store = ram.RAMStore()
        self.addCleanup(ram.setRAMStore, ram.setRAMStore(self.store))

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
        from zope_sessionx.data import SessionPkgData
        sdc = self._makeOne()
        sdc.timeout = 60
        data = sdc['client'] = self._makeData()
        data['pkg'] = SessionPkgData()
        data['pkg']['big'] = 'x' * 100000
        transaction.commit()
        held = self.store.db.getSize()
        self.clock.advance(61)
        self.assertEqual(sdc.sweep(), 1)
        transaction.commit()
        self.assertEqual(len(sdc), 0)
        # The transaction that removed it could still read it while it
        # ran: the next pack (here, of the next sweep) frees it.
        self.assertGreater(self.store.db.getSize(), held)
        self.assertEqual(sdc.sweep(), 0)
        transaction.commit()
        self.assertLess(self.store.db.getSize(), held - 100000)

    def test_cleanup_rounds_free_memory(self):
        from zope_sessionx.tests.helpers import FakeClock
        store = self.store
        store.clock = packing = FakeClock(self.clock())
        sdc = self._makeOne()
        sdc.timeout = 60
        for n in range(20):
            sdc['client%d' % n] = self._makeData()
        transaction.commit()
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        self.assertEqual(sdc.cleanup().timeout, 20)
        transaction.commit()
        before = store.db.getSize()
        # The next round with work, a period later, frees what the last
        # one removed; packing happens at most once per period.
        sdc['again'] = self._makeData()
        transaction.commit()
        self.clock.advance(60 + sdc.grace + sdc.indexStep)
        packed = store.packed
        packing.advance(1)
        sdc.cleanup()
        transaction.commit()
        self.assertEqual(store.packed, packed)
        packing.advance(sdc.cleanupPeriod)
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
        # A cleaner opens it from its database, like any stored container.
        anchor, name, opener, tm = sdc.cleanerTarget()
        self.assertEqual((anchor, name, tm), (db.db, sdc._p_oid, None))
        opener.close()
        other.abort()
        manager.abort()


class _Thread(threading.Thread):
    """A request in a thread of its own, stopping where told to."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work = work
        self.go = threading.Event()
        self.ready = threading.Event()
        self.outcome = None

    def pause(self):
        # Called by the work: wait for the test's go-ahead.
        self.ready.set()
        self.go.wait(30)

    def run(self):
        try:
            self.work(self)
            transaction.commit()
            self.outcome = 'committed'
        except ConflictError:
            transaction.abort()
            self.outcome = 'conflict'

    def finish(self):
        self.go.set()
        self.join(30)
        return self.outcome


class RAMConcurrencyTests(ComponentsTestCase):
    """Two threads through real requests on one RAM container."""

    def setUp(self):
        super().setUp()
        from zope_sessionx import ram
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import Session
        self.addCleanup(ram.setRAMStore, ram.setRAMStore(ram.RAMStore()))
        self.ids = CookieClientIdManager('sid', SECRET)
        zope.component.provideUtility(self.ids, IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        zope.component.provideAdapter(Session, provides=ISession)
        self.sdc = ram.RAMSessionDataContainer()
        self.sdc.cleanerThread = False
        zope.component.provideUtility(self.sdc, ISessionDataContainer)
        request = makeRequest()
        ISession(request)['shop']['cart'] = ['book']
        transaction.commit()
        self.client_id = ISession(request).client_id

    def _both(self, first, second):
        """Run two requests that each pause after their reads; commit
        *first*, then *second*; return their outcomes."""
        one, two = _Thread(first), _Thread(second)
        one.start()
        two.start()
        self.assertTrue(one.ready.wait(30) and two.ready.wait(30))
        outcomes = one.finish(), two.finish()
        # This thread's own view starts afresh.
        transaction.abort()
        return outcomes

    def _request(self):
        return makeRequest({'sid': self.client_id})

    def test_writes_of_different_keys_merge(self):
        def writer(key):
            def work(thread):
                pkg = ISession(self._request())['shop']
                self.assertEqual(pkg['cart'], ['book'])
                thread.pause()
                pkg[key] = True
            return work

        self.assertEqual(self._both(writer('a'), writer('b')),
                         ('committed', 'committed'))
        pkg = ISession(self._request())['shop']
        self.assertEqual(sorted(pkg), ['a', 'b', 'cart'])

    def test_access_times_merge(self):
        self.clock.advance(self.sdc.effectiveResolution() + 1)

        def reader(thread):
            ISession(self._request()).get('shop')
            thread.pause()

        def writer(thread):
            pkg = ISession(self._request())['shop']
            thread.pause()
            pkg['x'] = 1

        self.assertEqual(self._both(reader, writer),
                         ('committed', 'committed'))
        self.assertEqual(self.sdc[self.client_id].getLastAccessTime(),
                         int(self.clock()))

    def test_same_key_conflicts(self):
        def writer(thread):
            pkg = ISession(self._request())['shop']
            thread.pause()
            pkg['cart'] = ['other']

        self.assertEqual(self._both(writer, writer),
                         ('committed', 'conflict'))

    def _remover(self, thread):
        # Removes the session, after the other request has read it.
        self.sdc.get(self.client_id)
        thread.pause()
        del self.sdc[self.client_id]

    def _user(self, thread):
        # Writes a key of the session, after the other has read it.
        pkg = ISession(self._request())['shop']
        thread.pause()
        pkg['x'] = 1

    def test_removal_and_use_never_both_commit(self):
        self.assertEqual(self._both(self._remover, self._user),
                         ('committed', 'conflict'))
        self.assertNotIn(self.client_id, self.sdc)

    def test_use_and_removal_never_both_commit(self):
        # A use that records an access, committed first.
        self.clock.advance(self.sdc.effectiveResolution() + 1)
        self.assertEqual(self._both(self._user, self._remover),
                         ('committed', 'conflict'))
        self.assertEqual(dict(ISession(self._request())['shop']),
                         {'cart': ['book'], 'x': 1})

    def test_pack_spares_what_an_open_transaction_reads(self):
        from zope_sessionx import ram
        store = ram.ramStore()

        def late_reader(thread):
            # Began before the session was removed; reads it after the
            # pack.
            data = self.sdc.get(self.client_id)
            thread.pause()
            self.assertEqual(dict(data['shop']), {'cart': ['book']})

        reader = _Thread(late_reader)
        reader.start()
        self.assertTrue(reader.ready.wait(30))
        del self.sdc[self.client_id]
        transaction.commit()
        store.pack()
        self.assertEqual(reader.finish(), 'committed')
        # Once it is done, the next pack frees the session.
        before = store.db.getSize()
        store.pack()
        self.assertLess(store.db.getSize(), before)

    def test_packs_never_go_back_in_time(self):
        from zope_sessionx import ram
        store = ram.ramStore()

        def reader(thread):
            self.sdc.get(self.client_id)
            thread.pause()

        # An open transaction holds the pack point back ...
        early = _Thread(reader)
        early.start()
        self.assertTrue(early.ready.wait(30))
        ISession(self._request())['shop']['more'] = 1
        transaction.commit()
        store.pack()
        held = store.last_pack
        self.assertLess(held, time.time())
        # ... and packing to it again, or from many threads at once, is
        # no error.
        threads = [threading.Thread(target=store.pack) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(store.last_pack, held)
        self.assertEqual(early.finish(), 'committed')
        store.pack()
        self.assertGreater(store.last_pack, held)


class PackTimeTests(unittest.TestCase):

    def test_never_after_the_transaction_and_close_to_it(self):
        import ZODB.utils
        from persistent.TimeStamp import TimeStamp

        from zope_sessionx.ram import packTimeFor
        tid = None
        # Enough transactions that the conversion of some rounds up.
        for _ in range(2000):
            tid = ZODB.utils.newTid(tid)
            point = packTimeFor(tid)
            raw = TimeStamp(*time.gmtime(point)[:5] + (point % 60,)).raw()
            self.assertLessEqual(raw, tid)
            self.assertLess(TimeStamp(tid).timeTime() - point, 1e-5)
