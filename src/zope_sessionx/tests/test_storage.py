"""The storage layout, and the list of what the ZODB stores."""
import io
import pathlib
import pickle
import re
import unittest

import persistent
import transaction
import zope.session.session
from zope.interface.verify import verifyObject

from zope_sessionx import storage
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import FileStorageDB


DESIGN = pathlib.Path(__file__).resolve().parents[3] / 'docs' / 'design.rst'
BTREE_STATE = '(BTree state)'
TIME_STATE = '(a time, or ``(\'removed\', time)``)'


class DigestTests(unittest.TestCase):

    def test_sixteen_bytes_never_the_id(self):
        key = storage.digest('client-id')
        self.assertEqual(len(key), 16)
        self.assertEqual(key, storage.digest('client-id'))
        self.assertNotEqual(key, storage.digest('client-ie'))
        self.assertNotIn(b'client', key)


class SessionsTests(unittest.TestCase):

    def test_shard_by_first_byte(self):
        sessions = storage.Sessions()
        self.assertEqual(len(sessions.trees), 256)
        key = storage.digest('a')
        sessions[key] = 'data'
        self.assertEqual(sessions.get(key), 'data')
        self.assertEqual(list(sessions.trees[key[0]].keys()), [key])
        del sessions[key]
        self.assertIsNone(sessions.get(key))


class ExpiryIndexTests(unittest.TestCase):

    def test_entries_ordered_by_step_within_a_shard(self):
        index = storage.ExpiryIndex()
        key = storage.digest('a')
        later, earlier = index.entry(20, key), index.entry(10, key)
        index.insert(later)
        index.insert(earlier)
        shard = key[0] * index.shards >> 8
        self.assertEqual(index.head(shard), earlier)
        self.assertEqual(index.heads(), {shard: earlier})
        self.assertEqual(storage.entryStep(earlier), 10)
        self.assertEqual(storage.entryKey(earlier), key)
        self.assertEqual(index.due(20, 10), [earlier])
        self.assertEqual(index.due(21, 1), [earlier])
        index.remove(earlier)
        index.remove(later)
        self.assertIsNone(index.head(shard))
        self.assertEqual(index.heads(), {})

    def test_due_stops_at_the_budget_across_shards(self):
        index = storage.ExpiryIndex()
        for n in range(200):
            index.insert(index.entry(1, storage.digest(str(n))))
        self.assertEqual(len(index.due(2, 50)), 50)
        self.assertEqual(len(index.due(2, 500)), 200)
        self.assertEqual(index.due(1, 500), [])


class StoreTests(unittest.TestCase):

    def test_holds_one_of_each(self):
        store = storage.SessionStore()
        self.assertIsInstance(store.sessions, storage.Sessions)
        self.assertIsInstance(store.index, storage.ExpiryIndex)
        self.assertEqual(store.count(), 0)
        verifyObject(storage.ILease, store.lease)
        self.assertIsNone(store.schedule.step)


def documentedClasses():
    """Dotted class path -> set of attribute names, from docs/design.rst."""
    text = DESIGN.read_text(encoding='utf-8')
    table = text.split('\nPersisted classes\n', 1)[1]
    documented = {}
    current = None
    for line in table.splitlines():
        match = re.match(r'^``(zope_sessionx\.[\w.]+)``\s+(.*)$', line)
        if match:
            current = documented[match.group(1)] = set()
            cell = match.group(2)
        elif current is not None and re.match(r'^\s{20,}\S', line):
            cell = line
        else:
            current = None
            continue
        if cell.strip() in (BTREE_STATE, TIME_STATE):
            current.add(cell.strip())
        else:
            current.update(name.strip() for name in cell.split(',')
                           if name.strip())
    return documented


class _Recorder(pickle.Unpickler):
    """Loads a ZODB record, noting the classes it names."""

    def __init__(self, data, seen):
        super().__init__(io.BytesIO(data))
        self.seen = seen

    def find_class(self, module, name):
        if module.startswith('zope_sessionx'):
            self.seen.setdefault('%s.%s' % (module, name), set())
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return None


def _note(obj, seen):
    # What an object pickled inside a record stores: its __dict__.
    klass = type(obj)
    name = '%s.%s' % (klass.__module__, klass.__qualname__)
    if name in seen and not isinstance(obj, persistent.Persistent):
        seen[name].update(vars(obj))
        for value in vars(obj).values():
            _note(value, seen)
    elif isinstance(obj, (tuple, list)):
        for value in obj:
            _note(value, seen)


def pickledClasses(fs):
    """Dotted class path -> attribute names, of every record stored."""
    seen = {}
    for txn in fs.storage.iterator():
        for record in txn:
            if record.data is None:
                continue
            recorder = _Recorder(record.data, seen)
            klass = recorder.load()
            state = recorder.load()
            name = '%s.%s' % (klass.__module__, klass.__qualname__)
            if not name.startswith('zope_sessionx'):
                continue
            if isinstance(state, dict):
                seen[name].update(state)
                for value in state.values():
                    _note(value, seen)
            elif isinstance(state, int) or (
                    isinstance(state, tuple) and state[:1] == ('removed',)):
                # An access time: the time, or the removal mark.
                seen[name].add(TIME_STATE)
            else:
                # A BTree's own state: buckets and keys, no attributes.
                seen[name].add(BTREE_STATE)
    return seen


class PersistedClassesTests(ComponentsTestCase):
    """docs/design.rst lists exactly what a real database stores."""

    def _storeEverything(self, fs):
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.data import SessionData
        from zope_sessionx.data import SessionPkgData
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.ram import RAMSessionDataContainer
        tm = transaction.TransactionManager()
        conn = fs.db.open(tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        root = conn.root()
        manager = root['ids'] = CookieClientIdManager(
            'sid', 'x' * 32, thirdparty=False, cookieLifetime=60,
            secure=True, autoSecure=True, postOnly=False, domain='.x.org',
            cookiePath='/', httpOnly=True, sameSite='Strict',
            hostPrefix=False, namespaces=('cookie',), acceptLegacyIds=False)
        manager.__name__, manager.__parent__ = 'ids', None
        for name, klass in [('sdc', PersistentSessionDataContainer),
                            ('ram', RAMSessionDataContainer)]:
            sdc = root[name] = klass()
            sdc.__name__, sdc.__parent__ = name, None
            sdc.cleanerThread = False
            sdc.timeout, sdc.resolution, sdc.maxLifetime = 600, 60, 7200
            sdc.targetNumber, sdc.maxNumber = 100, 1000
            sdc.cleanupPeriod, sdc.cleanupBatch = 5, 20
            sdc.longestTimeout, sdc.longestLifetime = 7200, 86400
            # (Only while a site moves from zope.session.)
            sdc.legacySource = (
                zope.session.session.PersistentSessionDataContainer())
        tm.commit()
        sdc = root['sdc']
        for client in ('a', 'b'):
            data = sdc[client] = SessionData()
            data['pkg'] = SessionPkgData()
            data['pkg']['key'] = client
        tm.commit()
        sdc.setPrincipal('a', 'alice', 'Laptop')
        sdc.setExpiry('a', 3600, 14400)
        tm.commit()
        del sdc['b']
        sdc.lease.acquire('me', self.clock(), 10)
        sdc.sweep()
        tm.commit()

    def test_design_lists_what_is_pickled(self):
        fs = FileStorageDB()
        self.addCleanup(fs.close)
        self._storeEverything(fs)
        documented = documentedClasses()
        self.assertIn('zope_sessionx.data.SessionData', documented)
        pickled = pickledClasses(fs)
        # The RAM container's store lives in the in-memory database.
        for name in ('zope_sessionx.storage.SessionStore',
                     'zope_sessionx.storage.Sessions',
                     'zope_sessionx.storage.ExpiryIndex'):
            self.assertIn(name, pickled)
        self.assertEqual(sorted(pickled), sorted(documented))
        for name, attributes in documented.items():
            self.assertEqual(sorted(pickled[name]), sorted(attributes), name)
