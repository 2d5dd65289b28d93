"""Sessions in a database named by a URI, behind a global utility."""
import os
import shutil
import tempfile
import threading

import transaction
import zope.component
from zope.interface.verify import verifyObject

from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.interfaces import ISessionDataContainerMaintenance
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import provideSessions


class Held(list):
    """Invalidations a test's ZEO server holds back."""

    holding = False

    def __init__(self):
        super().__init__()
        self.asked = threading.Event()

    def release(self):
        self.holding = False
        while self:
            self.pop(0)()


class _DatabaseTestCase(ComponentsTestCase):

    def setUp(self):
        super().setUp()
        from zope_sessionx.database import closeDatabases
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-db-')
        self.addCleanup(shutil.rmtree, self.directory, True)
        # (Run first: the databases close before their files go.)
        self.addCleanup(closeDatabases)
        self.uri = 'file://' + os.path.join(self.directory, 'Sessions.fs')

    def _makeOne(self, uri=None, name='', **settings):
        from zope_sessionx.database import DatabaseSessionDataContainer
        settings.setdefault('cleanerThread', False)
        return DatabaseSessionDataContainer(uri or self.uri, name,
                                            **settings)


class OpenDatabaseTests(_DatabaseTestCase):

    def test_once_per_uri(self):
        from zope_sessionx.database import openDatabase
        db = openDatabase(self.uri)
        self.assertIs(openDatabase(self.uri), db)
        self.assertIsNot(openDatabase('memory://'), db)

    def test_unknown_scheme_names_the_setting(self):
        from zope_sessionx.database import openDatabase
        with self.assertRaises(InvalidSettingError) as caught:
            openDatabase('nosuch://x')
        self.assertEqual((caught.exception.setting, caught.exception.value),
                         ('database', 'nosuch://x'))

    def test_database_that_cannot_be_opened(self):
        from zope_sessionx.database import openDatabase
        uri = 'file://' + os.path.join(self.directory, 'no', 'such', 'x.fs')
        with self.assertRaises(InvalidSettingError) as caught:
            openDatabase(uri)
        self.assertIn('cannot be opened', str(caught.exception))
        self.assertFalse(os.path.exists(os.path.join(self.directory, 'no')))

    def test_unreachable_zeo_server(self):
        import socket

        from zope_sessionx.database import openDatabase
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        # Nothing listens there; the client gives up after a second.
        with self.assertRaises(InvalidSettingError) as caught:
            openDatabase('zeo://127.0.0.1:{}?wait_timeout=1'.format(port))
        self.assertIn('cannot be opened: ClientDisconnected',
                      str(caught.exception))

    def test_zeo_transactions_begin_with_a_server_round_trip(self):
        import ZEO

        from zope_sessionx.database import CatchUp
        from zope_sessionx.database import _serverSync
        from zope_sessionx.database import closeDatabases
        from zope_sessionx.database import openDatabase
        addr, stop = ZEO.server(path=os.path.join(self.directory, 'z.fs'))
        self.addCleanup(stop)
        uri = 'zeo://127.0.0.1:{}?wait_timeout=5'.format(addr[1])
        for given, expected in (('', True), ('&server_sync=false', False),
                                ('&server_sync=true', True)):
            db = openDatabase(uri + given)
            # What ZODB calls as each transaction begins.
            self.assertIs(isinstance(db.storage.sync, CatchUp), expected)
            # Not ZEO's own server_sync, which a reconnection would put
            # back in place.
            self.assertFalse(db.storage.server_sync)
            closeDatabases()
        # Other URIs are left alone.
        self.assertEqual(_serverSync(self.uri), (self.uri, None))

    def _heldInvalidations(self):
        """Start a ZEO server that holds back the invalidations of the
        commits made while ``held.holding`` is set, as ZEO's server does
        for a turn of its event loop; return ``(uri, held)``.
        ``held.release()`` sends them; ``held.asked`` is set once a
        client has asked for the last transaction meanwhile."""
        import ZEO
        from ZEO.StorageServer import StorageServer
        from ZEO.StorageServer import ZEOStorage
        invalidate = StorageServer.invalidate
        delegate = ZEOStorage.setup_delegation
        held = Held()

        def holding(server, *args):
            if held.holding:
                held.append(lambda: invalidate(server, *args))
            else:
                invalidate(server, *args)

        def setup_delegation(zeo_storage):
            delegate(zeo_storage)
            last = zeo_storage.lastTransaction

            def lastTransaction():
                if held.holding:
                    held.asked.set()
                return last()

            zeo_storage.lastTransaction = lastTransaction

        StorageServer.invalidate = holding
        ZEOStorage.setup_delegation = setup_delegation
        self.addCleanup(setattr, StorageServer, 'invalidate', invalidate)
        self.addCleanup(setattr, ZEOStorage, 'setup_delegation', delegate)
        addr, stop = ZEO.server(path=os.path.join(self.directory, 'z.fs'))
        self.addCleanup(stop)
        self.addCleanup(held.release)
        return 'zeo://127.0.0.1:{}?wait_timeout=5'.format(addr[1]), held

    def _twoProcesses(self, uri):
        """Two databases on one ZEO server, as two processes have, and a
        value in it: ``(a, b)``, each a (connection, transaction
        manager)."""
        from zope_sessionx.database import openDatabase
        processes = []
        for name in ('a', 'b'):
            tm = transaction.TransactionManager()
            connection = openDatabase(
                uri + '&database_name=' + name).open(transaction_manager=tm)
            self.addCleanup(connection.close)
            processes.append((connection, tm))
        (a, tm_a), (b, tm_b) = processes
        tm_a.begin()
        a.root()['visits'] = 1
        tm_a.commit()
        tm_b.begin()
        self.assertEqual(b.root()['visits'], 1)
        tm_b.abort()
        return processes

    def test_a_transaction_waits_for_what_the_server_has_committed(self):
        # Process A commits; its client is told so; a request then comes
        # to process B, whose client has not yet received the
        # invalidations of that commit (the server holds them back, as it
        # does for a turn of its loop).  B's next transaction must still
        # see A's commit: it waits for the invalidations.
        uri, held = self._heldInvalidations()
        (a, tm_a), (b, tm_b) = self._twoProcesses(uri)
        held.holding = True
        tm_a.begin()
        a.root()['visits'] = 2
        tm_a.commit()
        seen = []

        def request():
            tm_b.begin()
            seen.append(b.root()['visits'])
            tm_b.abort()

        reader = threading.Thread(target=request)
        reader.start()
        # Once B has asked the server where it is (if B waits at all),
        # let the news go.
        while reader.is_alive() and not held.asked.wait(0.01):
            pass
        held.release()
        reader.join(10)
        self.assertEqual(seen, [2])

    def test_no_news_of_a_commit_is_a_transient_error(self):
        from transaction.interfaces import TransientError
        from ZEO.Exceptions import ClientDisconnected
        uri, held = self._heldInvalidations()
        (a, tm_a), (b, tm_b) = self._twoProcesses(uri)
        b._db.storage.sync.timeout = 0.1
        held.holding = True
        tm_a.begin()
        a.root()['visits'] = 2
        tm_a.commit()
        with self.assertRaises(ClientDisconnected) as caught:
            tm_b.begin()
        self.assertIsInstance(caught.exception, TransientError)
        self.assertIn('no news from the ZEO server of its transaction',
                      str(caught.exception))
        tm_b.abort()
        # Once the news comes, the next try sees the commit.
        held.release()
        tm_b.begin()
        self.assertEqual(b.root()['visits'], 2)
        tm_b.abort()

    def test_no_oid_stored_twice_across_a_zeo_server_restart(self):
        # A ZEO client fetches new oids a hundred at a time; a restarted
        # server counts on from the largest oid stored, and hands out
        # again oids a client still holds.  A process must not store an
        # object under an oid another process was given since.
        import ZEO
        from persistent.mapping import PersistentMapping

        from zope_sessionx.database import openDatabase
        path = os.path.join(self.directory, 'z.fs')
        addr, stop = ZEO.server(path=path, threaded=False)
        stops = [stop]
        self.addCleanup(lambda: stops[-1]())
        uri = 'zeo://127.0.0.1:{}?wait_timeout=30'.format(addr[1])
        first = openDatabase(uri)
        with first.transaction() as conn:
            conn.root()['first'] = PersistentMapping()
            conn.root()['second'] = PersistentMapping()
        stop()
        stops.append(ZEO.server(path=path, port=addr[1],
                                threaded=False)[1])
        # (Another URI, another process's database.)
        second = openDatabase(uri + '&cache_size=100')
        made = {}
        for db, name in ((second, 'second'), (first, 'first')):
            # The first transaction after a restart waits for the
            # reconnection; its commit is the one that must not collide.
            with db.transaction() as conn:
                objects = [PersistentMapping(owner=name) for n in range(3)]
                conn.root()[name]['made'] = objects
            made[name] = {o._p_oid for o in objects}
        self.assertFalse(made['first'] & made['second'])
        with second.transaction() as conn:
            for name in ('first', 'second'):
                self.assertEqual(
                    [o['owner'] for o in conn.root()[name]['made']],
                    [name] * 3)


class DatabaseSessionDataContainerTests(_DatabaseTestCase):

    def test_conforms(self):
        sdc = self._makeOne()
        verifyObject(IExpiringSessionDataContainer, sdc)
        verifyObject(ISessionDataContainerMaintenance, sdc)
        self.assertIn('Sessions.fs', repr(sdc))

    def test_settings_made_then_changed_without_losing_sessions(self):
        from zope_sessionx.data import SessionData
        sdc = self._makeOne(timeout=600, maxNumber=5)
        self.assertEqual((sdc.timeout, sdc.maxNumber), (600, 5))
        sdc['client'] = SessionData()
        transaction.commit()
        again = self._makeOne(timeout=900)
        self.assertEqual((again.timeout, again.maxNumber), (900, 5))
        self.assertIn('client', again)
        again.resolution = 60
        transaction.commit()
        self.assertEqual(self._makeOne().resolution, 60)

    def test_unknown_setting_refused(self):
        with self.assertRaises(InvalidSettingError) as caught:
            self._makeOne(colour='red')
        self.assertEqual(caught.exception.setting, 'colour')

    def test_bad_setting_refused_naming_it(self):
        with self.assertRaises(InvalidSettingError) as caught:
            self._makeOne(timeout=-1)
        self.assertEqual(caught.exception.setting, 'timeout')

    def test_mapping_and_maintenance_reach_the_stored_container(self):
        from zope_sessionx.data import SessionData
        sdc = self._makeOne(timeout=60)
        sdc['a'] = SessionData()
        self.assertIn('a', sdc)
        self.assertIsNotNone(sdc.get('a'))
        self.assertIs(sdc['a'], sdc.get('a'))
        self.assertEqual(len(sdc), 1)
        del sdc['a']
        self.assertEqual(len(sdc), 0)
        sdc['b'] = SessionData()
        self.clock.advance(61)
        self.assertEqual(sdc.sweep(), 1)
        db, oid, opener, manager = sdc.cleanerTarget()
        self.assertIs(db, sdc.db)
        opener.close()
        transaction.commit()

    def test_names_are_separate_containers(self):
        from zope_sessionx.data import SessionData
        one, two = self._makeOne(name='one'), self._makeOne(name='two')
        one['a'] = SessionData()
        self.assertNotIn('a', two)
        transaction.abort()


class RequestsTests(_DatabaseTestCase):
    """Registered as a global utility, under concurrent requests."""

    def setUp(self):
        super().setUp()
        provideSessions()
        self.sdc = self._makeOne()
        zope.component.provideUtility(self.sdc, ISessionDataContainer)

    def _stored(self, client_id):
        """What a connection opened afresh finds."""
        from zope_sessionx.database import ROOT_KEY
        tm = transaction.TransactionManager()
        connection = self.sdc.db.open(transaction_manager=tm)
        try:
            data = connection.root()[ROOT_KEY][''].get(client_id)
            return None if data is None else dict(data['counter'])
        finally:
            tm.abort()
            connection.close()

    def test_writes_of_threads_commit_with_their_requests(self):
        # The set-up the docs used to suggest lost every write this way.
        ids, errors = [], []
        barrier = threading.Barrier(3)

        def request(abort=False):
            try:
                req = makeRequest()
                barrier.wait(30)
                ISession(req)['counter']['n'] = 1
                ids.append((ISession(req).client_id, abort))
                barrier.wait(30)
                if abort:
                    transaction.abort()
                else:
                    transaction.commit()
            except Exception as error:  # pragma: no cover
                errors.append(error)

        threads = [threading.Thread(target=request, args=(abort,))
                   for abort in (False, False, True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(ids), 3)
        for client_id, aborted in ids:
            self.assertEqual(self._stored(client_id),
                             None if aborted else {'n': 1})

    def test_session_and_application_data_commit_together(self):
        import ZODB
        app = ZODB.DB(None)
        self.addCleanup(app.close)
        connection = app.open()
        self.addCleanup(connection.close)
        for outcome in ('abort', 'commit'):
            request = makeRequest()
            connection.root()['orders'] = outcome
            ISession(request)['counter']['n'] = 2
            getattr(transaction, outcome)()
            client_id = ISession(request).client_id
            if outcome == 'abort':
                self.assertIsNone(self._stored(client_id))
                self.assertNotIn('orders', connection.root())
            else:
                self.assertEqual(self._stored(client_id), {'n': 2})
                self.assertEqual(connection.root()['orders'], 'commit')


class ForeignObjectsTests(_DatabaseTestCase):
    """An application object stored in a session of another database."""

    def setUp(self):
        super().setUp()
        provideSessions()

    def _appObject(self, **kw):
        import ZODB
        from persistent.list import PersistentList
        app = ZODB.DB(None, database_name='main', **kw)
        self.addCleanup(app.close)
        connection = app.open()
        self.addCleanup(connection.close)
        obj = connection.root()['cart'] = PersistentList(['book'])
        transaction.commit()
        return obj

    def test_refused_naming_the_package_and_key(self):
        from zope_sessionx.interfaces import ForeignObjectError
        zope.component.provideUtility(self._makeOne(), ISessionDataContainer)
        obj = self._appObject()
        request = makeRequest()
        pkg = ISession(request)['my.shop']
        for write in (lambda: pkg.__setitem__('cart', obj),
                      lambda: pkg.update({'cart': obj}),
                      lambda: pkg.update([('cart', obj)]),
                      lambda: pkg.update(cart=obj),
                      lambda: pkg.setdefault('cart', obj)):
            with self.assertRaises(ForeignObjectError) as caught:
                write()
            error = caught.exception
            self.assertEqual((error.pkg_id, error.key, error.value),
                             ('my.shop', 'cart', obj))
            self.assertIn("database 'main'", str(error))
        # Nothing was stored; plain values and new objects are fine.
        self.assertNotIn('cart', pkg)
        from persistent.list import PersistentList
        pkg['ids'] = [1, 2]
        pkg['list'] = PersistentList()
        pkg.update(iter([('gone', 1), ('kept', 2)]))
        del pkg['gone']
        self.assertEqual(pkg.pop('kept'), 2)
        transaction.commit()
        stored = ISession(makeRequest(
            {'sid': ISession(request).client_id})).get('my.shop')
        self.assertEqual(stored['ids'], [1, 2])
        self.assertRaises(ForeignObjectError, stored.__setitem__, 'c', obj)
        transaction.abort()

    def test_allowed_within_one_multi_database(self):
        import ZODB

        from zope_sessionx.container import PersistentSessionDataContainer
        databases = {}
        obj = self._appObject(databases=databases)
        sessions = ZODB.DB(None, database_name='sessions',
                           databases=databases)
        connection = obj._p_jar.get_connection('sessions')
        sdc = connection.root()['sdc'] = PersistentSessionDataContainer()
        sdc.cleanerThread = False
        transaction.commit()
        self.assertIs(sdc.sessionDatabase(), sessions)
        zope.component.provideUtility(sdc, ISessionDataContainer)
        request = makeRequest()
        ISession(request)['my.shop']['cart'] = obj
        transaction.commit()
        client_id = ISession(request).client_id
        self.assertIs(sdc[client_id]['my.shop']['cart'], obj)
