"""Cleanup out of band: the cleaner, its thread, and the registry of the
cleaners a process runs.

Every process that uses a container runs a `Cleaner` for it, started on
first use unless the container's ``cleanerThread`` setting is off.  A
round first asks the container, reading a handful of objects and writing
nothing, whether anything can be removed; only then does it take the
container's lease (an `~zope_sessionx.interfaces.ILease` stored with it),
so that one process of the cluster cleans at a time, and remove sessions
in short transactions of at most ``cleanupBatch`` sessions, retrying
conflicts with back-off.

The cleaner knows containers only through
`~zope_sessionx.interfaces.ISessionDataContainerMaintenance`.
"""
import logging
import os
import socket
import threading
import time
import uuid
import weakref

import transaction
import zope.event
from transaction.interfaces import TransientError
from ZODB.POSException import ConflictError
from ZODB.POSException import POSKeyError
from zope.interface import implementer

from zope_sessionx.events import CleanupRoundEvent
from zope_sessionx.interfaces import ICleaner
from zope_sessionx.interfaces import ICleanupResult


__all__ = [
    'CleanupResult',
    'Cleaner',
    'cleanerFor',
    'stopAll',
    'StoredOpener',
]

logger = logging.getLogger(__name__)

#: The note (description) of every cleanup transaction, as the
#: database's transaction log shows it.
NOTE = 'zope_sessionx cleanup'


@implementer(ICleanupResult)
class CleanupResult:
    """See `ICleanupResult`."""

    def __init__(self):
        self.timeout = self.lifetime = self.evicted = self.stale = 0
        self.more = False

    def removed(self):
        """See `ICleanupResult`."""
        return self.timeout + self.lifetime + self.evicted

    def __repr__(self):
        return ('<CleanupResult timeout={0.timeout} lifetime={0.lifetime}'
                ' evicted={0.evicted} stale={0.stale} more={0.more}>'
                .format(self))


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
    ``cleanupPeriod`` seconds between rounds.  If *open_container*
    has a ``close`` method, a stopped cleaner calls it.
    """

    max_attempts = 5
    #: See `ICleaner`.
    share = 0.25
    #: See `ICleaner`.
    sliceSeconds = 0.002

    def __init__(self, open_container, transaction_manager=None,
                 holder=None, sleep=time.sleep, timer=time.perf_counter,
                 share=None):
        self._open = open_container
        self.transaction_manager = (
            transaction_manager or transaction.TransactionManager())
        self.holder = holder or _processName()
        self._sleep = sleep
        self._timer = timer
        if share is not None:
            self.share = share
        self._sliceStarted = None
        self._stopping = threading.Event()
        self._thread = None

    def _pause(self):
        """Keep to `share`: after `sliceSeconds` of work, sleep.

        Sleeping releases the interpreter, so the requests of this process
        run at full speed in the pauses and wait for the cleaner at most a
        slice when they need the interpreter during one.
        """
        now = self._timer()
        started = self._sliceStarted
        if started is None:
            self._sliceStarted = now
            return
        worked = now - started
        if worked < self.sliceSeconds or self.share >= 1:
            return
        self._sleep(worked * (1 - self.share) / self.share)
        self._sliceStarted = self._timer()

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
        started = time.monotonic()
        self._sliceStarted = None
        while True:
            result = self._batch(stats)
            if result is None or not result.more:
                break
            self._pause()
        if not stats.transactions:
            return None
        removed = stats.timeout + stats.lifetime + stats.evicted
        if removed:
            logger.info(
                'cleaner %s removed %d sessions (timeout %d, lifetime %d, '
                'evicted %d) in %.2f s, %d transactions, %d conflicts',
                self.holder, removed, stats.timeout, stats.lifetime,
                stats.evicted, time.monotonic() - started,
                stats.transactions, stats.conflicts)
        self._notify(stats)
        return stats

    def _batch(self, stats):
        tm = self.transaction_manager
        for attempt in range(self.max_attempts):
            try:
                tm.begin().note(NOTE)
                container = self._open(tm)
                lease = container.lease
                previous = lease.holder
                # Half a period: a dead holder is replaced within one and a
                # half periods (the lease lapses, then the next round of
                # another process takes it).
                if not lease.acquire(self.holder, container.now(),
                                     container.cleanupPeriod / 2):
                    tm.abort()
                    return None
                result = container.cleanup(pause=self._pause)
                tm.commit()
            except ConflictError:
                tm.abort()
                stats.conflicts += 1
                self._sleep(min(0.05 * 2 ** attempt, 1.0))
                continue
            if previous not in (None, self.holder):
                logger.warning('cleaner %s took the lease over from %s',
                               self.holder, previous)
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
        try:
            self._loop()
        finally:
            self._close()

    def _loop(self):
        period = 10
        while not self._stopping.is_set():
            try:
                self.round()
            except TransientError as error:
                # The ZEO server is out of reach, say: try again later.
                self._abort()
                logger.warning('cleanup round failed, retrying in %s s: %r',
                               period, error)
            except Exception:
                self._abort()
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
                self._abort()
            self._stopping.wait(period)

    def _abort(self):
        # After a failure the database server may still be out of reach,
        # and the abort fail too (RelStorage polls the server when a
        # transaction ends): the next transaction begins afresh anyway.
        try:
            self.transaction_manager.abort()
        except Exception:
            logger.debug('abort after a failure failed', exc_info=True)

    def _close(self):
        # Let go of the connections the opener keeps, so that a stopped
        # cleaner holds no database open.
        self._abort()
        close = getattr(self._open, 'close', None)
        if close is not None:
            close()

    def _period(self):
        tm = self.transaction_manager
        tm.begin()
        period = self._open(tm).cleanupPeriod
        tm.abort()
        return period

    def _closed(self):
        try:
            self.transaction_manager.begin()
            container = self._open(self.transaction_manager)
            self.transaction_manager.abort()
        except TransientError:
            return False
        except POSKeyError:
            # The stored container is gone.
            return True
        except Exception:
            self._abort()
            # A stored container's database says whether it is closed: if
            # not, its server is out of reach (RelStorage's errors are not
            # transient ones), and the cleaner waits for it.
            closed = getattr(self._open, 'closed', None)
            return True if closed is None else closed()
        return container is None

    def stop(self, timeout=None):
        """See `ICleaner`."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            # Rounds were run by hand, if at all: let go now.
            self._close()
        elif thread is not threading.current_thread():
            # (From the thread itself, an event handler say, just ask.)
            self.join(timeout)

    def join(self, timeout=None):
        """See `ICleaner`."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self):
        """See `ICleaner`."""
        return self._thread is not None and self._thread.is_alive()


class StoredOpener:
    """An opener for `Cleaner`: the object *oid* of *db*.

    Opens one connection per transaction manager, kept until `close`.
    """

    def __init__(self, db, oid):
        self.db = db
        self.oid = oid
        self._connections = {}

    def __call__(self, transaction_manager):
        connection = self._connections.get(transaction_manager)
        if connection is None:
            connection = self.db.open(transaction_manager=transaction_manager)
            self._connections[transaction_manager] = connection
        return connection.get(self.oid)

    def closed(self):
        """Whether the database (or this opener) is closed."""
        return self.db is None or not hasattr(self.db, '_mvcc_storage')

    def close(self):
        """Close the connections opened, and forget the database."""
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            if connection.opened:
                connection.close()
        self.db = None


# Anchor (a database, or a container that is not stored) -> {name ->
# Cleaner}.  Weak, so that a closed database or a dropped container is
# not kept alive by the registry; a stopped cleaner lets go of it too.
_cleaners = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def cleanerFor(container):
    """Return the running `Cleaner` of *container*, starting it if needed.

    One cleaner per process and `cleanerTarget
    <zope_sessionx.interfaces.ISessionDataContainerMaintenance.cleanerTarget>`
    (for a stored container, per database and oid).  Returns ``None``
    when the container cannot be cleaned out of band.
    """
    target = container.cleanerTarget()
    if target is None:
        return None
    anchor, name, opener, transaction_manager = target
    with _lock:
        cleaners = _cleaners.setdefault(anchor, {})
        cleaner = cleaners.get(name)
        if cleaner is None or not cleaner.running:
            cleaner = cleaners[name] = Cleaner(opener, transaction_manager)
            cleaner.start()
        return cleaner


def stopAll(timeout=None):
    """Stop every cleaner this process started, and wait for them."""
    with _lock:
        cleaners = [cleaner for named in list(_cleaners.values())
                    for cleaner in named.values()]
        _cleaners.clear()
    for cleaner in cleaners:
        cleaner.stop(timeout)
