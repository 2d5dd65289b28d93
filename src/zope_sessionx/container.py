"""The persistent session data container: a mapping of client ids to
sessions, with expiry on every read, limits, and cleanup in short steps.

Where its records live is `zope_sessionx.storage`'s business; who runs
the cleanup, `zope_sessionx.cleanup`'s.
"""
import logging

import persistent
import zope.event
import zope.location
from ZODB.POSException import ConflictError
from zope.interface import implementer

from zope_sessionx._field import DueSetting
from zope_sessionx._field import Setting
from zope_sessionx.cleanup import CleanupResult
from zope_sessionx.cleanup import StoredOpener
from zope_sessionx.cleanup import cleanerFor
from zope_sessionx.data import SessionData
from zope_sessionx.events import SessionCreatedEvent
from zope_sessionx.events import SessionLimitReachedEvent
from zope_sessionx.events import SessionRemovedEvent
from zope_sessionx.expiry import SessionExpiry
from zope_sessionx.guard import CommitGuard
from zope_sessionx.interfaces import EVICTED
from zope_sessionx.interfaces import INVALIDATED
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import ISessionDataContainerMaintenance
from zope_sessionx.interfaces import SessionLimitError
from zope_sessionx.legacy import LegacyAdoption
from zope_sessionx.principals import PrincipalSessions
from zope_sessionx.schedule import CleanupSchedule
from zope_sessionx.storage import SessionStore
from zope_sessionx.storage import digest
from zope_sessionx.storage import entryKey


__all__ = [
    'PersistentSessionDataContainer',
]

logger = logging.getLogger(__name__)


_SETTINGS = IExpiringSessionDataContainer


@implementer(IExpiringSessionDataContainer, ISessionDataContainerMaintenance)
class PersistentSessionDataContainer(SessionExpiry, CleanupSchedule,
                                     LegacyAdoption, PrincipalSessions,
                                     zope.location.Location,
                                     persistent.Persistent):
    """See `IExpiringSessionDataContainer` and
    `ISessionDataContainerMaintenance`: sessions stored in the ZODB.

    Its records are kept in a `~zope_sessionx.storage.SessionStore`:
    sessions in 256 trees keyed by a digest of the client id, their
    number in a `BTrees.Length.Length`, and 64 shards that index them by
    the step of time in which they would expire, then by digest.
    Requests add to the index only when they create a session: recording
    an access writes the session's record and nothing else.  The cleaner
    drops the entries it visits and re-indexes the sessions that turn out
    to be alive.
    """

    timeout = DueSetting(_SETTINGS['timeout'])
    resolution = Setting(_SETTINGS['resolution'])
    maxLifetime = DueSetting(_SETTINGS['maxLifetime'])
    targetNumber = Setting(_SETTINGS['targetNumber'])
    maxNumber = Setting(_SETTINGS['maxNumber'])
    cleanupPeriod = Setting(_SETTINGS['cleanupPeriod'])
    cleanupBatch = Setting(_SETTINGS['cleanupBatch'])
    cleanerThread = Setting(_SETTINGS['cleanerThread'])
    longestTimeout = Setting(_SETTINGS['longestTimeout'])
    longestLifetime = Setting(_SETTINGS['longestLifetime'])

    #: See `ISessionDataContainerMaintenance`.
    indexStep = 60
    #: See `ISessionDataContainerMaintenance`.
    grace = 60

    # The store; None until set up (a subclass may change settings first).
    _store = None
    # The cleaner started for this object (False: none to start).
    _v_cleaner = None

    def __init__(self):
        self._store = SessionStore()
        self._reschedule(self.now())

    def _indexEntry(self, session_data, key):
        due = self.expiresAt(session_data)
        if due is None:
            # Nothing expires: order by last access, for eviction.
            due = session_data.getLastAccessTime()
        return self._store.index.entry(
            int(due + self._indexLag) // self.indexStep, key)

    # -- the cleaner --------------------------------------------------------

    def cleanerTarget(self):
        """See `ISessionDataContainerMaintenance`.

        A stored container is opened by its oid in a connection of the
        cleaner's own; one that is not stored cannot be cleaned out of
        band.
        """
        jar = self._p_jar
        if jar is None:
            return None
        db = jar.db()
        return db, self._p_oid, StoredOpener(db, self._p_oid), None

    def iterSessions(self):
        """See `ISessionDataContainerMaintenance`."""
        for tree in self._store.sessions.trees:
            yield from tree.items()

    def restoreSession(self, key, session_data):
        """See `ISessionDataContainerMaintenance`."""
        store = self._store
        if store.sessions.get(key) is None:
            store.count.change(1, key)
        store.sessions[key] = session_data
        entry = self._indexEntry(session_data, key)
        store.index.insert(entry)
        # A session restored may be due before the schedule says anything
        # is: bring the schedule forward.
        self._dueBy(entry)

    def sessionDatabase(self):
        """See `ISessionDataContainerMaintenance`."""
        jar = self._p_jar
        return None if jar is None else jar.db()

    def _startCleaner(self):
        if self._v_cleaner is None:
            self._v_cleaner = (self.cleanerThread and cleanerFor(self)
                               or False)

    # -- mapping --------------------------------------------------------------

    def __getitem__(self, client_id):
        """See `ISessionDataContainer`."""
        self._startCleaner()
        session_data = self._lookup(client_id)
        if session_data is None:
            raise KeyError(client_id)
        if not (self.timeout or self.maxLifetime):
            return session_data
        now = self.now()
        if not self._live(session_data, now):
            raise KeyError(client_id)
        if (self.timeout and session_data.getLastAccessTime()
                + self.effectiveResolution(session_data) < now):
            # Only the session's access-time record is written.  Its index
            # entry still says when it would have expired without this
            # access; the cleaner, finding it then, re-indexes it.
            session_data.setLastAccessTime(int(now))
        return session_data

    def _live(self, session_data, now):
        """Whether *session_data* is live at *now*; if it is, make the
        current transaction's commit conflict once a cleaner may have
        removed it (see `CommitGuard`)."""
        due = self.expiresAt(session_data)
        if due is None:
            return True
        if due < now:
            return False
        jar = session_data._p_jar
        if jar is not None:
            CommitGuard.limit(jar.transaction_manager.get(), self.now,
                              due + self.grace / 2)
        return True

    def peek(self, client_id, default=None):
        """See `IExpiringSessionDataContainer`."""
        session_data = self._lookup(client_id)
        if session_data is None or not self._live(session_data, self.now()):
            return default
        return session_data

    def get(self, client_id, default=None):
        """See `ISessionDataContainer`."""
        try:
            return self[client_id]
        except KeyError:
            return default

    def __contains__(self, client_id):
        """See `ISessionDataContainer`: stored and not expired."""
        session_data = self._lookup(client_id)
        return (session_data is not None
                and not self.isExpired(session_data))

    def __setitem__(self, client_id, session_data):
        """See `ISessionDataContainer`."""
        self._startCleaner()
        store = self._store
        key = digest(client_id)
        now = int(self.now())
        previous = store.sessions.get(key)
        if previous is None:
            self._checkLimit()
            store.count.change(1, key)
        elif previous is not session_data:
            reason = (self._expiryReason(previous)
                      if self.isExpired(previous, now) else INVALIDATED)
            self._dropped(key, previous, reason, client_id)
        if not session_data.created:
            session_data.created = now
        session_data.setLastAccessTime(now)
        store.sessions[key] = session_data
        store.index.insert(self._indexEntry(session_data, key))
        if previous is not session_data:
            zope.event.notify(
                SessionCreatedEvent(self, session_data, client_id))

    def _checkLimit(self):
        limit = self.maxNumber
        if limit and len(self) >= limit:
            zope.event.notify(SessionLimitReachedEvent(self, limit))
            if len(self) >= limit:
                raise SessionLimitError(limit)

    def _dropped(self, key, session_data, reason, client_id=None,
                 guard=False, mark=True):
        self._unindexPrincipal(key, session_data)
        if mark:
            # Written, so that a request touching it concurrently
            # conflicts.
            session_data.markRemoved()
        else:
            # Expired for longer than the grace: no request can still
            # commit a write to it (`CommitGuard`), and one that recorded
            # an access meanwhile makes this commit conflict.  Nothing of
            # the session is written.
            session_data.checkCurrentAtCommit()
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
                guard=False, mark=True):
        store = self._store
        del store.sessions[key]
        store.count.change(-1, key)
        self._dropped(key, session_data, reason, client_id, guard, mark)

    def __delitem__(self, client_id):
        """See `IExpiringSessionDataContainer`."""
        key = digest(client_id)
        session_data = self._store.sessions.get(key)
        if session_data is None:
            raise KeyError(client_id)
        self._remove(key, session_data, INVALIDATED, client_id)

    def __len__(self):
        """See `IExpiringSessionDataContainer`."""
        return self._store.count()

    def moveSession(self, old_client_id, new_client_id):
        """See `ISessionDataContainerMaintenance`."""
        now = self.now()
        store = self._store
        sessions = store.sessions
        old_key = digest(old_client_id)
        moving = self._lookup(old_client_id)
        if moving is not None:
            if self.isExpired(moving, now):
                self._remove(old_key, moving,
                             self._expiryReason(moving), old_client_id)
                moving = None
            else:
                del sessions[old_key]
                store.count.change(-1, old_key)
        new_key = digest(new_client_id)
        present = sessions.get(new_key)
        if present is not None and not self.isExpired(present, now):
            if moving is not None:
                self._dropped(old_key, moving, INVALIDATED, old_client_id)
            return present
        if moving is None:
            return None
        if present is None:
            store.count.change(1, new_key)
        else:
            self._dropped(new_key, present, self._expiryReason(present),
                          new_client_id)
        moved = self._successor(moving)
        self._reindexPrincipal(old_key, new_key, moved)
        sessions[new_key] = moved
        store.index.insert(self._indexEntry(moved, new_key))
        return moved

    def _successor(self, session_data):
        # A new record holding the same packages, and the old one marked
        # removed: a request still in flight with the old id, which read
        # the old record, conflicts rather than write into the session
        # under its new id.
        moved = SessionData()
        moved.created = session_data.created
        moved.setLastAccessTime(session_data.getLastAccessTime())
        if session_data.principal is not None:
            moved.principal = session_data.principal
            moved.label = session_data.label
        for pkg_id, pkg_data in session_data.items():
            moved[pkg_id] = pkg_data
        session_data.markRemoved()
        return moved

    # -- cleanup --------------------------------------------------------------

    @property
    def lease(self):
        """See `ISessionDataContainerMaintenance`."""
        return self._store.lease

    def cleanup(self, limit=None, grace=None, pause=None):
        """See `ISessionDataContainerMaintenance`.

        A record that cannot be read (its class is gone, say) is logged,
        left as it is, and its index entry dropped, so it is logged once.
        A failing `ISessionRemovedEvent` handler is logged and does not
        stop it.
        """
        now = self.now()
        limit = limit or self.cleanupBatch
        grace = self.grace if grace is None else grace
        result = CleanupResult()
        # Visiting outdated entries costs too: bound them as well.
        budget = 10 * limit
        expiring = self.timeout or self.maxLifetime
        if expiring:
            budget = self._removeDue(now, grace, limit, budget, result,
                                     pause)
        if self.targetNumber and not result.more:
            self._evict(limit, budget, result, pause)
        if expiring and not result.more:
            self._reschedule(now)
        return result

    def _removeDue(self, now, grace, limit, budget, result, pause):
        """Visit the index entries due by *now* - *grace*; return what is
        left of *budget*."""
        index = self._store.index
        entries = index.due(self._cutoff(now, grace), budget)
        result.more = len(entries) == budget
        for entry in entries:
            if result.removed() >= limit:
                result.more = True
                break
            budget -= 1
            if pause is not None:
                pause()
            index.remove(entry)
            self._visit(entryKey(entry), now, grace, result)
        return budget

    def _visit(self, key, now, grace, result):
        session_data = self._store.sessions.get(key)
        if session_data is None:
            result.stale += 1
            return
        try:
            due = self.expiresAt(session_data)
            if due is not None and due + grace < now:
                reason = self._expiryReason(session_data)
                self._remove(key, session_data, reason, guard=True,
                             mark=grace < self.grace)
                setattr(result, reason, getattr(result, reason) + 1)
            else:
                self._store.index.insert(
                    self._indexEntry(session_data, key))
                result.stale += 1
            session_data.release()
        except ConflictError:
            raise
        except Exception as error:
            # A record that cannot be read (its class is gone, say):
            # leave it, drop its entry so it is not visited again, go on.
            # A prefix of the digest: enough to find it, never the id.
            logger.error('skipping damaged session record %s...: %r',
                         key.hex()[:8], error)

    def _evict(self, limit, budget, result, pause):
        """Remove the least recently used sessions while more than
        `targetNumber` are stored."""
        index = self._store.index
        target = self.targetNumber
        heads = None
        while len(self) > target:
            if result.removed() >= limit or budget <= 0:
                result.more = True
                return
            budget -= 1
            if pause is not None:
                pause()
            if heads is None:
                heads = index.heads()
            if not heads:
                return
            # The least recently used: the earliest step, of any shard.
            shard, entry = min(heads.items(), key=lambda item: item[1])
            index.remove(entry)
            self._evictEntry(entry, result)
            head = index.head(shard)
            if head is None:
                del heads[shard]
            else:
                heads[shard] = head

    def _evictEntry(self, entry, result):
        key = entryKey(entry)
        session_data = self._store.sessions.get(key)
        if session_data is None:
            result.stale += 1
            return
        current = self._indexEntry(session_data, key)
        if current != entry:
            # Same digest, same shard.
            self._store.index.insert(current)
            result.stale += 1
            return
        self._remove(key, session_data, EVICTED, guard=True)
        result.evicted += 1

    def sweep(self):
        """See `ISessionDataContainerMaintenance`."""
        removed = 0
        while True:
            result = self.cleanup(grace=0)
            removed += result.removed()
            if not result.more:
                return removed
