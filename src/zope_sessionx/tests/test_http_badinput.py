"""Bad client ids, from cookies and forms, through real requests.

Property-based: whatever a client sends that the server did not sign, it
gets a fresh id, no exception escapes, and nothing is written until it
writes.  Part of test_http's subject, kept apart for its size.
"""
import re
import unittest
from io import BytesIO

import zope.component
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from zope.i18n.interfaces import IUserPreferredCharsets
from zope.publisher.browser import BrowserRequest
from zope.publisher.http import HTTPCharsets
from zope.publisher.interfaces.http import IHTTPRequest

from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.session import ClientId
from zope_sessionx.session import Session
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


SECRET = 'the-real-secret-the-real-secret-the-real'
# The same examples on every run (CI must not depend on luck); large
# values are the point here, not a problem.
SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
_other = CookieClientIdManager('sid', 'another-secret-another-secret-another')
_ours = CookieClientIdManager('sid', SECRET)
VALID = _ours.generateUniqueId()
ALPHABET = ('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
            '0123456789-.')


def _mutations(valid):
    """Ids that are almost right."""
    return st.one_of(
        st.integers(0, 53).map(lambda n: valid[:n]),            # truncated
        st.text(ALPHABET, min_size=1, max_size=3).map(
            lambda extra: valid + extra),                         # too long
        st.tuples(st.integers(0, 53), st.sampled_from(ALPHABET)).filter(
            lambda t: valid[t[0]] != t[1]).map(
            lambda t: valid[:t[0]] + t[1] + valid[t[0] + 1:]),   # one flip
        st.just(_other.generateUniqueId()),                       # other key
        st.text(ALPHABET, min_size=54, max_size=54),              # guessed
    )


# Values a client can put in a header: WSGI hands them over as latin-1.
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xff)
BAD_VALUES = st.one_of(
    st.just(''),
    st.text(LATIN1, max_size=80),                                 # junk
    st.text(LATIN1, min_size=4097, max_size=6000),                # oversized
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0xff),
            min_size=54, max_size=54),                            # non-ASCII
    _mutations(VALID),
)


def setCookieHeaders(request):
    return [value for name, value in request.response.getHeaders()
            if name == 'Set-Cookie']


class BadInputTests(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        installClock()
        zope.component.provideAdapter(ClientId, provides=IClientId)
        zope.component.provideAdapter(Session, provides=ISession)
        zope.component.provideAdapter(
            HTTPCharsets, (IHTTPRequest,), IUserPreferredCharsets)

    def tearDown(self):
        tearDownComponents()

    def _configure(self, **settings):
        manager = CookieClientIdManager('sid', SECRET, **settings)
        zope.component.provideUtility(manager, IClientIdManager)
        sdc = PersistentSessionDataContainer()
        zope.component.provideUtility(sdc, ISessionDataContainer)
        return manager, sdc

    def _request(self, environ):
        request = BrowserRequest(BytesIO(), environ)
        request.processInputs()
        return request

    def _assertFreshAndLazy(self, request, manager, sdc, sent):
        # Reading stores nothing and sets no cookie ...
        session = ISession(request)
        self.assertIsNone(session.get('products.foo'))
        self.assertNotIn('k', session['products.foo'])
        self.assertEqual(len(sdc), 0)
        self.assertEqual(setCookieHeaders(request), [])
        # ... writing mints a fresh, valid id.
        session['products.foo']['k'] = 'v'
        new = request.response.getCookie('sid')['value']
        self.assertNotIn(new, sent)
        self.assertEqual(manager.getClientIdSource(request), 'new')
        self.assertIsNotNone(manager._classify(new))
        self.assertEqual(setCookieHeaders(request),
                         ['sid=%s; HttpOnly; Path=/; SameSite=Lax' % new])
        self.assertEqual(len(sdc), 1)

    @settings(max_examples=150, **SETTINGS)
    @given(values=st.lists(BAD_VALUES, min_size=1, max_size=3))
    def test_bad_cookies(self, values):
        manager, sdc = self._configure()
        # Duplicated cookies included: every one of them is bad.
        header = '; '.join('sid=' + value for value in values)
        request = self._request({'HTTP_COOKIE': header})
        self._assertFreshAndLazy(request, manager, sdc, values)

    @settings(max_examples=100, **SETTINGS)
    @given(header=st.text(LATIN1, max_size=200))
    def test_arbitrary_cookie_headers(self, header):
        manager, sdc = self._configure()
        request = self._request({'HTTP_COOKIE': header})
        sent = request.getCookies().get('sid')
        if manager.getRequestId(request) is not None:
            # Only our own ids verify; a random header is not one.
            self.fail('accepted %r' % sent)
        self._assertFreshAndLazy(request, manager, sdc, [sent])

    @settings(max_examples=100, **SETTINGS)
    @given(values=st.lists(BAD_VALUES.filter(lambda v: len(v) < 2000),
                           min_size=1, max_size=2))
    def test_bad_form_values(self, values):
        from urllib.parse import urlencode
        manager, sdc = self._configure(namespaces=('form', 'cookie'))
        query = urlencode([('sid', value) for value in values])
        request = self._request({'QUERY_STRING': query})
        self._assertFreshAndLazy(request, manager, sdc, values)

    def test_valid_id_accepted(self):
        # The control: the same path with a good id of a client that has
        # a session finds the client.
        from zope_sessionx.data import SessionData
        manager, sdc = self._configure()
        sdc[VALID] = SessionData()
        request = self._request({'HTTP_COOKIE': 'sid=' + VALID})
        ISession(request)['products.foo']['k'] = 'v'
        self.assertEqual(str(IClientId(request)), VALID)
        self.assertEqual(setCookieHeaders(request), [])
        self.assertTrue(re.match('^[A-Za-z0-9.-]{54}$', VALID))
