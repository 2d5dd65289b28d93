"""Helpers shared by the tests and the doctests in docs/*.rst."""
import os
import shutil
import tempfile
import unittest
from io import BytesIO

import transaction
import ZODB
import zope.component
import zope.component.testing
from ZODB.FileStorage import FileStorage
from zope.interface import implementer
from zope.publisher.browser import BrowserRequest
from zope.publisher.http import HTTPRequest

from zope_sessionx import cleanup
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import IClock
from zope_sessionx.interfaces import ISessionDataContainer


#: A signing secret of the length a manager accepts.
SECRET = 's3cret-s3cret-s3cret-s3cret-s3cret'

#: A fixed starting point for fake clocks (2023-11-14T22:13:20Z).
EPOCH = 1_700_000_000


@implementer(IClock)
class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now=EPOCH):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
        return self.now


def installClock(now=EPOCH):
    """Register and return a `FakeClock` as the `IClock` utility."""
    clock = FakeClock(now)
    zope.component.provideUtility(clock, IClock)
    return clock


def makeRequest(cookies=None, method='GET', environ=None, browser=False):
    """Return a real zope.publisher request with *cookies* sent."""
    env = {'REQUEST_METHOD': method}
    if cookies:
        env['HTTP_COOKIE'] = '; '.join(
            '{}={}'.format(name, value) for name, value in cookies.items())
    env.update(environ or {})
    factory = BrowserRequest if browser else HTTPRequest
    return factory(BytesIO(), env)


def provideSessions(namespace='sid', secret=SECRET):
    """Register a cookie id manager, and the ClientId and Session adapters.

    Return the manager.
    """
    from zope_sessionx.http import CookieClientIdManager
    from zope_sessionx.interfaces import ISession
    from zope_sessionx.session import ClientId
    from zope_sessionx.session import Session
    manager = CookieClientIdManager(namespace, secret)
    zope.component.provideUtility(manager, IClientIdManager)
    zope.component.provideAdapter(ClientId, provides=IClientId)
    zope.component.provideAdapter(Session, provides=ISession)
    return manager


def skipUnlessAvailable(reason):
    """A decorator: skip when *reason* (why a part the test needs is
    missing) is not None, but never under CI (``CI=true``), which must
    run every test."""
    def decorate(test):
        if reason is None or os.environ.get('CI') == 'true':
            return test
        return unittest.skip(reason)(test)
    return decorate


def virtualHost(request, spec, names=()):
    """Traverse ``++vh++<spec>/<names>/++`` as the publisher would.

    Goes through zope.traversing's real ``vh`` namespace (its
    ``configure.zcml`` must be loaded), which notifies
    ``IHTTPVirtualHostChangedEvent``.
    """
    from zope.traversing.namespace import namespaceLookup
    stack = request.getTraversalStack()
    request.setTraversalStack(stack + ['++'] + list(reversed(names)))
    namespaceLookup('vh', spec, object(), request)


def nextRequest(previous, namespace, **kw):
    """Return a request carrying the cookie *previous* was answered with."""
    cookie = previous.response.getCookie(namespace)
    cookies = {namespace: cookie['value']} if cookie else {}
    return makeRequest(cookies, **kw)


def setUpComponents(test=None):
    """Start with a clean component registry (unittest and doctest)."""
    zope.component.testing.setUp(test)


def tearDownComponents(test=None):
    """Stop any cleaner a test started, abort, clean the registry."""
    cleanup.stopAll(30)
    transaction.abort()
    zope.component.testing.tearDown(test)


class ComponentsTestCase(unittest.TestCase):
    """A clean component registry and a fake clock (``self.clock``)."""

    def setUp(self):
        setUpComponents()
        self.clock = installClock()

    def tearDown(self):
        tearDownComponents()


class FileStorageDB:
    """A FileStorage database in a temporary directory."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-')
        self.path = os.path.join(self.directory, 'Data.fs')
        self.open()

    def open(self):
        self.storage = FileStorage(self.path)
        self.db = ZODB.DB(self.storage)
        return self.db

    def reopen(self):
        self.db.close()
        return self.open()

    def close(self):
        self.db.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def lastTransaction(self):
        return self.storage.lastTransaction()


class TwoRequestsTestCase(ComponentsTestCase):
    """Two requests at once: two transaction managers on one FileStorage.

    Each request goes through the real `Session` adapter, with its
    connection's copy of the container registered as the utility.
    """

    def setUp(self):
        super().setUp()
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        self.ids = CookieClientIdManager('sid', SECRET)
        zope.component.provideUtility(self.ids, IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        manager = transaction.TransactionManager()
        conn = self.fs.db.open(manager)
        sdc = conn.root()['sdc'] = PersistentSessionDataContainer()
        sdc.cleanerThread = False
        sdc.timeout = 3600
        sdc.resolution = 600
        manager.commit()
        conn.close()
        self.requests = []

    def _open(self):
        """Start a request: its own transaction manager and connection."""
        manager = transaction.TransactionManager()
        conn = self.fs.db.open(manager)
        manager.begin()
        self.addCleanup(conn.close)
        self.addCleanup(manager.abort)
        return manager, conn

    def _session(self, conn, cookie=None):
        from zope_sessionx.session import Session
        zope.component.provideUtility(conn.root()['sdc'],
                                      ISessionDataContainer)
        request = makeRequest({'sid': cookie} if cookie else None)
        return Session(request)

    def _createClient(self, **data):
        manager, conn = self._open()
        session = self._session(conn)
        session['products.foo'].update(data)
        manager.commit()
        return session.client_id

    def _read(self, client_id):
        manager, conn = self._open()
        return dict(self._session(conn, client_id)['products.foo'])
