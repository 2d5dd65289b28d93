import base64
import hashlib
import hmac
import logging
import unittest
from email.utils import parsedate_to_datetime
from unittest import mock

import zope.component
import zope.traversing
from zope.interface import implementer
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject
from zope.publisher.interfaces.http import IHTTPRequest
from zope.traversing.interfaces import ITraversable

from zope_sessionx.interfaces import CookiePolicyError
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import MissingClientIdException
from zope_sessionx.interfaces import SessionError
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest
from zope_sessionx.tests.helpers import virtualHost


SECRET = 's3cret-s3cret-s3cret-s3cret-s3cret'


def setCookieHeaders(request):
    """The Set-Cookie header lines of the request's response, as sent."""
    return [value for name, value in request.response.getHeaders()
            if name == 'Set-Cookie']


def independentSignature(secret, id_part, digest=hashlib.sha256):
    """HMAC of *id_part*, encoded as zope.session encodes digests."""
    mac = hmac.new(secret.encode(), id_part.encode(), digest)
    encoded = base64.b64encode(mac.digest()[:20]).rstrip(b'=')
    return encoded.translate(bytes.maketrans(b'+/', b'-.')).decode()


class CookieClientIdManagerTests(ComponentsTestCase):

    def _getTargetClass(self):
        from zope_sessionx.http import CookieClientIdManager
        return CookieClientIdManager

    def _makeOne(self, namespace='sid', secret=SECRET, **settings):
        return self._getTargetClass()(namespace, secret, **settings)

    def test_class_conforms(self):
        verifyClass(ICookieClientIdManager, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ICookieClientIdManager, self._makeOne())

    def test_defaults(self):
        manager = self._makeOne()
        # zope.session's
        self.assertIsNone(manager.cookieLifetime)
        self.assertFalse(manager.thirdparty)
        self.assertFalse(manager.secure)
        self.assertFalse(manager.postOnly)
        self.assertIsNone(manager.domain)
        # secure ones
        self.assertTrue(manager.httpOnly)
        self.assertTrue(manager.autoSecure)
        self.assertEqual(manager.sameSite, 'Lax')
        self.assertFalse(manager.hostPrefix)
        self.assertIsNone(manager.cookiePath)
        self.assertEqual(manager.namespaces, ('cookie',))
        self.assertFalse(manager.acceptLegacyIds)
        self.assertTrue(manager.strictIds)
        self.assertEqual(manager.secrets, (SECRET,))
        self.assertEqual(manager.cookieName, 'sid')

    def test_ctor_takes_settings(self):
        manager = self._getTargetClass()('sid', SECRET, sameSite='Strict',
                                         namespaces=('form', 'cookie'))
        self.assertEqual(manager.sameSite, 'Strict')
        self.assertEqual(manager.namespaces, ('form', 'cookie'))
        self.assertRaises(TypeError, self._getTargetClass(), 'sid', SECRET,
                          colour='red')
        with self.assertRaises(CookiePolicyError) as caught:
            self._getTargetClass()('sid', SECRET, sameSite='lax')
        self.assertEqual((caught.exception.setting, caught.exception.value),
                         ('sameSite', 'lax'))

    def test_every_setting_refused_with_cookie_policy_error(self):
        from zope_sessionx.interfaces import InvalidSettingError
        manager = self._makeOne()
        for name, value in [('cookieLifetime', -1), ('thirdparty', 'yes'),
                            ('namespaces', ('cookie', 'cookie')),
                            ('sameSite', 'lax'), ('domain', b'x')]:
            with self.assertRaises(CookiePolicyError) as caught:
                setattr(manager, name, value)
            error = caught.exception
            self.assertIsInstance(error, InvalidSettingError)
            self.assertEqual((error.setting, error.value), (name, value))
            self.assertIn(name, str(error))

    def test_ctor_generates_namespace_and_secret(self):
        one = self._getTargetClass()()
        two = self._getTargetClass()()
        self.assertEqual(one.namespace,
                         'zope3_cs_%x' % (EPOCH - 1000000000))
        self.assertGreaterEqual(len(one.secret), 32)
        self.assertNotEqual(one.secret, two.secret)

    def test_namespace_validated(self):
        manager = self._makeOne()
        self.assertRaises(CookiePolicyError, setattr, manager, 'namespace',
                          'has space')
        self.assertRaises(CookiePolicyError, setattr, manager, 'namespace',
                          'caf\xe9')

    def test_repr_hides_secret(self):
        manager = self._makeOne(secret='do-not-show-me' * 3)
        self.assertNotIn('do-not-show-me', repr(manager))
        self.assertIn("'sid'", repr(manager))

    def test_generateUniqueId_shape_and_signature(self):
        manager = self._makeOne()
        sid = manager.generateUniqueId()
        self.assertEqual(len(sid), 54)
        self.assertEqual(sid[27:], independentSignature(SECRET, sid[:27]))

    def test_generateUniqueId_uses_randomBytes(self):
        class Fixed(self._getTargetClass()):
            def randomBytes(self, n):
                return b'\xfb' * n
        manager = Fixed('sid', SECRET)
        sid = manager.generateUniqueId()
        # 160 bits of 0xfb encode, with '+/' made '-.', as follows.
        self.assertEqual(sid[:27], '-.v7-.v7-.v7-.v7-.v7-.v7-.s')
        self.assertEqual(manager.generateUniqueId(), sid)

    def test_ids_carry_160_bits_from_secrets(self):
        # The random part of an id is what the operating system's CSPRNG
        # gave, all 20 bytes of it.
        manager = self._makeOne()
        drawn = bytes(range(20))
        with mock.patch('secrets.token_bytes', return_value=drawn) as tb:
            sid = manager.generateUniqueId()
        tb.assert_called_once_with(20)
        expected = base64.b64encode(drawn).rstrip(b'=').decode('ascii')
        self.assertEqual(sid[:27], expected.replace('+', '-')
                         .replace('/', '.'))
        ids = {manager.generateUniqueId()[:27] for _ in range(1000)}
        self.assertEqual(len(ids), 1000)

    def test_getClientId_creates_and_sets_cookie(self):
        manager = self._makeOne()
        request = makeRequest()
        sid = manager.getClientId(request)
        self.assertIs(type(sid), str)
        self.assertEqual(manager.getClientId(request), sid)
        cookie = request.response.getCookie('sid')
        self.assertEqual(cookie, {'value': sid, 'path': '/',
                                  'httponly': True, 'samesite': 'Lax'})
        self.assertEqual(setCookieHeaders(request),
                         ['sid=%s; HttpOnly; Path=/; SameSite=Lax' % sid])
        self.assertEqual(request.response.getHeader('Vary'), 'Cookie')
        self.assertEqual(request.response.getHeader('Cache-Control'),
                         'private')
        self.assertEqual(request.response.getHeader('Expires'),
                         'Mon, 26 Jul 1997 05:00:00 GMT')

    def test_cache_headers_of_the_application_are_kept(self):
        manager = self._makeOne()
        for before, after in [
                ('no-store, private', 'no-store, private'),
                ('no-store', 'no-store'),
                ('max-age=60, must-revalidate',
                 'max-age=60, must-revalidate, private'),
                ('public, max-age=600', 'max-age=600, private'),
                ('private="Set-Cookie", max-age=5',
                 'private="Set-Cookie", max-age=5')]:
            request = makeRequest()
            response = request.response
            response.setHeader('Cache-Control', before)
            response.setHeader('Expires', 'Thu, 01 Jan 2099 00:00:00 GMT')
            manager.getClientId(request)
            self.assertEqual(response.getHeader('Cache-Control'), after)
            self.assertEqual(response.getHeader('Expires'),
                             'Thu, 01 Jan 2099 00:00:00 GMT')

    def test_response_without_cookie_left_alone(self):
        manager = self._makeOne()
        first = makeRequest()
        sid = manager.getClientId(first)
        second = nextRequest(first, 'sid')
        second.response.setHeader('Cache-Control', 'public, max-age=60')
        self.assertEqual(manager.getClientId(second), sid)
        self.assertEqual(second.response.getHeader('Cache-Control'),
                         'public, max-age=60')
        self.assertIsNone(second.response.getHeader('Vary'))

    def test_getClientId_kept_across_requests_without_new_cookie(self):
        manager = self._makeOne()
        first = makeRequest()
        sid = manager.getClientId(first)
        second = nextRequest(first, 'sid')
        self.assertEqual(manager.getClientId(second), sid)
        self.assertIsNone(second.response.getCookie('sid'))

    def test_getClientId_w_lifetime_does_not_resend_cookie(self):
        manager = self._makeOne(cookieLifetime=3600)
        first = makeRequest()
        sid = manager.getClientId(first)
        second = nextRequest(first, 'sid')
        self.assertEqual(manager.getClientId(second), sid)
        self.assertIsNone(second.response.getCookie('sid'))

    def test_refreshCookie_renews_a_finite_lifetime(self):
        manager = self._makeOne()
        first = makeRequest()
        sid = manager.getClientId(first)
        second = nextRequest(first, 'sid')
        manager.refreshCookie(second)
        self.assertIsNone(second.response.getCookie('sid'))
        manager.cookieLifetime = 3600
        manager.refreshCookie(second)
        self.assertEqual(manager.getClientId(second), sid)
        cookie = second.response.getCookie('sid')
        expires = parsedate_to_datetime(cookie['expires']).timestamp()
        self.assertEqual(expires, EPOCH + 3600)
        self.assertEqual(cookie['max_age'], 3600)
        header = setCookieHeaders(second)[0]
        self.assertIn('Max-Age=3600', header)
        self.assertIn('expires=', header)

    def test_zero_lifetime_means_as_long_as_browsers_keep_cookies(self):
        manager = self._makeOne()
        manager.cookieLifetime = 0
        request = makeRequest()
        manager.getClientId(request)
        cookie = request.response.getCookie('sid')
        self.assertEqual(cookie['max_age'], 400 * 86400)
        expires = parsedate_to_datetime(cookie['expires']).timestamp()
        self.assertEqual(expires, EPOCH + 400 * 86400)
        self.assertIn('Max-Age=34560000', setCookieHeaders(request)[0])

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
        manager.sameSite = 'Strict'
        manager.cookiePath = '/shop'
        manager.setRequestId(request, '1234')
        self.assertEqual(request.response.getCookie('sid'), {
            'value': '1234', 'path': '/shop', 'secure': True,
            'httponly': True, 'domain': '.example.org',
            'samesite': 'Strict'})
        self.assertEqual(setCookieHeaders(request), [
            'sid=1234; Domain=.example.org; HttpOnly; Path=/shop;'
            ' SameSite=Strict; Secure'])

    def test_zope_session_cookie_settings_restore_old_cookie(self):
        manager = self._makeOne(sameSite=None, httpOnly=False,
                                autoSecure=False)
        request = makeRequest(environ={'HTTPS': 'on'})
        sid = manager.getClientId(request)
        self.assertEqual(setCookieHeaders(request), ['sid=%s; Path=/' % sid])

    def test_secure_whenever_request_came_over_https(self):
        manager = self._makeOne()
        plain = makeRequest()
        manager.getClientId(plain)
        self.assertNotIn('secure', plain.response.getCookie('sid'))
        for environ in ({'HTTPS': 'on'}, {'HTTPS': '1'},
                        {'SERVER_PORT_SECURE': '1'},
                        {'wsgi.url_scheme': 'https'}):
            request = makeRequest(environ=environ)
            manager.getClientId(request)
            self.assertTrue(request.response.getCookie('sid')['secure'])
            self.assertTrue(setCookieHeaders(request)[0].endswith('Secure'))

    def test_samesite_none_forces_secure(self):
        manager = self._makeOne(sameSite='None')
        request = makeRequest()
        manager.getClientId(request)
        header = setCookieHeaders(request)[0]
        self.assertIn('SameSite=None', header)
        self.assertTrue(header.endswith('Secure'))

    def test_host_prefix_forces_secure_root_path_no_domain(self):
        manager = self._makeOne(hostPrefix=True)
        self.assertEqual(manager.cookieName, '__Host-sid')
        request = makeRequest(environ={'SCRIPT_NAME': '/app'})
        sid = manager.getClientId(request)
        self.assertEqual(
            setCookieHeaders(request),
            ['__Host-sid=%s; HttpOnly; Path=/; SameSite=Lax; Secure' % sid])
        following = makeRequest({'__Host-sid': sid})
        self.assertEqual(manager.getClientId(following), sid)
        # A cookie without the prefix is not the prefixed one.
        self.assertIsNone(manager.getRequestId(makeRequest({'sid': sid})))

    def test_host_prefix_refuses_domain_and_path(self):
        from zope_sessionx.interfaces import CookiePolicyError
        manager = self._makeOne(hostPrefix=True)
        with self.assertRaises(CookiePolicyError) as caught:
            manager.domain = '.example.org'
        self.assertEqual(caught.exception.setting, 'domain')
        self.assertEqual(caught.exception.value, '.example.org')
        self.assertIn("domain='.example.org'", str(caught.exception))
        self.assertIsInstance(caught.exception, SessionError)
        with self.assertRaises(CookiePolicyError) as caught:
            manager.cookiePath = '/app'
        self.assertEqual(caught.exception.setting, 'cookiePath')
        manager.cookiePath = '/'
        self.assertIsNone(manager.domain)
        other = self._makeOne(domain='.example.org')
        with self.assertRaises(CookiePolicyError) as caught:
            other.hostPrefix = True
        self.assertEqual(caught.exception.setting, 'hostPrefix')
        self.assertFalse(other.hostPrefix)

    def test_vary_header_extended_not_duplicated(self):
        manager = self._makeOne()
        request = makeRequest()
        request.response.setHeader('Vary', 'Accept-Encoding')
        manager.getClientId(request)
        manager.setRequestId(request, manager.generateUniqueId())
        self.assertEqual(request.response.getHeader('Vary'),
                         'Accept-Encoding, Cookie')

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
        other = self._makeOne(secret='another secret' * 3).generateUniqueId()
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
        # Every signature of a well-formed id is compared with
        # hmac.compare_digest, whether it verifies or not, and against
        # each secret: never with ==, which stops at the first difference.
        manager = self._makeOne(secrets=(SECRET, OLD))
        sid = manager.generateUniqueId()
        forged = sid[:27] + ('A' if sid[27] != 'A' else 'B') + sid[28:]
        for value, calls, found in [(sid, 1, sid), (forged, 2, None)]:
            with mock.patch('hmac.compare_digest',
                            wraps=hmac.compare_digest) as compare:
                self.assertEqual(
                    manager.getRequestId(makeRequest({'sid': value})), found)
            self.assertEqual(compare.call_count, calls)
            for call in compare.call_args_list:
                self.assertEqual(call.args[1], value[27:].encode('ascii'))

    def test_tampered_cookie_through_real_request_gets_fresh_id(self):
        manager = self._makeOne()
        request = makeRequest({'sid': 'A' * 27 + 'B' * 27})
        sid = manager.getClientId(request)
        self.assertNotEqual(sid, 'A' * 27 + 'B' * 27)
        self.assertEqual(request.response.getCookie('sid')['value'], sid)


class NotifyVirtualHostChangedTests(ComponentsTestCase):

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
        manager = CookieClientIdManager('sid', SECRET)
        zope.component.provideUtility(manager, IClientIdManager)
        request = makeRequest()
        sid = manager.getClientId(request)
        # The real ++vh++ namespace, with this subscriber registered.
        from zope.configuration import xmlconfig
        from zope.publisher.interfaces import http
        xmlconfig.file('configure.zcml', zope.traversing)
        zope.component.provideHandler(
            self._callFUT, (http.IHTTPVirtualHostChangedEvent,))
        virtualHost(request, 'http:example.org:80', ['site'])
        cookie = request.response.getCookie('sid')
        self.assertEqual(cookie['value'], sid)
        self.assertEqual(cookie['path'], '/site')

    def test_wo_cookie_or_thirdparty_or_other_manager_does_nothing(self):
        calls = []

        @implementer(ICookieClientIdManager)
        class Dummy:
            namespace = cookieName = 'foo'
            thirdparty = False

            def setRequestId(self, request, id):
                calls.append(id)

        @implementer(IClientIdManager)
        class NotCookie:
            pass

        third = Dummy()
        third.namespace = third.cookieName = 'third'
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

    def test_digestEncode_as_zope_session(self):
        import zope.session.session

        from zope_sessionx.http import digestEncode
        from zope_sessionx.session import digestEncode as reexported
        self.assertIs(reexported, digestEncode)
        for raw in (b'', b'x' * 20, bytes(range(32)), b'\xfb' * 7):
            self.assertEqual(digestEncode(raw),
                             zope.session.session.digestEncode(raw))

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


#: A fresh signing secret in front of older ones.
NEW = 'the-newest-secret-the-newest-secret'
#: An older secret, which only verifies.
OLD = 'the-old-secret-the-old-secret-the-old'


class _ManagerTestCase(ComponentsTestCase):

    def _makeOne(self, namespace='sid', secret=SECRET, **settings):
        from zope_sessionx.http import CookieClientIdManager
        return CookieClientIdManager(namespace, secret, **settings)


class SecretRotationTests(_ManagerTestCase):

    def test_first_secret_signs_every_secret_verifies(self):
        old = self._makeOne(secret=OLD)
        old_id = old.generateUniqueId()
        manager = self._makeOne(secrets=(NEW, OLD))
        self.assertEqual(manager.secret, NEW)
        new_id = manager.generateUniqueId()
        self.assertEqual(new_id[27:], independentSignature(NEW, new_id[:27]))
        self.assertEqual(manager.getRequestId(makeRequest({'sid': old_id})),
                         old_id)
        self.assertEqual(manager.getRequestId(makeRequest({'sid': new_id})),
                         new_id)

    def test_older_secret_id_reissued_under_current(self):
        from zope_sessionx.interfaces import PREVIOUS_CLIENT_ID_KEY
        old_id = self._makeOne(secret=OLD).generateUniqueId()
        manager = self._makeOne(secrets=(NEW, OLD))
        request = makeRequest({'sid': old_id})
        sid = manager.getClientId(request)
        self.assertEqual(sid[:27], old_id[:27])
        self.assertEqual(sid[27:], independentSignature(NEW, sid[:27]))
        self.assertEqual(request.response.getCookie('sid')['value'], sid)
        self.assertEqual(request.annotations[PREVIOUS_CLIENT_ID_KEY], old_id)
        self.assertEqual(manager.getClientId(request), sid)
        self.assertEqual(manager.getClientIdSource(request), 'cookie')
        # The next request carries the re-issued id: nothing more to do.
        following = nextRequest(request, 'sid')
        self.assertEqual(manager.getClientId(following), sid)
        self.assertIsNone(following.response.getCookie('sid'))

    def test_dropped_secret_no_longer_verifies(self):
        old_id = self._makeOne(secret=OLD).generateUniqueId()
        manager = self._makeOne(secrets=(NEW,))
        request = makeRequest({'sid': old_id})
        self.assertIsNone(manager.getRequestId(request))
        self.assertNotEqual(manager.getClientId(request)[:27], old_id[:27])

    def test_secret_setter_replaces_all_secrets(self):
        manager = self._makeOne(secrets=(NEW, OLD))
        manager.secret = 'newest' * 6
        self.assertEqual(manager.secrets, ('newest' * 6,))

    def test_short_signing_secret_refused_older_may_be_short(self):
        import traceback
        for value in [('short',), ('a' * 31, NEW)]:
            with self.assertRaises(CookiePolicyError) as caught:
                self._makeOne(secrets=value)
            text = ''.join(traceback.format_exception(caught.exception))
            self.assertIn('32 characters', text)
            self.assertNotIn(value[0], text)
        with self.assertRaises(CookiePolicyError):
            self._makeOne(secret='short')
        # zope.session's own secrets are 22 characters: they may verify.
        manager = self._makeOne(secrets=(NEW, '0.12345678901234567890'))
        self.assertEqual(len(manager.secrets), 2)

    def test_secrets_validated(self):
        manager = self._makeOne()
        self.assertRaises(CookiePolicyError, setattr, manager, 'secrets', ())
        self.assertRaises(CookiePolicyError, setattr, manager, 'secrets',
                          ('',))

    def test_refused_secrets_never_shown(self):
        import traceback
        manager = self._makeOne()
        with self.assertRaises(CookiePolicyError) as caught:
            manager.secrets = ('good-enough-secret', 42)
        error = caught.exception
        self.assertEqual(error.setting, 'secrets')
        text = ''.join(traceback.format_exception(error))
        self.assertNotIn('good-enough-secret', text)
        self.assertNotIn('42', text)

    def test_repr_and_logs_never_show_secrets(self):
        manager = self._makeOne(secrets=('new-secret' * 4, 'old-secret'))
        manager.thirdparty = True
        with self.assertLogs('zope_sessionx.http') as logs:
            manager.setRequestId(makeRequest(), 'x')
        text = repr(manager) + ' '.join(logs.output)
        self.assertNotIn('new-secret', text)
        self.assertNotIn('old-secret', text)


class LegacyIdTests(_ManagerTestCase):

    def _legacyId(self, secret='shared'):
        import zope.session.http
        return zope.session.http.CookieClientIdManager(
            'sid', secret).generateUniqueId()

    def test_zope_session_id_accepted_and_reissued(self):
        from zope_sessionx.interfaces import PREVIOUS_CLIENT_ID_KEY
        legacy = self._legacyId()
        self.assertEqual(
            legacy[27:],
            independentSignature('shared', legacy[:27], hashlib.sha1))
        manager = self._makeOne(secrets=(NEW, 'shared'), acceptLegacyIds=True)
        request = makeRequest({'sid': legacy})
        sid = manager.getClientId(request)
        # A fresh random part (zope.session's came from random.random()),
        # signed with the newest secret.
        self.assertNotEqual(sid[:27], legacy[:27])
        self.assertEqual(sid[27:], independentSignature(NEW, sid[:27]))
        self.assertEqual(request.annotations[PREVIOUS_CLIENT_ID_KEY], legacy)
        self.assertEqual(request.response.getCookie('sid')['value'], sid)
        self.assertEqual(manager.getClientId(request), sid)

    def test_zope_session_id_w_other_secret_refused(self):
        manager = self._makeOne(secrets=(NEW, 'shared'), acceptLegacyIds=True)
        request = makeRequest({'sid': self._legacyId('other')})
        self.assertIsNone(manager.getRequestId(request))

    def test_turned_off(self):
        manager = self._makeOne(secrets=(NEW, 'shared'))
        request = makeRequest({'sid': self._legacyId()})
        self.assertIsNone(manager.getRequestId(request))


class NamespacesTests(_ManagerTestCase):

    def _formRequest(self, query, cookies=None):
        from zope.i18n.interfaces import IUserPreferredCharsets
        from zope.publisher.http import HTTPCharsets
        zope.component.provideAdapter(
            HTTPCharsets, (IHTTPRequest,), IUserPreferredCharsets)
        request = makeRequest(cookies, browser=True,
                              environ={'QUERY_STRING': query})
        request.processInputs()
        return request

    def test_form_namespace(self):
        manager = self._makeOne(namespaces=('form',))
        sid = manager.generateUniqueId()
        request = self._formRequest('sid=' + sid)
        self.assertEqual(manager.getClientId(request), sid)
        self.assertEqual(manager.getClientIdSource(request), 'form')
        # The cookie namespace is not used: no cookie read or set.
        self.assertIsNone(manager.getRequestId(makeRequest({'sid': sid})))
        fresh = makeRequest()
        new = manager.getClientId(fresh)
        self.assertEqual(manager.getClientId(fresh), new)
        self.assertIsNone(fresh.response.getCookie('sid'))
        self.assertEqual(manager.getClientIdSource(fresh), 'new')

    def test_order_decides_and_invalid_values_skipped(self):
        manager = self._makeOne(namespaces=('form', 'cookie'))
        in_form, in_cookie = (manager.generateUniqueId() for _ in 'ab')
        request = self._formRequest('sid=' + in_form, {'sid': in_cookie})
        self.assertEqual(manager.getClientId(request), in_form)
        request = self._formRequest('sid=forged', {'sid': in_cookie})
        self.assertEqual(manager.getClientId(request), in_cookie)
        self.assertEqual(manager.getClientIdSource(request), 'cookie')

    def test_duplicated_form_value_ignored(self):
        manager = self._makeOne(namespaces=('form',))
        sid = manager.generateUniqueId()
        request = self._formRequest('sid={0}&sid={0}'.format(sid))
        self.assertIsNone(manager.getRequestId(request))

    def test_namespace_conforms(self):
        from zope_sessionx.http import ClientIdNamespace
        verifyObject(ITraversable, ClientIdNamespace(object(), makeRequest()))

    def test_url_namespace_through_traversal(self):
        from zope.traversing.namespace import namespaceLookup

        from zope_sessionx.http import ClientIdNamespace
        zope.component.provideAdapter(
            ClientIdNamespace, (None, None), ITraversable, name='sid')
        manager = self._makeOne(namespaces=('url', 'cookie'))
        sid = manager.generateUniqueId()
        request = makeRequest()
        context = object()
        self.assertIs(namespaceLookup('sid', sid, context, request), context)
        self.assertEqual(manager.getClientId(request), sid)
        self.assertEqual(manager.getClientIdSource(request), 'url')

    def test_url_and_form_ids_never_become_cookies(self):
        from zope.traversing.namespace import namespaceLookup

        from zope_sessionx.http import ClientIdNamespace
        zope.component.provideAdapter(
            ClientIdNamespace, (None, None), ITraversable, name='sid')
        manager = self._makeOne(namespaces=('url', 'form', 'cookie'),
                                cookieLifetime=3600)
        older = self._makeOne(secret=OLD).generateUniqueId()
        manager.secrets = (SECRET, OLD)
        for sid in (manager.generateUniqueId(), older):
            # One click on a crafted link, or a crafted form ...
            by_url = makeRequest()
            namespaceLookup('sid', sid, object(), by_url)
            by_form = self._formRequest('sid=' + sid)
            for request in (by_url, by_form):
                used = manager.getClientId(request)
                self.assertEqual(used[:27], sid[:27])
                manager.refreshCookie(request)
                # ... is used for that request only.
                self.assertIsNone(request.response.getCookie('sid'))
        # From the cookie, a re-issued id is set as the cookie.
        request = makeRequest({'sid': older})
        self.assertEqual(request.response.getCookie('sid'), None)
        new = manager.getClientId(request)
        self.assertEqual(request.response.getCookie('sid')['value'], new)

    def test_source_without_id(self):
        manager = self._makeOne()
        self.assertIsNone(manager.getClientIdSource(makeRequest()))

    def test_create_false(self):
        manager = self._makeOne()
        request = makeRequest()
        self.assertIsNone(manager.getClientId(request, create=False))
        self.assertIsNone(request.response.getCookie('sid'))
        self.assertEqual(request.response.getHeaders(), [
            ('X-Powered-By', 'Zope (www.zope.org), Python (www.python.org)')])
        sid = manager.getClientId(request)
        self.assertEqual(manager.getClientId(request, create=False), sid)

    def test_encodeUrl(self):
        manager = self._makeOne()
        request = makeRequest()
        self.assertEqual(
            manager.encodeUrl('http://h/a', request, create=False),
            'http://h/a')
        sid = manager.getClientId(request)
        self.assertEqual(manager.encodeUrl('http://h/a', request),
                         'http://h/a?sid=' + sid)
        self.assertEqual(manager.encodeUrl('http://h/a?x=1#top', request),
                         'http://h/a?x=1&sid=%s#top' % sid)
        self.assertEqual(manager.encodeUrl('http://h/a/b', request, 'path'),
                         'http://h/++sid++%s/a/b' % sid)
        self.assertRaises(ValueError, manager.encodeUrl, 'http://h/', request,
                          'fragment')

    def test_encodeUrl_escapes_third_party_ids(self):
        manager = self._makeOne(thirdparty=True)
        request = makeRequest({'sid': "<x>&y'"})
        self.assertEqual(manager.encodeUrl('/a', request),
                         '/a?sid=%3Cx%3E%26y%27')
        self.assertEqual(
            manager.getHiddenFormField(request),
            '<input type="hidden" name="sid" value="&lt;x&gt;&amp;y&#x27;" />')

    def test_getHiddenFormField(self):
        manager = self._makeOne()
        request = makeRequest()
        self.assertEqual(manager.getHiddenFormField(request, create=False), '')
        sid = manager.getClientId(request)
        self.assertEqual(manager.getHiddenFormField(request),
                         '<input type="hidden" name="sid" value="%s" />' % sid)


class DuplicateCookiesTests(_ManagerTestCase):
    """A cookie tossed from a sibling subdomain never picks the session."""

    def test_two_cookies_of_our_name_are_both_ignored(self):
        manager = self._makeOne()
        ours, tossed = manager.generateUniqueId(), manager.generateUniqueId()
        for header in ('sid=%s; sid=%s' % (ours, tossed),
                       'sid=%s; other=1; sid=%s' % (tossed, ours),
                       'sid=%s;sid=junk' % ours):
            request = makeRequest(environ={'HTTP_COOKIE': header})
            with self.assertLogs('zope_sessionx.http', 'WARNING') as logs:
                self.assertIsNone(manager.getRequestId(request))
            new = manager.getClientId(request)
            self.assertNotIn(new, (ours, tossed))
            # The log says what happened, and names no id.
            self.assertIn("cookies named 'sid'", logs.output[0])
            self.assertNotIn(ours, ' '.join(logs.output))

    def test_host_prefix_cookie_is_not_confused_with_a_plain_one(self):
        manager = self._makeOne(hostPrefix=True)
        ours = manager.generateUniqueId()
        request = makeRequest(environ={
            'HTTP_COOKIE': 'sid=%s; __Host-sid=%s' % ('tossed', ours)})
        self.assertEqual(manager.getRequestId(request), ours)


class ExpireCookieTests(_ManagerTestCase):

    def test_expire_then_mint_again(self):
        manager = self._makeOne(cookieLifetime=None)
        sid = manager.generateUniqueId()
        request = makeRequest({'sid': sid})
        self.assertEqual(manager.getClientId(request), sid)
        manager.expireCookie(request)
        self.assertEqual(setCookieHeaders(request), [
            'sid=deleted; expires=Wed, 31 Dec 1997 23:59:59 GMT; HttpOnly;'
            ' Max-Age=0; Path=/; SameSite=Lax'])
        self.assertIsNone(manager.getClientId(request, create=False))
        self.assertIsNone(manager.getClientIdSource(request))
        new = manager.getClientId(request)
        self.assertNotEqual(new, sid)
        # The new cookie replaces the expiring one entirely.
        self.assertEqual(setCookieHeaders(request),
                         ['sid=%s; HttpOnly; Path=/; SameSite=Lax' % new])

    def test_expire_w_thirdparty_or_without_cookie_namespace(self):
        for settings in ({'thirdparty': True}, {'namespaces': ('form',)}):
            manager = self._makeOne(**settings)
            request = makeRequest()
            manager.expireCookie(request)
            self.assertEqual(setCookieHeaders(request), [])
