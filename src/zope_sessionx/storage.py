"""The storage layout of a container: where its sessions, their expiry
index, their number, the cleanup schedule and the cleaner's lease live.

One `SessionStore` holds them all.  A
`~zope_sessionx.container.PersistentSessionDataContainer` keeps its store
in its own record; a `~zope_sessionx.ram.RAMSessionDataContainer` keeps it
in the in-memory database.  Every class here is stored in the ZODB: their
dotted paths and attribute names are frozen (see the persisted-classes
list in ``docs/design.rst``).

Storage follows one rule: anything two concurrent requests may write
either is written by only one of them or merges.  Inserting different
keys into a BTree bucket merges, `~zope_sessionx.data.SessionData` merges
access times and packages, and `BTrees.Length.Length` merges counts;
nothing else is written by concurrent requests.
"""
import hashlib
import itertools
import struct

import persistent
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from BTrees.OOBTree import OOTreeSet
from zope.interface import implementer

from zope_sessionx.interfaces import ILease


__all__ = [
    'Count',
    'ExpiryIndex',
    'ExpiryIndexShard',
    'Lease',
    'PrincipalIndex',
    'PrincipalIndexShard',
    'Schedule',
    'SessionStore',
    'SessionTree',
    'Sessions',
    'digest',
    'principalKey',
]


def digest(client_id):
    """Return the 16 byte key a client's session is stored under.

    A third of the bytes of the 54 character id in every bucket written,
    and the ids themselves never sit in the database.
    """
    return hashlib.blake2b(client_id.encode('utf-8', 'surrogatepass'),
                           digest_size=16).digest()


_EPOCH = struct.Struct('>Q')


def entryStep(entry):
    """The expiry step of an index *entry*."""
    return _EPOCH.unpack(entry[:_EPOCH.size])[0]


def entryKey(entry):
    """The digest of an index *entry*."""
    return entry[_EPOCH.size:]


class SessionTree(OOBTree):
    """Digest -> `~zope_sessionx.data.SessionData`: one shard of
    `Sessions`.

    Small buckets and nodes: a new session rewrites one bucket (and, at a
    split, one node), so their size is what a new session costs in bytes.
    """

    max_leaf_size = 16
    max_internal_size = 16


class Sessions:
    """Digest -> `~zope_sessionx.data.SessionData`, in 256 independent
    `SessionTree` shards (the digest's first byte picks one).

    Independent trees, because a BTree insert marks every node on its
    path as read (``readCurrent``): a bucket split anywhere below a node
    conflicts with every concurrent insert below that node, and splits
    reach the upper nodes, which all inserts pass, more often than not
    in a big tree.  A shard's root only sees the inserts of its own
    shard.  Not persistent itself: it is pickled in the record of the
    object holding it, which adding and removing sessions never rewrites.
    """

    def __init__(self):
        self.trees = tuple(SessionTree() for _ in range(256))

    def get(self, key, default=None):
        return self.trees[key[0]].get(key, default)

    def __setitem__(self, key, session_data):
        self.trees[key[0]][key] = session_data

    def __delitem__(self, key):
        del self.trees[key[0]][key]


class ExpiryIndexShard(OOTreeSet):
    """One shard of `ExpiryIndex`.  See `SessionTree` for the sizes."""

    max_leaf_size = 16
    max_internal_size = 16


class ExpiryIndex:
    """The expiry index: entries "expiry step (8 bytes, big-endian) +
    digest", in 64 independent `ExpiryIndexShard` trees (the digest's
    first six bits pick one).

    Sessions created at the same moment share a step, so they are added
    at the end of their shard: 64 places rather than one, where each
    bucket split would conflict with every concurrent creation; and
    independent trees for the reason given at `Sessions`.  Not more,
    though: the cleaner looks at the front of each.  Not persistent
    itself, like `Sessions`.
    """

    shards = 64

    def __init__(self):
        self.trees = tuple(ExpiryIndexShard() for _ in range(self.shards))

    def entry(self, step, key):
        """The entry of digest *key* at expiry step *step*."""
        return _EPOCH.pack(step) + key

    def _tree(self, entry):
        trees = self.trees
        return trees[entryKey(entry)[0] * len(trees) >> 8]

    def insert(self, entry):
        self._tree(entry).insert(entry)

    def remove(self, entry):
        self._tree(entry).remove(entry)

    def head(self, shard):
        """The first entry of *shard*, or None if it is empty."""
        tree = self.trees[shard]
        return tree.minKey() if tree else None

    def heads(self):
        """Shard number -> first entry, for the shards that have one."""
        heads = {}
        for shard in range(len(self.trees)):
            entry = self.head(shard)
            if entry is not None:
                heads[shard] = entry
        return heads

    def due(self, cutoff, budget):
        """Up to *budget* entries of steps before *cutoff*."""
        entries = []
        cutoff = _EPOCH.pack(cutoff)
        for tree in self.trees:
            entries.extend(itertools.islice(
                tree.keys(max=cutoff, excludemax=True),
                budget - len(entries)))
            if len(entries) == budget:
                break
        return entries


class PrincipalIndexShard(OOTreeSet):
    """One shard of `PrincipalIndex`.  See `SessionTree` for the sizes."""

    max_leaf_size = 16
    max_internal_size = 16


def principalKey(principal_id):
    """The 16 byte key a principal's entries start with."""
    return digest(principal_id)


class PrincipalIndex:
    """Which sessions belong to which principal: entries "principal key
    (16 bytes) + session digest (16 bytes)", in 16 independent
    `PrincipalIndexShard` trees (the principal key's first byte picks
    one), so that a principal's sessions are one range of one tree.

    Written only when a session is given a principal (at log-in), moves
    or is removed; a log-in inserts one entry: one small bucket.  Two
    sessions of one principal logging in at once insert different keys,
    which the bucket merges.  Not persistent itself, like `Sessions`.
    """

    shards = 16

    def __init__(self):
        self.trees = tuple(PrincipalIndexShard() for _ in range(self.shards))

    def _tree(self, principal):
        return self.trees[principal[0] % len(self.trees)]

    def insert(self, principal, key):
        self._tree(principal).insert(principal + key)

    def remove(self, principal, key):
        tree = self._tree(principal)
        if principal + key in tree:
            tree.remove(principal + key)

    def keys(self, principal):
        """The digests of the sessions of *principal*."""
        size = len(principal)
        return [entry[size:] for entry in self._tree(principal).keys(
            min=principal, max=principal + b'\xff' * 16)]


class Count:
    """The number of sessions, in 16 `BTrees.Length.Length` shards (the
    digest's first byte picks one).

    Concurrent creations and removals of different clients mostly change
    different records: a ZEO server merges two changes of one ``Length``,
    but each merge is work done under its commit lock (one counter had
    the server resolve 29 conflicts per 1,000 requests of the mixed
    load).  Not persistent itself, like `Sessions`.
    """

    shards = 16

    def __init__(self):
        self.lengths = tuple(Length() for _ in range(self.shards))

    def change(self, delta, key):
        """Add *delta* for the session of digest *key*."""
        self.lengths[key[0] % len(self.lengths)].change(delta)

    def __call__(self):
        return sum(length() for length in self.lengths)


class Schedule(persistent.Persistent):
    """When the cleaner next has work, so that asking costs one record.

    *step* is an expiry step no index entry is earlier than, worked out
    by the last complete cleanup under *settings* (timeout, maximum
    lifetime, index step).  Requests never write it: a session created
    later is due later, unless those settings change, which makes it
    unknown until the next cleanup.
    """

    step = None
    settings = None


@implementer(ILease)
class Lease(persistent.Persistent):
    """See `ILease`.

    Its own small record, so that taking it never rewrites the container.
    Two processes taking it at once conflict on it: one of them wins.
    """

    holder = None
    expires = 0

    def acquire(self, holder, now, duration):
        """See `ILease`."""
        if self.holder != holder and self.expires >= now:
            return False
        self.holder = holder
        self.expires = now + duration
        return True

    def release(self, holder):
        """See `ILease`."""
        if self.holder == holder:
            self.expires = 0


class SessionStore:
    """Everything a container stores besides its settings.

    ``sessions`` (`Sessions`), ``index`` (`ExpiryIndex`), ``count``
    (`Count`), ``lease`` (`Lease`), ``schedule``
    (`Schedule`) and ``principals`` (`PrincipalIndex`).  Not persistent
    itself: it is pickled in the record of its holder and never changes;
    what changes are the persistent objects it refers to, each its own
    record.
    """

    def __init__(self):
        self.sessions = Sessions()
        self.index = ExpiryIndex()
        self.count = Count()
        self.lease = Lease()
        self.schedule = Schedule()
        self.principals = PrincipalIndex()
