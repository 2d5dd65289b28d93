"""Sessions on RelStorage and a real PostgreSQL server."""
import os
import shutil
import tempfile
import unittest

import transaction
import zope.component

from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.tests.helpers import SECRET
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import skipUnlessAvailable
from zope_sessionx.tests.helpers import tearDownComponents
from zope_sessionx.tests.postgres import PostgresServer
from zope_sessionx.tests.postgres import unavailable


SERVER = None


def setUpModule():
    global SERVER
    if unavailable() is None or os.environ.get('CI') == 'true':
        SERVER = PostgresServer().start()


def tearDownModule():
    if SERVER is not None:
        SERVER.stop()


@skipUnlessAvailable(unavailable())
class RelStorageTests(unittest.TestCase):

    def setUp(self):
        from zope_sessionx.database import DatabaseSessionDataContainer
        from zope_sessionx.database import closeDatabases
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.interfaces import IClientId
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import Session
        setUpComponents()
        self.addCleanup(tearDownComponents)
        self.addCleanup(closeDatabases)
        self.clock = installClock()
        zope.component.provideUtility(
            CookieClientIdManager('sid', SECRET), IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        zope.component.provideAdapter(Session, provides=ISession)
        self.uri = SERVER.uri()
        self.sdc = DatabaseSessionDataContainer(
            self.uri, timeout=600, cleanerThread=False)

    def _request(self, client_id=None):
        """A request with its own transaction manager and connection."""
        from zope_sessionx.database import DatabaseSessionDataContainer
        tm = transaction.TransactionManager()
        sdc = DatabaseSessionDataContainer(self.uri, transaction_manager=tm)
        zope.component.provideUtility(sdc, ISessionDataContainer)
        tm.begin()
        request = makeRequest({'sid': client_id} if client_id else None)
        return tm, ISession(request)

    def test_concurrent_writes_of_different_keys_both_land(self):
        tm, session = self._request()
        session['shop']['cart'] = ['book']
        tm.commit()
        client_id = session.client_id
        tm1, one = self._request(client_id)
        pkg1 = one['shop']
        tm2, two = self._request(client_id)
        pkg2 = two['shop']
        pkg1['note'] = 'one'
        pkg2['gift'] = 'two'
        tm1.commit()
        tm2.commit()
        tm3, three = self._request(client_id)
        self.assertEqual(dict(three['shop']),
                         {'cart': ['book'], 'note': 'one', 'gift': 'two'})
        tm3.abort()

    def test_a_read_record_being_committed_conflicts_at_once(self):
        # Why the demo waits before it retries (docs/deployment.rst): a
        # request writing into a session must find the session's
        # access-time record unchanged at commit (``readCurrent``).  While
        # another transaction is committing a change to that record,
        # RelStorage does not wait for it: the commit conflicts at once,
        # and a retry after the other commit lands.
        import threading

        from ZODB.POSException import ReadConflictError
        tm, session = self._request()
        session['shop']['cart'] = ['book']
        tm.commit()
        client_id = session.client_id
        voted, finish = threading.Event(), threading.Event()

        class Held:
            """Holds its transaction between the vote and the finish."""

            def sortKey(self):
                return '~ after the connections'

            def tpc_vote(self, txn):
                voted.set()
                finish.wait(30)

            tpc_begin = commit = tpc_finish = tpc_abort = abort = (
                lambda self, txn: None)

        tm1, one = self._request(client_id)
        sdc = zope.component.getUtility(ISessionDataContainer)
        sdc.get(client_id).setLastAccessTime(int(self.clock()) + 60)
        tm1.get().join(Held())
        committer = threading.Thread(target=tm1.commit)
        committer.start()
        self.addCleanup(committer.join)
        self.addCleanup(finish.set)
        self.assertTrue(voted.wait(30))
        tm2, two = self._request(client_id)
        two['shop']['gift'] = 'two'
        with self.assertRaises(ReadConflictError):
            tm2.commit()
        tm2.abort()
        finish.set()
        committer.join()
        tm3, three = self._request(client_id)
        three['shop']['gift'] = 'two'
        tm3.commit()
        tm4, four = self._request(client_id)
        self.assertEqual(four['shop']['gift'], 'two')
        tm4.abort()

    def test_cleaner_removes_expired_sessions(self):
        from zope_sessionx.cleanup import Cleaner
        for _ in range(3):
            tm, session = self._request()
            session['shop']['x'] = 1
            tm.commit()
        self.assertEqual(len(self.sdc), 3)
        transaction.abort()
        db, oid, opener, manager = self.sdc.cleanerTarget()
        cleaner = Cleaner(opener, holder='pg')
        self.addCleanup(cleaner.stop)
        self.clock.advance(600 + 60 + 60 + 1)
        self.assertEqual(cleaner.round().timeout, 3)
        transaction.begin()
        self.assertEqual(len(self.sdc), 0)


@skipUnlessAvailable(unavailable())
class TwoProcessesTests(unittest.TestCase):
    """Two processes write their own keys into the same sessions."""

    def test_both_processes_writes_land(self):
        import json
        import subprocess
        import sys

        import ZODB
        import zodburi

        from zope_sessionx.data import SessionData
        from zope_sessionx.data import SessionPkgData
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.tests.zeoworker import SECRET as WORKERS
        from zope_sessionx.tests.zeoworker import QuickContainer
        uri = SERVER.uri()
        factory, options = zodburi.resolve_uri(uri)
        db = ZODB.DB(factory())
        self.addCleanup(db.close)
        tm = transaction.TransactionManager()
        conn = db.open(tm)
        sdc = conn.root()['sdc'] = QuickContainer()
        ids = CookieClientIdManager('sid', WORKERS)
        clients = [ids.generateUniqueId() for _ in range(5)]
        for client_id in clients:
            data = sdc[client_id] = SessionData()
            data['products.load'] = SessionPkgData()
        conn.root()['clients'] = clients
        tm.commit()
        workers = [subprocess.Popen(
            [sys.executable, '-m', 'zope_sessionx.tests.zeoworker', 'load',
             uri, '-', name, '60'], stdout=subprocess.PIPE, text=True)
            for name in ('p1', 'p2')]
        results = [json.loads(worker.communicate(timeout=300)[0]
                              .strip().splitlines()[-1])
                   for worker in workers]
        self.assertEqual(sum(r['failures'] for r in results), 0)
        tm.begin()
        written = [pair for r in results for pair in r['written']]
        self.assertEqual(len(written), 120)
        lost = [(c, k) for c, k in written
                if k not in conn.root()['sdc'][c]['products.load']]
        self.assertEqual(lost, [])
        # Into the sessions they were given, none new.
        self.assertEqual(len(conn.root()['sdc']), 5)
        tm.abort()


@skipUnlessAvailable(unavailable())
class DemoOnPostgresTests(unittest.TestCase):

    def test_demo_keeps_its_sessions_in_postgres(self):
        from zope_sessionx.tests.test_demo import _Process
        var = tempfile.mkdtemp(prefix='zope_sessionx-demo-')
        self.addCleanup(shutil.rmtree, var, True)
        server = _Process(var, '--database', SERVER.uri())
        self.addCleanup(server.stop)
        self.assertIn('id="count">1<', server.get('/index.html'))
        self.assertIn('id="count">2<', server.get('/index.html'))
        self.assertFalse(os.path.exists(os.path.join(var, 'Sessions.fs')))
        self.assertEqual(server.stop()[0], 0)
