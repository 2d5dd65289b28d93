"""Interfaces and exceptions of zope_sessionx.

Every name that ``zope.session.interfaces`` (and ``zope.session.http``)
offers is offered here under the same name, with the same fields and
defaults, so that changing the import is all a user of zope.session has to
do.  What zope_sessionx adds is marked ``versionadded``.
"""
import re

from zope import schema
from zope.i18nmessageid import MessageFactory
from zope.interface import Attribute
from zope.interface import Interface
from zope.interface.common.mapping import IMapping
from zope.interface.common.mapping import IReadMapping
from zope.interface.common.mapping import IWriteMapping


_ = MessageFactory('zope_sessionx')

__docformat__ = 'restructuredtext'


class SessionError(Exception):
    """Base class of every exception zope_sessionx raises.

    .. versionadded:: 0.1
    """


class MissingClientIdException(SessionError):
    """The request carries no client id and none may be set on it.

    Raised by `IClientIdManager.getClientId` when the manager is not allowed
    to issue a new id for this request (third-party cookies, or
    ``postOnly`` and a request that is not a POST).  The ``request``
    attribute is the request concerned (or ``None``).
    """

    def __init__(self, request=None):
        super().__init__()
        self.request = request


class IClock(Interface):
    """The source of the current time.

    zope_sessionx asks for the time at every use, never at import, through
    the utility providing this interface if one is registered, and through
    :func:`time.time` otherwise.  Tests and benchmarks register a clock of
    their own to move time without sleeping.

    .. versionadded:: 0.1
    """

    def __call__():
        """Return the current time, in seconds since the epoch (a number)."""


class IClientIdManager(Interface):
    """Manages client identifiers.

    .. seealso:: `ICookieClientIdManager`
    """

    def getClientId(request):
        """Return the client id for *request* as a string.

        If the request carries no valid id a new one is generated and
        whatever is needed to have the client send it back (a cookie) is
        done.  Raises `MissingClientIdException` if the manager may not
        issue an id for this request.
        """


class IClientId(Interface):
    """A unique id representing a session."""

    def __str__():
        """Return the id as a unique ASCII string."""


class ICookieClientIdManager(IClientIdManager):
    """Manages client identification using a signed cookie.

    The fields are those of ``zope.session.http.ICookieClientIdManager``,
    with the same defaults.
    """

    namespace = schema.ASCIILine(
        title=_('Cookie Name'),
        description=_(
            "Name of the cookie used to maintain state. "
            "Must be unique to the site domain name, and only contain "
            "ASCII letters, digits and '_'"),
        required=True,
        min_length=1,
        max_length=30,
        constraint=re.compile(r"^[\d\w_]+$", re.ASCII).search,
    )

    cookieLifetime = schema.Int(
        title=_('Cookie Lifetime'),
        description=_(
            "Number of seconds until the browser expires the cookie. "
            "Leave blank to expire the cookie when the browser is quit. "
            "Set to 0 to never expire."),
        min=0,
        required=False,
        default=None,
        missing_value=None,
    )

    thirdparty = schema.Bool(
        title=_('Third party cookie'),
        description=_(
            "Is a third party (such as a front-end web server) issuing the "
            "identification cookie?  If so, no cookie is ever sent back; "
            "the cookie's value is taken as it is."),
        required=False,
        default=False,
    )

    domain = schema.TextLine(
        title=_('Effective domain'),
        description=_(
            "The Domain attribute of the cookie, for example "
            "'.example.org' to share the cookie with all subdomains."),
        required=False,
    )

    secure = schema.Bool(
        title=_('Request Secure communication'),
        required=False,
        default=False,
    )

    postOnly = schema.Bool(
        title=_('Only set cookie on POST requests'),
        required=False,
        default=False,
    )

    httpOnly = schema.Bool(
        title=_('The cookie cannot be accessed through client side scripts'),
        required=False,
        default=False,
    )

    secret = Attribute(
        "The secret (a string) that signs and verifies client ids. "
        "Never shown in logs.")

    def generateUniqueId():
        """Return a new, random, signed client id (a 54 character string).

        The first 27 characters encode 160 random bits from a CSPRNG, the
        last 27 an HMAC-SHA256 of them under `secret` (truncated to 160
        bits).
        """

    def getRequestId(request):
        """Return the client id the request carries, or ``None``.

        An id set on the response earlier in the same request wins over the
        request's cookie.  An id whose signature does not verify (malformed,
        tampered with, signed with another secret) is treated as absent.
        With ``thirdparty`` the cookie's value is returned unchecked.
        """

    def setRequestId(request, id):
        """Set the client id cookie on the request's response.

        Also sets headers asking caches not to store the ``Set-Cookie``
        header.  Does nothing (but log a warning) with ``thirdparty``.
        """


class ISessionDataContainer(IReadMapping, IWriteMapping):
    """Stores `ISessionData` objects, one per client id.

    Usage::

      session_data_container[client_id][product_id][key] = value

    The container is responsible for expiring data.  It does not support
    the full mapping interface: client ids must stay secret, so there are
    no ``keys()``, ``values()`` and so on.
    """

    timeout = schema.Int(
        title=_("Timeout"),
        description=_(
            "Number of seconds before data becomes stale and may "
            "be removed. A value of '0' means no expiration."),
        default=3600,
        required=True,
        min=0,
    )

    resolution = schema.Int(
        title=_("Timeout resolution (in seconds)"),
        description=_(
            "The last access time is recorded at most once per this many "
            "seconds.  Setting this higher means fewer writes, at the cost "
            "of data timing out up to this many seconds early."),
        default=10 * 60,
        required=True,
        min=0,
    )

    def __getitem__(client_id):
        """Return the `ISessionData` of *client_id*.

        Raises `KeyError` if there is none, or if it has expired.
        """

    def __setitem__(client_id, session_data):
        """Store an `ISessionData` for *client_id*."""


class IExpiringSessionDataContainer(ISessionDataContainer):
    """A session data container that expires data on every read.

    Expiry never depends on a sweep having run: data idle for longer than
    `timeout` is never returned.  Removing it from storage is a separate,
    explicit step (`sweep`), never done inside a request.

    .. versionadded:: 0.1
    """

    def __len__():
        """Return the number of stored sessions, in constant time.

        Sessions that have expired but have not been swept yet are counted.
        """

    def __delitem__(client_id):
        """Remove the session of *client_id* now; `KeyError` if absent."""

    def now():
        """Return the current time as the container sees it (`IClock`)."""

    def isExpired(session_data, now=None):
        """Return whether *session_data* has expired at *now*.

        *now* defaults to `now()`.  With a `timeout` of 0 nothing expires.
        """

    def sweep():
        """Remove expired sessions from storage; return how many."""


class ISession(Interface):
    """Gives the `ISessionPkgData` of a request's client for a product id.

    For example::

        session = ISession(request)[product_id]
        session['color'] = 'red'
        assert ISessionPkgData.providedBy(session)

    It is neither iterable nor a container: ``in`` raises `TypeError`,
    iterating raises `NotImplementedError`.
    """

    def __getitem__(product_id):
        """Return the relevant `ISessionPkgData`.

        This involves locating the correct `ISessionDataContainer` for the
        given product id (the utility named after it, else the unnamed
        one), determining the client id, and returning the relevant data.

        .. caution::
           This method creates the session for the client when it does
           not exist yet.
        """

    def get(product_id, default=None):
        """Return the relevant `ISessionPkgData`, or *default*.

        Creates nothing.
        """


class ISessionData(IMapping):
    """The session of one client: a mapping of product id to
    `ISessionPkgData`.
    """

    created = schema.Int(
        title=_("Creation time"),
        description=_(
            "Epoch time this session was first stored in a container, "
            "0 before that. It never changes afterwards."),
        default=0,
        readonly=True,
    )

    def getLastAccessTime():
        """Return the approximate epoch time this session was last read."""

    def setLastAccessTime(value):
        """Record *value* as the last access time.

        For `ISessionDataContainer` implementations.  The time never moves
        backwards: a value smaller than the recorded one is ignored.
        Concurrent settings never conflict: the largest value wins.
        """

    lastAccessTime = schema.Int(
        title=_("Last Access Time"),
        description=_(
            "Approximate epoch time this ISessionData was last retrieved "
            "from its ISessionDataContainer"),
        default=0,
        required=True,
    )


class ISessionPkgData(IMapping):
    """The data of one product id in one client's session.

    Data is stored persistently and transactionally.  Values must be
    persistent or picklable.  Writes of different keys by concurrent
    requests do not conflict.
    """
