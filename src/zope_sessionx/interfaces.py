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


#: Where a client id can be carried, in `ICookieClientIdManager.namespaces`
#: and as returned by `ICookieClientIdManager.getClientIdSource`.
COOKIE = 'cookie'
FORM = 'form'
URL = 'url'
#: `ICookieClientIdManager.getClientIdSource` for an id issued during the
#: request.
NEW = 'new'


class ICookieClientIdManager(IClientIdManager):
    """Manages client identification using a signed cookie.

    Has every field of ``zope.session.http.ICookieClientIdManager``.  The
    defaults differ where zope.session's were not secure: see the
    migration guide.
    """

    namespace = schema.ASCIILine(
        title=_('Cookie Name'),
        description=_(
            "Name of the cookie used to maintain state (and of the form "
            "variable, if that namespace is used).  Must be unique to the "
            "site domain name, and only contain ASCII letters, digits and "
            "'_'"),
        required=True,
        min_length=1,
        max_length=30,
        constraint=re.compile(r"^[\d\w_]+$", re.ASCII).search,
    )

    cookieLifetime = schema.Int(
        title=_('Cookie Lifetime'),
        description=_(
            "Number of seconds until the browser expires the cookie "
            "(sent as both Max-Age and Expires). "
            "Leave blank to expire the cookie when the browser is quit. "
            "Set to 0 for as long as browsers keep cookies (400 days)."),
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
            "'.example.org' to share the cookie with all subdomains. "
            "Refused with the __Host- prefix."),
        required=False,
    )

    cookiePath = schema.TextLine(
        title=_('Cookie path'),
        description=_(
            "The Path attribute of the cookie.  Leave blank for the "
            "application URL's path (zope.session's behaviour). "
            "Must be '/' or blank with the __Host- prefix.\n\n"
            ".. versionadded:: 0.1"),
        required=False,
        default=None,
    )

    secure = schema.Bool(
        title=_('Request Secure communication'),
        description=_(
            "Always mark the cookie Secure, even on a plain HTTP request."),
        required=False,
        default=False,
    )

    autoSecure = schema.Bool(
        title=_('Secure over HTTPS'),
        description=_(
            "Mark the cookie Secure whenever the request came over HTTPS, "
            "as the server says (the HTTPS or SERVER_PORT_SECURE "
            "variables, or wsgi.url_scheme), never as the URL says. "
            "Set to False for zope.session's behaviour.\n\n"
            ".. versionadded:: 0.1"),
        required=False,
        default=True,
    )

    postOnly = schema.Bool(
        title=_('Only set cookie on POST requests'),
        required=False,
        default=False,
    )

    httpOnly = schema.Bool(
        title=_('The cookie cannot be accessed through client side scripts'),
        description=_(
            "On by default (zope.session: off).\n\n"
            ".. versionchanged:: 0.1"),
        required=False,
        default=True,
    )

    sameSite = schema.Choice(
        title=_('SameSite'),
        description=_(
            "The SameSite attribute of the cookie: 'Lax', 'Strict' or "
            "'None' ('None' forces Secure).  Blank sends no SameSite "
            "attribute (zope.session's behaviour).\n\n"
            ".. versionadded:: 0.1"),
        values=('Lax', 'Strict', 'None'),
        required=False,
        default='Lax',
    )

    hostPrefix = schema.Bool(
        title=_('__Host- prefix'),
        description=_(
            "Name the cookie '__Host-' + namespace: browsers then accept "
            "it only with Secure, Path=/ and no Domain, which this forces. "
            "Refused while a domain or a path other than '/' is set.\n\n"
            ".. versionadded:: 0.1"),
        required=False,
        default=False,
    )

    namespaces = schema.Tuple(
        title=_('Namespaces'),
        description=_(
            "Where the client id is looked for, in order: 'cookie', "
            "'form' (query string or form variable named namespace) and "
            "'url' (a '++sid++<id>' path segment).  The first valid id "
            "wins.\n\n"
            ".. versionadded:: 0.1"),
        value_type=schema.Choice(values=(COOKIE, FORM, URL)),
        min_length=1,
        unique=True,
        required=True,
        default=(COOKIE,),
    )

    acceptLegacyIds = schema.Bool(
        title=_('Accept zope.session ids'),
        description=_(
            "Accept ids that zope.session signed (HMAC-SHA1) with one of "
            "the secrets, and re-issue them as new ids, with a fresh "
            "random part, the client's sessions following.  Off by "
            "default; turn it on while moving a site from zope.session, "
            "and off once every client has been re-issued an id.\n\n"
            ".. versionadded:: 0.1"),
        required=False,
        default=False,
    )

    strictIds = schema.Bool(
        title=_('Strict ids'),
        description=_(
            "When session data is first stored for an id that has no live "
            "session in any container and was not issued during the "
            "request (an expired, invalidated or never used id, perhaps "
            "one an attacker fixated), issue a fresh id instead.\n\n"
            ".. versionadded:: 0.1"),
        required=False,
        default=True,
    )

    secrets = schema.Tuple(
        title=_('Secrets'),
        description=_(
            "The secrets, newest first: the first signs new ids, every one "
            "verifies.  An id signed with an older one is re-issued signed "
            "with the first.  The first must have at least 32 characters "
            "(older ones may be shorter, such as zope.session's). Never "
            "logged, never shown in repr or in an error.\n\n"
            ".. versionadded:: 0.1"),
        value_type=schema.TextLine(min_length=1),
        min_length=1,
        required=True,
    )

    secret = Attribute(
        "The current secret: the first of `secrets`.  Setting it replaces "
        "all secrets with this one (zope.session's attribute).")

    cookieName = Attribute(
        "The name the cookie is sent under: namespace, with the __Host- "
        "prefix if `hostPrefix` is set.  (Read only.)")

    def getClientId(request, create=True):
        """Return the client id for *request* (a string).

        Looks in `namespaces` in order.  An id signed with an older secret
        is re-issued signed with the current secret (same random part);
        an id signed by zope.session is re-issued with a fresh random
        part.  The id replaced is then recorded in the request's
        annotations under `PREVIOUS_CLIENT_ID_KEY`, so that the session
        data can follow it.  A re-issued id is set as the cookie only if
        it came from the cookie: ids from a URL or a form are used for the
        request only.  Without a valid id, mints one and sets the cookie,
        unless *create* is false: then returns ``None`` and changes
        nothing.  Raises `MissingClientIdException` when it may not mint
        one (``thirdparty``, or ``postOnly`` and not a POST).
        """

    def generateUniqueId():
        """Return a new, random, signed client id (a 54 character string).

        The first 27 characters encode 160 random bits from a CSPRNG, the
        last 27 an HMAC-SHA256 of them under `secret` (truncated to 160
        bits).
        """

    def getRequestId(request):
        """Return the client id the request carries, or ``None``.

        An id set on the response earlier in the same request wins over
        what the request carries.  The id is returned as received (not
        re-issued).  Anything that does not verify under one of `secrets`
        (malformed, oversized, non-ASCII, tampered with, signed with an
        unknown secret) is treated as absent.  With ``thirdparty`` the
        cookie's value is returned unchecked.
        """

    def setRequestId(request, id):
        """Set the client id cookie on the request's response.

        Also makes sure no shared cache stores the response: the
        ``Cache-Control`` directives already set are kept (but
        ``public``), and ``private`` is added unless ``no-store`` or
        ``private`` is there; ``Expires`` is set in the past unless set;
        ``Vary: Cookie`` is added.  Does nothing (but log a warning) with
        ``thirdparty``.
        """

    def refreshCookie(request):
        """Send the id cookie again, with its lifetime starting now.

        Only when `cookieLifetime` is set and the request's id came from
        the cookie.  The `ISession` adapter calls it when the session's
        access time is recorded and when session data is first stored,
        not on every request.

        .. versionadded:: 0.1
        """

    def newClientId(request):
        """Issue a new client id for *request* and return it.

        Whatever id the request carried is no longer its id for the rest
        of the request; the new one is set as the cookie (when that
        namespace is used).  Session data is not moved: see
        `ISession.rotateClientId`.

        .. versionadded:: 0.1
        """

    def getClientIdSource(request):
        """Return where the request's client id came from.

        One of `NEW` (issued during this request), `COOKIE`, `FORM`,
        `URL`, or ``None`` when the request has no valid id.

        .. versionadded:: 0.1
        """

    def expireCookie(request):
        """Tell the client to drop its id cookie.

        For the rest of the request, the request has no id (a new one is
        minted when needed).

        .. versionadded:: 0.1
        """

    def encodeUrl(url, request, style='query', create=True):
        """Return *url* with the request's client id added.

        *style* is ``'query'`` (``?namespace=id``, or ``&namespace=id``
        when *url* has a query string) or ``'path'`` (``/++sid++id``
        inserted after *url*'s host).  The added text is URL- and
        HTML-safe.  With *create* false and no id, returns *url*
        unchanged.

        .. versionadded:: 0.1
        """

    def getHiddenFormField(request, create=True):
        """Return an HTML hidden input carrying the client id, escaped.

        With *create* false and no id, returns an empty string.

        .. versionadded:: 0.1
        """


#: Request annotation key: the id `ICookieClientIdManager.getClientId`
#: replaced by a re-issued one during this request.
PREVIOUS_CLIENT_ID_KEY = 'zope_sessionx.previous_client_id'


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
    """A session data container with limits, expiry on every read and
    cleanup out of band.

    Expiry never depends on cleanup having run: a session idle for longer
    than `timeout`, or older than `maxLifetime`, is never returned.
    Removing it from storage is a separate step
    (`ISessionDataContainerMaintenance.cleanup`, run by a
    `~zope_sessionx.cleanup.Cleaner` or by hand), never done inside a
    request.  Settings may be changed at any time; no session is lost by a
    change.  A negative or non-integer setting is refused with
    `InvalidSettingError`.

    .. versionadded:: 0.1
    """

    maxLifetime = schema.Int(
        title=_("Maximum lifetime"),
        description=_(
            "Seconds since its creation after which a session expires, "
            "however much it is used. 0 means no limit."),
        default=0,
        required=True,
        min=0,
    )

    longestTimeout = schema.Int(
        title=_("Longest idle timeout of a session"),
        description=_(
            "The longest idle timeout a session may be given of its own "
            "(a 'remember me' log-in, say), in seconds.  0, or less than "
            "the timeout: no session may be given more than the timeout."),
        default=0,
        required=True,
        min=0,
    )

    longestLifetime = schema.Int(
        title=_("Longest lifetime of a session"),
        description=_(
            "The longest lifetime a session may be given of its own, in "
            "seconds.  0, or less than maxLifetime: no session may be "
            "given more than maxLifetime."),
        default=0,
        required=True,
        min=0,
    )

    targetNumber = schema.Int(
        title=_("Target number of sessions"),
        description=_(
            "Cleanup removes the least recently used sessions until no "
            "more than this many are stored. 0 means no target."),
        default=0,
        required=True,
        min=0,
    )

    maxNumber = schema.Int(
        title=_("Maximum number of sessions"),
        description=_(
            "Creating a session when this many are stored raises "
            "SessionLimitError (after ISessionLimitReachedEvent handlers "
            "had a chance to make room). 0 means no limit.  Under "
            "concurrent creation the limit may be exceeded by the number "
            "of concurrent requests."),
        default=0,
        required=True,
        min=0,
    )

    cleanupPeriod = schema.Int(
        title=_("Cleanup period"),
        description=_("Seconds between two cleanup rounds."),
        default=10,
        required=True,
        min=1,
    )

    cleanupBatch = schema.Int(
        title=_("Cleanup batch"),
        description=_(
            "At most this many sessions are removed in one cleanup "
            "transaction, so that transactions (and the time they hold "
            "the storage's commit lock) stay short."),
        default=50,
        required=True,
        min=1,
    )

    def __delitem__(client_id):
        """Remove the session of *client_id* now; `KeyError` if absent.

        Notifies `ISessionRemovedEvent` with the reason ``'invalidated'``.
        """

    def now():
        """Return the current time as the container sees it (`IClock`)."""

    def effectiveResolution(session_data=None):
        """Return the seconds between two recordings of the access time.

        ``min(resolution, timeout / 8)`` when both are positive, so that a
        session in use never times out; `resolution` otherwise.  The
        timeout is *session_data*'s (see `timeoutOf`), if given.
        """

    def expiresAt(session_data):
        """Return the epoch time *session_data* expires at, or ``None``.

        The earlier of last access + `timeoutOf` and creation +
        `lifetimeOf`, ignoring those that are 0.
        """

    def timeoutOf(session_data):
        """The idle timeout of *session_data*: its own (see `setExpiry`),
        bounded by the larger of `timeout` and `longestTimeout`, or else
        `timeout`.

        .. versionadded:: 0.1
        """

    def lifetimeOf(session_data):
        """The lifetime of *session_data*: its own, bounded by the larger
        of `maxLifetime` and `longestLifetime`, or else `maxLifetime`.

        .. versionadded:: 0.1
        """

    def checkExpiry(timeout=None, maxLifetime=None):
        """Raise `InvalidSettingError`, naming the value, if
        `ISessionDataContainerMaintenance.setExpiry` would refuse
        *timeout* or *maxLifetime*: not a whole number of seconds of at
        least 1, longer than the container allows, or for a container
        without that limit of its own (`timeout` or `maxLifetime` 0).
        (`ISessionLifetime.setExpiry` is the request's way to set them.)

        .. versionadded:: 0.1
        """

    def isExpired(session_data, now=None):
        """Return whether *session_data* has expired at *now*.

        *now* defaults to `now()`.
        """

    def peek(client_id, default=None):
        """Return the live session of *client_id*, or *default*.

        Like ``get``, but the access is not recorded: reading this way
        writes nothing and does not keep the session alive.

        .. versionadded:: 0.1
        """

    cleanerThread = schema.Bool(
        title=_("Cleaner thread"),
        description=_(
            "Whether each process that uses this container runs a cleaner "
            "thread for it, started on first use.  Turn it off where a "
            "cleaner of its own (a separate process, or a test that runs "
            "cleanup by hand) does the work."),
        default=True,
        required=False,
    )


class ISessionDataContainerMaintenance(Interface):
    """What only a cleaner or an operator calls on a container.

    Kept apart from `IExpiringSessionDataContainer` so that security
    declarations can protect it separately from what requests use.

    .. versionadded:: 0.1
    """

    def __len__():
        """Return the number of stored sessions, in constant time.

        Sessions that have expired but have not been removed yet are
        counted.
        """

    indexStep = Attribute(
        "Seconds of one step of the expiry index: sessions due in the same "
        "step are indexed together, and cleanup removes whole steps.")

    grace = Attribute(
        "Seconds after its expiry before `cleanup` removes a session, so "
        "that a request that read it just in time finishes first.")

    lease = Attribute(
        "The cleanup `ILease`: ``holder`` names the process cleaning (or "
        "the last that did), ``expires`` until when.  Stored in the "
        "database, so that one process of a cluster cleans at a time.")

    def cleanup(limit=None, grace=None, pause=None):
        """Do one transaction's worth of cleanup; return an `ICleanupResult`.

        Removes sessions expired (idle for longer than ``timeout``, or
        older than ``maxLifetime``) for more than *grace* seconds (default:
        `grace`), then the least recently used ones while more than
        ``targetNumber`` are stored; at most *limit* (default
        ``cleanupBatch``) sessions.  Finds them through an index by
        expiry time, so the cost grows with what is removed, not with what
        is stored.  Does not commit: the caller does, and calls again while
        the result's ``more`` is true.  Notifies `ISessionRemovedEvent` for
        each removed session.  *pause*, if given, is called with no
        arguments before each session is visited: a cleaner sharing its
        process with requests yields the interpreter there.
        """

    def hasCleanupWork():
        """Return whether `cleanup` should run now.

        True when a session may be due for removal, when there are more
        sessions than ``targetNumber``, or when the time at which
        cleanup next has work must be worked out again (`cleanup` does
        that).  Reads at most a few objects and writes nothing.
        """

    legacySource = Attribute(
        "While a site moves from zope.session: zope.session's container "
        "whose live sessions this one adopts (see `adoptLegacySession`) "
        "the first time it looks for them; otherwise None.  See "
        "`zope_sessionx.migration.SiteMigration`.")

    def adoptLegacySession(client_id):
        """Move the session of *client_id* from `legacySource` here.

        Removes it there, and, if it is live there and this container has
        no session for *client_id*, stores a copy here (counted as
        accessed now).  Returns whether it stored one.  Copying and
        removing in the same transaction makes every session copied at
        most once: two transactions adopting the same session conflict.
        """

    def setExpiry(client_id, timeout=None, maxLifetime=None):
        """Give the live session of *client_id* its own idle timeout and
        lifetime (None: the container's); return it, or None if there is
        none.  Checked first (see
        `IExpiringSessionDataContainer.checkExpiry`): nothing is stored if
        either is refused.  Reading, the cleaner's index and its cost
        honour them.

        .. versionadded:: 0.1
        """

    def setPrincipal(client_id, principal_id, label=None):
        """Record that the live session of *client_id* belongs to
        *principal_id* (a string), with *label*, and index it so; return
        the session, or None if there is none.  Nothing is written if it
        already says so."""

    def principalSessions(principal_id):
        """The live sessions of *principal_id*: a list of (digest of the
        client id, `ISessionData`).  Writes nothing."""

    def removeSession(key):
        """Remove the session stored under the digest *key* (as
        invalidated: its record is marked removed, so that requests still
        using it conflict); return whether there was one."""

    def sweep():
        """Remove every expired session now; return how many.

        Calls `cleanup` with no grace until it is done, in the current
        transaction.
        """

    def moveSession(old_client_id, new_client_id):
        """Store the session of *old_client_id* under *new_client_id*.

        A new `ISessionData` record takes the same packages, and the old
        record is marked removed (`ISessionDataRemoval.markRemoved`), so that a
        request still in flight with the old id conflicts rather than
        writes into the moved session; *old_client_id* has no session
        afterwards.  If *new_client_id* already has a (live)
        session, it is kept and the old one is dropped.  Returns the
        session now stored under *new_client_id*, or ``None`` if neither
        id had a live session.
        """

    def iterSessions():
        """Iterate over ``(key, session)`` for every stored `ISessionData`,
        expired ones included.

        *key* is the opaque key the session is stored under (a digest of
        the client id: the id itself is not stored).  For operators' tools
        (statistics, export): it visits every session, so no request
        should call it.
        """

    def restoreSession(key, session_data):
        """Store *session_data* under *key* (from `iterSessions`).

        For importing exported sessions: the creation and access times
        are kept, and the client whose id gave *key* finds it.  Replaces
        a session stored under *key*.  Notifies no event.
        """

    def sessionDatabase():
        """Return the ZODB database the sessions are stored in.

        ``None`` while the container is not stored anywhere yet.
        """

    def cleanerTarget():
        """Return how a cleaner in another thread reaches this container.

        A tuple ``(anchor, name, opener, transaction_manager)``: *anchor*
        (a database, or the container itself) and *name* (an oid, or
        ``None``) identify the container among the cleaners of the
        process, and the registry holds *anchor* weakly; *opener* is called
        with a transaction manager and returns the container as that
        manager's connection sees it (``None`` once it is gone), and may
        have a ``close()`` method; *transaction_manager* is the one the
        cleaner must use, or ``None`` for a new one of its own.  Returns
        ``None`` when the container cannot be cleaned out of band (it is
        not stored anywhere a cleaner can open it).
        """


class ICleanupResult(Interface):
    """What one call of `ISessionDataContainerMaintenance.cleanup` did.

    .. versionadded:: 0.1
    """

    timeout = Attribute("Sessions removed because they were idle too long.")
    lifetime = Attribute("Sessions removed because they were too old.")
    evicted = Attribute("Sessions removed to get down to targetNumber.")
    stale = Attribute("Outdated index entries dropped.")
    more = Attribute("Whether there is more to do now.")

    def removed():
        """Return the number of sessions removed (all reasons)."""


class ILease(Interface):
    """Who may clean a container, and until when.

    Stored in the database next to the container.

    .. versionadded:: 0.1
    """

    holder = Attribute("The name of the cleaner holding it, or None.")
    expires = Attribute("Epoch time the lease lapses at.")

    def acquire(holder, now, duration):
        """Take or renew the lease for *holder* until *now* + *duration*.

        Returns False, changing nothing, while another holder's lease has
        not lapsed.
        """

    def release(holder):
        """Let the lease lapse now, if *holder* holds it."""


class ICleaner(Interface):
    """Cleans one container out of band, in rounds.

    .. versionadded:: 0.1
    """

    holder = Attribute("This cleaner's name in the lease.")
    running = Attribute("Whether its thread runs.")
    share = Attribute(
        "The share of the interpreter's time the cleaner may take, between "
        "0 (exclusive) and 1: after working for `sliceSeconds`, it sleeps "
        "long enough to keep to its share, so that the requests of its "
        "process do not wait for it.  1 never pauses.")
    sliceSeconds = Attribute(
        "How long the cleaner works before it pauses (seconds).")

    def round():
        """Run one round; return its `ICleanupRoundEvent`, or None.

        None means nothing was written: nothing could be removed, or
        another cleaner holds the lease.
        """

    def start():
        """Run rounds in a daemon thread, ``cleanupPeriod`` apart."""

    def stop(timeout=None):
        """Stop the thread after its current round.

        Waits for it, at most *timeout* seconds, unless called from the
        thread itself (by an event handler, say).  A stopped cleaner
        closes the connections it opened.
        """

    def join(timeout=None):
        """Wait, at most *timeout* seconds, until the thread has ended.

        Returns at once if it was never started.
        """


#: Why a session was removed (`ISessionRemovedEvent.reason`).
TIMEOUT = 'timeout'
LIFETIME = 'lifetime'
EVICTED = 'evicted'
INVALIDATED = 'invalidated'


class ISessionEvent(Interface):
    """Something happened to a session.

    .. versionadded:: 0.1
    """

    container = Attribute("The `IExpiringSessionDataContainer`.")
    sessionData = Attribute("The `ISessionData` concerned.")


class ISessionCreatedEvent(ISessionEvent):
    """A session was stored for a client, in the request's transaction."""

    clientId = Attribute("The client's id.")


class ISessionRemovedEvent(ISessionEvent):
    """A session was removed from its container.

    Notified in the transaction that removes it: the request's for
    ``'invalidated'``, the cleaner's own for the other reasons.
    """

    reason = Attribute(
        "Why: 'timeout', 'lifetime', 'evicted' or 'invalidated'.")
    clientId = Attribute(
        "The client's id, or None when the cleaner removed it (the "
        "container stores only a digest of the id).")


class ISessionLimitReachedEvent(Interface):
    """A session is about to be refused: `maxNumber` are stored.

    Handlers may make room (remove sessions); the limit is checked again
    after them.

    .. versionadded:: 0.1
    """

    container = Attribute("The container.")
    limit = Attribute("Its maxNumber.")


class ICleanupRoundEvent(Interface):
    """A cleanup round finished (after its last commit).

    .. versionadded:: 0.1
    """

    container = Attribute("The container (of the cleaner's connection).")
    timeout = Attribute("Sessions removed for idleness in the round.")
    lifetime = Attribute("Sessions removed for age in the round.")
    evicted = Attribute("Sessions evicted in the round.")
    stale = Attribute("Outdated index entries dropped in the round.")
    transactions = Attribute("Transactions committed in the round.")
    conflicts = Attribute("Conflicts retried in the round.")


class ISession(Interface):
    """Gives the `ISessionPkgData` of a request's client for a product id.

    zope_sessionx's `~zope_sessionx.session.Session` also provides
    `IPrincipalSessions` and `ISessionLifetime`.

    For example::

        session = ISession(request)[product_id]
        session['color'] = 'red'
        assert ISessionPkgData.providedBy(session)

    It is neither iterable nor a container: ``in`` raises `TypeError`,
    iterating raises `NotImplementedError`.
    """

    def __getitem__(product_id):
        """Return the client's `ISessionPkgData` for *product_id*.

        The `ISessionDataContainer` is the utility named after the product
        id, else the unnamed one.  If the client has stored data for the
        product there, that data is returned.  Otherwise a new, empty
        `ISessionPkgData` is returned (the same one for the rest of the
        request), and nothing is stored yet: no client id is issued, no
        cookie set and no session created until its first write, which
        stores it in the client's session (creating the session if
        needed).  A request that only reads stores nothing.
        """

    def get(product_id, default=None):
        """Return the relevant `ISessionPkgData`, or *default*.

        Creates nothing and issues no client id.
        """

    def invalidate():
        """End the client's session now.

        Deletes its data from every session data container and tells the
        client to drop its id cookie.  Code later in the same request can
        go on using the session: it gets a fresh one (and the client a new
        id if it is written).  If the transaction aborts, nothing has
        changed.

        .. versionadded:: 0.1
        """

    def rotateClientId():
        """Give the client a new id, keeping its session data.

        Call this right after login (and at any change of privilege) to
        defeat session fixation.  The data moves to the new id in every
        session data container, the old id stops working at once (a later
        request carrying it gets a fresh, empty session), and the new id
        is sent to the client.  All of it happens in the current
        transaction: if it aborts, nothing has changed.  Returns the new
        id.  Raises `SessionError` if the `IClientIdManager` cannot issue
        ids (third-party cookies).

        .. versionadded:: 0.1
        """


class IPrincipalSession(Interface):
    """One live session of a principal, as `ISession.principalSessions`
    lists it (across every container).

    .. versionadded:: 0.1
    """

    handle = Attribute(
        "Names the session for `ISession.endSession`: a digest of its "
        "client id (32 hexadecimal digits), never the id itself.")
    created = Attribute("Epoch time the session was created.")
    lastUsed = Attribute(
        "Epoch time its access was last recorded (see the resolution).")
    label = Attribute(
        "What the application called it at log-in (say, 'Firefox on "
        "Linux'), or None.")
    current = Attribute("Whether it is the current request's session.")


class IPrincipalSessions(Interface):
    """The sessions of one principal: listed and ended by their owner.

    `ISession` provides it for the request's principal (the one
    `setPrincipal` recorded).

    .. versionadded:: 0.1
    """

    def setPrincipal(principal_id, label=None):
        """Record that the client's session belongs to *principal_id*.

        Call it at log-in, after `ISession.rotateClientId`.  The client's
        session in every container that has one is listed under the
        principal from now on (a session is created in the unnamed
        container if it has none anywhere), with *label*, if given (at
        most `MAX_LABEL_LENGTH` characters; nothing is stored otherwise).
        Writes the session's record and one index entry per container;
        a later call with the same principal and label writes nothing.
        Raises `InvalidSettingError` (``principal`` or ``label``), storing
        nothing, for a principal id that is not a non-empty string or a
        label too long or not a string.
        """

    principal = Attribute(
        "The principal id the client's session belongs to, or None.")

    def principalSessions():
        """The live sessions of the client's principal, as
        `IPrincipalSession` objects, most recently used first; empty if
        the session has no principal.  Writes nothing."""

    def endSession(handle):
        """End the principal's session *handle* names (see
        `IPrincipalSession.handle`) in every container.  Ending one that
        is gone, or not the principal's, does nothing.  Returns whether
        one was ended."""

    def endOtherSessions():
        """End every session of the principal but the current one (after
        a password change, say); return how many."""

    def endAllSessions():
        """End every session of the principal, the current one included
        (log out everywhere); return how many.  The client drops its id
        cookie, as with `ISession.invalidate`."""


class ISessionLifetime(Interface):
    """A session's own expiry: "remember me".

    `ISession` (zope_sessionx's `~zope_sessionx.session.Session`)
    provides it.

    .. versionadded:: 0.1
    """

    def setExpiry(timeout=None, maxLifetime=None):
        """Give the client's session its own idle timeout and lifetime,
        in seconds (None: the container's), in every container that holds
        it (it is created in the unnamed container if none does).

        Each container bounds them by its ``longestTimeout`` and
        ``longestLifetime``: a value above the bound of any of them
        raises `InvalidSettingError`, naming it, and nothing is stored.
        The id cookie is sent again, lasting as long as the session can
        (its lifetime, else its timeout), also when the manager sends a
        cookie without an expiry date, and kept so when it is refreshed.
        """


#: The request annotation holding how long the id cookie lasts, in
#: seconds, when the client's session has its own expiry (see
#: `ISessionLifetime`); the manager's ``cookieLifetime`` otherwise.
COOKIE_LIFETIME_KEY = 'zope_sessionx.cookieLifetime'

#: The longest label `IPrincipalSessions.setPrincipal` stores.
MAX_LABEL_LENGTH = 200


class INoTouchRequest(Interface):
    """A request that reads session data without keeping the session
    alive.

    Mark a request with it (``zope.interface.alsoProvides(request,
    INoTouchRequest)``, in a polling view say) and `ISession` reads its
    session without recording an access, and never refreshes the id
    cookie: a notification badge asked for every 30 seconds does not keep
    an abandoned session alive.  Writes are stored as usual.

    .. versionadded:: 0.1
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

        For `ISessionDataContainer` implementations, and for tests that
        wind the access time back to make a session expire: the value is
        recorded as given.  Concurrent settings never conflict: the
        largest of the values committed wins.

        .. versionchanged:: 0.1
           Sets the value as given, as zope.session does (development
           versions only moved it forward).
        """

    lastAccessTime = schema.Int(
        title=_("Last Access Time"),
        description=_(
            "Approximate epoch time this ISessionData was last retrieved "
            "from its ISessionDataContainer"),
        default=0,
        required=True,
    )

    principal = Attribute(
        "The id of the principal the session belongs to (see "
        "`IPrincipalSessions.setPrincipal`), or None.")

    timeout = Attribute(
        "The session's own idle timeout in seconds (see "
        "`ISessionLifetime.setExpiry`), or None: the container's.")

    maxLifetime = Attribute(
        "The session's own lifetime in seconds, or None: the "
        "container's.")

    label = Attribute(
        "What the application called the session at log-in, or None.")


class ISessionDataRemoval(Interface):
    """What only a container does to session data.

    Kept apart from `ISessionData` so that security declarations can keep
    it from untrusted code.

    .. versionadded:: 0.1
    """

    def markRemoved():
        """Record that a container removed this session.

        For `ISessionDataContainer` implementations: it writes the
        session's access-time record, and that record refuses to merge
        with a concurrent change, so that a request still using the
        session and its removal never both commit.
        """

    def checkCurrentAtCommit():
        """Make the current transaction's commit conflict if the session's
        access time or removal mark was changed by another transaction
        since this one read it.  Writes nothing.

        `zope_sessionx.session.Session` calls it for every session it
        finds, so that a request still in flight conflicts with a removal
        or rotation; the cleaner calls it instead of `markRemoved` for the
        sessions it removes after their expiry and grace, so that it
        conflicts with a request that recorded an access meanwhile.

        .. versionadded:: 0.1
        """


class ISessionPkgData(IMapping):
    """The data of one product id in one client's session.

    Data is stored persistently and transactionally.  Values must be
    persistent or picklable.  Writes of different keys by concurrent
    requests do not conflict.

    One returned by `ISession.__getitem__` for a client without a session
    is stored (and the client given an id) on its first write: a request
    that only reads stores nothing.
    """


# -- exceptions ---------------------------------------------------------------

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


class InvalidSettingError(SessionError, ValueError):
    """A setting was refused.

    ``setting`` names it, ``value`` is the refused value, ``reason`` says
    why.

    .. versionadded:: 0.1
    """

    def __init__(self, setting, value, reason):
        super().__init__(
            '{}={!r} refused: {}'.format(setting, value, reason))
        self.setting = setting
        self.value = value
        self.reason = reason


class SessionLimitError(SessionError):
    """No session can be created: the container holds its maximum.

    ``limit`` is the container's ``maxNumber``.

    .. versionadded:: 0.1
    """

    def __init__(self, limit):
        super().__init__(
            'cannot create a session: the limit of {} sessions is reached'
            .format(limit))
        self.limit = limit


class CookiePolicyError(InvalidSettingError):
    """A cookie setting (of an `ICookieClientIdManager`) was refused.

    .. versionadded:: 0.1
    """


class ForeignObjectError(SessionError, ValueError):
    """A persistent object of another database was to be stored in
    session data.

    The session database is not the application's: a reference from one
    to the other cannot be stored (unless both are in one ZODB
    multi-database).  Store the object's id, or a copy, instead.
    ``pkg_id`` and ``key`` say where, ``value`` is the object.

    .. versionadded:: 0.1
    """

    def __init__(self, pkg_id, key, value, database, home):
        super().__init__(
            'cannot store {} under {!r}, {!r}: it belongs to the database '
            '{!r}, the session to {!r}; store its id instead'.format(
                type(value).__name__, pkg_id, key,
                database.database_name, home.database_name))
        self.pkg_id = pkg_id
        self.key = key
        self.value = value
