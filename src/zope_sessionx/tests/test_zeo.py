"""A real ZEO server and several client processes."""
import io
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import transaction
import ZEO

from zope_sessionx.data import SessionData
from zope_sessionx.data import SessionPkgData
from zope_sessionx.tests.zeoworker import SECRET
from zope_sessionx.tests.zeoworker import QuickContainer


def _waitFor(predicate, seconds, what):
    """Poll *predicate* until it returns something true; fail after
    *seconds*.  (A bound on waiting, not a timing assertion.)"""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError('timed out waiting for ' + what)


class ZEOClusterTests(unittest.TestCase):

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-zeo-')
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.addr, stop = ZEO.server(
            path=os.path.join(self.directory, 'Data.fs'), threaded=False)
        self.addCleanup(stop)
        self.db = ZEO.DB(self.addr)
        self.addCleanup(self.db.close)
        self.tm = transaction.TransactionManager()
        self.conn = self.db.open(self.tm)
        self.addCleanup(self.conn.close)
        self.addCleanup(self.tm.abort)
        self.processes = []
        self.addCleanup(self._reap)

    def _reap(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(30)
            process.stdout.close()

    def _spawn(self, mode, name, amount, *extra):
        host, port = self.addr
        process = subprocess.Popen(
            [sys.executable, '-m', 'zope_sessionx.tests.zeoworker', mode,
             host, str(port), name, str(amount)] + [str(x) for x in extra],
            stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def _container(self, **settings):
        self.tm.begin()
        sdc = self.conn.root()['sdc'] = QuickContainer()
        for name, value in settings.items():
            setattr(sdc, name, value)
        self.tm.commit()
        return sdc

    def _clients(self, sdc, count):
        from zope_sessionx.http import CookieClientIdManager
        ids = CookieClientIdManager('sid', SECRET)
        clients = [ids.generateUniqueId() for _ in range(count)]
        self.tm.begin()
        for client_id in clients:
            data = sdc[client_id] = SessionData()
            data['products.load'] = SessionPkgData()
        self.conn.root()['clients'] = clients
        self.tm.commit()
        return clients

    def test_concurrent_requests_from_three_processes_lose_nothing(self):
        sdc = self._container()
        self._clients(sdc, 20)
        workers = [self._spawn('load', 'p%d' % n, 150) for n in range(3)]
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            results.append(json.loads(out.strip().splitlines()[-1]))
        self.assertEqual(sum(r['requests'] for r in results), 450)
        self.assertEqual(sum(r['failures'] for r in results), 0)
        self.tm.begin()
        stored = {}
        for client_id in self.conn.root()['clients']:
            stored[client_id] = dict(sdc[client_id]['products.load'])
        written = [pair for r in results for pair in r['written']]
        self.assertEqual(len(written), 450)
        lost = [(c, k) for c, k in written if k not in stored[c]]
        self.assertEqual(lost, [])

    def _leaseHistory(self, lease):
        """Every state the lease had: (commit time, holder, expires)."""
        storage = self.db.storage
        history = []
        for revision in storage.history(lease._p_oid, size=1000000):
            unpickler = pickle.Unpickler(
                io.BytesIO(storage.loadSerial(lease._p_oid, revision['tid'])))
            unpickler.persistent_load = lambda pid: None
            unpickler.load()
            state = unpickler.load()
            history.append((revision['time'], state.get('holder'),
                            state.get('expires', 0)))
        return sorted(history)

    def test_one_cleaner_at_a_time_taken_over_after_sigkill(self):
        period = 2
        # The cleaners' clock runs an hour ahead: every session is
        # expired for them from the start.
        offset = 3600
        sdc = self._container(timeout=1, cleanupPeriod=period,
                              cleanupBatch=2)
        self._clients(sdc, 4000)
        workers = {'w%d' % n: self._spawn('clean', 'w%d' % n, 120, offset)
                   for n in range(3)}
        for worker in workers.values():
            self.assertEqual(worker.stdout.readline().strip(), 'ready')

        def lease():
            self.tm.begin()
            current = self.conn.root()['sdc'].lease
            return current.holder, current.expires

        holder, _ = _waitFor(lambda: lease()[0] and lease(), 60, 'a holder')
        remaining_before = len(self.conn.root()['sdc'])
        os.kill(workers[holder].pid, signal.SIGKILL)
        killed_at = time.time() + offset
        workers[holder].wait(30)

        def successor():
            current = lease()
            return current[0] not in (None, holder) and current

        new_holder, expires = _waitFor(successor, 60, 'a new holder')
        self.assertIn(new_holder, workers)
        # Taken over within one and a half periods, as the docs promise
        # (the new holder took its lease half a period before it
        # expires), give or take half a second for three processes on
        # two cores.
        taken_at = expires - period / 2
        self.assertLessEqual(taken_at - killed_at, 1.5 * period + 0.5)

        def emptied():
            self.tm.begin()
            return len(self.conn.root()['sdc']) == 0

        _waitFor(emptied, 120, 'the cleanup to finish')
        self.assertGreater(remaining_before, 0)
        # One at a time: whenever the lease changed hands, the previous
        # holder's lease had lapsed (by the cleaners' clock).
        history = self._leaseHistory(sdc.lease)
        handovers = 0
        for (_, before, lapses), (at, after, _) in zip(history, history[1:]):
            if before is not None and after != before:
                handovers += 1
                self.assertGreater(at + offset, lapses,
                                   (before, after, at + offset, lapses))
        self.assertGreaterEqual(handovers, 1)


class ServerRestartTests(unittest.TestCase):
    """The cleaner thread rides out a real ZEO server going away."""

    def setUp(self):
        from zope_sessionx.tests.helpers import installClock
        from zope_sessionx.tests.helpers import setUpComponents
        from zope_sessionx.tests.helpers import tearDownComponents
        setUpComponents()
        self.addCleanup(tearDownComponents)
        self.clock = installClock()
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-zeo-')
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.path = os.path.join(self.directory, 'Data.fs')
        self.addr, self.stop = ZEO.server(path=self.path, threaded=False)
        self.addCleanup(lambda: self.stop())
        # Operations fail fast while the server is away.
        self.db = ZEO.DB(self.addr, wait_timeout=1)
        self.addCleanup(self.db.close)

    def _restart(self):
        self.addr, self.stop = ZEO.server(path=self.path, port=self.addr[1],
                                          threaded=False)

    def test_cleaner_warns_while_server_is_away_then_goes_on(self):
        from zope_sessionx import cleanup
        tm = transaction.TransactionManager()
        conn = self.db.open(tm)
        self.addCleanup(conn.close)
        sdc = conn.root()['sdc'] = QuickContainer()
        sdc.cleanupPeriod = 1
        sdc.timeout = 60
        for n in range(5):
            sdc['client%d' % n] = SessionData()
        tm.commit()
        cleaner = cleanup.Cleaner(cleanup.StoredOpener(self.db, sdc._p_oid),
                                  holder='survivor')
        self.addCleanup(cleaner.stop, 30)
        with self.assertLogs('zope_sessionx.cleanup', 'WARNING') as logs:
            cleaner.start()
            self.stop()
            # Sessions come due while the server is away: the cleaner's
            # next round fails, says so, and is tried a period later.
            self.clock.advance(120)
            _waitFor(lambda: logs.records, 60, 'a warning')
            self._restart()

            def emptied():
                tm.begin()
                try:
                    return len(conn.root()['sdc']) == 0
                except Exception:
                    tm.abort()
                    return False

            _waitFor(emptied, 60, 'the cleanup after the restart')
        self.assertTrue(cleaner.running)
        self.assertIn('cleanup round failed, retrying in 1 s',
                      logs.records[0].getMessage())
        self.assertEqual(conn.root()['sdc'].lease.holder, 'survivor')


class ServerWithoutThePackageTests(unittest.TestCase):
    """What a ZEO server that cannot import zope_sessionx does."""

    def _serve(self, client_resolution):
        directory = tempfile.mkdtemp(prefix='zope_sessionx-zeo-')
        self.addCleanup(shutil.rmtree, directory, True)
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        self.port = port
        config = os.path.join(directory, 'zeo.conf')
        with open(config, 'w') as f:
            f.write('<zeo>\n address 127.0.0.1:{}\n'
                    ' client-conflict-resolution {}\n</zeo>\n'
                    '<filestorage>\n path {}\n</filestorage>\n'.format(
                        port, 'true' if client_resolution else 'false',
                        os.path.join(directory, 'Sessions.fs')))
        # The server's Python cannot import the package.
        code = ("import sys; sys.modules['zope_sessionx'] = None; "
                "sys.argv = ['runzeo', '-C', {!r}]; "
                "from ZEO.runzeo import main; main()".format(config))
        server = subprocess.Popen([sys.executable, '-c', code],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)

        def stop():
            server.terminate()
            return server.communicate(timeout=30)[0]

        self.addCleanup(lambda: server.poll() is None and stop())

        def listening():
            try:
                socket.create_connection(('127.0.0.1', port), 1).close()
                return True
            except OSError:
                return False

        _waitFor(listening, 60, 'the ZEO server')
        db = ZEO.DB(('127.0.0.1', port))
        self.addCleanup(db.close)
        return db, stop

    def _concurrentWrites(self, db):
        """Two connections write different keys of one package."""
        tm = transaction.TransactionManager()
        conn = db.open(tm)
        pkg = conn.root()['pkg'] = SessionPkgData()
        pkg['cart'] = ['book']
        tm.commit()
        tms = [transaction.TransactionManager() for _ in 'ab']
        for tm, key in zip(tms, 'ab'):
            db.open(tm).root()['pkg'][key] = True
        tms[0].commit()
        tms[1].commit()

    def test_conflicts_and_a_logged_bad_class(self):
        from ZODB.POSException import ConflictError
        db, stop = self._serve(client_resolution=False)
        with self.assertRaises(ConflictError) as caught:
            self._concurrentWrites(db)
        self.assertIn('zope_sessionx.data.SessionPkgData',
                      str(caught.exception))
        log = stop()
        self.assertIn('Unexpected error while trying to resolve conflict',
                      log)
        self.assertIn('BadClass', log)

    def test_check_says_so(self):
        from zope_sessionx.cli import main
        from zope_sessionx.database import DatabaseSessionDataContainer
        from zope_sessionx.database import closeDatabases
        db, stop = self._serve(client_resolution=False)
        uri = 'zeo://127.0.0.1:{}'.format(self.port)
        DatabaseSessionDataContainer(uri, maxLifetime=86400,
                                     cleanerThread=False)
        self.addCleanup(closeDatabases)
        out = io.StringIO()
        self.assertEqual(main(['check', '--database', uri], out), 1)
        self.assertIn('install zope_sessionx where the ZEO server runs',
                      out.getvalue())

    def test_client_conflict_resolution_merges(self):
        db, stop = self._serve(client_resolution=True)
        self._concurrentWrites(db)
        tm = transaction.TransactionManager()
        self.assertEqual(sorted(db.open(tm).root()['pkg']),
                         ['a', 'b', 'cart'])
        tm.abort()
