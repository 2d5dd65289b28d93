"""Sessions: the `ISession` adapter, session data and their containers.

Storage follows one rule: anything two concurrent requests may write either
is written by only one of them or merges.  Inserting different keys into a
BTree bucket merges, `zope.minmax.Maximum` merges access times and
`BTrees.Length.Length` merges counts; nothing else is written by
concurrent requests.
"""
import secrets
import threading
import time

import persistent
import transaction
import ZODB.DB
import ZODB.MappingStorage
import zope.component
import zope.location
import zope.minmax
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from zope.interface import implementer
from zope.interface.interfaces import ComponentLookupError
from zope.publisher.interfaces import IRequest
from zope.schema.fieldproperty import FieldProperty

from zope_sessionx.clock import currentTime
from zope_sessionx.http import CookieRollback
from zope_sessionx.interfaces import PREVIOUS_CLIENT_ID_KEY
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionData
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.interfaces import ISessionPkgData
from zope_sessionx.interfaces import SessionError


__all__ = [
    'ClientId',
    'PersistentSessionDataContainer',
    'RAMSessionDataContainer',
    'Session',
    'SessionData',
    'SessionPkgData',
    'currentTime',
]

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
        client_id = str(IClientId(request))
    else:
        client_id = manager.getClientId(request, create=False)
        if client_id is None:
            return None
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
        locals()[_method] = _attaching(_method)
    del _method


@implementer(ISessionData)
class SessionData(persistent.Persistent):
    """See `ISessionData`."""

    created = 0

    def __init__(self):
        self._data = OOBTree()
        self._lastAccessTime = zope.minmax.Maximum(0)

    def getLastAccessTime(self):
        """See `ISessionData`."""
        return self._lastAccessTime.value

    def setLastAccessTime(self, value):
        """See `ISessionData`."""
        # Only the Maximum is written: it is its own small record and its
        # conflict resolution keeps the largest value.  Keeping the largest
        # here too makes a local write agree with a resolved conflict.
        if value > self._lastAccessTime.value:
            self._lastAccessTime.value = value

    lastAccessTime = property(getLastAccessTime, setLastAccessTime,
                              doc="See `ISessionData`.")

    def __getitem__(self, pkg_id):
        return self._data[pkg_id]

    def get(self, pkg_id, default=None):
        return self._data.get(pkg_id, default)

    def __contains__(self, pkg_id):
        return pkg_id in self._data

    def __setitem__(self, pkg_id, pkg_data):
        self._data[pkg_id] = pkg_data

    def __delitem__(self, pkg_id):
        del self._data[pkg_id]

    def keys(self):
        return self._data.keys()

    def __iter__(self):
        return iter(self._data)

    def values(self):
        return self._data.values()

    def items(self):
        return self._data.items()

    def __len__(self):
        return len(self._data)


@implementer(IExpiringSessionDataContainer)
class PersistentSessionDataContainer(zope.location.Location,
                                     persistent.Persistent):
    """See `IExpiringSessionDataContainer`: sessions stored in the ZODB.

    Sessions live in an OOBTree keyed by client id; their number in a
    `BTrees.Length.Length`.
    """

    timeout = FieldProperty(IExpiringSessionDataContainer['timeout'])
    resolution = FieldProperty(IExpiringSessionDataContainer['resolution'])

    def __init__(self):
        self._sessions = OOBTree()
        self._count = Length()

    def now(self):
        """See `IExpiringSessionDataContainer`."""
        return currentTime()

    def _effectiveResolution(self):
        # A resolution that is large next to the timeout would let a
        # session in constant use expire: keep it to an eighth of the
        # timeout at most.
        if self.timeout and self.resolution:
            return min(self.resolution, self.timeout / 8)
        return self.resolution

    def isExpired(self, session_data, now=None):
        """See `IExpiringSessionDataContainer`."""
        if not self.timeout:
            return False
        if now is None:
            now = self.now()
        return session_data.getLastAccessTime() + self.timeout < now

    def __getitem__(self, client_id):
        """See `ISessionDataContainer`."""
        session_data = self._sessions[client_id]
        if not self.timeout:
            return session_data
        now = self.now()
        if self.isExpired(session_data, now):
            raise KeyError(client_id)
        last = session_data.getLastAccessTime()
        if last + self._effectiveResolution() < now:
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
        session_data = self._sessions.get(client_id)
        return (session_data is not None
                and not self.isExpired(session_data))

    def __setitem__(self, client_id, session_data):
        """See `ISessionDataContainer`."""
        now = int(self.now())
        if not session_data.created:
            session_data.created = now
        session_data.setLastAccessTime(now)
        # insert() adds a new key and reports it; an existing (typically
        # expired) session under the same id is replaced without counting.
        if self._sessions.insert(client_id, session_data):
            self._count.change(1)
        else:
            self._sessions[client_id] = session_data

    def __delitem__(self, client_id):
        """See `IExpiringSessionDataContainer`."""
        del self._sessions[client_id]
        self._count.change(-1)

    def __len__(self):
        """See `IExpiringSessionDataContainer`."""
        return self._count()

    def moveSession(self, old_client_id, new_client_id):
        """See `IExpiringSessionDataContainer`."""
        sessions = self._sessions
        moving = sessions.get(old_client_id)
        if moving is not None:
            del self[old_client_id]
            if self.isExpired(moving):
                moving = None
        present = self.get(new_client_id)
        if present is not None:
            return present
        if moving is not None:
            # Keep the session's times: moving it is not an access.
            if sessions.insert(new_client_id, moving):
                self._count.change(1)
            else:
                sessions[new_client_id] = moving
        return moving

    def sweep(self):
        """See `IExpiringSessionDataContainer`.

        Visits every stored session.
        """
        if not self.timeout:
            return 0
        now = self.now()
        expired = [client_id
                   for client_id, session_data in self._sessions.items()
                   if self.isExpired(session_data, now)]
        for client_id in expired:
            del self[client_id]
        return len(expired)


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

    def pack(self, now):
        self.db.pack(now)


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

    resolution = FieldProperty(IExpiringSessionDataContainer['resolution'])

    def __init__(self):
        self.resolution = 5 * 60
        # Names this container's data in the in-memory database.
        self.key = secrets.token_hex(16)

    def _root(self):
        jar = self._p_jar
        manager = (transaction.manager if jar is None
                   else jar.transaction_manager)
        root = _getRAMStore().root(manager)
        data = root.get(self.key)
        if data is None:
            data = root[self.key] = OOBTree()
            data['sessions'] = OOBTree()
            data['count'] = Length()
        return data

    @property
    def _sessions(self):
        return self._root()['sessions']

    @property
    def _count(self):
        return self._root()['count']

    def sweep(self):
        """See `IExpiringSessionDataContainer`.

        Also packs the in-memory database so that removed sessions free
        their memory.
        """
        removed = super().sweep()
        # Packing is about the storage's own transaction times, which
        # follow the real clock, not the container's.
        _getRAMStore().pack(time.time())
        return removed
