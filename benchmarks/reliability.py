"""Reliability: zope_sessionx under load, faults and hostile input, over
HTTP with real cookies, against real clusters, on loopback only.

Usage::

    .venv/bin/python benchmarks/reliability.py            # small: ~2 min
    .venv/bin/python benchmarks/reliability.py --full     # 10 min of load
    .venv/bin/python benchmarks/reliability.py --full --compare

Scenarios (``--scenarios``, comma separated; all by default):

``load``
    ``--processes`` demo application processes (waitress, sharing one
    session database: a ZEO server, and then RelStorage on PostgreSQL)
    under a mixed load for ``--duration`` seconds: reads, writes of a
    client's own keys, new clients, log-ins (id rotation), and several
    clients writing different keys of the same few sessions.  While it
    runs, the database server is restarted ``--restarts`` times (stopped
    as an operator does, then crashed, alternately) and one application
    process is killed with SIGKILL (and started again).  Every
    acknowledged write is checked afterwards; the database is checked for
    damage.
``cleaner``
    two ``zope-sessionx cleaner`` processes; the one holding the lease is
    killed with SIGKILL in the middle of a round: the other takes over,
    and no session is half removed.
``filestorage``
    a process writing sessions to a FileStorage is killed with SIGKILL;
    the FileStorage reopens with every session it committed.
``hostile``
    generated cookie headers and form values: truncated, oversized,
    non-ASCII, duplicated, signed with other secrets, other clients' ids
    with one character changed.
``flood``
    many new clients against a container holding at most a tenth of them.
``fixation``
    an id chosen by the client is never adopted; after log-in the old id
    reaches nothing, also for requests in flight during the log-in.

``--compare`` runs the load (with its faults) and the hostile input on
zope.session too, side by side: the same pages (``benchmarks/peerdemo.py``)
on zope.session's ``PersistentSessionDataContainer`` in the shared
database.  What zope.session keeps of the promises is reported as figures.

Prints a table of figures and promises; exits with status 1 when a promise
is broken, 2 when an argument is refused.  Ctrl-C stops every server and
process it started.
"""
import argparse
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import transaction
import ZEO


HERE = os.path.dirname(os.path.abspath(__file__))
COOKIE = 'zsx_demo'
SCENARIOS = ('load', 'cleaner', 'filestorage', 'hostile', 'flood',
             'fixation')
SMALL = {'duration': 20, 'processes': 4, 'hostile': 600, 'flood': 600,
         'flood_max': 60, 'cleaner': 2000}
FULL = {'duration': 600, 'processes': 4, 'hostile': 10000,
        'flood': 100000, 'flood_max': 10000, 'cleaner': 20000}


class Refused(Exception):
    """A bad argument: one line, exit status 2."""


def _freePort():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# -- the parts: database servers, application processes, browsers ------------

class ZEOBackend:
    """A ZEO server (``runzeo``, as operators run it) on a FileStorage,
    stopped and started at will."""

    name = 'ZEO'

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, 'Sessions.fs')
        self.log = os.path.join(directory, 'zeo.log')
        self.port = _freePort()
        self.uri = 'zeo://127.0.0.1:{}'.format(self.port)
        self.process = None
        self.hung = 0

    def start(self):
        with open(self.log, 'a') as log:
            self.process = subprocess.Popen(
                [sys.executable, '-X', 'faulthandler', '-m', 'ZEO.runzeo',
                 '-a',
                 '127.0.0.1:{}'.format(self.port), '-f', self.path],
                stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                return self
            except OSError:
                if (self.process.poll() is not None
                        or time.monotonic() > deadline):
                    with open(self.log) as log:
                        raise RuntimeError('the ZEO server did not start: '
                                           + log.read()[-2000:])
                time.sleep(0.05)

    def stop(self, crash=False):
        """Stop the server: SIGTERM, as an operator does, or SIGKILL, a
        crash.  A server that SIGTERM does not stop within 30 seconds is
        counted in `hung`, made to write its threads' stacks to its log
        (SIGABRT, with ``-X faulthandler``) and killed."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL if crash
                                     else signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.hung += 1
                self.process.send_signal(signal.SIGABRT)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    self.process.kill()
                    self.process.wait(60)
            self.process = None

    def damage(self, peer=False):
        """What is wrong with the database, checked offline, or None."""
        from ZODB.scripts.fstest import check
        self.stop()
        try:
            check(self.path)
        except Exception as error:
            return repr(error)
        finally:
            self.start()
        return None

    def conflicts(self):
        """Conflicts the server did not resolve, or None."""
        storage = ZEO.client(('127.0.0.1', self.port), wait_timeout=30)
        try:
            return storage.server_status()['conflicts']
        finally:
            storage.close()

    def close(self):
        self.stop()


class PostgresBackend:
    """RelStorage on a PostgreSQL server of its own."""

    name = 'RelStorage'

    def __init__(self, directory):
        from zope_sessionx.tests.postgres import PostgresServer
        self.server = PostgresServer().start()
        self.uri = self.server.uri()
        self._running = True

    def start(self):
        if not self._running:
            self.server._run(
                'pg_ctl', '-D', self.server.data, '-w', '-l',
                os.path.join(self.server.directory, 'log'), '-o',
                '-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off'
                .format(self.server.port, self.server.directory), 'start')
            self._running = True
        return self

    def stop(self, crash=False):
        """Stop PostgreSQL: a fast shutdown, or an immediate one (no
        checkpoint; recovery from the WAL at the next start)."""
        self.server._run('pg_ctl', '-D', self.server.data, '-m',
                         'immediate' if crash else 'fast', '-w', 'stop')
        self._running = False

    def damage(self, peer=False):
        # PostgreSQL's own recovery keeps its pages whole; what could be
        # wrong is the object graph: every session record loads (every
        # record reachable from the root, for zope.session's).
        return _unreachable(self.uri) if peer else _unloadable(self.uri)

    def conflicts(self):
        return None

    def close(self):
        if os.environ.get('RELIABILITY_KEEP'):
            # Stopped, its data directory kept for inspection.
            self.stop()
            print('kept', self.server.directory, flush=True)
        else:
            self.server.stop()


def _unloadable(uri, name=''):
    """A session record that cannot be loaded, or None."""
    from zope_sessionx.database import openDatabase
    db = openDatabase(uri)
    tm = transaction.TransactionManager()
    connection = db.open(transaction_manager=tm)
    try:
        sdc = connection.root()['zope_sessionx'][name]
        for key, session_data in sdc.iterSessions():
            for pkg_id, pkg_data in session_data.items():
                list(pkg_data.items())
            session_data.getLastAccessTime()
        return None
    except Exception as error:
        return repr(error)
    finally:
        tm.abort()
        connection.close()


def _unreachable(uri):
    """A record referred to and missing, or None: the whole graph from the
    root, whatever the application (zope.session's, here)."""
    import zodburi
    from ZODB.serialize import referencesf
    from ZODB.utils import z64
    factory, _ = zodburi.resolve_uri(uri)
    storage = factory()
    try:
        seen, todo = {z64}, [z64]
        while todo:
            oid = todo.pop()
            try:
                data, _ = storage.load(oid)
            except Exception as error:
                return repr(error)
            for ref in referencesf(data):
                if ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
        return None
    finally:
        storage.close()


class App:
    """``python -m zope_sessionx.demo`` on a free port; with *peer*, the
    same pages on zope.session (``benchmarks/peerdemo.py``)."""

    def __init__(self, directory, uri, secret_file, *args, peer=False):
        program = ([os.path.join(HERE, 'peerdemo.py')] if peer
                   else ['-m', 'zope_sessionx.demo'])
        self.args = [sys.executable] + program + [
            '--port', '0', '--var', directory, '--database', uri,
            '--secret-file', secret_file] + list(args)
        self.log = directory + '.log'
        self.start()

    def start(self):
        with open(self.log, 'a') as log:
            self.process = subprocess.Popen(
                self.args, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.process.stdout.readline()
        match = re.search(r':(\d+)/index.html', line)
        if not match:
            with open(self.log) as log:
                raise RuntimeError('the demo did not start: {}'.format(
                    log.read()[-2000:]))
        self.port = int(match.group(1))

    def kill(self):
        self.process.kill()
        self.process.wait(60)

    def rss(self):
        """Resident memory, in MB."""
        with open('/proc/{}/status'.format(self.process.pid)) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
        return 0.0  # pragma: no cover

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(60)


class Browser:
    """One client: a cookie, requests to any of *apps* (a load balancer
    without affinity)."""

    def __init__(self, apps, cookie=None):
        self.apps = apps
        self.cookie = cookie
        self.rng = random.Random()
        # When requests that changed the id ran: (start, end), and the
        # id each replaced, with the request's path and status.
        self.changes = []
        self.cookies = []
        # Each request: (port, method, path, status, id before, id after,
        # sent, answered), for RELIABILITY_DEBUG.
        self.trail = []

    def request(self, method, path, form=None, headers=None, app=None):
        """(status, body); status 0 when the connection failed."""
        app = app or self.rng.choice(self.apps)
        headers = dict(headers or {})
        if self.cookie and 'Cookie' not in headers:
            headers['Cookie'] = '{}={}'.format(COOKIE, self.cookie)
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        connection = http.client.HTTPConnection('127.0.0.1', app.port,
                                                timeout=60)
        sent = time.time()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode('utf-8', 'replace')
            before = self.cookie
            for header in response.headers.get_all('Set-Cookie') or ():
                name, value = header.split(';')[0].split('=', 1)
                if name == COOKIE:
                    self.cookie = value or None
            self.trail.append((app.port, method, path, response.status,
                               before and before[:8],
                               self.cookie and self.cookie[:8], sent,
                               time.time()))
            return response.status, text
        except (OSError, http.client.HTTPException):
            return 0, ''
        finally:
            connection.close()

    def notes(self, attempts=5):
        """The client's notes; None if no process would answer."""
        for attempt in range(attempts):
            status, text = self.request('GET', '/notes.html')
            if status == 200:
                return dict(re.findall(
                    r'<li id="note-([^"]+)">([^<]*)</li>', text))
        return None


# -- scenarios ---------------------------------------------------------------

def _shown(value):
    return '{:.2f}'.format(value) if isinstance(value, float) else str(value)


class Results:
    """Figures and promises, printed as a table at the end."""

    def __init__(self):
        self.rows = []
        self.broken = []

    def figure(self, scenario, name, value):
        self.rows.append((scenario, name, value))

    def promise(self, scenario, name, kept, detail=''):
        self.rows.append((scenario, name, 'kept' if kept else
                          'BROKEN ' + detail))
        if not kept:
            self.broken.append('{}: {} {}'.format(scenario, name, detail))

    def sideBySide(self, out=None):
        """The load's figures next to zope.session's, with their ratio
        (above 1: zope_sessionx is better)."""
        out = out or sys.stdout
        values = {(s, n): v for s, n, v in self.rows}
        out.write('\n{:<52}{:>14}{:>14}{:>8}\n'.format(
            'side by side', 'zope_sessionx', 'zope.session', 'ratio'))
        for backend, faults in itertools.product(
                ('ZEO', 'RelStorage'), ('', ' (no faults)')):
            scenario = 'load ' + backend + faults
            peer = 'load ' + backend + ' zope.session' + faults
            for name, ratio in SIDE_BY_SIDE:
                ours, theirs = (values.get((scenario, name)),
                                values.get((peer, name)))
                if ours is None or theirs is None:
                    continue
                shown = ''
                if ratio and ours and theirs:
                    shown = '{:.2f}'.format(
                        ours / theirs if ratio.startswith('zope_sessionx')
                        else theirs / ours)
                out.write('{:<52}{:>14}{:>14}{:>8}\n'.format(
                    '{} {}'.format(scenario, name)[:51], _shown(ours),
                    _shown(theirs), shown))
        out.flush()

    def print(self, out=None):
        out = out or sys.stdout
        width = max((len(s) + len(n) for s, n, _ in self.rows), default=20)
        for scenario, name, value in self.rows:
            if isinstance(value, float):
                value = '{:.2f}'.format(value)
            out.write('{:<{}}  {}\n'.format(
                '{} {}'.format(scenario, name), width + 2, value))
        out.flush()


# The figures put side by side with zope.session's, and how they compare.
SIDE_BY_SIDE = (
    ('requests per second', 'zope_sessionx / zope.session'),
    ('latency p50 ms', 'zope.session / zope_sessionx'),
    ('latency p99 ms', 'zope.session / zope_sessionx'),
    ('latency max ms', 'zope.session / zope_sessionx'),
    ('conflicts per 1,000 (server: not resolved)', None),
    ('failed (during the faults)', None),
)


def loadScenario(backend, apps, duration, results, stopping,
                 with_faults=True, restarts=2, peer=False):
    """The mixed load, with the database server restarted and an
    application process killed, all acknowledged writes checked.  With
    *peer*, *apps* run zope.session: what it keeps of the promises is
    reported as figures."""
    label = 'load ' + backend.name + (' zope.session' if peer else '') + (
        '' if with_faults else ' (no faults)')
    lock = threading.Lock()
    acked = {}          # browser -> {key: value}
    latencies, failures, outages, stops = [], [], [], []
    counts = {'requests': 0}
    shared = [Browser(apps) for _ in range(3)]
    for n, browser in enumerate(shared):
        browser.request('POST', '/notes.html', {'key': 'seed', 'value': n})
        acked[browser] = {'seed': str(n)}
    ends = time.monotonic() + duration
    history = {}
    begun = time.monotonic()

    def worker(number):
        rng = random.Random(number)
        own = Browser(apps)
        acked[own] = {}
        sequence = 0
        while time.monotonic() < ends and not stopping.is_set():
            roll = rng.random()
            sequence += 1
            key = 'w{}-{}'.format(number, sequence)
            target, form, path, method = own, None, '/value.html', 'GET'
            if roll < 0.25:
                form, path, method = ({'key': key, 'value': str(sequence)},
                                      '/notes.html', 'POST')
            elif roll < 0.35:
                own = Browser(apps)
                acked[own] = {}
                target = own
                form, path, method = ({'key': key, 'value': str(sequence)},
                                      '/notes.html', 'POST')
            elif roll < 0.40:
                form, path, method = ({'name': 'user%d' % number},
                                      '/login.html', 'POST')
            elif roll < 0.60:
                target = rng.choice(shared)
                form, path, method = ({'key': key, 'value': str(sequence)},
                                      '/notes.html', 'POST')
            started = time.monotonic()
            if target in shared:
                # Several workers share it: the cookie does not change.
                status, _ = Browser(apps, target.cookie).request(
                    method, path, form)
            else:
                cookie = target.cookie
                status, _ = target.request(method, path, form)
                if target.cookie != cookie or path == '/login.html':
                    # The id changed (a log-in, a new session), or a
                    # log-in, which changes it, failed: if this request
                    # was in flight at a fault, it may have committed
                    # unseen (see below).
                    target.changes.append((started, time.monotonic()))
                    target.cookies.append((cookie, path, status))
            took = time.monotonic() - started
            with lock:
                counts['requests'] += 1
                latencies.append(took)
                if status == 200 and path == '/notes.html':
                    acked[target][key] = str(sequence)
                    history.setdefault(key, (started - begun, took,
                                             target.cookie and
                                             target.cookie[:8]))
                elif path == '/login.html':
                    history.setdefault(
                        'login-%d-%d' % (number, sequence),
                        (started - begun, took, status, target.cookie and
                         target.cookie[:8]))
                if status != 200:
                    failures.append((started, time.monotonic(), status,
                                     path))

    threads = [threading.Thread(target=worker, args=(n,))
               for n in range(2 * len(apps))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    # Faults: the database server restarted `restarts` times, evenly
    # spread, stopped as an operator does and (every other one) crashed;
    # an application process killed half way.
    faults = sorted([((n + 1) / (restarts + 1), 'database', n % 2 == 1)
                     for n in range(restarts)] + [(1 / 2, 'app', True)])
    if not with_faults:
        faults = ()
    for fraction, fault, crash in faults:
        while (time.monotonic() < started + fraction * duration
               and not stopping.is_set()):
            time.sleep(0.2)
        begin = time.monotonic()
        if fault == 'database':
            backend.stop(crash)
            time.sleep(1)
            backend.start()
        else:
            victim = apps[len(apps) // 2]
            victim.kill()
            victim.start()
        # Requests failing while it is away, and for a little while
        # after (reconnecting), are the fault's.
        outages.append((begin, time.monotonic() + 15))
        stops.append((begin, time.monotonic()))
        if os.environ.get('RELIABILITY_DEBUG'):
            print('fault', fault, crash, begin - begun,
                  time.monotonic() - begun, flush=True)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # Every acknowledged write is there.
    lost = ambiguous = unread = 0
    for browser, written in acked.items():
        if not written:
            continue
        found = Browser(apps, browser.cookie).notes()
        if found is None:
            # (Counted apart: a reading that failed is not a loss.)
            unread += len(written)
            continue
        missing = [(key, value, found.get(key))
                   for key, value in written.items()
                   if found.get(key) != value]
        if missing and os.environ.get('RELIABILITY_DEBUG'):
            print('lost', browser in shared, browser.cookie and
                  browser.cookie[:8], len(written), len(found),
                  missing[:5], [history.get(m[0]) for m in missing[:5]],
                  [(a - begun, b - begun) for a, b in browser.changes],
                  [(c and c[:8], p, st,
                    sorted(Browser(apps, c).notes() or ()) if c else None)
                   for c, p, st in browser.cookies],
                  flush=True)
            # Each process's view: stored but not seen by one of them, or
            # not stored at all?
            for app in apps:
                status, text = Browser(apps, browser.cookie).request(
                    'GET', '/notes.html', app=app)
                print('  app', app.port, status,
                      [m[0] for m in missing if 'note-' + m[0] in text],
                      flush=True)
            # The requests that changed the id, and the one before each:
            # which process answered, and when (the clock of the
            # processes' logs).
            trail = browser.trail
            print('  trail', [entry for n, entry in enumerate(trail)
                              if any(e[4] != e[5] for e in trail[n:n + 2])],
                  flush=True)
            print('  cookies', browser.cookie, [c for c, _, _ in
                                                browser.cookies], flush=True)
        if missing and any(a <= e and b >= s for a, b in browser.changes
                           for s, e in stops):
            # A log-in in flight when the database server stopped: its
            # commit went through and its answer did not (the server
            # stopped between the two), so the client kept the old id,
            # which reaches nothing after a log-in.  Over ZEO the
            # publication retried the request, and the retry, finding the
            # old id gone, gave the client a fresh session; over
            # RelStorage the answer was a 500.
            ambiguous += len(missing)
        else:
            lost += len(missing)
    # In flight at a fault: begun before it ended, ended after it began.
    outside = [f for f in failures
               if not any(f[0] <= e and f[1] >= b for b, e in outages)]
    if outside and os.environ.get('RELIABILITY_DEBUG'):
        print('outside', [(f[0] - begun, f[1] - begun, f[2], f[3])
                          for f in outside], flush=True)
    if outside:
        # What the processes logged, for whoever reads a broken run.
        for app in apps:
            with open(app.log, errors='replace') as log:
                text = log.read()
            if 'Traceback' in text:
                sys.stderr.write('{}:\n{}\n'.format(
                    app.log, text[text.index('Traceback'):][-6000:]))
    latencies.sort()
    total = counts['requests']
    results.figure(label, 'requests', total)
    results.figure(label, 'requests per second', total / elapsed)
    results.figure(label, 'failed (during the faults)', len(failures))
    results.figure(label, 'latency p50 ms',
                   1e3 * latencies[len(latencies) // 2])
    results.figure(label, 'latency p99 ms',
                   1e3 * latencies[int(len(latencies) * 0.99)])
    results.figure(label, 'latency max ms', 1e3 * latencies[-1])
    if isinstance(backend, ZEOBackend):
        results.figure(label, 'server stops hung (SIGTERM; killed)',
                       backend.hung)
    conflicts = backend.conflicts()
    if conflicts is not None:
        # (ZEO never counts the conflicts it resolves: see
        # benchmarks/zeocounting.py.)
        results.figure(label, 'conflicts per 1,000 (server: not resolved)',
                       1000 * conflicts / total)
    damage = backend.damage(peer)
    if peer:
        # zope.session's: what it does, not promises of this suite.
        results.figure(label, 'acknowledged writes not read back', unread)
        results.figure(label, 'acknowledged writes lost', lost)
        results.figure(label, 'failures outside the faults', len(outside))
        results.figure(label, 'database damage', damage or 'none')
        return
    results.figure(label, 'writes lost to a log-in in flight at a fault',
                   ambiguous)
    results.promise(label, 'every acknowledged write read back',
                    unread == 0, '({} could not be read)'.format(unread))
    results.promise(label, 'acknowledged writes lost otherwise: 0',
                    lost == 0, '({} lost)'.format(lost))
    results.promise(label, 'failures only during faults', not outside,
                    '({} outside: {})'.format(len(outside), ', '.join(
                        '{} {}'.format(f[2], f[3]) for f in outside[:5])))
    results.promise(label, 'database needs no repair', damage is None,
                    str(damage))
    # Each process's cleaner thread outlived the faults (it died, or took
    # a lost server for a closed database, at the first PostgreSQL restart
    # once: long runs show it).
    died = 0
    for app in apps:
        with open(app.log, errors='replace') as log:
            text = log.read()
        died += ('Exception in thread zope_sessionx cleaner' in text
                 or 'its database is closed' in text)
    results.promise(label, 'cleaner threads outlived the faults', not died,
                    '({} died)'.format(died))


def cleanerScenario(backend, directory, results, sessions):
    """Two cleaner processes; the lease holder killed mid-round."""
    from zope_sessionx.data import SessionData
    from zope_sessionx.data import SessionPkgData
    from zope_sessionx.database import DatabaseSessionDataContainer
    from zope_sessionx.database import closeDatabases
    from zope_sessionx.storage import digest
    label = 'cleaner ' + backend.name
    sdc = DatabaseSessionDataContainer(
        backend.uri, name='stress', cleanupPeriod=2, cleanupBatch=10,
        cleanerThread=False, timeout=600)
    past = time.time() - 7200
    for n in range(sessions):
        data = SessionData()
        data.created = past
        data.setLastAccessTime(int(past))
        pkg = data['stress'] = SessionPkgData()
        pkg['n'] = n
        sdc.restoreSession(digest('client%d' % n), data)
        if n % 500 == 499:
            transaction.commit()
    transaction.commit()
    closeDatabases()
    processes = {}
    for holder in ('first', 'second'):
        processes[holder] = subprocess.Popen(
            [sys.executable, '-m', 'zope_sessionx.cli', 'cleaner',
             '--database', backend.uri, '--container', 'stress',
             '--holder', holder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sdc = DatabaseSessionDataContainer(backend.uri, name='stress')

        def state():
            transaction.begin()
            return sdc.lease.holder, len(sdc)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            holder, left = state()
            if holder is not None and left < sessions:
                break
            time.sleep(0.05)
        killed_at = time.monotonic()
        processes.pop(holder).kill()
        other = 'second' if holder == 'first' else 'first'
        takeover = None
        while time.monotonic() < killed_at + 60:
            if state()[0] == other:
                takeover = time.monotonic() - killed_at
                break
            time.sleep(0.1)
        while time.monotonic() < killed_at + 120 and state()[1]:
            time.sleep(0.2)
        transaction.begin()
        left = len(sdc)
        # No session half removed: what is counted is stored, and what is
        # stored loads whole.
        stored = sum(1 for _ in sdc.iterSessions())
        damage = _unloadable(backend.uri, 'stress')
        transaction.abort()
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(60)
        closeDatabases()
    results.figure(label, 'sessions', sessions)
    results.figure(label, 'takeover seconds (documented: at most 3)',
                   takeover if takeover is not None else -1)
    results.promise(label, 'another cleaner took over in time',
                    takeover is not None and takeover <= 3 + 1)
    results.promise(label, 'all removed, none half removed',
                    left == 0 and stored == 0 and damage is None,
                    '({} counted, {} stored, {})'.format(left, stored,
                                                         damage))


WRITER = '''
import sys, transaction
from zope_sessionx.database import DatabaseSessionDataContainer
from zope_sessionx.data import SessionData
sdc = DatabaseSessionDataContainer(sys.argv[1], cleanerThread=False)
n = 0
while True:
    data = sdc['client%d' % n] = SessionData()
    data['pkg'] = __import__('zope_sessionx.data').data.SessionPkgData()
    data['pkg']['n'] = n
    transaction.commit()
    print(n, flush=True)
    n += 1
'''


def fileStorageScenario(directory, results, least):
    """A writer killed with SIGKILL; the FileStorage reopened."""
    from zope_sessionx.database import DatabaseSessionDataContainer
    from zope_sessionx.database import closeDatabases
    uri = 'file://' + os.path.join(directory, 'Killed.fs')
    writer = subprocess.Popen([sys.executable, '-c', WRITER, uri],
                              stdout=subprocess.PIPE, text=True)
    committed = -1
    for line in writer.stdout:
        committed = int(line)
        if committed >= least:
            break
    writer.kill()
    writer.wait(60)
    try:
        sdc = DatabaseSessionDataContainer(uri, cleanerThread=False)
        missing = [n for n in range(committed + 1)
                   if sdc.get('client%d' % n) is None
                   or sdc.get('client%d' % n)['pkg']['n'] != n]
        transaction.abort()
    finally:
        closeDatabases()
    results.figure('filestorage', 'sessions committed before the kill',
                   committed + 1)
    results.promise('filestorage', 'reopened with every committed session',
                    not missing, '({} missing)'.format(len(missing)))


def hostileCookies(victims, count, rng):
    """*count* hostile cookie headers (and the query strings to match)."""
    from zope_sessionx.http import CookieClientIdManager
    other = CookieClientIdManager('x', 'another secret, quite long enough!!')
    made = []
    kinds = [
        lambda: rng.choice(victims)[:rng.randrange(1, 54)],
        lambda: 'A' * rng.choice([1000, 5000, 20000]),
        lambda: ''.join(chr(rng.randrange(0xa0, 0x3000))
                        for _ in range(rng.randrange(1, 60))),
        lambda: other.generateUniqueId(),
        lambda: _oneOff(rng.choice(victims), rng),
        lambda: rng.choice(victims) + ';' + COOKIE + '=' + _oneOff(
            rng.choice(victims), rng),
        lambda: rng.choice(victims).swapcase(),
    ]
    for n in range(count):
        made.append(kinds[n % len(kinds)]())
    return made


def _oneOff(client_id, rng):
    position = rng.randrange(len(client_id))
    alphabet = ('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
                '0123456789-_.')
    replacement = rng.choice(alphabet.replace(client_id[position], ''))
    return client_id[:position] + replacement + client_id[position + 1:]


def hostileScenario(backend, apps, results, count, peer=False):
    """Hostile cookies and form values: no errors, no one let in, no
    writes.  With *peer*, *apps* run zope.session: figures, not
    promises."""
    from zope_sessionx.database import closeDatabases
    from zope_sessionx.database import openDatabase
    label = 'hostile zope.session' if peer else 'hostile'
    rng = random.Random(13)
    victims = []
    while len(victims) < 5:
        browser = Browser(apps)
        status, _ = browser.request(
            'POST', '/notes.html',
            {'key': 'secret', 'value': 'victim-secret-%d' % len(victims)})
        if status == 200 and browser.cookie:
            victims.append(browser.cookie)
    before = openDatabase(backend.uri).lastTransaction()
    closeDatabases()
    errors = let_in = forged_in = 0
    for n, value in enumerate(hostileCookies(victims, count, rng)):
        quoted = urllib.parse.quote(value, safe='')
        genuine = False
        if n % 3 == 0:
            status, text = Browser(apps).request(
                'GET', '/notes.html?{}={}'.format(COOKIE, quoted))
        else:
            header = '{}={}'.format(COOKIE, value)
            if n % 5 == 0:
                header += '; {}={}'.format(COOKIE, rng.choice(victims))
            # A victim's real id among duplicated cookies.
            genuine = any(victim in header for victim in victims)
            status, text = Browser(apps).request(
                'GET', '/notes.html', headers={'Cookie': header.encode(
                    'utf-8', 'replace').decode('latin-1')})
        errors += status >= 500 or status == 0
        let_in += 'victim-secret' in text
        forged_in += 'victim-secret' in text and not genuine
    writes = openDatabase(backend.uri).lastTransaction() != before
    closeDatabases()
    results.figure(label, 'requests', count)
    if peer:
        results.figure(label, 'server errors', errors)
        results.figure(label, 'forged ids let in', forged_in)
        results.figure(label, 'writes caused', 'yes' if writes else 'none')
        return
    results.promise(label, 'server errors: 0', errors == 0,
                    '({})'.format(errors))
    # Also none of the requests with a real id duplicated: two cookies of
    # the id's name are ignored (see docs/security.rst).
    results.promise(label, 'forged ids let in: 0', let_in == 0,
                    '({})'.format(let_in))
    results.promise(label, 'writes caused: 0', not writes)


SENDERS = 4
# KB per request the Zope stack keeps, whatever the application (see the
# flood's memory promise), with a margin.
STACK_LEAK_KB = 3


def floodScenario(directory, secret, results, count, limit):
    """New clients against a container holding at most *limit*, in a
    session database of its own."""
    from zope_sessionx.database import closeDatabases
    from zope_sessionx.database import openDatabase
    backend = ZEOBackend(os.path.join(directory, 'flood')).start()
    apps = []
    try:
        apps.extend(App(os.path.join(directory, 'flood%d' % n), backend.uri,
                        secret, '--max-sessions', str(limit), '--timeout',
                        '2')
                    for n in range(2))
        regular = Browser(apps)
        regular.request('POST', '/notes.html', {'key': 'k', 'value': 'kept'})
        memory = [app.rss() for app in apps]
        statuses = {}
        unreadable = []
        stored = []
        lock = threading.Lock()
        tm = transaction.TransactionManager()
        connection = openDatabase(backend.uri).open(transaction_manager=tm)
        sdc = connection.root()['zope_sessionx']['']

        sent = [0]
        flooding = threading.Event()
        flooding.set()
        # The workers' memory: (requests sent, MB), every half second.
        rss = []

        def flood(first):
            # SENDERS at once, as a flood comes; the first also counts
            # the sessions stored every 200 requests.
            for n in range(first, count, SENDERS):
                status, _ = Browser(apps).request(
                    'POST', '/notes.html', {'key': 'k', 'value': str(n)})
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    sent[0] += 1
                if first == 0 and n % 200 == 0:
                    tm.begin()
                    stored.append(len(sdc))

        def visit():
            # The regular client comes back every half second (its
            # session lasts two), as someone browsing does.
            while flooding.is_set():
                if (regular.notes() or {}).get('k') != 'kept':
                    unreadable.append(sent[0])
                rss.append((sent[0], max(app.rss() for app in apps)))
                time.sleep(0.5)

        senders = [threading.Thread(target=flood, args=(first,))
                   for first in range(SENDERS)]
        visitor = threading.Thread(target=visit)
        visitor.start()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        flooding.clear()
        visitor.join()
        tm.begin()
        stored.append(len(sdc))
        tm.abort()
        connection.close()
        closeDatabases()
        grown = max(app.rss() - before
                    for app, before in zip(apps, memory))
        if os.environ.get('RELIABILITY_DEBUG'):
            print('rss', rss[::max(1, len(rss) // 40)], flush=True)
        # Back to normal once the flood's sessions expired (real processes,
        # real time: two seconds) and were removed.
        time.sleep(3)
        subprocess.run([sys.executable, '-m', 'zope_sessionx.cli', 'sweep',
                        '--database', backend.uri], check=True,
                       capture_output=True, timeout=300)
        after, _ = Browser(apps).request('POST', '/notes.html',
                                         {'key': 'k', 'value': 'after'})
    finally:
        for app in apps:
            app.stop()
        backend.close()
    results.figure('flood', 'new clients', count)
    results.figure('flood', 'container limit', limit)
    results.figure('flood', 'answered 503 (full)', statuses.get(503, 0))
    results.figure('flood', 'worker memory growth MB', grown)
    others = {status: n for status, n in statuses.items()
              if status not in (200, 503)}
    results.promise('flood', 'no other answer than 200 or 503', not others,
                    str(others))
    results.figure('flood', 'most sessions stored at once', max(stored))
    # Requests creating sessions at the same moment may each pass the
    # limit once (docs/expiry.rst, "Limits").
    results.promise('flood', 'sessions stored within the limit (+ {} '
                    'senders)'.format(SENDERS), max(stored) <= limit + SENDERS,
                    '({})'.format(max(stored)))
    results.promise('flood', 'existing session readable throughout',
                    not unreadable,
                    '({} times not)'.format(len(unreadable)))
    # The Zope stack itself keeps about 2.7 KB per request, in any
    # application (zope.session's demo too): the C security proxies leak
    # on some attribute lookups (docs/reliability.rst, "What it found").
    # Beyond that, a refused client must cost nothing.
    bound = 50 + STACK_LEAK_KB * count / 1024
    results.promise('flood', 'worker memory bounded (< {:.0f} MB growth)'
                    .format(bound), grown < bound,
                    '({:.0f} MB)'.format(grown))
    results.promise('flood', 'new clients welcome after cleanup',
                    after == 200, '({})'.format(after))


def _until200(browser, *args, attempts=5):
    """A request, tried again until it succeeds (as a person would);
    return the last status."""
    for attempt in range(attempts):
        status, _ = browser.request(*args)
        if status == 200:
            break
    return status


def fixationScenario(apps, results):
    """Ids chosen by the client; the old id after log-in."""
    from zope_sessionx.http import CookieClientIdManager
    chosen = CookieClientIdManager('x', 'the attacker own secret, long!!!!')
    browser = Browser(apps, chosen.generateUniqueId())
    planted = browser.cookie
    _until200(browser, 'POST', '/notes.html', {'key': 'k', 'value': 'v'})
    adopted = browser.cookie == planted
    # A valid id the attacker got for themself, planted in the victim's
    # browser: the victim logs in; the attacker keeps asking with it.
    attacker = Browser(apps)
    _until200(attacker, 'POST', '/notes.html', {'key': 'bait', 'value': '1'})
    old = attacker.cookie
    victim = Browser(apps, old)
    _until200(victim, 'POST', '/notes.html',
              {'key': 'card', 'value': 'secret'})
    seen_after = []
    stop = threading.Event()
    logged_in = []

    def peek():
        while not stop.is_set():
            started = time.monotonic()
            status, text = Browser(apps, old).request('GET', '/notes.html')
            if logged_in and started > logged_in[0]:
                seen_after.append('secret' in text)

    peekers = [threading.Thread(target=peek) for _ in range(3)]
    for thread in peekers:
        thread.start()
    time.sleep(0.5)
    login = _until200(victim, 'POST', '/login.html', {'name': 'victim'})
    logged_in.append(time.monotonic())
    time.sleep(1)
    stop.set()
    for thread in peekers:
        thread.join()
    results.promise('fixation', 'a chosen id is never adopted', not adopted)
    results.promise('fixation', 'log-in gives a new id',
                    login == 200 and victim.cookie != old,
                    '(log-in answered {})'.format(login))
    results.promise('fixation', 'the old id reaches nothing after log-in',
                    not any(seen_after) and bool(seen_after),
                    '({} of {} saw the session)'.format(
                        sum(seen_after), len(seen_after)))
    results.promise('fixation', 'the session followed the log-in',
                    (victim.notes() or {}).get('card') == 'secret')


# -- the run -----------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog='benchmarks/reliability.py',
        description=__doc__.splitlines()[0],
        epilog='Example: .venv/bin/python benchmarks/reliability.py --full')
    parser.add_argument('--full', action='store_true',
                        help='full sizes (10 minutes of load per backend)')
    parser.add_argument('--duration', type=float,
                        help='seconds of load per backend (10 to 3600)')
    parser.add_argument('--processes', type=int,
                        help='application processes (2 to 16)')
    parser.add_argument('--backends', default='zeo,postgres',
                        help='zeo, postgres, or both (default)')
    parser.add_argument('--no-faults', action='store_true',
                        help='load without stopping servers or killing '
                        'processes')
    parser.add_argument('--restarts', type=int, default=2,
                        help='database server restarts during the load '
                        '(1 to 20; default 2)')
    parser.add_argument('--scenarios', default=','.join(SCENARIOS),
                        help='which scenarios (default: all)')
    parser.add_argument('--compare', action='store_true',
                        help='run the load and hostile input on '
                        'zope.session too (the same pages: '
                        'benchmarks/peerdemo.py), side by side')
    parser.add_argument('--json', help='also write the figures here')
    return parser


def settings(argv=None):
    """The run's settings from *argv*; `Refused` names a bad one."""
    args = _parser().parse_args(argv)
    sizes = dict(FULL if args.full else SMALL)
    if args.duration is not None:
        if not 10 <= args.duration <= 3600:
            raise Refused('--duration must be between 10 and 3600 seconds, '
                          'not {:g}'.format(args.duration))
        sizes['duration'] = args.duration
    if args.processes is not None:
        if not 2 <= args.processes <= 16:
            raise Refused('--processes must be between 2 and 16, not {}'
                          .format(args.processes))
        sizes['processes'] = args.processes
    if not 1 <= args.restarts <= 20:
        raise Refused('--restarts must be between 1 and 20, not {}'
                      .format(args.restarts))
    backends = [b for b in args.backends.split(',') if b]
    unknown = set(backends) - {'zeo', 'postgres'}
    if unknown or not backends:
        raise Refused('unknown backend {!r}: zeo or postgres'.format(
            sorted(unknown)[0] if unknown else ''))
    scenarios = [s for s in args.scenarios.split(',') if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or not scenarios:
        raise Refused('unknown scenario {!r}: {}'.format(
            sorted(unknown)[0] if unknown else '', ', '.join(SCENARIOS)))
    sizes.update(backends=backends, scenarios=scenarios, json=args.json,
                 faults=not args.no_faults, restarts=args.restarts,
                 compare=args.compare)
    return sizes


def _peer(name, directory, secret, sizes, results, stopping, started):
    """The load scenario (and, over ZEO, hostile input) on zope.session,
    on a database server of its own."""
    backend = (ZEOBackend(os.path.join(directory, 'peer')).start()
               if name == 'zeo' else PostgresBackend(directory))
    started.append(backend)
    apps = []
    for n in range(sizes['processes']):
        apps.append(App(os.path.join(directory, '{}-peer{}'.format(name, n)),
                        backend.uri, secret, peer=True))
        started.append(apps[-1])
    if 'load' in sizes['scenarios']:
        loadScenario(backend, apps, sizes['duration'], results, stopping,
                     sizes['faults'], sizes['restarts'], peer=True)
    if name == 'zeo' and 'hostile' in sizes['scenarios']:
        hostileScenario(backend, apps, results, sizes['hostile'], peer=True)
    for part in apps + [backend]:
        part.stop() if isinstance(part, App) else part.close()
        started.remove(part)


def run(sizes):
    """Run the scenarios; return the `Results`."""
    results = Results()
    stopping = threading.Event()
    directory = tempfile.mkdtemp(prefix='zope_sessionx-reliability-')
    started = []

    def interrupted(signum, frame):
        stopping.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        secret = os.path.join(directory, 'secret.txt')
        with open(secret, 'w') as f:
            f.write('a-shared-secret-of-the-reliability-suite-long\n')
        scenarios = sizes['scenarios']
        if 'filestorage' in scenarios:
            fileStorageScenario(directory, results, 50)
        for name in sizes['backends']:
            backend = (ZEOBackend(directory).start() if name == 'zeo'
                       else PostgresBackend(directory))
            started.append(backend)
            apps = []
            if set(scenarios) & {'load', 'hostile', 'fixation'}:
                apps = [App(os.path.join(directory, '{}-app{}'.format(
                            name, n)), backend.uri, secret)
                        for n in range(sizes['processes'])]
                started.extend(apps)
            if 'load' in scenarios:
                loadScenario(backend, apps, sizes['duration'], results,
                             stopping, sizes['faults'], sizes['restarts'])
            if sizes['compare'] and ('load' in scenarios or (
                    name == 'zeo' and 'hostile' in scenarios)):
                _peer(name, directory, secret, sizes, results, stopping,
                      started)
            if name == 'zeo':
                if 'hostile' in scenarios:
                    hostileScenario(backend, apps, results, sizes['hostile'])
                if 'fixation' in scenarios:
                    fixationScenario(apps, results)
                if 'flood' in scenarios:
                    floodScenario(directory, secret, results,
                                  sizes['flood'], sizes['flood_max'])
            if 'cleaner' in scenarios:
                cleanerScenario(backend, directory, results,
                                sizes['cleaner'])
            for app in apps:
                app.stop()
                started.remove(app)
        return results
    finally:
        signal.signal(signal.SIGTERM, previous)
        for part in reversed(started):
            try:
                part.stop() if isinstance(part, App) else part.close()
            except Exception:  # pragma: no cover
                pass
        if os.environ.get('RELIABILITY_KEEP'):
            print('kept', directory, flush=True)
        else:
            shutil.rmtree(directory, True)


def main(argv=None):
    try:
        sizes = settings(argv)
    except Refused as error:
        sys.stderr.write('reliability: {}\n'.format(error))
        return 2
    try:
        results = run(sizes)
    except KeyboardInterrupt:
        sys.stderr.write('reliability: interrupted; everything it started '
                         'is stopped\n')
        return 130
    results.print()
    if sizes['compare']:
        results.sideBySide()
    if sizes['json']:
        with open(sizes['json'], 'w') as f:
            json.dump({'rows': results.rows, 'broken': results.broken}, f,
                      indent=2)
    if results.broken:
        sys.stdout.write('\nBROKEN:\n' + '\n'.join(results.broken) + '\n')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
