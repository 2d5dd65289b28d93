"""Sessions held in RAM: `RAMSessionDataContainer` and the process-wide
in-memory database behind it."""
import secrets
import threading
import time
import weakref

import transaction
import ZODB.DB
import ZODB.MappingStorage
from persistent.TimeStamp import TimeStamp
from ZODB.ConflictResolution import ConflictResolvingStorage
from ZODB.POSException import ConflictError

from zope_sessionx._field import Setting
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.storage import SessionStore


__all__ = [
    'RAMSessionDataContainer',
    'RAMStore',
    'ResolvingMappingStorage',
    'packTimeFor',
    'ramStore',
    'setRAMStore',
]


class ResolvingMappingStorage(ConflictResolvingStorage,
                              ZODB.MappingStorage.MappingStorage):
    """A `~ZODB.MappingStorage.MappingStorage` that resolves conflicts.

    As a production storage does (and as Zope's old tempstorage did): the
    objects' own resolution merges concurrent writes, so that RAM sessions
    merge exactly as stored ones do (different keys of a package, access
    times) and refuse what stored ones refuse (a removal and a use).
    """

    def tpc_begin(self, transaction, tid=None):
        super().tpc_begin(transaction, tid)
        self._resolved = []

    def store(self, oid, serial, data, version, transaction):
        try:
            super().store(oid, serial, data, version, transaction)
        except ConflictError as error:
            committed = error.serials[0]
            # Raises ConflictError itself when it cannot resolve.
            data = self.tryToResolveConflict(oid, committed, serial, data)
            self._tdata[oid] = data
            self._resolved.append(oid)

    def tpc_vote(self, transaction):
        super().tpc_vote(transaction)
        # The connection reloads what was resolved.
        return self._resolved


class _Tracker:
    """Notes, for one transaction manager, since when the transaction in
    progress reads the in-memory database."""

    def __init__(self, store):
        self.store = store

    def newTransaction(self, transaction):
        self.store.opened[self] = self.store.db.lastTransaction()

    def beforeCompletion(self, transaction):
        pass

    def afterCompletion(self, transaction):
        self.store.opened.pop(self, None)


class RAMStore:
    """The process-wide in-memory database behind RAM containers.

    *clock* gives the time packing is scheduled by (default
    :func:`time.time`); the points it packs to follow the storage's own
    transaction times, which are real.
    """

    def __init__(self, clock=time.time):
        self.clock = clock
        self.db = ZODB.DB(ResolvingMappingStorage(), pool_size=1000)
        self.local = threading.local()
        # Tracker -> last transaction id when its transaction began.
        self.opened = {}
        self.lock = threading.Lock()

    def root(self, transaction_manager):
        # One connection per thread and transaction manager, so RAM data
        # commits and aborts with the transaction of the request using it.
        connections = self.local.__dict__.setdefault('connections', {})
        connection = connections.get(transaction_manager)
        if connection is None:
            tracker = _Tracker(self)
            transaction_manager.registerSynch(tracker)
            # The transaction under way began before the tracker knew.
            self.opened[tracker] = self.db.lastTransaction()
            connection = self.db.open(transaction_manager=transaction_manager)
            connections[transaction_manager] = connection
        return connection.root()

    last_pack = 0

    def pack(self):
        """Pack to now, or to when the oldest transaction still open
        began, whichever is earlier; one thread at a time, never back in
        time.  Packing is what frees the memory of removed sessions."""
        with self.lock:
            begun = list(self.opened.values())
            point = packTimeFor(min(begun)) if begun else time.time()
            if point > self.last_pack:
                self.last_pack = point
                self.db.pack(point)
            self.packed = self.clock()

    #: When `pack` last ran, by `clock`.
    packed = 0

    def packEvery(self, seconds):
        """Pack if the last pack was *seconds* ago or more: packing costs
        as much as the data held."""
        if self.clock() - self.packed >= seconds:
            self.pack()


def packTimeFor(tid):
    """Return a time to pack to that keeps what transaction *tid* sees.

    The time's own transaction id (as the storage computes it) is not
    after *tid*, and at most a microsecond before: packing to it keeps
    every record a transaction begun at *tid* reads.
    """
    point = TimeStamp(tid).timeTime()
    while _packPoint(point) > tid:
        point -= 1e-6
    return point


def _packPoint(t):
    # How MappingStorage turns a pack time into a transaction id.
    return TimeStamp(*time.gmtime(t)[:5] + (t % 60,)).raw()


_ram_store = None
_ram_store_lock = threading.Lock()


def ramStore():
    """Return the process's `RAMStore`, made on first use."""
    global _ram_store
    with _ram_store_lock:
        if _ram_store is None:
            _ram_store = RAMStore()
        return _ram_store


def setRAMStore(store):
    """Make *store* the process's `RAMStore`; return the one it replaces.

    For tests that want a store of their own (and its clock); containers
    keep their sessions in whichever store is the process's when they
    are used.
    """
    global _ram_store
    with _ram_store_lock:
        previous, _ram_store = _ram_store, store
        return previous


class RAMSessionDataContainer(PersistentSessionDataContainer):
    """See `IExpiringSessionDataContainer`: sessions held in RAM.

    The container itself may be stored in the ZODB (as a local utility);
    the sessions are kept in a process-wide in-memory database, so they are
    not shared between processes: use server affinity, or a
    `~zope_sessionx.container.PersistentSessionDataContainer`, for a
    cluster.
    """

    resolution = Setting(IExpiringSessionDataContainer["resolution"])

    #: Names this container's data in the in-memory database (None until
    #: set up).
    key = None

    def __init__(self):
        self.resolution = 5 * 60
        self.key = secrets.token_hex(16)

    @property
    def _store(self):
        # The store of this container in the in-memory database, as the
        # connection of this thread and transaction manager sees it.
        if self.key is None:
            return None
        jar = self._p_jar
        manager = (transaction.manager if jar is None
                   else jar.transaction_manager)
        root = ramStore().root(manager)
        store = root.get(self.key)
        if store is None:
            store = root[self.key] = SessionStore()
            self._reschedule(self.now())
        return store

    def cleanerTarget(self):
        """See `ISessionDataContainerMaintenance`.

        One that is not stored is cleaned in its own thread's
        transactions, through a weak reference.
        """
        target = super().cleanerTarget()
        if target is not None:
            return target
        return self, None, _weakOpener(self), transaction.manager

    def sessionDatabase(self):
        """See `ISessionDataContainerMaintenance`: the in-memory one."""
        return ramStore().db

    def cleanup(self, limit=None, grace=None, pause=None):
        """See `ISessionDataContainerMaintenance`.

        In a round with work to do, also packs the in-memory database, at
        most once per ``cleanupPeriod``: that is what frees the memory of
        sessions removed (and of data overwritten) before.
        """
        # The store's clock, not the container's: packing is about the
        # storage's own transaction times, which are real.
        ramStore().packEvery(self.cleanupPeriod)
        return super().cleanup(limit, grace, pause)

    def sweep(self):
        """See `ISessionDataContainerMaintenance`.

        Also packs the in-memory database, which frees the memory of
        sessions removed before (and no longer read by a transaction
        still open); what this sweep removes is freed by the next pack.
        """
        removed = super().sweep()
        ramStore().pack()
        return removed


def _weakOpener(container):
    # The cleaner must not keep the container alive.
    ref = weakref.ref(container)

    def open_container(transaction_manager):
        return ref()
    return open_container
