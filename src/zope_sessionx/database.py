"""Sessions in a database of their own, named by a URI.

`openDatabase` opens a ZODB database from a `zodburi` URI
(``file://...``, ``zeo://host:port``, ``memory://``, ``postgres://...``
with RelStorage installed), once per process.
`DatabaseSessionDataContainer` is what an application registers as a
global utility (ZCML does, see `zope_sessionx.zcml`): it is not stored
anywhere itself, and forwards every call to the container stored in that
database, as the connection of the current thread and transaction manager
sees it.  So each request works on its own connection, and a session
write joins the request's transaction and commits or aborts with the
application's own data (two-phase commit across the two databases).
"""
import threading
import time
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import transaction
import ZODB
import zodburi
from persistent.mapping import PersistentMapping
from ZODB.utils import z64
from zope.interface import implementer

from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import ISessionDataContainerMaintenance


__all__ = [
    'CatchUp',
    'DatabaseSessionDataContainer',
    'closeDatabases',
    'openDatabase',
]

#: Where containers are kept in a session database's root.
ROOT_KEY = 'zope_sessionx'

_databases = {}
_databases_lock = threading.Lock()


def openDatabase(uri):
    """Return the database *uri* names, opening it on first use.

    One database per URI and process.  Raises `InvalidSettingError`
    (setting ``database``) when the URI's scheme is unknown or the
    database cannot be opened.
    """
    with _databases_lock:
        db = _databases.get(uri)
        if db is None:
            db = _databases[uri] = _open(uri)
        return db


def _serverSync(uri):
    """*uri* without its ``server_sync`` option, and that option (for a
    ``zeo://`` URI: true unless it says ``server_sync=false``)."""
    parts = urlsplit(uri)
    if parts.scheme != 'zeo':
        return uri, None
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(name, value) for name, value in query if name != 'server_sync']
    given = [value for name, value in query if name == 'server_sync']
    sync = not given or given[-1].lower() not in ('0', 'false', 'off', 'no')
    return urlunsplit(parts._replace(query=urlencode(kept))), sync


def _open(uri):
    resolved, sync = _serverSync(uri)
    try:
        factory, options = zodburi.resolve_uri(resolved)
    except Exception as error:
        raise InvalidSettingError('database', uri, str(error)) from None
    options.pop('database_name', None)
    try:
        storage = factory()
        if sync:
            # Every transaction begins level with the server: it sees
            # every commit acknowledged before it began, in any process,
            # so that a client's next request, sent to another process,
            # finds what the last one wrote (docs/deployment.rst).
            storage.sync = CatchUp(storage)
        if hasattr(storage, 'notify_connected'):
            _newOidsPerConnection(storage)
        return ZODB.DB(storage, **options)
    except Exception as error:
        raise InvalidSettingError(
            'database', uri,
            'cannot be opened: {}: {}'.format(type(error).__name__, error)
        ) from None


class CatchUp:
    """A ZEO client storage's ``sync``, which ZODB calls as each
    transaction begins: return once the client has taken in every commit
    the server had finished when asked.

    ZEO's own ``server_sync`` makes a round trip (a ping) and counts on
    the server to send the invalidations of a commit before its answer to
    any later request.  It does not always: the server sends a commit's
    invalidations at its event loop's next turn, but answers a request as
    soon as it reads it, and a request that arrives while that turn is
    still running (behind a vote, say) is read in it and answered first.
    The reliability suite caught a visitor's next request beginning
    ahead of the commit that created the visitor's session that way
    (docs/reliability.rst).  Here the round trip asks for the server's
    last transaction id instead, and the call then waits, if need be,
    until the client has received the invalidations up to that id.

    Raises `ZEO.Exceptions.ClientDisconnected`, a transient error (the
    request is tried again), if they have not come within ``timeout``
    seconds.
    """

    #: Seconds to wait for the invalidations of a finished commit.
    timeout = 10.0

    def __init__(self, storage):
        self.storage = storage
        self.received = z64
        self.changed = threading.Condition()
        invalidated = storage.invalidateTransaction

        def invalidateTransaction(tid, oids):
            # In the client's I/O thread, for each commit of another
            # process, in the order the server made them: ZODB knows of
            # it once the call returns.
            invalidated(tid, oids)
            with self.changed:
                self.received = max(self.received, tid)
                self.changed.notify_all()

        storage.invalidateTransaction = invalidateTransaction

    def __call__(self):
        storage = self.storage
        # What ZEO's own server_sync calls for servers older than ZEO 5.
        committed = storage._call('lastTransaction')
        deadline = time.monotonic() + self.timeout
        with self.changed:
            # The client's own commits, and a reconnection, move its last
            # transaction on without an invalidation: look at it as well.
            while max(self.received,
                      storage.lastTransaction() or z64) < committed:
                left = deadline - time.monotonic()
                if left <= 0:
                    from ZEO.Exceptions import ClientDisconnected
                    raise ClientDisconnected(
                        'no news from the ZEO server of its transaction '
                        '{} after {} seconds'.format(committed.hex(),
                                                     self.timeout))
                self.changed.wait(min(left, 0.05))


def _newOidsPerConnection(storage):
    """Make the ZEO client *storage* forget, at each (re)connection, the
    new oids it fetched from the server before.

    A ZEO client fetches new oids a hundred at a time.  A restarted server
    counts on from the largest oid stored, so it hands out again the oids
    clients still hold: two processes then store different objects under
    one oid.  One of the two commits fails with a conflict; worse, the
    other process may have the first object in its cache, and ZODB's abort
    then detaches that object from its database, so that later writes to
    it are acknowledged and never stored (docs/reliability.rst).
    """
    connected = storage.notify_connected

    def notify_connected(conn, info):
        del storage._oids[:]
        connected(conn, info)

    storage.notify_connected = notify_connected


def closeDatabases():
    """Close every database `openDatabase` opened (at shutdown, in tests)."""
    with _databases_lock:
        databases = list(_databases.values())
        _databases.clear()
    for db in databases:
        db.close()


#: The settings a stored container takes.
_SETTINGS = ('timeout', 'resolution', 'maxLifetime', 'targetNumber',
             'maxNumber', 'cleanupPeriod', 'cleanupBatch', 'cleanerThread',
             'longestTimeout', 'longestLifetime')


@implementer(IExpiringSessionDataContainer, ISessionDataContainerMaintenance)
class DatabaseSessionDataContainer:
    """See `IExpiringSessionDataContainer`: the container named *name* in
    the session database *uri*, as the current transaction sees it.

    Safe to register as a global utility: it holds no persistent state,
    and every call goes to the stored container through a connection of
    the calling thread's transaction manager (``transaction.manager``, or
    *transaction_manager*).  The stored container is made on first use,
    with *settings*; settings given later are applied to it (no session is
    lost by a change).
    """

    def __init__(self, uri, name='', transaction_manager=None,
                 **settings):
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise InvalidSettingError(
                sorted(unknown)[0], settings[sorted(unknown)[0]],
                'not a setting of a session data container')
        # Refuse a bad setting before anything is opened or created.
        probe = PersistentSessionDataContainer.__new__(
            PersistentSessionDataContainer)
        for setting, value in settings.items():
            setattr(probe, setting, value)
        self.uri = uri
        self.name = name
        self.db = openDatabase(uri)
        self._manager = transaction_manager
        self._local = threading.local()
        self._setUp(settings)

    def _setUp(self, settings):
        # In a transaction of its own: the container exists, with these
        # settings, before any request comes.
        tm = transaction.TransactionManager()
        connection = self.db.open(transaction_manager=tm)
        try:
            tm.begin()
            root = connection.root()
            containers = root.get(ROOT_KEY)
            if containers is None:
                containers = root[ROOT_KEY] = PersistentMapping()
            container = containers.get(self.name)
            if container is None:
                container = containers[self.name] = (
                    PersistentSessionDataContainer())
            for setting, value in settings.items():
                if getattr(container, setting) != value:
                    setattr(container, setting, value)
            tm.commit()
        finally:
            # After a failure, nothing of it stays.
            tm.abort()
            connection.close()

    def stored(self):
        """Return the stored container, as this thread's current
        transaction sees it."""
        manager = self._manager or transaction.manager
        # The thread's own manager, not the thread-local wrapper, so that
        # the connection can be closed from another thread at shutdown.
        manager = getattr(manager, 'manager', manager)
        connections = self._local.__dict__.setdefault('connections', {})
        connection = connections.get(manager)
        if connection is None:
            connection = self.db.open(transaction_manager=manager)
            connections[manager] = connection
        return connection.root()[ROOT_KEY][self.name]

    def __repr__(self):
        return '<{} {!r} in {!r}>'.format(
            self.__class__.__name__, self.name, self.uri)

    # Everything else is the stored container's.
    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self.stored(), name)

    def __setattr__(self, name, value):
        if name in _SETTINGS:
            setattr(self.stored(), name, value)
        else:
            super().__setattr__(name, value)

    def __getitem__(self, client_id):
        return self.stored()[client_id]

    def __setitem__(self, client_id, session_data):
        self.stored()[client_id] = session_data

    def __delitem__(self, client_id):
        del self.stored()[client_id]

    def __contains__(self, client_id):
        return client_id in self.stored()

    def __len__(self):
        return len(self.stored())

    def get(self, client_id, default=None):
        return self.stored().get(client_id, default)
