"""``Secure`` follows the transport, never the URL a client chooses."""
import http.client
import unittest
from io import BytesIO

from webtest.http import StopableWSGIServer
from zope.component import provideUtility
from zope.configuration import xmlconfig
from zope.publisher.browser import BrowserRequest

import zope_sessionx
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.tests.helpers import SECRET
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import virtualHost


def setCookies(request):
    return [value for name, value in request.response.getHeaders()
            if name.lower() == 'set-cookie']


class VirtualHostTests(ComponentsTestCase):
    """Through the real ``++vh++`` namespace and the package's subscriber."""

    def setUp(self):
        super().setUp()
        import zope.traversing
        xmlconfig.file('configure.zcml', zope.traversing)
        xmlconfig.file('configure.zcml', zope_sessionx)
        self.manager = CookieClientIdManager('sid', SECRET)
        provideUtility(self.manager, IClientIdManager)

    def test_https_transport_stays_secure_behind_an_http_virtual_host(self):
        request = makeRequest(environ={'HTTPS': 'on'})
        self.manager.getClientId(request)
        # The application URL now says http: the subscriber re-sets the
        # cookie for the new path, and keeps it Secure.
        virtualHost(request, 'http:site:80', ['app'])
        self.assertTrue(request.getApplicationURL().startswith('http:'))
        header, = setCookies(request)
        self.assertIn('Path=/app', header)
        self.assertTrue(header.endswith('Secure'))

    def test_https_transport_secure_when_the_cookie_is_set_after(self):
        request = makeRequest(environ={'HTTPS': 'on'})
        virtualHost(request, 'http:site:80')
        self.manager.getClientId(request)
        self.assertTrue(setCookies(request)[0].endswith('Secure'))

    def test_an_https_url_over_plain_http_is_not_secure(self):
        # Anyone can put ++vh++https:... in a URL.
        request = makeRequest()
        virtualHost(request, 'https:site:443')
        self.assertTrue(request.getApplicationURL().startswith('https:'))
        self.manager.getClientId(request)
        self.assertNotIn('Secure', setCookies(request)[0])

    def test_subscriber_works_with_a_manager_of_zope_sessions_contract(self):
        # A manager of zope.session's ICookieClientIdManager contract has
        # no cookieName: the subscriber uses its namespace.
        import zope.session.http
        from zope.interface import implementer

        from zope_sessionx.interfaces import ICookieClientIdManager

        @implementer(ICookieClientIdManager)
        class Theirs(zope.session.http.CookieClientIdManager):
            pass

        theirs = Theirs('theirs', 'their secret')
        self.assertFalse(hasattr(theirs, 'cookieName'))
        provideUtility(theirs, IClientIdManager)
        request = makeRequest()
        sid = theirs.getClientId(request)
        virtualHost(request, 'http:site:80', ['app'])
        cookie = request.response.getCookie('theirs')
        self.assertEqual((cookie['value'], cookie['path']), (sid, '/app'))


class _Server:
    """waitress on a free port of 127.0.0.1, in a thread (WebTest's)."""

    def __init__(self, app, **options):
        self.server = StopableWSGIServer.create(app, host='127.0.0.1',
                                                **options)
        self.port = self.server.effective_port

    def get(self, headers=None):
        connection = http.client.HTTPConnection('127.0.0.1', self.port,
                                                timeout=30)
        try:
            connection.request('GET', '/', headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.getheader('Set-Cookie')
        finally:
            connection.close()

    def close(self):
        self.server.shutdown()
        self.server.runner.join(30)


class WaitressTests(unittest.TestCase):
    """Over real sockets, as waitress tells the application the scheme."""

    def setUp(self):
        self.manager = CookieClientIdManager('sid', SECRET)

    def _app(self, environ, start_response):
        request = BrowserRequest(environ['wsgi.input'] or BytesIO(), environ)
        self.manager.getClientId(request)
        start_response('200 OK', request.response.getHeaders())
        return [b'ok']

    def _serve(self, **options):
        server = _Server(self._app, **options)
        self.addCleanup(server.close)
        return server

    def test_trusted_proxy_saying_https_makes_it_secure(self):
        server = self._serve(trusted_proxy='127.0.0.1',
                             trusted_proxy_headers={'x-forwarded-proto'})
        self.assertTrue(
            server.get({'X-Forwarded-Proto': 'https'}).endswith('Secure'))
        self.assertNotIn('Secure', server.get())

    def test_untrusted_proxy_header_is_ignored(self):
        server = self._serve()
        self.assertNotIn('Secure',
                         server.get({'X-Forwarded-Proto': 'https'}))

    def test_url_scheme_https_makes_it_secure(self):
        server = self._serve(url_scheme='https')
        self.assertTrue(server.get().endswith('Secure'))
