"""CookieRollback: the id cookie commits and aborts with the session."""
import transaction
from zope.interface.verify import verifyObject

from zope_sessionx.interfaces import ISession
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import makeRequest


SECRET = 's3cret-s3cret-s3cret-s3cret-s3cret'


class CookieRollbackTests(ComponentsTestCase):

    def _makeOne(self):
        from zope_sessionx.http import CookieClientIdManager
        return CookieClientIdManager('sid', SECRET)

    def test_conforms(self):
        import transaction
        from transaction.interfaces import ISavepointDataManager

        from zope_sessionx.rollback import CookieRollback
        verifyObject(ISavepointDataManager, CookieRollback(
            makeRequest(), self._makeOne(), transaction.TransactionManager()))

    def test_abort_restores_cookie_and_annotations(self):
        import transaction

        from zope_sessionx.rollback import CookieRollback
        manager = self._makeOne()
        request = makeRequest()
        first = manager.getClientId(request)
        tm = transaction.TransactionManager()
        tm.get().join(CookieRollback(request, manager, tm))
        manager.setRequestId(request, manager.generateUniqueId())
        tm.abort()
        self.assertEqual(manager.getClientId(request), first)
        self.assertEqual(request.response.getCookie('sid')['value'], first)

    def test_abort_removes_cookie_that_was_not_there(self):
        import transaction

        from zope_sessionx.rollback import CookieRollback
        manager = self._makeOne()
        request = makeRequest()
        tm = transaction.TransactionManager()
        tm.get().join(CookieRollback(request, manager, tm))
        manager.getClientId(request)
        tm.abort()
        self.assertIsNone(request.response.getCookie('sid'))
        self.assertIsNone(manager.getClientId(request, create=False))

    def test_commit_keeps_cookie_and_failed_commit_restores(self):
        import transaction

        from zope_sessionx.rollback import CookieRollback
        manager = self._makeOne()
        request = makeRequest()
        tm = transaction.TransactionManager()
        tm.get().join(CookieRollback(request, manager, tm))
        sid = manager.getClientId(request)
        tm.commit()
        self.assertEqual(request.response.getCookie('sid')['value'], sid)

        class Failing:
            transaction_manager = tm

            def tpc_begin(self, txn):
                pass

            def commit(self, txn):
                raise ValueError('disk full')

            def abort(self, txn):
                pass

            tpc_abort = abort

            def sortKey(self):
                return 'zzz'

        tm.get().join(CookieRollback(request, manager, tm))
        tm.get().join(Failing())
        manager.setRequestId(request, manager.generateUniqueId())
        self.assertRaises(ValueError, tm.commit)
        tm.abort()
        self.assertEqual(request.response.getCookie('sid')['value'], sid)


class SavepointTests(ComponentsTestCase):
    """Application code that uses savepoints keeps working."""

    def setUp(self):
        super().setUp()
        import zope.component

        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.interfaces import IClientId
        from zope_sessionx.interfaces import IClientIdManager
        from zope_sessionx.interfaces import ISessionDataContainer
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import Session
        from zope_sessionx.tests.helpers import FileStorageDB
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        self.conn = self.fs.db.open()
        self.addCleanup(self.conn.close)
        self.sdc = self.conn.root()['sdc'] = PersistentSessionDataContainer()
        self.sdc.cleanerThread = False
        transaction.commit()
        self.manager = CookieClientIdManager('sid', SECRET)
        zope.component.provideUtility(self.manager, IClientIdManager)
        zope.component.provideUtility(self.sdc, ISessionDataContainer)
        zope.component.provideAdapter(Session, provides=ISession)
        zope.component.provideAdapter(ClientId, provides=IClientId)

    def test_savepoint_after_rotation_and_invalidate(self):
        request = makeRequest()
        ISession(request)['pkg']['a'] = 1
        first = ISession(request).client_id
        savepoint = transaction.savepoint()
        rotated = ISession(request).rotateClientId()
        ISession(request).invalidate()
        inner = transaction.savepoint()
        self.assertEqual(self.manager.getRequestId(request), None)
        inner.rollback()
        savepoint.rollback()
        # The cookie and the request's id are as at the savepoint.
        self.assertNotEqual(rotated, first)
        self.assertEqual(request.response.getCookie('sid')['value'], first)
        self.assertEqual(self.manager.getClientId(request), first)
        transaction.commit()
        self.assertIn(first, self.sdc)

    def test_rolling_back_a_rotation_keeps_the_old_cookie(self):
        request = makeRequest()
        ISession(request)['pkg']['a'] = 1
        transaction.commit()
        first = ISession(request).client_id
        savepoint = transaction.savepoint()
        ISession(request).rotateClientId()
        savepoint.rollback()
        self.assertEqual(request.response.getCookie('sid')['value'], first)
        transaction.commit()
        self.assertEqual(dict(self.sdc[first]['pkg']), {'a': 1})

    def test_savepoint_taken_after_a_rotation(self):
        request = makeRequest()
        ISession(request)['pkg']['a'] = 1
        transaction.commit()
        rotated = ISession(request).rotateClientId()
        savepoint = transaction.savepoint()
        ISession(request).invalidate()
        self.assertIsNone(self.manager.getRequestId(request))
        savepoint.rollback()
        # As at the savepoint: the rotated id, not the first one.
        self.assertEqual(request.response.getCookie('sid')['value'], rotated)
        self.assertEqual(self.manager.getClientId(request), rotated)
        transaction.commit()
        self.assertEqual(dict(self.sdc[rotated]['pkg']), {'a': 1})
