
import transaction

from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.test_container import ContainerTestsMixin


class RAMSessionDataContainerTests(ContainerTestsMixin, ComponentsTestCase):

    default_resolution = 300

    def _getTargetClass(self):
        from zope_sessionx.ram import RAMSessionDataContainer
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

        from zope_sessionx.ram import _getRAMStore
        store = _getRAMStore()
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
        last_pack = store.last_pack
        with mock.patch('time.time', return_value=last_pack + 1):
            sdc.cleanup()
            transaction.commit()
        self.assertEqual(store.last_pack, last_pack)
        with mock.patch('time.time',
                        return_value=store.last_pack + sdc.cleanupPeriod):
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
