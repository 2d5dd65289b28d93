"""Sessions: the `ISession` adapter, session data and their containers.

Storage follows one rule: anything two concurrent requests may write either
is written by only one of them or merges.  Inserting different keys into a
BTree bucket merges, `SessionData` merges access times and packages, and
`BTrees.Length.Length` merges counts; nothing else is written by
concurrent requests.
"""
import hashlib
import itertools
import logging
import secrets
import struct
import threading
import time

import persistent
import transaction
import ZODB.DB
import ZODB.MappingStorage
import zope.component
import zope.event
import zope.location
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from BTrees.OOBTree import OOTreeSet
from ZODB.POSException import ConflictError
from zope.interface import implementer
from zope.interface.interfaces import ComponentLookupError
from zope.publisher.interfaces import IRequest

from zope_sessionx._field import FieldProperty
from zope_sessionx.cleanup import CleanupResult
from zope_sessionx.cleanup import Lease
from zope_sessionx.cleanup import cleanerFor
from zope_sessionx.clock import currentTime
from zope_sessionx.events import SessionCreatedEvent
from zope_sessionx.events import SessionLimitReachedEvent
from zope_sessionx.events import SessionRemovedEvent
from zope_sessionx.http import CookieRollback
from zope_sessionx.interfaces import EVICTED
from zope_sessionx.interfaces import INVALIDATED
from zope_sessionx.interfaces import LIFETIME
from zope_sessionx.interfaces import PREVIOUS_CLIENT_ID_KEY
from zope_sessionx.interfaces import TIMEOUT
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionData
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.interfaces import ISessionPkgData
from zope_sessionx.interfaces import SessionError
from zope_sessionx.interfaces import SessionLimitError


__all__ = [
    'ClientId',
    'PersistentSessionDataContainer',
    'RAMSessionDataContainer',
    'Session',
    'SessionData',
    'SessionPkgData',
    'currentTime',
]

logger = logging.getLogger(__name__)

# Request annotations: package data handed out but not stored yet, and the
# re-issued id whose sessions have been moved.
_PENDING_KEY = 'zope_sessionx.pending'
_FOLLOWED_KEY = 'zope_sessionx.followed_client_id'


def _containers():
    """Every session data container of the current site, once each."""
    seen = {}
    for _name, sdc in zope.component.getUtilitiesFor(ISessionDataContainer):
        seen.setdefault(id(sdc), sdc)
    return list(seen.values())


def _followReissuedId(request, client_id):
    # The manager re-issued the request's id (older secret, zope.session
    # id): move the client's sessions to the new id, once per request.
    annotations = request.annotations
    previous = annotations.get(PREVIOUS_CLIENT_ID_KEY)
    if previous is None or annotations.get(_FOLLOWED_KEY) == client_id:
        return
    annotations[_FOLLOWED_KEY] = client_id
    _moveSessions(_containers(), previous, client_id)


def _moveSessions(containers, old_client_id, new_client_id):
    for sdc in containers:
        # A container of another implementation may not know how.
        move = getattr(sdc, 'moveSession', None)
        if move is not None:
            move(old_client_id, new_client_id)


def _getClientId(request, create=True):
    """Return the request's client id; ``None`` if none and not *create*.

    Mints ids through the `IClientId` adapter, as zope.session does; finds
    them without minting when the manager supports it.
    """
    manager = zope.component.getUtility(IClientIdManager)
    if create or not ICookieClientIdManager.providedBy(manager):
        # ClientId follows a re-issued id itself.
        return str(IClientId(request))
    client_id = manager.getClientId(request, create=False)
    if client_id is not None:
        _followReissuedId(request, client_id)
    return client_id


def _transactionManager(obj):
    jar = getattr(obj, '_p_jar', None)
    return transaction.manager if jar is None else jar.transaction_manager


@implementer(IClientId)
@zope.component.adapter(IRequest)
class ClientId(str):
    """See `IClientId`: the id the `IClientIdManager` utility gives."""

    def __new__(cls, request):
        id_manager = zope.component.getUtility(IClientIdManager)
        client_id = id_manager.getClientId(request)
        _followReissuedId(request, client_id)
        return str.__new__(cls, client_id)


@implementer(ISession)
@zope.component.adapter(IRequest)
class Session:
    """See `ISession`.

    No client id is issued and nothing is stored until session data is
    first written: `__getitem__` hands out package data that attaches
    itself to the client's session on its first write.
    """

    def __init__(self, request):
        self.request = request

    @property
    def client_id(self):
        """The client id (issued now if the client has none)."""
        return _getClientId(self.request)

    def _sdc(self, pkg_id):
        # The container named after the package wins; the unnamed one is
        # the fallback.
        try:
            return zope.component.getUtility(ISessionDataContainer, pkg_id)
        except ComponentLookupError:
            return zope.component.getUtility(ISessionDataContainer)

    def _pending(self):
        return self.request.annotations.setdefault(_PENDING_KEY, {})

    def _stored(self, sdc, pkg_id):
        client_id = _getClientId(self.request, create=False)
        if client_id is None:
            return None
        session_data = sdc.get(client_id)
        if session_data is None:
            return None
        return session_data.get(pkg_id)

    def get(self, pkg_id, default=None):
        """See `ISession`."""
        sdc = self._sdc(pkg_id)
        pkg_data = self._stored(sdc, pkg_id)
        if pkg_data is None:
            pkg_data = self._pending().get((id(sdc), pkg_id), default)
        return pkg_data

    def __getitem__(self, pkg_id):
        """See `ISession`."""
        sdc = self._sdc(pkg_id)
        pkg_data = self._stored(sdc, pkg_id)
        if pkg_data is None:
            key = (id(sdc), pkg_id)
            pending = self._pending()
            pkg_data = pending.get(key)
            if pkg_data is None:
                pkg_data = pending[key] = SessionPkgData()
                pkg_data._v_attach = (self._attach, sdc, pkg_id)
        return pkg_data

    def _attach(self, pkg_data, sdc, pkg_id):
        """Store *pkg_data*, on its first write, in the client's session."""
        self._pending().pop((id(sdc), pkg_id), None)
        client_id = _getClientId(self.request)
        session_data = sdc.get(client_id)
        if session_data is None:
            session_data = sdc[client_id] = SessionData()
        stored = session_data.get(pkg_id)
        if stored is not None:
            # Stored meanwhile by other means: keep what it holds.
            pkg_data.update(stored)
        session_data[pkg_id] = pkg_data

    def invalidate(self):
        """See `ISession`."""
        request = self.request
        manager = zope.component.getUtility(IClientIdManager)
        client_id = _getClientId(request, create=False)
        containers = _containers()
        if client_id is not None:
            for sdc in containers:
                if client_id in sdc:
                    del sdc[client_id]
        for pkg_data in self._pending().values():
            pkg_data._v_attach = None
        self._pending().clear()
        if ICookieClientIdManager.providedBy(manager):
            self._rollbackCookieOnAbort(manager, containers)
            manager.expireCookie(request)

    def rotateClientId(self):
        """See `ISession`."""
        request = self.request
        manager = zope.component.getUtility(IClientIdManager)
        if (not ICookieClientIdManager.providedBy(manager)
                or manager.thirdparty):
            raise SessionError(
                'cannot rotate client ids issued by {!r}'.format(manager))
        old = _getClientId(request, create=False)
        containers = _containers()
        self._rollbackCookieOnAbort(manager, containers)
        new = manager.newClientId(request)
        request.annotations[_FOLLOWED_KEY] = new
        if old is not None:
            _moveSessions(containers, old, new)
        return new

    def _rollbackCookieOnAbort(self, manager, containers):
        tm = _transactionManager(containers[0] if containers else None)
        tm.get().join(CookieRollback(self.request, manager, tm))

    # Without these, ``x in session`` and ``iter(session)`` would fall back
    # on calling __getitem__ with 0, 1, 2, ... which never ends.  The two
    # exceptions are zope.session's.
    def __iter__(self):
        raise NotImplementedError

    def __contains__(self, x):
        raise TypeError


def _attaching(method):
    """Make a mutating `SessionPkgData` method store it first if pending."""
    base = getattr(OOBTree, method)

    def wrapper(self, *args, **kw):
        attach = self._v_attach
        if attach is not None:
            # Cleared first: storing it may write to it (a merge).
            self._v_attach = None
            callback, sdc, pkg_id = attach
            try:
                callback(self, sdc, pkg_id)
            except BaseException:
                # Not stored: the next write tries again.
                self._v_attach = attach
                raise
        return base(self, *args, **kw)

    wrapper.__name__ = method
    wrapper.__doc__ = base.__doc__
    return wrapper


@implementer(ISessionPkgData)
class SessionPkgData(OOBTree):
    """See `ISessionPkgData`.

    The data is the BTree itself: one persistent record per package rather
    than a wrapper plus a tree, and the BTree's own conflict resolution
    merges concurrent writes of different keys.
    """

    # Set (never stored) on data handed out before the client's session
    # has it: (callback, container, package id).
    _v_attach = None


for _method in ('__setitem__', '__delitem__', 'clear', 'insert', 'pop',
                'popitem', 'setdefault', 'update'):
    setattr(SessionPkgData, _method, _attaching(_method))
del _method


_MISSING = object()


def _sameRef(a, b):
    # During conflict resolution references are PersistentReference
    # objects, which refuse to be compared unless they are the same: compare
    # their oids.
    oid_a, oid_b = getattr(a, 'oid', None), getattr(b, 'oid', None)
    if oid_a is None or oid_b is None:
        return a is b
    return oid_a == oid_b


def _mergeRefs(old, committed, new):
    """Three-way merge of two mappings of keys to persistent references."""
    result = dict(committed)
    for key in set(old) | set(new):
        o, n = old.get(key), new.get(key)
        if _sameRef(o, n):
            continue
        c = committed.get(key)
        if not (_sameRef(c, o) or _sameRef(c, n)):
            raise ConflictError('both changed package %r' % (key,))
        if n is None:
            result.pop(key, None)
        else:
            result[key] = n
    return result


@implementer(ISessionData)
class SessionData(persistent.Persistent):
    """See `ISessionData`.

    One small record: creation time, last access time and the references
    to the packages' data.  Its conflict resolution merges what concurrent
    requests do to one session (the later access time wins; packages added
    or removed by either are kept) and refuses to merge with its removal,
    so that a request touching a session and a cleaner removing it never
    both succeed.
    """

    created = 0
    _last = 0
    _removed = False

    def __init__(self):
        self._pkgs = {}

    def getLastAccessTime(self):
        """See `ISessionData`."""
        return self._last

    def setLastAccessTime(self, value):
        """See `ISessionData`."""
        if value > self._last:
            self._last = value

    lastAccessTime = property(getLastAccessTime, setLastAccessTime,
                              doc="See `ISessionData`.")

    def __getitem__(self, pkg_id):
        return self._pkgs[pkg_id]

    def get(self, pkg_id, default=None):
        return self._pkgs.get(pkg_id, default)

    def __contains__(self, pkg_id):
        return pkg_id in self._pkgs

    def __setitem__(self, pkg_id, pkg_data):
        self._pkgs[pkg_id] = pkg_data
        self._p_changed = True

    def __delitem__(self, pkg_id):
        del self._pkgs[pkg_id]
        self._p_changed = True

    def keys(self):
        return list(self._pkgs)

    def __iter__(self):
        return iter(list(self._pkgs))

    def values(self):
        return list(self._pkgs.values())

    def items(self):
        return list(self._pkgs.items())

    def __len__(self):
        return len(self._pkgs)

    def _p_resolveConflict(self, old, committed, new):
        if committed.get('_removed') or new.get('_removed'):
            raise ConflictError('session removed while in use')
        result = dict(committed)
        for name in set(old) | set(committed) | set(new):
            if name in ('_last', '_pkgs'):
                continue
            o = old.get(name, _MISSING)
            c = committed.get(name, _MISSING)
            n = new.get(name, _MISSING)
            if n == o or n == c:
                continue
            if c != o:
                raise ConflictError('both changed %r' % (name,))
            if n is _MISSING:
                del result[name]
            else:
                result[name] = n
        result['_last'] = max(committed.get('_last', 0), new.get('_last', 0))
        result['_pkgs'] = _mergeRefs(old.get('_pkgs', {}),
                                     committed.get('_pkgs', {}),
                                     new.get('_pkgs', {}))
        return result


def _digest(client_id):
    # Sessions are stored under a 16 byte digest of the client id: a third
    # of the bytes of the 54 character id in every bucket written, and the
    # ids themselves never sit in the database.
    return hashlib.blake2b(client_id.encode('utf-8', 'surrogatepass'),
                           digest_size=16).digest()


_EPOCH = struct.Struct('>Q')
_STEP = slice(0, _EPOCH.size)
_DIGEST = slice(_EPOCH.size, None)


class _SessionTree(OOBTree):
    """Digest -> `SessionData`: one shard of `_Sessions`.

    Small buckets and nodes: a new session rewrites one bucket (and, at a
    split, one node), so their size is what a new session costs in bytes.
    """

    max_leaf_size = 16
    max_internal_size = 16


class _Sessions:
    """Digest -> `SessionData`, in 256 independent `_SessionTree` shards
    (the digest's first byte picks one).

    Independent trees, because a BTree insert marks every node on its
    path as read (``readCurrent``): a bucket split anywhere below a node
    conflicts with every concurrent insert below that node, and splits
    reach the upper nodes, which all inserts pass, more often than not
    in a big tree.  A shard's root only sees the inserts of its own
    shard.  Not persistent itself: it is pickled in the container's
    record, which adding and removing sessions never rewrites.
    """

    def __init__(self):
        self.trees = tuple(_SessionTree() for _ in range(256))

    def get(self, key, default=None):
        return self.trees[key[0]].get(key, default)

    def __setitem__(self, key, session_data):
        self.trees[key[0]][key] = session_data

    def __delitem__(self, key):
        del self.trees[key[0]][key]

    def values(self):
        return [value for tree in self.trees for value in tree.values()]


class _ExpiryIndex(OOTreeSet):
    """One shard of `_Index`.  See `_SessionTree` for the sizes."""

    max_leaf_size = 16
    max_internal_size = 16


class _Index:
    """The expiry index: entries "expiry step (8 bytes, big-endian) +
    digest", in 64 independent `_ExpiryIndex` shards (the digest's first
    six bits pick one).

    Sessions created at the same moment share a step, so they are added
    at the end of their shard: 64 places rather than one, where each
    bucket split would conflict with every concurrent creation; and
    independent trees for the reason given at `_Sessions`.  Not more,
    though: the cleaner looks at the front of each.  Not persistent
    itself, like `_Sessions`.
    """

    shards = 64

    def __init__(self):
        self.trees = tuple(_ExpiryIndex() for _ in range(self.shards))

    def entry(self, step, key):
        """The entry of digest *key* at expiry step *step*."""
        return _EPOCH.pack(step) + key

    def _tree(self, entry):
        trees = self.trees
        return trees[entry[_DIGEST][0] * len(trees) >> 8]

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


class _Schedule(persistent.Persistent):
    """When the cleaner next has work, so that asking costs one record.

    *step* is an expiry step no index entry is earlier than, worked out
    by the last complete cleanup under *settings* (timeout, maximum
    lifetime, index step).  Requests never write it: a session created
    later is due later, unless those settings change, which makes it
    unknown until the next cleanup.
    """

    step = None
    settings = None


def _Setting(field):
    return FieldProperty(field, InvalidSettingError)


class _DueSetting(FieldProperty):
    """A setting that says when sessions are due: changing it works out
    the cleanup schedule anew, in the same transaction."""

    def __init__(self, field):
        super().__init__(field, InvalidSettingError)

    def __set__(self, inst, value):
        super().__set__(inst, value)
        inst._settingsChanged()


_SETTINGS = IExpiringSessionDataContainer


@implementer(IExpiringSessionDataContainer)
class PersistentSessionDataContainer(zope.location.Location,
                                     persistent.Persistent):
    """See `IExpiringSessionDataContainer`: sessions stored in the ZODB.

    Sessions live in 256 OOBTrees keyed by a digest of the client id
    (`_Sessions`); their number in a `BTrees.Length.Length`; 64
    `OOTreeSet` shards index them by the step of time in which they would
    expire, then by digest (`_Index`).  Requests add to the index only
    when they create a session: recording an access writes the session's
    record and nothing else.  The cleaner drops the entries it visits and
    re-indexes the sessions that turn out to be alive.
    """

    timeout = _DueSetting(_SETTINGS['timeout'])
    resolution = _Setting(_SETTINGS['resolution'])
    max_lifetime = _DueSetting(_SETTINGS['max_lifetime'])
    target_number = _Setting(_SETTINGS['target_number'])
    max_number = _Setting(_SETTINGS['max_number'])
    cleanup_period = _Setting(_SETTINGS['cleanup_period'])
    cleanup_batch = _Setting(_SETTINGS['cleanup_batch'])

    #: Seconds of one step of the expiry index.
    index_step = 60
    #: Seconds after expiry before the cleaner removes a session, so that
    #: a request that read it just in time finishes first.
    grace = 60

    _v_cleaner = None

    def __init__(self):
        self._sessions = _Sessions()
        self._index = _Index()
        self._count = Length()
        self._lease = Lease()
        self._schedule = _Schedule()
        self._reschedule(self.now())

    # -- time ---------------------------------------------------------------

    def now(self):
        """See `IExpiringSessionDataContainer`."""
        return currentTime()

    def effectiveResolution(self):
        """See `IExpiringSessionDataContainer`."""
        if self.timeout and self.resolution:
            return min(self.resolution, self.timeout / 8)
        return self.resolution

    def expiresAt(self, session_data):
        """See `IExpiringSessionDataContainer`."""
        due = None
        if self.timeout:
            due = session_data.getLastAccessTime() + self.timeout
        if self.max_lifetime:
            end = session_data.created + self.max_lifetime
            due = end if due is None else min(due, end)
        return due

    def isExpired(self, session_data, now=None):
        """See `IExpiringSessionDataContainer`."""
        due = self.expiresAt(session_data)
        if due is None:
            return False
        return due < (self.now() if now is None else now)

    def _expiryReason(self, session_data):
        # Whichever limit was reached first ended the session.
        if self.max_lifetime:
            end = session_data.created + self.max_lifetime
            if (not self.timeout or end
                    <= session_data.getLastAccessTime() + self.timeout):
                return LIFETIME
        return TIMEOUT

    def _indexEntry(self, session_data, key):
        due = self.expiresAt(session_data)
        if due is None:
            # Nothing expires: order by last access, for eviction.
            due = session_data.getLastAccessTime()
        return self._index.entry(int(due) // self.index_step, key)

    def _startCleaner(self):
        if self._v_cleaner is None:
            self._v_cleaner = cleanerFor(self) or False

    # -- mapping --------------------------------------------------------------

    def __getitem__(self, client_id):
        """See `ISessionDataContainer`."""
        self._startCleaner()
        key = _digest(client_id)
        session_data = self._sessions.get(key)
        if session_data is None:
            raise KeyError(client_id)
        if not (self.timeout or self.max_lifetime):
            return session_data
        now = self.now()
        if self.isExpired(session_data, now):
            raise KeyError(client_id)
        if (self.timeout and session_data.getLastAccessTime()
                + self.effectiveResolution() < now):
            # Only the session's own record is written.  Its index entry
            # still says when it would have expired without this access;
            # the cleaner, finding it then, re-indexes it.
            session_data.setLastAccessTime(int(now))
        return session_data

    def get(self, client_id, default=None):
        """See `ISessionDataContainer`."""
        try:
            return self[client_id]
        except KeyError:
            return default

    def __contains__(self, client_id):
        """See `ISessionDataContainer`: stored and not expired."""
        session_data = self._sessions.get(_digest(client_id))
        return (session_data is not None
                and not self.isExpired(session_data))

    def __setitem__(self, client_id, session_data):
        """See `ISessionDataContainer`."""
        self._startCleaner()
        key = _digest(client_id)
        now = int(self.now())
        sessions = self._sessions
        previous = sessions.get(key)
        if previous is None:
            self._checkLimit()
            self._count.change(1)
        elif previous is not session_data:
            reason = (self._expiryReason(previous)
                      if self.isExpired(previous, now) else INVALIDATED)
            self._dropped(previous, reason, client_id)
        if not session_data.created:
            session_data.created = now
        session_data.setLastAccessTime(now)
        sessions[key] = session_data
        self._index.insert(self._indexEntry(session_data, key))
        if previous is not session_data:
            zope.event.notify(
                SessionCreatedEvent(self, session_data, client_id))

    def _checkLimit(self):
        limit = self.max_number
        if limit and len(self) >= limit:
            zope.event.notify(SessionLimitReachedEvent(self, limit))
            if len(self) >= limit:
                raise SessionLimitError(limit)

    def _dropped(self, session_data, reason, client_id=None, guard=False):
        # Written, so that a request touching it concurrently conflicts.
        session_data._removed = True
        event = SessionRemovedEvent(self, session_data, reason, client_id)
        if not guard:
            zope.event.notify(event)
            return
        # Out of band, a failing handler must not stop the cleanup.
        try:
            zope.event.notify(event)
        except ConflictError:
            raise
        except Exception:
            logger.exception('a session removal event handler failed')

    def _remove(self, key, session_data, reason, client_id=None,
                guard=False):
        del self._sessions[key]
        self._count.change(-1)
        self._dropped(session_data, reason, client_id, guard)

    def __delitem__(self, client_id):
        """See `IExpiringSessionDataContainer`."""
        key = _digest(client_id)
        session_data = self._sessions.get(key)
        if session_data is None:
            raise KeyError(client_id)
        self._remove(key, session_data, INVALIDATED, client_id)

    def __len__(self):
        """See `IExpiringSessionDataContainer`."""
        return self._count()

    def moveSession(self, old_client_id, new_client_id):
        """See `IExpiringSessionDataContainer`."""
        now = self.now()
        sessions = self._sessions
        old_key = _digest(old_client_id)
        moving = sessions.get(old_key)
        if moving is not None:
            if self.isExpired(moving, now):
                self._remove(old_key, moving,
                             self._expiryReason(moving), old_client_id)
                moving = None
            else:
                del sessions[old_key]
                self._count.change(-1)
        new_key = _digest(new_client_id)
        present = sessions.get(new_key)
        if present is not None and not self.isExpired(present, now):
            if moving is not None:
                self._dropped(moving, INVALIDATED, old_client_id)
            return present
        if moving is None:
            return None
        if present is None:
            self._count.change(1)
        else:
            self._dropped(present, self._expiryReason(present),
                          new_client_id)
        sessions[new_key] = moving
        self._index.insert(self._indexEntry(moving, new_key))
        return moving

    # -- cleanup --------------------------------------------------------------

    @property
    def lease(self):
        """The `~zope_sessionx.cleanup.Lease` of this container's cleaner
        (``holder`` and ``expires``)."""
        return self._lease

    def _cutoff(self, now, grace):
        # Index entries of steps before this one are due before now -
        # grace: with a grace, whole steps only, so that a round never
        # revisits (and rewrites) entries of the current step.
        if grace:
            return int(now - grace) // self.index_step
        return int(now) // self.index_step + 1

    def _dueSettings(self):
        return (self.timeout, self.max_lifetime, self.index_step)

    def _nextStep(self, now):
        # No index entry is earlier than the first of its shard, and a
        # session created from now on is due no earlier than now plus the
        # shorter of timeout and maximum lifetime (when neither is set,
        # nothing expires and the step goes unused).
        shortest = min(filter(None, (self.timeout, self.max_lifetime)),
                       default=0)
        step = int(now + shortest) // self.index_step
        for entry in self._index.heads().values():
            step = min(step, _EPOCH.unpack(entry[_STEP])[0])
        return step

    def _settingsChanged(self):
        # Now, rather than in a cleanup transaction for just that.  (Not
        # while the container is being set up.)
        if '_schedule' in self.__dict__:
            self._reschedule(self.now())

    def _reschedule(self, now):
        schedule = self._schedule
        step, settings = self._nextStep(now), self._dueSettings()
        if (schedule.step, schedule.settings) != (step, settings):
            schedule.step, schedule.settings = step, settings

    def hasCleanupWork(self):
        """See `IExpiringSessionDataContainer`."""
        if self.target_number and len(self) > self.target_number:
            return True
        if not (self.timeout or self.max_lifetime):
            return False
        now = self.now()
        cutoff = self._cutoff(now, self.grace)
        schedule = self._schedule
        if (schedule.settings == self._dueSettings()
                and schedule.step >= cutoff):
            return False
        # Perhaps something is due.  Rather than look at the front of
        # every shard of the index in each round until something is, let
        # the cleanup find out: it also works out the schedule anew.
        # Without sessions, nothing is due (entries of removed sessions
        # can wait for the next ones).
        return len(self) > 0

    def cleanup(self, limit=None, grace=None):
        """See `IExpiringSessionDataContainer`.

        *grace* defaults to the class's `grace`.  A record that cannot be
        read (its class is gone, say) is logged, left as it is, and its
        index entry dropped, so it is logged once.  A failing
        `ISessionRemovedEvent` handler is logged and does not stop it.
        """
        now = self.now()
        limit = limit or self.cleanup_batch
        grace = self.grace if grace is None else grace
        # Visiting outdated entries costs too: bound them as well.
        budget = 10 * limit
        result = CleanupResult()
        index = self._index
        expiring = self.timeout or self.max_lifetime
        entries = []
        if expiring:
            entries = index.due(self._cutoff(now, grace), budget)
            result.more = len(entries) == budget
        for entry in entries:
            if result.removed() >= limit:
                result.more = True
                return result
            budget -= 1
            index.remove(entry)
            self._visit(entry[_DIGEST], now, grace, result)
        target = self.target_number
        heads = None
        while target and len(self) > target:
            if result.removed() >= limit or budget <= 0:
                result.more = True
                break
            budget -= 1
            if heads is None:
                heads = index.heads()
            if not heads:
                break
            # The least recently used: the earliest step, of any shard.
            shard, entry = min(heads.items(), key=lambda item: item[1])
            index.remove(entry)
            key = entry[_DIGEST]
            session_data = self._sessions.get(key)
            if session_data is None:
                result.stale += 1
            else:
                current = self._indexEntry(session_data, key)
                if current != entry:
                    # Same digest, same shard.
                    index.insert(current)
                    result.stale += 1
                else:
                    self._remove(key, session_data, EVICTED, guard=True)
                    result.evicted += 1
            head = index.head(shard)
            if head is None:
                del heads[shard]
            else:
                heads[shard] = head
        if expiring and not result.more:
            self._reschedule(now)
        return result

    def _visit(self, key, now, grace, result):
        session_data = self._sessions.get(key)
        if session_data is None:
            result.stale += 1
            return
        try:
            due = self.expiresAt(session_data)
            if due is not None and due + grace < now:
                reason = self._expiryReason(session_data)
                self._remove(key, session_data, reason, guard=True)
                setattr(result, reason, getattr(result, reason) + 1)
                return
            self._index.insert(self._indexEntry(session_data, key))
            result.stale += 1
        except ConflictError:
            raise
        except Exception as error:
            # A record that cannot be read (its class is gone, say):
            # leave it, drop its entry so it is not visited again, go on.
            logger.error('skipping damaged session record %s: %r',
                         key.hex(), error)

    def sweep(self):
        """See `IExpiringSessionDataContainer`."""
        removed = 0
        while True:
            result = self.cleanup(grace=0)
            removed += result.removed()
            if not result.more:
                return removed


class _RAMStore:
    """The process-wide in-memory database behind RAM containers."""

    def __init__(self):
        self.db = ZODB.DB(ZODB.MappingStorage.MappingStorage(),
                          pool_size=1000)
        self.local = threading.local()

    def root(self, transaction_manager):
        # One connection per thread and transaction manager, so RAM data
        # commits and aborts with the transaction of the request using it.
        connections = self.local.__dict__.setdefault('connections', {})
        connection = connections.get(transaction_manager)
        if connection is None:
            connection = self.db.open(transaction_manager=transaction_manager)
            connections[transaction_manager] = connection
        return connection.root()

    last_pack = 0

    def pack(self, now):
        # Never back in time: the storage refuses that (threads race).
        now = self.last_pack = max(now, self.last_pack)
        self.db.pack(now)

    def packEvery(self, seconds, now):
        # Packing costs as much as the data held: not more often than this.
        if now - self.last_pack >= seconds:
            self.pack(now)


_ram_store = None
_ram_store_lock = threading.Lock()


def _getRAMStore():
    global _ram_store
    with _ram_store_lock:
        if _ram_store is None:
            _ram_store = _RAMStore()
        return _ram_store


class RAMSessionDataContainer(PersistentSessionDataContainer):
    """See `IExpiringSessionDataContainer`: sessions held in RAM.

    The container itself may be stored in the ZODB (as a local utility);
    the sessions are kept in a process-wide in-memory database, so they are
    not shared between processes: use server affinity, or a
    `PersistentSessionDataContainer`, for a cluster.
    """

    resolution = _Setting(_SETTINGS["resolution"])

    def __init__(self):
        self.resolution = 5 * 60
        # Names this container's data in the in-memory database.
        self.key = secrets.token_hex(16)

    def _ramRoot(self):
        jar = self._p_jar
        manager = (transaction.manager if jar is None
                   else jar.transaction_manager)
        root = _getRAMStore().root(manager)
        data = root.get(self.key)
        if data is None:
            data = root[self.key] = OOBTree()
            data['sessions'] = _Sessions()
            data['count'] = Length()
            data['index'] = _Index()
            data['lease'] = Lease()
            data['schedule'] = _Schedule()
        return data

    @property
    def _sessions(self):
        return self._ramRoot()['sessions']

    @property
    def _count(self):
        return self._ramRoot()['count']

    @property
    def _index(self):
        return self._ramRoot()['index']

    @property
    def _lease(self):
        return self._ramRoot()['lease']

    @property
    def _schedule(self):
        return self._ramRoot()['schedule']

    def _settingsChanged(self):
        self._reschedule(self.now())

    def cleanup(self, limit=None, grace=None):
        """See `IExpiringSessionDataContainer`.

        In a round with work to do, also packs the in-memory database, at
        most once per ``cleanup_period``: that is what frees the memory of
        sessions removed (and of data overwritten) before.
        """
        # Packing is about the storage's own transaction times, which
        # follow the real clock, not the container's.
        _getRAMStore().packEvery(self.cleanup_period, time.time())
        return super().cleanup(limit, grace)

    def sweep(self):
        """See `IExpiringSessionDataContainer`.

        Also packs the in-memory database so that removed sessions free
        their memory.
        """
        removed = super().sweep()
        _getRAMStore().pack(time.time())
        return removed
