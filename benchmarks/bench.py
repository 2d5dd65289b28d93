"""zope_sessionx side by side with zope.session, in one run.

Usage::

    .venv/bin/python benchmarks/bench.py            # full sizes
    .venv/bin/python benchmarks/bench.py --quick    # small sizes, a smoke run

Measures, for both packages installed in this environment:

1. per request, through the real ``ISession`` adapter and a real request,
   on a FileStorage holding ``--sessions`` sessions: time (warm cache),
   bytes written to the storage, objects loaded (cold cache), for reading
   a session, writing a key, and creating a session; and, as floors for
   creating one, a commit of the four records any session store that
   finds, indexes and counts sessions must write, and of the five a
   drop-in replacement for zope.session must write, with no session code;
2. a mixed load from ``--processes`` processes over a real ZEO server:
   conflicts per 1,000 requests (in the clients, and resolved by the
   server), failures after 3 attempts, lost writes,
   the slowest request and the 99th percentile;
3. cleanup of ``--cleanup-sizes`` sessions, half of them expired, while
   the same process serves back-to-back writing requests: time, objects
   loaded and bytes written per removed session, the requests' median
   with the cleaner idle and at work, the slowest request during cleanup,
   and the objects a round with nothing to remove loads (``--gc-freeze``:
   the same after ``gc.freeze()``);
4. what the principal index costs: records and bytes of a log-in with
   and without ``setPrincipal``, and of a read-only request.

Prints tables with zope_sessionx / zope.session ratios (below 1.0 means
zope_sessionx needs less).
"""
import argparse
import contextlib
import gc
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from io import BytesIO

import transaction
import ZEO
import ZODB
import zope.component
import zope.component.testing
from BTrees.Length import Length
from persistent.mapping import PersistentMapping
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError
from zope.interface import implementer
from zope.publisher.http import HTTPRequest

import zope_sessionx.cleanup
import zope_sessionx.http
import zope_sessionx.interfaces
import zope_sessionx.session
import zope_sessionx.storage


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import impls  # noqa: E402  (benchmarks/impls.py)


def request(cookie=None):
    env = {'REQUEST_METHOD': 'GET'}
    if cookie:
        env['HTTP_COOKIE'] = 'sid=' + cookie
    return HTTPRequest(BytesIO(), env)


# -- 1. per request ----------------------------------------------------------

class _Setup:
    """One package on its own FileStorage, with its clients."""

    def __init__(self, impl, sessions, cache_size, reset):
        self.impl = impl
        self.directory = tempfile.mkdtemp(prefix='bench-')
        self.path = os.path.join(self.directory, 'Data.fs')
        self.tm = transaction.TransactionManager()
        self.db = ZODB.DB(FileStorage(self.path), cache_size=cache_size)
        self.conn = self.db.open(self.tm)
        root = self.conn.root()
        api = impls.configure(impl, root, reset)
        self.tm.commit()
        # populate() commits with the default transaction manager: use it
        # through a connection of the same database.
        self.tm.abort()
        self.conn.close()
        self.conn = self.db.open()
        self.clients = impls.populate(impl, api, self.conn.root(), sessions)
        zope.component.provideUtility(
            self.conn.root()['sdc'], api.interfaces.ISessionDataContainer)
        self.ISession = api.interfaces.ISession
        # Warm up both the same way: every client reads its session once
        # (zope.session also sweeps at its first access).
        for client_id in self.clients:
            self.ISession(request(client_id))['products.bench'].get('k')
        transaction.commit()

    def op(self, name, i):
        ISession = self.ISession
        if name == 'read':
            ISession(request(self.clients[i % len(self.clients)]))[
                'products.bench'].get('k')
        elif name == 'write':
            ISession(request(self.clients[i % len(self.clients)]))[
                'products.bench']['k%d' % (i % 7)] = i
        else:
            ISession(request())['products.bench']['k'] = i

    def close(self):
        transaction.abort()
        self.conn.close()
        self.db.close()
        shutil.rmtree(self.directory, True)


class _Floor(_Setup):
    """No session code at all: what a commit of the records any new
    session must write costs on the same storage.

    A session store that finds sessions by client id, indexes them by time
    and counts them (as zope_sessionx must) writes at least four records
    for a new client: its data (new), a bucket of the tree of sessions, a
    bucket of the time index and the counter.  Here they are zope_sessionx's
    own trees (small buckets: the fewest bytes) and a `PersistentMapping`,
    written by a "request" that only builds the request object.
    """

    impl = 'floor'

    def __init__(self, sessions, cache_size):
        self.directory = tempfile.mkdtemp(prefix='bench-')
        self.path = os.path.join(self.directory, 'Data.fs')
        self.db = ZODB.DB(FileStorage(self.path), cache_size=cache_size)
        self.conn = self.db.open()
        root = self.conn.root()
        self.tree = root['tree'] = zope_sessionx.storage.SessionTree()
        self.index = root['index'] = zope_sessionx.storage.ExpiryIndexShard()
        self.count = root['count'] = Length()
        for n in range(sessions):
            self._store(n)
            if n % 1000 == 999:
                transaction.commit()
        transaction.commit()

    def _store(self, i):
        key = os.urandom(16)
        self.tree[key] = PersistentMapping({'k': i})
        self.index.insert(struct.pack('>Q', i // 60) + key)
        self.count.change(1)

    def op(self, name, i):
        request()
        self._store(i)


class _DropInFloor(_Floor):
    """The floor of a drop-in replacement for zope.session: the same, but
    the client's data is two new records, because zope.session's API makes
    both the session data and each package's data persistent objects of
    their own (an application may store a package's data object, and
    writes to it are tracked, and merged, on their own)."""

    impl = 'drop-in floor'

    def _store(self, i):
        key = os.urandom(16)
        self.tree[key] = PersistentMapping(
            {'products.bench': PersistentMapping({'k': i})})
        self.index.insert(struct.pack('>Q', i // 60) + key)
        self.count.change(1)


def perRequest(sessions, repeat, cache_size, rounds=10):
    """Time both packages in alternating rounds, so that drift in the
    machine's speed (the disk's, mostly) weighs on both alike."""
    setups = [_Setup(impl, sessions, cache_size, reset=(n == 0))
              for n, impl in enumerate(('zope.session', 'zope_sessionx'))]
    setups.append(_Floor(sessions, cache_size))
    setups.append(_DropInFloor(sessions, cache_size))
    results = {setup.impl: {} for setup in setups}
    try:
        for name in ('read', 'write', 'create'):
            times = {setup.impl: [] for setup in setups}
            written = {setup.impl: 0 for setup in setups}
            counter = 0
            timed = setups if name == 'create' else setups[:2]
            for number in range(rounds):
                order = timed if number % 2 == 0 else timed[::-1]
                for setup in order:
                    size = os.path.getsize(setup.path)
                    for i in range(repeat // rounds):
                        counter += 1
                        started = time.perf_counter()
                        setup.op(name, counter)
                        transaction.commit()
                        times[setup.impl].append(
                            time.perf_counter() - started)
                    written[setup.impl] += os.path.getsize(setup.path) - size
            for setup in timed:
                results[setup.impl][name] = {
                    'time_us': statistics.median(times[setup.impl]) * 1e6,
                    'bytes': written[setup.impl] / len(times[setup.impl]),
                }
        for setup in setups[:2]:
            conn = setup.conn
            for name in ('read', 'write', 'create'):
                loads = 0
                for i in range(repeat // 10):
                    conn.cacheMinimize()
                    conn.getTransferCounts(True)
                    setup.op(name, 10 ** 6 + i)
                    transaction.commit()
                    loads += conn.getTransferCounts(True)[0]
                results[setup.impl][name]['loads'] = loads / (repeat // 10)
        return results
    finally:
        for setup in setups:
            setup.close()
        zope.component.testing.tearDown()


# -- 2. mixed load over ZEO ---------------------------------------------------

def _countingServer(directory):
    """A ZEO server counting the conflicts it resolves (zeocounting.py):
    (address, stop, counts file)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    counts = os.path.join(directory, 'resolved.txt')
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'zeocounting.py'), str(port),
         os.path.join(directory, 'Data.fs'), counts],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        server.terminate()
        server.wait(60)
    return ('127.0.0.1', port), stop, counts


def _resolved(counts):
    """Class -> conflicts the server resolved."""
    found = {}
    if os.path.exists(counts):
        with open(counts) as f:
            for line in f:
                found[line.strip()] = found.get(line.strip(), 0) + 1
    return found


def mixedLoad(impl, sessions, processes, requests):
    directory = tempfile.mkdtemp(prefix='bench-zeo-')
    addr, stop, counts = _countingServer(directory)
    db = ZEO.DB(addr, wait_timeout=60)
    conn = db.open()
    try:
        api = impls.configure(impl, conn.root())
        conn.root()['clients'] = impls.populate(
            impl, api, conn.root(), sessions)
        transaction.commit()
        populated = sum(_resolved(counts).values())
        workers = [
            subprocess.Popen(
                [sys.executable, os.path.join(HERE, 'zeoload.py'), impl,
                 addr[0], str(addr[1]), 'p%d' % n, str(requests)],
                stdout=subprocess.PIPE, text=True)
            for n in range(processes)]
        results = [json.loads(w.communicate(timeout=1800)[0].splitlines()[-1])
                   for w in workers]
        by_class = _resolved(counts)
        resolved = sum(by_class.values()) - populated
        for name, number in sorted(by_class.items(), key=lambda i: -i[1]):
            print('{} resolved by the server: {} {}'.format(
                impl, number, name))
        transaction.begin()
        lost = 0
        for r in results:
            for client_id, key in r['written']:
                data = impls.rawPackage(impl, conn.root(), client_id)
                if data is None or key not in data:
                    lost += 1
        total = sum(r['requests'] for r in results)
        latencies = sorted(x for r in results for x in r['latencies'])
        for r in results:
            for conflict in r['conflicted']:
                print('{} conflict: {}'.format(impl, conflict))
        return {
            'requests': total,
            'conflicts_per_1000': 1000 * sum(
                r['conflicts'] for r in results) / total,
            'server_resolved_per_1000': 1000 * resolved / total,
            'failures': sum(r['failures'] for r in results),
            'lost': lost,
            'slowest_ms': latencies[-1] * 1e3,
            'p99_ms': latencies[int(len(latencies) * 0.99)] * 1e3,
        }
    finally:
        transaction.abort()
        conn.close()
        db.close()
        stop()
        zope.component.testing.tearDown()
        shutil.rmtree(directory, True)


# -- 3. cleanup ---------------------------------------------------------------

@contextlib.contextmanager
def _database(prefix, cache_size=400):
    """(path, db, connection) of a fresh FileStorage; everything closed
    and removed afterwards."""
    directory = tempfile.mkdtemp(prefix=prefix)
    path = os.path.join(directory, 'Data.fs')
    db = ZODB.DB(FileStorage(path), cache_size=cache_size)
    conn = db.open()
    try:
        yield path, db, conn
    finally:
        transaction.abort()
        conn.close()
        db.close()
        zope.component.testing.tearDown()
        shutil.rmtree(directory, True)


@implementer(zope_sessionx.interfaces.IClock)
class Clock:

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


def _writer(api, live, latencies, conflicts):
    """One back-to-back writing request to a live session."""
    ISession = api.interfaces.ISession
    tm = transaction.manager

    def write(i):
        started = time.perf_counter()
        while True:
            try:
                tm.begin()
                ISession(request(live[i % len(live)]))[
                    'products.bench']['w%d' % (i % 5)] = i
                tm.commit()
                break
            except ConflictError:
                tm.abort()
                conflicts.append(i)
        latencies.append(time.perf_counter() - started)

    return write


def _transactions(path, after):
    """(description, records, bytes) of the transactions committed after
    tid *after*."""
    fs = FileStorage(path, read_only=True)
    found = []
    try:
        first = (int.from_bytes(after, 'big') + 1).to_bytes(8, 'big')
        for txn in fs.iterator(first):
            records = list(txn)
            size = (23 + len(txn.user) + len(txn.description)
                    + len(txn.extension_bytes) + 8
                    + sum(42 + len(r.data or b'') for r in records))
            found.append((txn.description, len(records), size))
    finally:
        fs.close()
    return found


def cleanupRun(impl, size, idle_seconds=2.0, freeze=False):
    """Cleanup of *size* sessions, half expired, while the same process
    serves back-to-back writing requests to live sessions.

    *freeze*: call ``gc.freeze()`` once set up, as docs/operations.rst
    recommends for application processes, so that Python's full
    collections do not walk what start-up made."""
    with _database('bench-clean-', 5000) as (path, db, conn):
        try:
            return _cleanupRun(impl, size, idle_seconds, freeze, path, db,
                               conn)
        finally:
            gc.unfreeze()


def _cleanupRun(impl, size, idle_seconds, freeze, path, db, conn):
    """`cleanupRun` in the FileStorage *path* of *db*."""
    clock = Clock()
    api = impls.configure(impl, conn.root())
    if impl == 'zope_sessionx':
        zope.component.provideUtility(
            clock, zope_sessionx.interfaces.IClock)
    sdc = conn.root()['sdc']
    half = size // 2
    if impl == 'zope.session':
        # No sweep while populating: it is what is measured.
        sdc._v_last_sweep = time.time() + 10 ** 6
    expired = impls.populate(impl, api, conn.root(), half)
    if impl == 'zope_sessionx':
        clock.now += sdc.timeout // 2
    else:
        # zope.session reads time.time(): age the first half instead.
        for client_id in expired:
            sdc.data[client_id].setLastAccessTime(
                int(time.time()) - 2 * sdc.timeout - sdc.resolution)
        transaction.commit()
    live = impls.populate(impl, api, conn.root(), size - half,
                          key='live')
    if impl == 'zope_sessionx':
        clock.now += sdc.timeout // 2 + sdc.grace + 2 * sdc.indexStep
    transaction.commit()
    conn.cacheMinimize()
    if impl == 'zope.session':
        sdc._v_last_sweep = time.time() + 10 ** 6

    if freeze:
        gc.collect()
        gc.freeze()
    idle, busy, conflicts = [], [], []
    # Requests with the cleaner idle, back to back ...
    write = _writer(api, live, idle, conflicts)
    i = 0
    ends = time.perf_counter() + idle_seconds
    while time.perf_counter() < ends:
        write(i)
        i += 1
    write = _writer(api, live, busy, conflicts)
    before = db.lastTransaction()
    if impl == 'zope_sessionx':
        # ... then while the cleaner works, in a thread of this
        # process, as the cleaner thread of an application does.
        opener = zope_sessionx.cleanup.StoredOpener(db, sdc._p_oid)
        cleaner = zope_sessionx.cleanup.Cleaner(opener)
        cconn = opener(cleaner.transaction_manager)._p_jar
        cleaner.transaction_manager.abort()
        cconn.cacheMinimize()
        cconn.getTransferCounts(True)
        outcome = {}

        def clean():
            started = time.perf_counter()
            outcome['stats'] = cleaner.round()
            outcome['seconds'] = time.perf_counter() - started

        thread = threading.Thread(target=clean)
        thread.start()
        while thread.is_alive():
            write(i)
            i += 1
        thread.join()
        stats, elapsed = outcome['stats'], outcome['seconds']
        loads = cconn.getTransferCounts(True)[0]
        removed = stats.timeout + stats.lifetime + stats.evicted
        note = zope_sessionx.cleanup.NOTE.encode()
        cleanup_bytes = sum(
            size for description, _, size in _transactions(path, before)
            if description == note)
        cconn.cacheMinimize()
        cconn.getTransferCounts(True)
        assert cleaner.round() is None
        idle_loads = cconn.getTransferCounts(True)[0]
        cleaner.stop()
    else:
        # ... then while zope.session sweeps: inside the request that
        # finds its resolution has passed.
        conn.cacheMinimize()
        conn.getTransferCounts(True)
        sdc._v_last_sweep = 0
        write(i)
        i += 1
        elapsed = busy[0]
        loads = conn.getTransferCounts(True)[0]
        removed = size - len(sdc.data)
        # As long as the requests were measured with zope_sessionx's
        # cleaner at work, at least a second.
        ends = time.perf_counter() + max(1.0, elapsed)
        while time.perf_counter() < ends:
            write(i)
            i += 1
        # The sweeping request's transaction: the largest.
        cleanup_bytes = max(
            size for _, _, size in _transactions(path, before))
        conn.cacheMinimize()
        conn.getTransferCounts(True)
        sdc._v_last_sweep = 0
        api.interfaces.ISession(request(live[0]))[
            'products.bench'].get('k')
        transaction.commit()
        idle_loads = conn.getTransferCounts(True)[0]
    return {
        'size': size,
        'removed': removed,
        'seconds': elapsed,
        'us_per_removed': 1e6 * elapsed / max(removed, 1),
        'loads': loads,
        'loads_per_removed': loads / max(removed, 1),
        'bytes_per_removed': cleanup_bytes / max(removed, 1),
        'idle_round_loads': idle_loads,
        'requests_idle': len(idle),
        'requests_during': len(busy),
        'median_idle_ms': statistics.median(idle) * 1e3,
        'median_during_ms': statistics.median(busy) * 1e3,
        'median_ratio': statistics.median(busy) / statistics.median(idle),
        'slowest_during_ms': max(busy) * 1e3,
        'slowest_idle_ms': max(idle) * 1e3,
        'request_conflicts': len(conflicts),
    }


# -- 3b. recording an access -------------------------------------------------

def accessBytes(impl, sessions=1000, reads=200):
    """Bytes a read writes when it records the access (once per
    resolution), per request, on a FileStorage."""
    clock = Clock()
    with _database('bench-access-') as (path, db, conn):
        api = impls.configure(impl, conn.root())
        sdc = conn.root()['sdc']
        if impl == 'zope_sessionx':
            zope.component.provideUtility(
                clock, zope_sessionx.interfaces.IClock)
        else:
            sdc._v_last_sweep = time.time() + 10 ** 6
        clients = impls.populate(impl, api, conn.root(), sessions)
        if impl == 'zope_sessionx':
            clock.now += sdc.resolution + 1
        else:
            # zope.session reads time.time(): wind the access back.
            for client_id in clients[:reads]:
                sdc.data[client_id].setLastAccessTime(
                    int(time.time()) - sdc.resolution - 5)
            transaction.commit()
        size = os.path.getsize(path)
        for client_id in clients[:reads]:
            api.interfaces.ISession(request(client_id))[
                'products.bench'].get('k')
            transaction.commit()
        return (os.path.getsize(path) - size) / reads


# -- 4. the principal index ---------------------------------------------------

def principalCost(sessions, logins=200):
    """What the principal index costs, on a FileStorage of *sessions*
    sessions (zope_sessionx only: zope.session has no such index).

    A log-in rotates the client's id, with and without `setPrincipal`;
    a read-only request reads the session of a client with a principal.
    Returns records and bytes written per request.
    """
    logins = min(logins, sessions // 4)
    with _database('bench-principals-', 20000) as (path, db, conn):
        api = impls.configure('zope_sessionx', conn.root())
        clients = impls.populate('zope_sessionx', api, conn.root(), sessions)
        ISession = api.interfaces.ISession
        results = {}
        for name, principal in (('log-in', False),
                                ('log-in with setPrincipal', True)):
            before = db.lastTransaction()
            size = os.path.getsize(path)
            for n in range(logins):
                request_ = request(clients.pop())
                session = ISession(request_)
                session['products.bench'].get('k')
                session.rotateClientId()
                if principal:
                    session.setPrincipal('user%d' % (n % 50), 'Browser')
                transaction.commit()
            records = sum(count for _, count, _ in
                          _transactions(path, before))
            results[name] = {
                'records': records / logins,
                'bytes': (os.path.getsize(path) - size) / logins}
        # Read-only requests of clients with a principal.
        logged = []
        for n in range(logins):
            client_id = clients.pop()
            session = ISession(request(client_id))
            session['products.bench'].get('k')
            session.setPrincipal('user%d' % (n % 50))
            logged.append(client_id)
        transaction.commit()
        size = os.path.getsize(path)
        for client_id in logged:
            session = ISession(request(client_id))
            session['products.bench'].get('k')
            session.principalSessions()
            transaction.commit()
        results['read-only request, with a principal'] = {
            'records': 0.0,
            'bytes': (os.path.getsize(path) - size) / logins}
        return results


# -- report -------------------------------------------------------------------

def ratio(ours, theirs):
    if not theirs:
        return float('nan') if ours else 1.0
    return ours / theirs


def table(title, rows, ours='zope_sessionx'):
    print('\n' + title)
    print('{:<34}{:>16}{:>16}{:>10}'.format(
        '', 'zope.session', ours, 'ratio'))
    for name, theirs, ours in rows:
        print('{:<34}{:>16.2f}{:>16.2f}{:>10.2f}'.format(
            name, theirs, ours, ratio(ours, theirs)))
    sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--sessions', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=2000)
    parser.add_argument('--cache-sizes', default='400,20000',
                        help='ZODB connection cache sizes (objects) for the '
                        'per-request runs; 400 is ZODB\'s default')
    parser.add_argument('--processes', type=int, default=4)
    parser.add_argument('--requests', type=int, default=1000)
    parser.add_argument('--cleanup-sizes', default='10000,100000')
    parser.add_argument('--gc-freeze', action='store_true',
                        help='cleanup: gc.freeze() once set up, as in a '
                        'deployment that follows docs/operations.rst')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--sections',
                        default='per-request,load,cleanup,principals',
                        help='which parts to run (comma separated; '
                        '"access" alone runs the access-recording part of '
                        'per-request)')
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.repeat, args.requests = 200, 50, 30
        args.processes, args.cleanup_sizes = 2, '400'
        args.cache_sizes = '400'
    both = ('zope.session', 'zope_sessionx')
    out = {}

    sections = args.sections.split(',')
    out['per_request'] = {}
    caches = args.cache_sizes.split(',') if 'per-request' in sections else ()
    for cache_size in [int(c) for c in caches]:
        per = perRequest(args.sessions, args.repeat, cache_size)
        out['per_request'][cache_size] = per
        rows = []
        for op in ('read', 'write', 'create'):
            for unit, label in (('time_us', 'median µs'), ('bytes', 'bytes'),
                                ('loads', 'objects loaded, cold')):
                rows.append(('{} {}'.format(op, label),
                             per['zope.session'][op][unit],
                             per['zope_sessionx'][op][unit]))
        table('Per request ({} sessions stored, {} requests each, ZODB '
              'cache of {} objects)'.format(
                  args.sessions, args.repeat, cache_size), rows)
        for floor, title in (
                ('floor', 'a new client\'s four records'),
                ('drop-in floor', 'the five records of a drop-in')):
            table('Floor: {} committed with no session code (ZODB cache '
                  'of {} objects)'.format(title, cache_size),
                  [('create {}'.format(label),
                    per['zope.session']['create'][unit],
                    per[floor]['create'][unit])
                   for unit, label in (('time_us', 'median µs'),
                                       ('bytes', 'bytes'))],
                  ours=floor)

    load = {impl: mixedLoad(impl, args.sessions, args.processes,
                            args.requests)
            for impl in (both if 'load' in sections else ())}
    out['mixed_load'] = load
    if load:
        table('Mixed load over ZEO ({} processes x {} requests)'.format(
              args.processes, args.requests),
              [(name, load['zope.session'][name], load['zope_sessionx'][name])
               for name in ('conflicts_per_1000', 'server_resolved_per_1000',
                            'failures', 'lost', 'slowest_ms', 'p99_ms')])

    out['cleanup'] = {}
    sizes = args.cleanup_sizes.split(',') if 'cleanup' in sections else ()
    for size in [int(s) for s in sizes]:
        clean = {impl: cleanupRun(impl, size, freeze=args.gc_freeze)
                 for impl in both}
        out['cleanup'][size] = clean
        table('Cleanup of {} sessions, half expired, during back-to-back '
              'writing requests{}'.format(
                  size, ' (gc.freeze())' if args.gc_freeze else ''),
              [(name, clean['zope.session'][name],
                clean['zope_sessionx'][name])
               for name in ('removed', 'seconds', 'us_per_removed', 'loads',
                            'loads_per_removed', 'bytes_per_removed',
                            'idle_round_loads', 'requests_during',
                            'median_idle_ms', 'median_during_ms',
                            'median_ratio', 'slowest_during_ms',
                            'request_conflicts')])
    if 'per-request' in sections or 'access' in sections:
        access = out['access_bytes'] = {impl: accessBytes(impl)
                                        for impl in both}
        table('Recording an access (a read once per resolution)',
              [('bytes per request', access['zope.session'],
                access['zope_sessionx'])])
    if 'principals' in sections:
        cost = out['principals'] = principalCost(args.sessions)
        print('\nThe principal index (zope_sessionx only), per request')
        print('{:<40}{:>10}{:>10}'.format('', 'records', 'bytes'))
        for name, figures in cost.items():
            print('{:<40}{:>10.2f}{:>10.1f}'.format(
                name, figures['records'], figures['bytes']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
