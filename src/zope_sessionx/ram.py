"""Sessions held in RAM: `RAMSessionDataContainer` and the process-wide
in-memory database behind it."""
import secrets
import threading
import time
import weakref

import transaction
import ZODB.DB
import ZODB.MappingStorage

from zope_sessionx._field import Setting
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.storage import SessionStore


__all__ = [
    'RAMSessionDataContainer',
]


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
        root = _getRAMStore().root(manager)
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

    def cleanup(self, limit=None, grace=None):
        """See `ISessionDataContainerMaintenance`.

        In a round with work to do, also packs the in-memory database, at
        most once per ``cleanupPeriod``: that is what frees the memory of
        sessions removed (and of data overwritten) before.
        """
        # Packing is about the storage's own transaction times, which
        # follow the real clock, not the container's.
        _getRAMStore().packEvery(self.cleanupPeriod, time.time())
        return super().cleanup(limit, grace)

    def sweep(self):
        """See `ISessionDataContainerMaintenance`.

        Also packs the in-memory database so that removed sessions free
        their memory.
        """
        removed = super().sweep()
        _getRAMStore().pack(time.time())
        return removed


def _weakOpener(container):
    # The cleaner must not keep the container alive.
    ref = weakref.ref(container)

    def open_container(transaction_manager):
        return ref()
    return open_container
