"""A session's own expiry ("remember me"), bounded by its container."""

from zope_sessionx.data import SessionData
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import ISessionLifetime
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import TwoRequestsTestCase
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest
from zope_sessionx.tests.helpers import provideSessions


DAY = 86400
#: Past a due time by the grace and the index step, so cleanup finds it.
LATE = 60 + 2 * 60 + 1


class _ContainerTests:

    def _container(self):
        sdc = self.factory()
        sdc.cleanerThread = False
        sdc.timeout, sdc.maxLifetime = 3600, DAY
        sdc.longestTimeout, sdc.longestLifetime = 30 * DAY, 90 * DAY
        return sdc

    def test_own_expiry_bounded_by_the_container(self):
        sdc = self._container()
        sdc['anonymous'] = SessionData()
        remembered = sdc['remembered'] = SessionData()
        self.assertIs(sdc.setExpiry('remembered', 30 * DAY, 90 * DAY),
                      remembered)
        self.assertEqual((sdc.timeoutOf(remembered),
                          sdc.lifetimeOf(remembered)), (30 * DAY, 90 * DAY))
        # Idle for two hours: the anonymous session is gone, the
        # remembered one is not.
        self.clock.advance(2 * 3600)
        self.assertNotIn('anonymous', sdc)
        self.assertIn('remembered', sdc)
        # The operator lowers the bound: it applies at once.
        sdc.longestTimeout = 7199
        self.assertEqual(sdc.timeoutOf(remembered), 7199)
        self.assertNotIn('remembered', sdc)
        # Below the container's own setting, the container's applies.
        sdc.longestTimeout = 0
        self.assertEqual(sdc.timeoutOf(remembered), 3600)

    def test_own_expiry_may_be_shorter(self):
        sdc = self._container()
        data = sdc['admin'] = SessionData()
        sdc.setExpiry('admin', timeout=600)
        self.assertEqual(sdc.timeoutOf(data), 600)
        self.assertEqual(sdc.lifetimeOf(data), DAY)
        # Used every 75 seconds: recorded, so it stays.
        self.assertEqual(sdc.effectiveResolution(data), 75)
        self.assertEqual(sdc.effectiveResolution(),
                         min(sdc.resolution, 450))
        for _ in range(20):
            self.clock.advance(76)
            self.assertIn('admin', sdc)
            sdc['admin']
        self.clock.advance(601)
        self.assertNotIn('admin', sdc)

    def test_reason_follows_the_limit_reached(self):
        from zope_sessionx.interfaces import LIFETIME
        from zope_sessionx.interfaces import TIMEOUT
        sdc = self._container()
        data = sdc['x'] = SessionData()
        sdc.setExpiry('x', timeout=2 * DAY, maxLifetime=DAY + 10)
        self.assertEqual(sdc._expiryReason(data), LIFETIME)
        sdc.setExpiry('x', timeout=7200, maxLifetime=2 * DAY)
        self.assertEqual(sdc._expiryReason(data), TIMEOUT)

    def test_refused_values_store_nothing(self):
        sdc = self._container()
        data = sdc['x'] = SessionData()
        for timeout, lifetime, setting in [
                (31 * DAY, None, 'timeout'), (None, 91 * DAY, 'maxLifetime'),
                (0, None, 'timeout'), ('60', None, 'timeout'),
                (True, None, 'timeout'), (None, 1.5, 'maxLifetime')]:
            with self.assertRaises(InvalidSettingError) as caught:
                sdc.setExpiry('x', timeout, lifetime)
            self.assertEqual(caught.exception.setting, setting)
            self.assertEqual((data.timeout, data.maxLifetime), (None, None))
        self.assertIn('longer than this container allows (2592000 seconds)',
                      str(self._refusal(sdc, 31 * DAY)))
        # A container that does not expire idle sessions has nothing to
        # bound a session's own timeout by.
        sdc.timeout = 0
        self.assertIn('has no timeout of its own',
                      str(self._refusal(sdc, 60)))

    def _refusal(self, sdc, timeout):
        try:
            sdc.checkExpiry(timeout)
        except InvalidSettingError as error:
            return error

    def test_missing_session_and_same_values(self):
        sdc = self._container()
        self.assertIsNone(sdc.setExpiry('nobody', 7200))
        data = sdc['x'] = SessionData()
        sdc.setExpiry('x', 7200)
        self.assertIs(sdc.setExpiry('x', 7200), data)

    def test_cleanup_honours_own_expiry_in_proportion(self):
        sdc = self._container()
        for n in range(3):
            sdc['anonymous%d' % n] = SessionData()
        sdc['remembered'] = SessionData()
        sdc.setExpiry('remembered', 2 * DAY, 3 * DAY)
        sdc['short'] = SessionData()
        sdc.setExpiry('short', timeout=600)
        # The short one goes first, visited once.
        self.clock.advance(600 + LATE)
        result = sdc.cleanup()
        self.assertEqual((result.timeout, result.stale), (1, 0))
        # After the container's timeout: the anonymous ones go; the
        # entries the remembered and the short one were created with are
        # visited once (the remembered one stays indexed at its own
        # expiry, the short one is gone).
        self.clock.advance(3600)
        result = sdc.cleanup()
        self.assertEqual((result.timeout, result.stale), (3, 2))
        self.assertEqual(len(sdc), 1)
        # Nothing more until the remembered one expires.
        self.clock.advance(DAY)
        result = sdc.cleanup()
        self.assertEqual((result.removed(), result.stale), (0, 0))
        self.clock.advance(DAY)
        result = sdc.cleanup()
        self.assertEqual(result.timeout, 1)
        self.assertEqual(len(sdc), 0)


class PersistentExpiryTests(_ContainerTests, ComponentsTestCase):

    @property
    def factory(self):
        from zope_sessionx.container import PersistentSessionDataContainer
        return PersistentSessionDataContainer


class RAMExpiryTests(_ContainerTests, ComponentsTestCase):

    @property
    def factory(self):
        from zope_sessionx.ram import RAMSessionDataContainer
        return RAMSessionDataContainer


class RememberMeTests(TwoRequestsTestCase):
    """Through real requests: the cookie follows the session's lifetime."""

    def setUp(self):
        super().setUp()
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        sdc.longestTimeout, sdc.longestLifetime = 30 * DAY, 90 * DAY
        sdc.maxLifetime = DAY
        manager.commit()

    def test_conforms(self):
        from zope.interface.verify import verifyObject
        manager, conn = self._open()
        verifyObject(ISessionLifetime, self._session(conn))

    def test_remember_me(self):
        manager, conn = self._open()
        session = self._session(conn)
        session['products.foo']['user'] = 'ann'
        # A session cookie, as the manager sends by default ...
        self.assertNotIn('max_age',
                         session.request.response.getCookie('sid'))
        session.setExpiry(timeout=30 * DAY, maxLifetime=90 * DAY)
        # ... becomes one that lasts as long as the session can.
        cookie = session.request.response.getCookie('sid')
        self.assertEqual(cookie['max_age'], 90 * DAY)
        manager.commit()
        # A month and a half later, used every week: still there, and the
        # cookie renewed for as long as the session has left to live.
        request = session.request
        for _ in range(6):
            self.clock.advance(7 * DAY)
            manager, conn = self._open()
            request = nextRequest(request, 'sid')
            session = self._session(conn)
            session.request = request
            self.assertEqual(session['products.foo']['user'], 'ann')
            manager.commit()
        self.assertEqual(request.response.getCookie('sid')['max_age'],
                         90 * DAY)

    def test_without_session_creates_one(self):
        manager, conn = self._open()
        session = self._session(conn)
        session.setExpiry(timeout=7 * DAY)
        self.assertEqual(session.request.response.getCookie('sid')['max_age'],
                         DAY)
        manager.commit()
        manager, conn = self._open()
        data = conn.root()['sdc'].peek(session.client_id)
        self.assertEqual(data.timeout, 7 * DAY)

    def test_refused_stores_nothing(self):
        manager, conn = self._open()
        session = self._session(conn)
        with self.assertRaises(InvalidSettingError) as caught:
            session.setExpiry(timeout=31 * DAY)
        self.assertEqual(caught.exception.value, 31 * DAY)
        self.assertIsNone(session.request.response.getCookie('sid'))
        manager.commit()
        manager, conn = self._open()
        self.assertEqual(len(conn.root()['sdc']), 0)


class ManagerLifetimeTests(ComponentsTestCase):

    def test_annotation_sets_the_cookie_lifetime(self):
        from zope_sessionx.interfaces import COOKIE_LIFETIME_KEY
        manager = provideSessions()
        request = makeRequest()
        request.annotations[COOKIE_LIFETIME_KEY] = 600
        manager.newClientId(request)
        self.assertEqual(request.response.getCookie('sid')['max_age'], 600)
        # Without it, the manager's own: a session cookie.
        later = nextRequest(request, 'sid')
        manager.refreshCookie(later)
        self.assertIsNone(later.response.getCookie('sid'))
