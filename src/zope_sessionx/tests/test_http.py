import base64
import hashlib
import hmac
import logging
import unittest
from email.utils import parsedate_to_datetime
from unittest import mock

import zope.component
from zope.interface import implementer
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject
from zope.schema.interfaces import ValidationError

from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import MissingClientIdException
from zope_sessionx.interfaces import SessionError
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


def independentSignature(secret, id_part):
    """HMAC-SHA256 of *id_part*, encoded as zope.session encodes digests."""
    mac = hmac.new(secret.encode(), id_part.encode(), hashlib.sha256)
    encoded = base64.b64encode(mac.digest()[:20]).rstrip(b'=')
    return encoded.translate(bytes.maketrans(b'+/', b'-.')).decode()


class CookieClientIdManagerTests(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        self.clock = installClock()

    def tearDown(self):
        tearDownComponents()

    def _getTargetClass(self):
        from zope_sessionx.http import CookieClientIdManager
        return CookieClientIdManager

    def _makeOne(self, namespace='sid', secret='s3cret'):
        return self._getTargetClass()(namespace, secret)

    def test_class_conforms(self):
        verifyClass(ICookieClientIdManager, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ICookieClientIdManager, self._makeOne())

    def test_defaults_match_zope_session(self):
        manager = self._makeOne()
        self.assertIsNone(manager.cookieLifetime)
        self.assertFalse(manager.thirdparty)
        self.assertFalse(manager.secure)
        self.assertFalse(manager.postOnly)
        self.assertFalse(manager.httpOnly)
        self.assertIsNone(manager.domain)

    def test_ctor_generates_namespace_and_secret(self):
        one = self._getTargetClass()()
        two = self._getTargetClass()()
        self.assertEqual(one.namespace,
                         'zope3_cs_%x' % (EPOCH - 1000000000))
        self.assertGreaterEqual(len(one.secret), 32)
        self.assertNotEqual(one.secret, two.secret)

    def test_namespace_validated(self):
        manager = self._makeOne()
        self.assertRaises(ValidationError, setattr, manager, 'namespace',
                          'has space')
        self.assertRaises(ValidationError, setattr, manager, 'namespace',
                          'caf\xe9')

    def test_repr_hides_secret(self):
        manager = self._makeOne(secret='do-not-show-me')
        self.assertNotIn('do-not-show-me', repr(manager))
        self.assertIn("'sid'", repr(manager))

    def test_generateUniqueId_shape_and_signature(self):
        manager = self._makeOne()
        sid = manager.generateUniqueId()
        self.assertEqual(len(sid), 54)
        self.assertEqual(sid[27:], independentSignature('s3cret', sid[:27]))

    def test_generateUniqueId_uses_randomBytes(self):
        class Fixed(self._getTargetClass()):
            def randomBytes(self, n):
                return b'\xfb' * n
        manager = Fixed('sid', 's3cret')
        sid = manager.generateUniqueId()
        # 160 bits of 0xfb encode, with '+/' made '-.', as follows.
        self.assertEqual(sid[:27], '-.v7-.v7-.v7-.v7-.v7-.v7-.s')
        self.assertEqual(manager.generateUniqueId(), sid)

    def test_randomBytes_from_secrets(self):
        manager = self._makeOne()
        with mock.patch('secrets.token_bytes', return_value=b'x' * 20) as tb:
            self.assertEqual(manager.randomBytes(20), b'x' * 20)
        tb.assert_called_once_with(20)
        ids = {manager.generateUniqueId() for _ in range(100)}
        self.assertEqual(len(ids), 100)

    def test_getClientId_creates_and_sets_cookie(self):
        manager = self._makeOne()
        request = makeRequest()
        sid = manager.getClientId(request)
        self.assertIs(type(sid), str)
        self.assertEqual(manager.getClientId(request), sid)
        cookie = request.response.getCookie('sid')
        self.assertEqual(cookie, {'value': sid, 'path': '/'})
        self.assertEqual(request.response.getHeader('Cache-Control'),
                         'no-cache="Set-Cookie,Set-Cookie2"')
        self.assertEqual(request.response.getHeader('Pragma'), 'no-cache')
        self.assertEqual(request.response.getHeader('Expires'),
                         'Mon, 26 Jul 1997 05:00:00 GMT')

    def test_getClientId_kept_across_requests_without_new_cookie(self):
        manager = self._makeOne()
        first = makeRequest()
        sid = manager.getClientId(first)
        second = nextRequest(first, 'sid')
        self.assertEqual(manager.getClientId(second), sid)
        self.assertIsNone(second.response.getCookie('sid'))

    def test_getClientId_w_lifetime_renews_cookie(self):
        manager = self._makeOne()
        first = makeRequest()
        sid = manager.getClientId(first)
        manager.cookieLifetime = 3600
        second = nextRequest(first, 'sid')
        self.assertEqual(manager.getClientId(second), sid)
        cookie = second.response.getCookie('sid')
        expires = parsedate_to_datetime(cookie['expires']).timestamp()
        self.assertEqual(expires, EPOCH + 3600)

    def test_zero_lifetime_means_far_future(self):
        manager = self._makeOne()
        manager.cookieLifetime = 0
        request = makeRequest()
        manager.getClientId(request)
        self.assertEqual(request.response.getCookie('sid')['expires'],
                         'Tue, 19 Jan 2038 00:00:00 GMT')

    def test_postOnly(self):
        manager = self._makeOne()
        manager.postOnly = True
        request = makeRequest()
        with self.assertRaises(MissingClientIdException) as caught:
            manager.getClientId(request)
        self.assertIs(caught.exception.request, request)
        self.assertIsInstance(caught.exception, SessionError)
        self.assertIsNone(request.response.getCookie('sid'))
        post = makeRequest(method='POST')
        sid = manager.getClientId(post)
        self.assertEqual(post.response.getCookie('sid')['value'], sid)
        # Once issued, the id is used on any request.
        self.assertEqual(manager.getClientId(nextRequest(post, 'sid')), sid)

    def test_thirdparty(self):
        manager = self._makeOne(namespace='uid')
        manager.thirdparty = True
        manager.cookieLifetime = 3600
        self.assertRaises(MissingClientIdException,
                          manager.getClientId, makeRequest())
        request = makeRequest({'uid': 'AQAAf0Y4gjgAAAQ3AwMEAg=='})
        self.assertEqual(manager.getClientId(request),
                         'AQAAf0Y4gjgAAAQ3AwMEAg==')
        self.assertIsNone(request.response.getCookie('uid'))

    def test_setRequestId_w_thirdparty_only_warns(self):
        manager = self._makeOne()
        manager.thirdparty = True
        request = makeRequest()
        with self.assertLogs('zope_sessionx.http', logging.WARNING):
            manager.setRequestId(request, manager.generateUniqueId())
        self.assertIsNone(request.response.getCookie('sid'))

    def test_setRequestId_cookie_options(self):
        manager = self._makeOne()
        manager.secure = True
        manager.httpOnly = True
        manager.domain = '.example.org'
        request = makeRequest()
        manager.setRequestId(request, '1234')
        self.assertEqual(request.response.getCookie('sid'), {
            'value': '1234', 'path': '/', 'secure': True,
            'httponly': True, 'domain': '.example.org'})
        header = dict(request.response.getHeaders())['Set-Cookie']
        self.assertIn('Secure', header)
        self.assertIn('HttpOnly', header)

    def test_cookie_path_is_application_url(self):
        manager = self._makeOne()
        request = makeRequest(environ={'SCRIPT_NAME': '/app'})
        manager.getClientId(request)
        self.assertEqual(request.response.getCookie('sid')['path'], '/app')

    def test_getRequestId_prefers_response_cookie(self):
        manager = self._makeOne()
        old = manager.generateUniqueId()
        new = manager.generateUniqueId()
        request = makeRequest({'sid': old})
        self.assertEqual(manager.getRequestId(request), old)
        manager.setRequestId(request, new)
        self.assertEqual(manager.getRequestId(request), new)

    def test_getRequestId_ignores_invalid_values(self):
        manager = self._makeOne()
        good = manager.generateUniqueId()
        other = self._makeOne(secret='another secret').generateUniqueId()
        flipped = good[:-1] + ('A' if good[-1] != 'A' else 'B')
        bad_values = [
            '', 'x', 'x' * 54, good[:-1], good + 'A', other, flipped,
            good[:27] + good[:27], '\xe9' * 54, good[:53] + '\xe9',
            good[:26] + '!' + good[27:],
        ]
        for value in bad_values:
            request = makeRequest()
            request._cookies = {'sid': value}
            self.assertIsNone(manager.getRequestId(request), value)
            sid = manager.getClientId(request)
            self.assertNotEqual(sid, value)
            self.assertEqual(len(sid), 54)

    def test_getRequestId_checks_in_constant_time(self):
        manager = self._makeOne()
        sid = manager.generateUniqueId()
        with mock.patch('hmac.compare_digest',
                        wraps=hmac.compare_digest) as compare:
            self.assertEqual(manager.getRequestId(makeRequest({'sid': sid})),
                             sid)
        compare.assert_called_once()

    def test_tampered_cookie_through_real_request_gets_fresh_id(self):
        manager = self._makeOne()
        request = makeRequest({'sid': 'A' * 27 + 'B' * 27})
        sid = manager.getClientId(request)
        self.assertNotEqual(sid, 'A' * 27 + 'B' * 27)
        self.assertEqual(request.response.getCookie('sid')['value'], sid)


class NotifyVirtualHostChangedTests(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        installClock()

    def tearDown(self):
        tearDownComponents()

    def _callFUT(self, event):
        from zope_sessionx.http import notifyVirtualHostChanged
        return notifyVirtualHostChanged(event)

    def _makeEvent(self, request):
        class Event:
            pass
        event = Event()
        event.request = request
        return event

    def test_resets_cookie_path(self):
        from zope_sessionx.http import CookieClientIdManager
        manager = CookieClientIdManager('sid', 's3cret')
        zope.component.provideUtility(manager, IClientIdManager)
        request = makeRequest()
        sid = manager.getClientId(request)
        request.setVirtualHostRoot(['vh'])
        request._app_names = ['site']
        self._callFUT(self._makeEvent(request))
        cookie = request.response.getCookie('sid')
        self.assertEqual(cookie['value'], sid)
        self.assertEqual(cookie['path'], '/site')

    def test_wo_cookie_or_thirdparty_or_other_manager_does_nothing(self):
        calls = []

        @implementer(ICookieClientIdManager)
        class Dummy:
            namespace = 'foo'
            thirdparty = False

            def setRequestId(self, request, id):
                calls.append(id)

        @implementer(IClientIdManager)
        class NotCookie:
            pass

        third = Dummy()
        third.namespace = 'third'
        third.thirdparty = True
        zope.component.provideUtility(Dummy(), IClientIdManager)
        zope.component.provideUtility(third, IClientIdManager, 'third')
        zope.component.provideUtility(NotCookie(), IClientIdManager, 'x')
        request = makeRequest()
        event = self._makeEvent(request)
        self._callFUT(event)
        self.assertEqual(calls, [])
        request.response.setCookie('third', 'value')
        self._callFUT(event)
        self.assertEqual(calls, [])
        request.response.setCookie('foo', 'bar')
        self._callFUT(event)
        self.assertEqual(calls, ['bar'])

    def test_wo_request(self):
        self.assertIsNone(self._callFUT(self._makeEvent(None)))


class CompatibilityImportsTests(unittest.TestCase):

    def test_zope_session_names(self):
        import zope.session.http
        import zope.session.interfaces
        import zope.session.session

        import zope_sessionx.http
        import zope_sessionx.interfaces
        import zope_sessionx.session
        for ours, theirs, names in [
            (zope_sessionx.interfaces, zope.session.interfaces,
             ['IClientId', 'IClientIdManager', 'ISessionDataContainer',
              'ISession', 'ISessionData', 'ISessionPkgData']),
            (zope_sessionx.session, zope.session.session,
             ['ClientId', 'Session', 'PersistentSessionDataContainer',
              'RAMSessionDataContainer', 'SessionData', 'SessionPkgData']),
            (zope_sessionx.http, zope.session.http,
             ['CookieClientIdManager', 'ICookieClientIdManager',
              'MissingClientIdException', 'notifyVirtualHostChanged']),
        ]:
            for name in names:
                self.assertTrue(hasattr(theirs, name), name)
                self.assertTrue(hasattr(ours, name), name)

    def test_interfaces_declare_zope_session_attributes(self):
        import zope.session.http
        import zope.session.interfaces

        import zope_sessionx.interfaces as ours
        pairs = [(getattr(ours, name),
                  getattr(zope.session.interfaces, name))
                 for name in ['IClientIdManager', 'ISessionDataContainer',
                              'ISession', 'ISessionData', 'ISessionPkgData']]
        pairs.append((ours.ICookieClientIdManager,
                      zope.session.http.ICookieClientIdManager))
        for iface, theirs in pairs:
            missing = set(theirs.names(all=True)) - set(iface.names(all=True))
            self.assertEqual(missing, set(), iface)
        for name in ['timeout', 'resolution']:
            self.assertEqual(
                ours.ISessionDataContainer[name].default,
                zope.session.interfaces.ISessionDataContainer[name].default)
