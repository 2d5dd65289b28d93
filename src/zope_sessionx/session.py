"""The `ISession` adapter: a request's client id, its session data, and
package data stored on its first write.

Also offers every public name of ``zope.session.session`` (the containers,
the data classes and the interfaces), so that changing the import is all
a user of zope.session has to do.
"""
import transaction
import zope.component
from zope.interface import implementer
from zope.interface.interfaces import ComponentLookupError
from zope.publisher.interfaces import IRequest
from zope.traversing.interfaces import IPathAdapter
from zope.traversing.interfaces import ITraversable

from zope_sessionx.clock import currentTime
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.data import SessionData
from zope_sessionx.data import SessionPkgData
from zope_sessionx.http import digestEncode
from zope_sessionx.interfaces import COOKIE_LIFETIME_KEY
from zope_sessionx.interfaces import NEW
from zope_sessionx.interfaces import PREVIOUS_CLIENT_ID_KEY
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import IExpiringSessionDataContainer
from zope_sessionx.interfaces import INoTouchRequest
from zope_sessionx.interfaces import IPrincipalSessions
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionData
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.interfaces import ISessionDataContainerMaintenance
from zope_sessionx.interfaces import ISessionDataRemoval
from zope_sessionx.interfaces import ISessionLifetime
from zope_sessionx.interfaces import ISessionPkgData
from zope_sessionx.interfaces import SessionError
from zope_sessionx.principals import RequestPrincipals
from zope_sessionx.ram import RAMSessionDataContainer
from zope_sessionx.rollback import CookieRollback


__all__ = [
    # Defined here.
    'ClientId',
    'Session',
    'SessionPathAdapter',
    # zope.session.session's names, defined elsewhere.
    'IClientId',
    'IClientIdManager',
    'ISession',
    'ISessionData',
    'ISessionDataContainer',
    'ISessionPkgData',
    'PersistentSessionDataContainer',
    'RAMSessionDataContainer',
    'SessionData',
    'SessionPkgData',
    'currentTime',
    'digestEncode',
]

# Request annotations: package data handed out but not stored yet, and the
# re-issued id whose sessions have been moved.
_PENDING_KEY = 'zope_sessionx.pending'
_FOLLOWED_KEY = 'zope_sessionx.followed_client_id'
_ROLLBACK_KEY = 'zope_sessionx:rollback_joined'


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
        if ISessionDataContainerMaintenance.providedBy(sdc):
            sdc.moveSession(old_client_id, new_client_id)


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


@implementer(ISession, IPrincipalSessions, ISessionLifetime)
@zope.component.adapter(IRequest)
class Session(RequestPrincipals):
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

    def _session(self, sdc, client_id):
        """The client's live session in *sdc*, or None."""
        untouched = (INoTouchRequest.providedBy(self.request)
                     and IExpiringSessionDataContainer.providedBy(sdc))
        if untouched:
            # Read without recording the access: polling does not keep an
            # abandoned session alive.
            session_data = sdc.peek(client_id)
        else:
            session_data = sdc.get(client_id)
        if session_data is None:
            return None
        if ISessionDataRemoval.providedBy(session_data):
            # Whatever this request writes commits only if the session is
            # still what it read: a concurrent rotation, invalidation or
            # removal (which all write its access-time record) makes it
            # conflict, and, retried, find no session, rather than write
            # into one that is gone.
            session_data.checkCurrentAtCommit()
        now = getattr(sdc, 'now', None)
        if (not untouched and now is not None
                and session_data.getLastAccessTime() >= int(now())):
            # Its access time was recorded just now: a good moment, once
            # per resolution, to renew a cookie of finite lifetime.
            self._cookieFor(sdc, session_data)
            self._refreshCookie()
        return session_data

    def _cookieFor(self, sdc, session_data):
        # A session with an expiry of its own keeps its cookie as long as
        # it can last.
        if getattr(session_data, 'timeout', None) or getattr(
                session_data, 'maxLifetime', None):
            self.request.annotations[COOKIE_LIFETIME_KEY] = (
                sdc.lifetimeOf(session_data) or sdc.timeoutOf(session_data))

    def _refreshCookie(self):
        manager = zope.component.getUtility(IClientIdManager)
        if ICookieClientIdManager.providedBy(manager):
            manager.refreshCookie(self.request)

    def _stored(self, sdc, pkg_id):
        client_id = _getClientId(self.request, create=False)
        if client_id is None:
            return None
        session_data = self._session(sdc, client_id)
        if session_data is None:
            return None
        return session_data.get(pkg_id)

    def get(self, pkg_id, default=None):
        """See `ISession`."""
        sdc = self._sdc(pkg_id)
        pkg_data = self._stored(sdc, pkg_id)
        if pkg_data is None:
            pkg_data = self._pending().get((id(sdc), pkg_id), default)
        return self._homed(pkg_data, sdc, pkg_id)

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
        return self._homed(pkg_data, sdc, pkg_id)

    def _homed(self, pkg_data, sdc, pkg_id):
        # Tell the data which database it lives in, so that it refuses,
        # by name, a persistent object of another one.
        if (isinstance(pkg_data, SessionPkgData)
                and ISessionDataContainerMaintenance.providedBy(sdc)):
            db = sdc.sessionDatabase()
            if db is not None:
                pkg_data._v_home = (db, pkg_id)
        return pkg_data

    def _attach(self, pkg_data, sdc, pkg_id):
        """Store *pkg_data*, on its first write, in the client's session."""
        self._pending().pop((id(sdc), pkg_id), None)
        client_id = _getClientId(self.request)
        session_data = self._session(sdc, client_id)
        if session_data is None:
            client_id = self._strictId(client_id)
            session_data = sdc[client_id] = SessionData()
            self._refreshCookie()
        stored = session_data.get(pkg_id)
        if stored is not None:
            # Stored meanwhile by other means: keep what it holds.
            pkg_data.update(stored)
        session_data[pkg_id] = pkg_data

    def _strictId(self, client_id):
        # An id with no live session anywhere, that this request did not
        # issue, may be one an attacker chose: never adopt it for new data.
        manager = zope.component.getUtility(IClientIdManager)
        if (not ICookieClientIdManager.providedBy(manager)
                or not getattr(manager, 'strictIds', False)
                or manager.thirdparty
                or manager.getClientIdSource(self.request) == NEW
                or any(client_id in sdc for sdc in _containers())):
            return client_id
        return manager.newClientId(self.request)

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
        # Once per transaction, so that an abort, or a savepoint rolled
        # back to, restores the cookie as it was before any change.  (The
        # key is not one CookieRollback itself saves and restores.)
        tm = _transactionManager(containers[0] if containers else None)
        txn = tm.get()
        annotations = self.request.annotations
        if annotations.get(_ROLLBACK_KEY) is not txn:
            annotations[_ROLLBACK_KEY] = txn
            txn.join(CookieRollback(self.request, manager, tm))

    def setExpiry(self, timeout=None, maxLifetime=None):
        """See `ISessionLifetime`."""
        containers = [sdc for sdc in _containers()
                      if ISessionDataContainerMaintenance.providedBy(sdc)]
        for sdc in containers:
            sdc.checkExpiry(timeout, maxLifetime)
        client_id = _getClientId(self.request)
        found = []
        for sdc in containers:
            session_data = sdc.setExpiry(client_id, timeout, maxLifetime)
            if session_data is not None:
                found.append((sdc, session_data))
        if not found:
            sdc, client_id = self._newSession(containers, client_id)
            if sdc is not None:
                found.append(
                    (sdc, sdc.setExpiry(client_id, timeout, maxLifetime)))
        self.request.annotations.pop(COOKIE_LIFETIME_KEY, None)
        for sdc, session_data in found:
            self._cookieFor(sdc, session_data)
        self._refreshCookie()

    def _newSession(self, containers, client_id):
        """Store an empty session for the client in the unnamed container,
        if it is one of *containers*: ``(container, client id)``, the id
        a fresh one if *client_id* may not be adopted (`_strictId`);
        ``(None, None)`` otherwise."""
        sdc = zope.component.getUtility(ISessionDataContainer)
        if sdc not in containers:
            return None, None
        client_id = self._strictId(client_id)
        sdc[client_id] = SessionData()
        return sdc, client_id

    # -- hooks of RequestPrincipals -----------------------------------------

    def _clientId(self, create=True):
        return _getClientId(self.request, create)

    def _containers(self):
        return _containers()

    # Without these, ``x in session`` and ``iter(session)`` would fall back
    # on calling __getitem__ with 0, 1, 2, ... which never ends.  The two
    # exceptions are zope.session's.
    def __iter__(self):
        raise NotImplementedError

    def __contains__(self, x):
        raise TypeError


@implementer(IPathAdapter, ITraversable)
@zope.component.adapter(IRequest)
class SessionPathAdapter:
    """``request/session:my.package/key`` in page templates.

    Registered as the ``session`` path adapter, trusted: it gets the
    request without its security proxy, so that it works in untrusted
    (security-proxied) templates too, where `Session` itself could not
    record anything in the request.  It offers nothing but reading the
    current client's data of the package named: traversing it by a
    package id gives that package's `ISessionPkgData` (empty, and stored
    nowhere, if the client has none).
    """

    def __init__(self, request):
        self.request = request

    def __getitem__(self, pkg_id):
        return Session(self.request)[pkg_id]

    def traverse(self, name, furtherPath):
        """See `zope.traversing.interfaces.ITraversable`."""
        return self[name]
