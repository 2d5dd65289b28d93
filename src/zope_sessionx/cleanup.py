"""Cleanup out of band: the cleaner thread and the cluster lease.

Every process that uses a container runs a `Cleaner` for it (started on
first use, see `setAutostart`).  A round first asks the container, reading
a handful of objects and writing nothing, whether anything can be removed;
only then does it take the container's `Lease`, so that one process of the
cluster cleans at a time, and remove sessions in short transactions of at
most ``cleanup_batch`` sessions, retrying conflicts with back-off.
"""
import logging
import os
import socket
import threading
import time
import uuid
import weakref

import persistent
import transaction
import zope.event
from transaction.interfaces import TransientError
from ZODB.POSException import ConflictError
from zope.interface import implementer

from zope_sessionx.events import CleanupRoundEvent
from zope_sessionx.interfaces import ICleaner
from zope_sessionx.interfaces import ICleanupResult
from zope_sessionx.interfaces import ILease


__all__ = [
    'CleanupResult',
    'Cleaner',
    'Lease',
    'cleanerFor',
    'setAutostart',
    'stopAll',
    'storedOpener',
]

logger = logging.getLogger(__name__)


@implementer(ICleanupResult)
class CleanupResult:
    """See `ICleanupResult`."""

    def __init__(self):
        self.timeout = self.lifetime = self.evicted = self.stale = 0
        self.more = False

    def removed(self):
        return self.timeout + self.lifetime + self.evicted

    def __repr__(self):
        return ('<CleanupResult timeout={0.timeout} lifetime={0.lifetime}'
                ' evicted={0.evicted} stale={0.stale} more={0.more}>'
                .format(self))


@implementer(ILease)
class Lease(persistent.Persistent):
    """Who may clean a container, until when; stored in the database.

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


def _processName():
    return '{}:{}:{}'.format(socket.gethostname(), os.getpid(),
                             uuid.uuid4().hex[:8])


@implementer(ICleaner)
class Cleaner:
    """Cleans one container, in rounds, in its own transactions.

    *open_container* is called with a transaction manager and returns the
    container as that transaction manager's connection sees it.  *holder*
    names this cleaner in the lease (default: host, process and a random
    part).  *sleep* waits between retries; the thread (see `start`) waits
    ``cleanup_period`` seconds between rounds.
    """

    max_attempts = 5

    def __init__(self, open_container, transaction_manager=None,
                 holder=None, sleep=time.sleep):
        self._open = open_container
        self.transaction_manager = (
            transaction_manager or transaction.TransactionManager())
        self.holder = holder or _processName()
        self._sleep = sleep
        self._stopping = threading.Event()
        self._thread = None

    def round(self):
        """See `ICleaner`."""
        tm = self.transaction_manager
        tm.begin()
        container = self._open(tm)
        if not container.hasCleanupWork():
            tm.abort()
            return None
        tm.abort()
        stats = CleanupRoundEvent(None)
        while True:
            result = self._batch(stats)
            if result is None or not result.more:
                break
        if stats.transactions:
            self._notify(stats)
            return stats
        return None

    def _batch(self, stats):
        tm = self.transaction_manager
        for attempt in range(self.max_attempts):
            try:
                tm.begin()
                container = self._open(tm)
                lease = container.lease
                # Half a period: a dead holder is replaced within one and a
                # half periods (the lease lapses, then the next round of
                # another process takes it).
                if not lease.acquire(self.holder, container.now(),
                                     container.cleanup_period / 2):
                    tm.abort()
                    return None
                result = container.cleanup()
                tm.commit()
            except ConflictError:
                tm.abort()
                stats.conflicts += 1
                self._sleep(min(0.05 * 2 ** attempt, 1.0))
                continue
            stats.container = container
            stats.transactions += 1
            for name in ('timeout', 'lifetime', 'evicted', 'stale'):
                setattr(stats, name,
                        getattr(stats, name) + getattr(result, name))
            return result
        logger.warning('cleanup gave up after %d conflicts; next round '
                       'tries again', self.max_attempts)
        return None

    def _notify(self, stats):
        try:
            zope.event.notify(stats)
        except Exception:
            logger.exception('a cleanup round event handler failed')

    # -- the thread ----------------------------------------------------------

    def start(self):
        """See `ICleaner`."""
        self._thread = threading.Thread(
            target=self._run, name='zope_sessionx cleaner', daemon=True)
        self._thread.start()

    def _run(self):
        period = 10
        while not self._stopping.is_set():
            try:
                self.round()
            except TransientError as error:
                # The ZEO server is out of reach, say: try again later.
                self.transaction_manager.abort()
                logger.warning('cleanup round failed, retrying in %s s: %r',
                               period, error)
            except Exception:
                self.transaction_manager.abort()
                if self._closed():
                    # The database was closed under us (or the container
                    # is gone): nothing left to clean.
                    logger.info('cleaner %s stops: its database is closed '
                                'or its container gone', self.holder)
                    return
                logger.exception('cleanup round failed')
            try:
                period = self._period()
            except Exception:
                # Out of reach, or closed (the next round finds out which):
                # keep the last period known.
                self.transaction_manager.abort()
            self._stopping.wait(period)

    def _period(self):
        tm = self.transaction_manager
        tm.begin()
        period = self._open(tm).cleanup_period
        tm.abort()
        return period

    def _closed(self):
        try:
            self.transaction_manager.begin()
            container = self._open(self.transaction_manager)
            self.transaction_manager.abort()
        except TransientError:
            return False
        except Exception:
            return True
        return container is None

    def stop(self, timeout=None):
        """See `ICleaner`."""
        self._stopping.set()
        thread = self._thread
        # From the thread itself (an event handler, say), just ask.
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self):
        """See `ICleaner`."""
        return self._thread is not None and self._thread.is_alive()


def storedOpener(db, oid):
    """Return an opener for `Cleaner`: the object *oid* of *db*.

    Opens one connection per transaction manager, kept for the cleaner's
    life.
    """
    connections = {}

    def open_container(tm):
        connection = connections.get(tm)
        if connection is None:
            connection = connections[tm] = db.open(transaction_manager=tm)
        return connection.get(oid)
    return open_container


_autostart = True
_cleaners = {}
_lock = threading.Lock()


def setAutostart(flag):
    """Say whether containers start their cleaner on first use.

    On by default.  Test suites that do not want threads turn it off.
    """
    global _autostart
    _autostart = flag


def cleanerFor(container, start=None):
    """Return the running `Cleaner` of *container*, starting it if needed.

    A container stored in a database gets one cleaner per process and
    database, with its own connection; one that is not stored (a RAM
    container registered as a global utility) one per object.  Returns
    ``None`` when autostart is off (and *start* is not true) or when the
    container cannot be cleaned out of band (not stored, and not a RAM
    container).
    """
    if not (_autostart if start is None else start):
        return None
    jar = container._p_jar
    if jar is not None:
        db = jar.db()
        key = (id(db), container._p_oid)
        opener = storedOpener(db, container._p_oid)
        manager = None
    elif getattr(container, '_ramRoot', None) is not None:
        key = id(container)
        ref = weakref.ref(container)

        def opener(tm):
            return ref()
        manager = transaction.manager
    else:
        return None
    with _lock:
        cleaner = _cleaners.get(key)
        if cleaner is None or not cleaner.running:
            cleaner = _cleaners[key] = Cleaner(opener, manager)
            cleaner.start()
        return cleaner


def stopAll(timeout=None):
    """Stop every cleaner this process started."""
    with _lock:
        cleaners = list(_cleaners.values())
        _cleaners.clear()
    for cleaner in cleaners:
        cleaner.stop(timeout)
