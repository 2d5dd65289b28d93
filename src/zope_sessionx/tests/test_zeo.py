"""A real ZEO server and several client processes."""
import json
import os
import shutil
import signal
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

    def _spawn(self, mode, name, amount):
        host, port = self.addr
        process = subprocess.Popen(
            [sys.executable, '-m', 'zope_sessionx.tests.zeoworker', mode,
             host, str(port), name, str(amount)],
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

    def test_one_cleaner_at_a_time_taken_over_after_sigkill(self):
        period = 2
        sdc = self._container(timeout=1, cleanupPeriod=period,
                              cleanupBatch=2)
        self._clients(sdc, 4000)
        created = time.time()
        # Let them expire (the workers use the real clock).
        _waitFor(lambda: time.time() > created + 1.5, 10, 'expiry')
        workers = {'w%d' % n: self._spawn('clean', 'w%d' % n, 120)
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
        killed_at = time.time()
        workers[holder].wait(30)

        def successor():
            current = lease()
            return current[0] not in (None, holder) and current

        new_holder, expires = _waitFor(successor, 60, 'a new holder')
        # The new holder's lease was taken half a period before it expires.
        taken_at = expires - period / 2
        self.assertLessEqual(taken_at - killed_at, 2 * period)
        self.assertIn(new_holder, workers)

        def emptied():
            self.tm.begin()
            return len(self.conn.root()['sdc']) == 0

        _waitFor(emptied, 120, 'the cleanup to finish')
        self.assertGreater(remaining_before, 0)
