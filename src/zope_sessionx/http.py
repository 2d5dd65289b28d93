"""Client identification with a signed cookie.

Ids keep zope.session's 54 character shape: 27 characters naming 160 bits
from :mod:`secrets`, then 27 characters of an HMAC-SHA256 of them
(truncated to 160 bits), checked with :func:`hmac.compare_digest`.
"""
import base64
import hashlib
import hmac
import logging
import secrets
from email.utils import formatdate

import zope.location
from persistent import Persistent
from zope import component
from zope.interface import implementer
from zope.publisher.interfaces.http import IHTTPApplicationRequest
from zope.publisher.interfaces.http import IHTTPRequest
from zope.schema.fieldproperty import FieldProperty

from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ICookieClientIdManager
from zope_sessionx.interfaces import MissingClientIdException
from zope_sessionx.session import currentTime


__all__ = [
    'CookieClientIdManager',
    'ICookieClientIdManager',
    'MissingClientIdException',
    'notifyVirtualHostChanged',
]

logger = logging.getLogger(__name__)

#: Bytes of randomness in an id, and bytes of signature kept.
ID_BYTES = 20
#: Length of the encoded id part and of the whole client id.
ID_CHARS = 27
CLIENT_ID_LENGTH = 2 * ID_CHARS

_ALPHABET = frozenset(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.')
_TRANSLATION = bytes.maketrans(b'+/', b'-.')
# zope.session's far-future date for a cookie that should "never" expire.
_NEVER = 'Tue, 19 Jan 2038 00:00:00 GMT'


def _encode(raw):
    # zope.session's encoding: base64 without padding, '+/' made '-.' so
    # that the value needs no quoting in a cookie or a URL.
    return base64.b64encode(raw).rstrip(b'=').translate(_TRANSLATION)


def _sign(secret, id_part):
    mac = hmac.new(secret.encode('utf-8'), id_part, hashlib.sha256)
    return _encode(mac.digest()[:ID_BYTES])


@implementer(ICookieClientIdManager)
class CookieClientIdManager(zope.location.Location, Persistent):
    """See `ICookieClientIdManager`.

    *namespace* (the cookie name) and *secret* are generated when not
    given; give a constant *secret* when the manager is not stored in the
    ZODB, or ids change at every restart.
    """

    thirdparty = FieldProperty(ICookieClientIdManager['thirdparty'])
    cookieLifetime = FieldProperty(ICookieClientIdManager['cookieLifetime'])
    secure = FieldProperty(ICookieClientIdManager['secure'])
    postOnly = FieldProperty(ICookieClientIdManager['postOnly'])
    domain = FieldProperty(ICookieClientIdManager['domain'])
    namespace = FieldProperty(ICookieClientIdManager['namespace'])
    httpOnly = FieldProperty(ICookieClientIdManager['httpOnly'])

    def __init__(self, namespace=None, secret=None):
        if namespace is None:
            namespace = 'zope3_cs_%x' % (int(currentTime()) - 1000000000)
        if secret is None:
            secret = secrets.token_urlsafe(32)
        self.namespace = namespace
        self.secret = secret

    def __repr__(self):
        # Never show the secret.
        return '<{} namespace={!r}>'.format(
            self.__class__.__name__, self.namespace)

    def randomBytes(self, n):
        """Return *n* random bytes from the operating system's CSPRNG.

        The one source of randomness of ids; a subclass may replace it.
        """
        return secrets.token_bytes(n)

    def getClientId(self, request):
        """See `IClientIdManager`."""
        sid = self.getRequestId(request)
        if sid is None:
            if self.thirdparty or (self.postOnly and request.method != 'POST'):
                raise MissingClientIdException(request)
            sid = self.generateUniqueId()
            self.setRequestId(request, sid)
        elif not self.thirdparty and self.cookieLifetime:
            # A finite lifetime is renewed on every request, so that an
            # active client does not lose its cookie.
            self.setRequestId(request, sid)
        return sid

    def generateUniqueId(self):
        """See `ICookieClientIdManager`."""
        id_part = _encode(self.randomBytes(ID_BYTES))
        return (id_part + _sign(self.secret, id_part)).decode('ascii')

    def _verify(self, sid):
        if (not isinstance(sid, str) or len(sid) != CLIENT_ID_LENGTH
                or not _ALPHABET.issuperset(sid)):
            return False
        id_part, mac = sid[:ID_CHARS], sid[ID_CHARS:]
        expected = _sign(self.secret, id_part.encode('ascii'))
        return hmac.compare_digest(expected, mac.encode('ascii'))

    def getRequestId(self, request):
        """See `ICookieClientIdManager`."""
        # An id set on the response earlier in this request wins: it may
        # be a brand-new one.  It is checked like any other.
        response_cookie = request.response.getCookie(self.namespace)
        if response_cookie:
            sid = response_cookie['value']
        else:
            request = IHTTPApplicationRequest(request)
            sid = request.getCookies().get(self.namespace)
        if self.thirdparty:
            return sid
        if sid is None or not self._verify(sid):
            return None
        return sid

    def setRequestId(self, request, id):
        """See `ICookieClientIdManager`."""
        if self.thirdparty:
            logger.warning('ClientIdManager is using thirdparty cookies, '
                           'ignoring setIdRequest call')
            return
        options = {}
        if self.cookieLifetime is not None:
            if self.cookieLifetime:
                options['expires'] = formatdate(
                    currentTime() + self.cookieLifetime,
                    localtime=False, usegmt=True)
            else:
                options['expires'] = _NEVER
        if self.secure:
            options['secure'] = True
        if self.domain:
            options['domain'] = self.domain
        if self.httpOnly:
            options['HttpOnly'] = True
        response = request.response
        response.setCookie(
            self.namespace, id,
            path=request.getApplicationURL(path_only=True),
            **options)
        # Ask caches not to store the Set-Cookie header, so that one
        # client's id is never handed to another.
        response.setHeader('Cache-Control',
                           'no-cache="Set-Cookie,Set-Cookie2"')
        response.setHeader('Pragma', 'no-cache')
        response.setHeader('Expires', 'Mon, 26 Jul 1997 05:00:00 GMT')


def notifyVirtualHostChanged(event):
    """Re-set client id cookies when virtual hosting changes the paths.

    A subscriber for
    `zope.publisher.interfaces.http.IHTTPVirtualHostChangedEvent`: every
    cookie client id manager that already set its cookie on the response
    sets it again, so that its path follows the new application URL.
    """
    if event.request is None:
        return
    request = IHTTPRequest(event.request)
    for _name, manager in component.getUtilitiesFor(IClientIdManager):
        if (ICookieClientIdManager.providedBy(manager)
                and not manager.thirdparty):
            cookie = request.response.getCookie(manager.namespace)
            if cookie:
                manager.setRequestId(request, cookie['value'])
