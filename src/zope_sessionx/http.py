"""Client identification with a signed cookie (and optionally form and URL).

Ids keep zope.session's 54 character shape: 27 characters naming 160 bits
from :mod:`secrets`, then 27 characters of an HMAC-SHA256 of them
(truncated to 160 bits), checked with :func:`hmac.compare_digest`.
"""
import base64
import hashlib
import hmac
import html
import logging
import secrets as _secrets
from email.utils import formatdate
from urllib.parse import quote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import zope.location
from persistent import Persistent
from zope import component
from zope.interface import implementer
from zope.publisher.interfaces.http import IHTTPRequest
from zope.traversing.interfaces import ITraversable

from zope_sessionx._field import FieldProperty
from zope_sessionx.clock import currentTime
from zope_sessionx.interfaces import COOKIE
from zope_sessionx.interfaces import COOKIE_LIFETIME_KEY
from zope_sessionx.interfaces import FORM
from zope_sessionx.interfaces import NEW
from zope_sessionx.interfaces import PREVIOUS_CLIENT_ID_KEY
from zope_sessionx.interfaces import CookiePolicyError
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import MissingClientIdException


__all__ = [
    'ClientIdNamespace',
    'CookieClientIdManager',
    'ICookieClientIdManager',
    'MissingClientIdException',
    'digestEncode',
    'notifyVirtualHostChanged',
    'overHTTPS',
]

logger = logging.getLogger(__name__)

#: Bytes of randomness in an id, and bytes of signature kept.
ID_BYTES = 20
#: Length of the encoded id part and of the whole client id.
ID_CHARS = 27
CLIENT_ID_LENGTH = 2 * ID_CHARS
#: The name of the URL path namespace: ``/++sid++<client id>/``.
URL_NAMESPACE = 'sid'
#: What ``cookieLifetime = 0`` means: as long as browsers keep a cookie.
MAX_COOKIE_LIFETIME = 400 * 24 * 60 * 60
#: The fewest characters the signing secret may have.
MIN_SECRET_LENGTH = 32

# Request annotations: the id decided for this request (None once the
# cookie is expired), where it came from, and the id of a URL segment.
_ID_KEY = 'zope_sessionx.client_id'
_SOURCE_KEY = 'zope_sessionx.client_id_source'
_URL_ID_KEY = 'zope_sessionx.url_client_id'

_ALPHABET = frozenset(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.')
_TRANSLATION = bytes.maketrans(b'+/', b'-.')
_EXPIRED = 'Wed, 31 Dec 1997 23:59:59 GMT'

# What a signature verified with: the current secret, an older one, or
# zope.session's HMAC-SHA1.
_CURRENT, _OLDER, _LEGACY = 'current', 'older', 'legacy'


def _encode(raw):
    # zope.session's encoding: base64 without padding, '+/' made '-.' so
    # that the value needs no quoting in a cookie or a URL.
    return base64.b64encode(raw).rstrip(b'=').translate(_TRANSLATION)


def digestEncode(s):
    """Encode a digest for a cookie exactly as zope.session does.

    Kept for code that imported zope.session's helper; the ids of this
    package are encoded the same way for 20 byte digests.
    """
    return base64.encodebytes(s)[:-2].translate(_TRANSLATION)


def _sign(secret, id_part, digestmod=hashlib.sha256):
    mac = hmac.new(secret.encode('utf-8'), id_part, digestmod)
    return _encode(mac.digest()[:ID_BYTES])


def overHTTPS(request):
    """Return whether *request* came over TLS, as its server says.

    Reads the transport, never the URL a client can choose (a virtual
    host path segment such as ``++vh++https:...``, say): the CGI
    ``HTTPS`` and ``SERVER_PORT_SECURE`` variables and WSGI's
    ``wsgi.url_scheme``, which servers such as waitress set from trusted
    proxies' headers only.
    """
    environ = getattr(request, 'environment', None) or {}
    return (str(environ.get('HTTPS', '')).lower() in ('on', '1')
            or environ.get('SERVER_PORT_SECURE') == '1'
            or environ.get('wsgi.url_scheme') == 'https')


def _checkCookiePolicy(setting, value, hostPrefix, domain, cookiePath):
    if hostPrefix and domain:
        raise CookiePolicyError(
            setting, value, 'a __Host- cookie may not have a Domain')
    if hostPrefix and cookiePath not in (None, '/'):
        raise CookiePolicyError(
            setting, value, "a __Host- cookie must have Path=/")


def _Setting(name, secret=False):
    # Every cookie setting is validated by its field, and refused with a
    # CookiePolicyError naming it.
    return FieldProperty(ICookieClientIdManager[name], CookiePolicyError,
                         secret=secret)


@implementer(ICookieClientIdManager)
class CookieClientIdManager(zope.location.Location, Persistent):
    """See `ICookieClientIdManager`.

    *namespace* (the cookie name) and *secret* are generated when not
    given; give a constant *secret* when the manager is not stored in the
    ZODB, or ids change at every restart.  Any other setting of
    `ICookieClientIdManager` may be given by keyword.
    """

    thirdparty = _Setting('thirdparty')
    cookieLifetime = _Setting('cookieLifetime')
    secure = _Setting('secure')
    autoSecure = _Setting('autoSecure')
    postOnly = _Setting('postOnly')
    domain = _Setting('domain')
    cookiePath = _Setting('cookiePath')
    namespace = _Setting('namespace')
    httpOnly = _Setting('httpOnly')
    sameSite = _Setting('sameSite')
    hostPrefix = _Setting('hostPrefix')
    namespaces = _Setting('namespaces')
    acceptLegacyIds = _Setting('acceptLegacyIds')
    strictIds = _Setting('strictIds')
    secrets = _Setting('secrets', secret=True)

    def __init__(self, namespace=None, secret=None, **settings):
        if namespace is None:
            namespace = 'zope3_cs_%x' % (int(currentTime()) - 1000000000)
        if secret is None:
            secret = _secrets.token_urlsafe(32)
        self.namespace = namespace
        self.secret = secret
        for name, value in settings.items():
            if name not in ICookieClientIdManager:
                raise TypeError('unknown setting {!r}'.format(name))
            setattr(self, name, value)

    def __setattr__(self, name, value):
        # The __Host- prefix constrains Domain and Path: refuse a setting
        # that would make browsers drop the cookie.
        if name in ('hostPrefix', 'domain', 'cookiePath'):
            policy = {'hostPrefix': self.hostPrefix, 'domain': self.domain,
                      'cookiePath': self.cookiePath}
            policy[name] = value
            _checkCookiePolicy(name, value, **policy)
        elif (name == 'secrets' and isinstance(value, tuple) and value
                and isinstance(value[0], str)
                and len(value[0]) < MIN_SECRET_LENGTH):
            # Only older secrets (which verify, never sign) may be short:
            # zope.session's own are 22 characters.
            raise CookiePolicyError(
                'secrets', '<secret>',
                'the first secret, which signs, must have at least {} '
                'characters'.format(MIN_SECRET_LENGTH))
        super().__setattr__(name, value)

    def __repr__(self):
        # Never show the secrets.
        return '<{} namespace={!r}>'.format(
            self.__class__.__name__, self.namespace)

    @property
    def secret(self):
        """See `ICookieClientIdManager`."""
        return self.secrets[0]

    @secret.setter
    def secret(self, value):
        self.secrets = (value,)

    @property
    def cookieName(self):
        """See `ICookieClientIdManager`."""
        if self.hostPrefix:
            return '__Host-' + self.namespace
        return self.namespace

    def randomBytes(self, n):
        """Return *n* random bytes from the operating system's CSPRNG.

        The one source of randomness of ids; a subclass may replace it.
        """
        return _secrets.token_bytes(n)

    # -- ids ---------------------------------------------------------------

    def generateUniqueId(self):
        """See `ICookieClientIdManager`."""
        id_part = _encode(self.randomBytes(ID_BYTES))
        return (id_part + _sign(self.secret, id_part)).decode('ascii')

    def _classify(self, sid):
        """Return which kind of key signed *sid*, or None if none did."""
        if (not isinstance(sid, str) or len(sid) != CLIENT_ID_LENGTH
                or not _ALPHABET.issuperset(sid)):
            return None
        id_part = sid[:ID_CHARS].encode('ascii')
        mac = sid[ID_CHARS:].encode('ascii')
        for index, secret in enumerate(self.secrets):
            if hmac.compare_digest(_sign(secret, id_part), mac):
                return _OLDER if index else _CURRENT
        if self.acceptLegacyIds:
            for secret in self.secrets:
                legacy = _sign(secret, id_part, hashlib.sha1)
                if hmac.compare_digest(legacy, mac):
                    return _LEGACY
        return None

    def _candidates(self, request):
        annotations = request.annotations
        if _ID_KEY in annotations:
            # Decided earlier in this request (set, re-issued or expired).
            return [(annotations[_ID_KEY], annotations.get(_SOURCE_KEY))]
        candidates = []
        for namespace in self.namespaces:
            if namespace == COOKIE:
                value = self._cookieValue(request)
            elif namespace == FORM:
                form = getattr(request, 'form', None) or {}
                value = form.get(self.namespace)
            else:
                value = annotations.get(_URL_ID_KEY)
            candidates.append((value, namespace))
        return candidates

    def _cookieValue(self, request):
        # With two cookies of our name (one tossed from a sibling
        # subdomain, say), zope.publisher keeps the last, which the client
        # does not control the order of: take neither.
        name = self.cookieName
        header = request.getHeader('Cookie') or ''
        names = [part.split('=', 1)[0].strip() for part in header.split(';')]
        if names.count(name) > 1:
            logger.warning('ignoring %d cookies named %r: a duplicate may '
                           'have been set from another site',
                           names.count(name), name)
            return None
        return request.getCookies().get(name)

    def _find(self, request):
        """Return (id, kind, source) for the request's id, or Nones."""
        for sid, source in self._candidates(request):
            if sid is None:
                continue
            if self.thirdparty:
                return sid, _CURRENT, source
            kind = self._classify(sid)
            if kind is not None:
                return sid, kind, source
        return None, None, None

    def getRequestId(self, request):
        """See `ICookieClientIdManager`."""
        return self._find(request)[0]

    def getClientId(self, request, create=True):
        """See `ICookieClientIdManager`."""
        sid, kind, source = self._find(request)
        annotations = request.annotations
        if sid is None:
            if not create:
                return None
            if self.thirdparty or (self.postOnly and request.method != 'POST'):
                raise MissingClientIdException(request)
            return self.newClientId(request)
        if _ID_KEY not in annotations:
            annotations[_SOURCE_KEY] = source
        if self.thirdparty or kind == _CURRENT:
            return sid
        if kind == _OLDER:
            # Re-issue under the current secret, keeping the id part, so
            # that concurrent requests with the old id agree on the new.
            new = sid[:ID_CHARS].encode('ascii')
            new = (new + _sign(self.secret, new)).decode('ascii')
        else:
            # zope.session's random part came from random.random(): a
            # fresh one.
            new = self.generateUniqueId()
        annotations[PREVIOUS_CLIENT_ID_KEY] = sid
        if source == COOKIE:
            self.setRequestId(request, new)
        else:
            # An id from a URL or a form is for this request only: never
            # turn it into a cookie.
            annotations[_ID_KEY] = new
        return new

    def _lifetime(self, request):
        # A session with an expiry of its own says how long its cookie
        # lasts (see ISessionLifetime).
        return request.annotations.get(COOKIE_LIFETIME_KEY,
                                       self.cookieLifetime)

    def refreshCookie(self, request):
        """See `ICookieClientIdManager`."""
        if (self._lifetime(request) is None or self.thirdparty
                or self.getClientIdSource(request) not in (COOKIE, NEW)):
            return
        self.setRequestId(request, self.getRequestId(request))

    def newClientId(self, request):
        """See `ICookieClientIdManager`."""
        sid = self.generateUniqueId()
        self.setRequestId(request, sid)
        request.annotations[_SOURCE_KEY] = NEW
        return sid

    def getClientIdSource(self, request):
        """See `ICookieClientIdManager`."""
        sid, kind, source = self._find(request)
        if sid is None:
            return None
        return source

    # -- the cookie --------------------------------------------------------

    def _secureFor(self, request):
        return (self.secure or self.hostPrefix or self.sameSite == 'None'
                or (self.autoSecure and overHTTPS(request)))

    def _cookieOptions(self, request):
        if self.hostPrefix:
            path = '/'
        else:
            path = (self.cookiePath
                    or request.getApplicationURL(path_only=True))
        options = {'path': path}
        if self.domain and not self.hostPrefix:
            options['domain'] = self.domain
        if self._secureFor(request):
            options['secure'] = True
        if self.httpOnly:
            options['httponly'] = True
        if self.sameSite:
            options['samesite'] = self.sameSite
        return options

    def _forgetCookie(self, response):
        # zope.publisher's setCookie() adds to an existing entry, which
        # would keep the Max-Age=0 of an expired cookie: start afresh.
        getattr(response, '_cookies', {}).pop(self.cookieName, None)

    def setRequestId(self, request, id):
        """See `ICookieClientIdManager`."""
        if self.thirdparty:
            logger.warning('ClientIdManager is using thirdparty cookies, '
                           'ignoring setIdRequest call')
            return
        request.annotations[_ID_KEY] = id
        if COOKIE not in self.namespaces:
            return
        options = self._cookieOptions(request)
        lifetime = self._lifetime(request)
        if lifetime is not None:
            seconds = lifetime or MAX_COOKIE_LIFETIME
            options['max_age'] = seconds
            options['expires'] = formatdate(
                currentTime() + seconds, localtime=False, usegmt=True)
        response = request.response
        self._forgetCookie(response)
        response.setCookie(self.cookieName, id, **options)
        self._noStore(response)

    def _noStore(self, response):
        # No shared cache may store a response that sets a client's id,
        # or it would hand the id to other clients.  What the application
        # said about caching is kept, but for 'public' (which 'private'
        # overrides).
        directives = [part.strip() for part in
                      (response.getHeader('Cache-Control') or '').split(',')
                      if part.strip()]
        names = [part.split('=', 1)[0].strip().lower()
                 for part in directives]
        kept = [part for part, name in zip(directives, names)
                if name != 'public']
        if 'private' not in names and 'no-store' not in names:
            kept.append('private')
        response.setHeader('Cache-Control', ', '.join(kept))
        if response.getHeader('Expires') is None:
            # For HTTP/1.0 caches, which know no Cache-Control.
            response.setHeader('Expires', 'Mon, 26 Jul 1997 05:00:00 GMT')
        vary = response.getHeader('Vary')
        if not vary:
            response.setHeader('Vary', 'Cookie')
        elif 'cookie' not in [v.strip().lower() for v in vary.split(',')]:
            response.setHeader('Vary', vary + ', Cookie')

    def expireCookie(self, request):
        """See `ICookieClientIdManager`."""
        request.annotations[_ID_KEY] = None
        request.annotations.pop(_SOURCE_KEY, None)
        if self.thirdparty or COOKIE not in self.namespaces:
            return
        response = request.response
        self._forgetCookie(response)
        options = self._cookieOptions(request)
        options.update(max_age=0, expires=_EXPIRED)
        response.setCookie(self.cookieName, 'deleted', **options)
        self._noStore(response)

    # -- ids in URLs and forms ---------------------------------------------

    def encodeUrl(self, url, request, style='query', create=True):
        """See `ICookieClientIdManager`."""
        if style not in ('query', 'path'):
            raise ValueError('style must be query or path, not %r' % style)
        sid = self.getClientId(request, create=create)
        if sid is None:
            return url
        value = html.escape(quote(sid, safe=''))
        scheme, netloc, path, query, fragment = urlsplit(url)
        if style == 'query':
            added = '{}={}'.format(self.namespace, value)
            query = query + '&' + added if query else added
        else:
            path = '/++{}++{}{}'.format(URL_NAMESPACE, value, path)
        return urlunsplit((scheme, netloc, path, query, fragment))

    def getHiddenFormField(self, request, create=True):
        """See `ICookieClientIdManager`."""
        sid = self.getClientId(request, create=create)
        if sid is None:
            return ''
        return '<input type="hidden" name="{}" value="{}" />'.format(
            html.escape(self.namespace), html.escape(sid))


@implementer(ITraversable)
class ClientIdNamespace:
    """The ``++sid++<client id>`` path namespace.

    Records the id for `CookieClientIdManager` (when ``'url'`` is one of
    its namespaces) and traverses to the same object, so the segment may
    stand anywhere in a path.
    """

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def traverse(self, name, furtherPath):
        self.request.annotations[_URL_ID_KEY] = name
        return self.context


def notifyVirtualHostChanged(event):
    """Re-set client id cookies when virtual hosting changes the paths.

    A subscriber for
    `zope.publisher.interfaces.http.IHTTPVirtualHostChangedEvent`: every
    cookie client id manager that already set its cookie on the response
    sets it again, so that its path follows the new application URL.
    Works with any implementation of zope.session's
    ``ICookieClientIdManager`` contract: the cookie is looked up under
    ``cookieName`` where the manager has one, else under ``namespace``.
    """
    if event.request is None:
        return
    request = IHTTPRequest(event.request)
    for _name, manager in component.getUtilitiesFor(IClientIdManager):
        if (not ICookieClientIdManager.providedBy(manager)
                or getattr(manager, 'thirdparty', False)):
            continue
        name = getattr(manager, 'cookieName', None) or manager.namespace
        cookie = request.response.getCookie(name)
        if cookie and cookie['value'] != 'deleted':
            manager.setRequestId(request, cookie['value'])
