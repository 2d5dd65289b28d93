"""Session data: `SessionData` (one client) and `SessionPkgData` (one
package of it), with the conflict resolution that lets concurrent requests
share a session.

Both classes are stored in the ZODB: their dotted paths and attribute
names are frozen (see the persisted-classes list in ``docs/design.rst``).
"""
import persistent
from BTrees.OOBTree import OOBTree
from ZODB.POSException import ConflictError
from zope.interface import implementer
from zope.traversing.interfaces import ITraversable
from zope.traversing.interfaces import TraversalError

from zope_sessionx.interfaces import ForeignObjectError
from zope_sessionx.interfaces import ISessionData
from zope_sessionx.interfaces import ISessionDataRemoval
from zope_sessionx.interfaces import ISessionPkgData


__all__ = [
    'AccessTime',
    'SessionData',
    'SessionPkgData',
]


def _values(name, args, kw):
    """The values a call of the mutating method *name* stores."""
    if name in ('__setitem__', 'insert', 'setdefault') and len(args) > 1:
        return [(args[0], args[1])]
    if name == 'update':
        pairs = []
        for source in args + (kw,):
            items = source.items() if hasattr(source, 'items') else source
            pairs.extend(items)
        return pairs
    return []


def _checkHome(pkg_data, name, args, kw):
    # A persistent object of another database cannot be stored here: say
    # so now, naming it, rather than fail the commit with ZODB's error.
    home = pkg_data._v_home
    if home is None:
        return
    db, pkg_id = home
    for key, value in _values(name, args, kw):
        jar = getattr(value, '_p_jar', None)
        if jar is None:
            continue
        other = jar.db()
        if other.databases.get(db.database_name) is not db:
            raise ForeignObjectError(pkg_id, key, value, other, db)


def _attaching(base):
    """Make the mutating `OOBTree` method *base* store the package data
    first, if it was handed out before the client's session had it.

    ``_v_attach`` (set by `zope_sessionx.session.Session`, never stored)
    holds ``(callback, container, package id)``; the callback stores the
    data, which issues the client id when needed.
    """

    def wrapper(self, *args, **kw):
        if (base.__name__ == 'update' and args
                and not hasattr(args[0], 'items')):
            # An iterable of pairs is read once: by the check, then by
            # the update, from a list.
            args = (list(args[0]),) + args[1:]
        _checkHome(self, base.__name__, args, kw)
        attach = self._v_attach
        if attach is not None:
            # Cleared first: storing it may write to it (a merge).
            self._v_attach = None
            callback, sdc, pkg_id = attach
            try:
                callback(self, sdc, pkg_id)
            except BaseException:
                # Not stored: the next write tries again.
                self._v_attach = attach
                raise
        return base(self, *args, **kw)

    wrapper.__name__ = base.__name__
    wrapper.__doc__ = base.__doc__
    return wrapper


@implementer(ISessionPkgData, ITraversable)
class SessionPkgData(OOBTree):
    """See `ISessionPkgData`.

    The data is the BTree itself: one persistent record per package rather
    than a wrapper plus a tree, and the BTree's own conflict resolution
    merges concurrent writes of different keys.  Every mutating method
    stores data handed out before the client's session had it, then
    writes.  Path traversal (``request/session:pkg/key``) looks keys up.
    """

    # Set (never stored) on data handed out before the client's session
    # has it: (callback, container, package id).
    _v_attach = None
    # Set (never stored) on data handed out by `Session`: (the session
    # database, package id), to refuse another database's objects.
    _v_home = None

    __setitem__ = _attaching(OOBTree.__setitem__)
    __delitem__ = _attaching(OOBTree.__delitem__)
    clear = _attaching(OOBTree.clear)
    insert = _attaching(OOBTree.insert)
    pop = _attaching(OOBTree.pop)
    popitem = _attaching(OOBTree.popitem)
    setdefault = _attaching(OOBTree.setdefault)
    update = _attaching(OOBTree.update)

    def traverse(self, name, furtherPath):
        """Path traversal finds keys, never methods.

        ``request/session:my.shop/items`` is the value stored under
        ``'items'``, not the mapping's ``items`` method.  A missing key
        raises `~zope.traversing.interfaces.TraversalError`.
        """
        try:
            return self[name]
        except KeyError:
            raise TraversalError(self, name) from None


_MISSING = object()


def _sameRef(a, b):
    # During conflict resolution references are PersistentReference
    # objects, which refuse to be compared unless they are the same:
    # compare their oids.  Other values compare as values.
    oid_a, oid_b = getattr(a, 'oid', None), getattr(b, 'oid', None)
    if oid_a is None and oid_b is None:
        return a == b
    return oid_a == oid_b


def _mergeRefs(old, committed, new):
    """Three-way merge of two mappings of keys to persistent references."""
    result = dict(committed)
    for key in set(old) | set(new):
        o, n = old.get(key), new.get(key)
        if _sameRef(o, n):
            continue
        c = committed.get(key)
        if not (_sameRef(c, o) or _sameRef(c, n)):
            raise ConflictError('both changed package %r' % (key,))
        if n is None:
            result.pop(key, None)
        else:
            result[key] = n
    return result


class AccessTime(persistent.Persistent):
    """The last access time of one session, in a small record of its own,
    and the mark of its removal.

    Recording an access writes this record and nothing else: a few dozen
    bytes.  Concurrent accesses merge (the later time wins); an access and
    a removal never do.  Its state is the time, an int, or
    ``('removed', time)`` once a container removed the session.
    """

    value = 0
    removed = False

    def __getstate__(self):
        return ('removed', self.value) if self.removed else self.value

    def __setstate__(self, state):
        if isinstance(state, tuple):
            self.removed, self.value = True, state[1]
        else:
            self.removed, self.value = False, state

    def _p_resolveConflict(self, old, committed, new):
        if isinstance(committed, tuple) or isinstance(new, tuple):
            raise ConflictError('session removed while in use')
        return max(committed, new)


@implementer(ISessionData, ISessionDataRemoval)
class SessionData(persistent.Persistent):
    """See `ISessionData`.

    One small record: creation time and the references to the packages'
    data; the last access time is an `AccessTime` record of its own, so
    that recording an access writes only that.  Its conflict resolution
    merges packages added or removed by concurrent requests.
    """

    created = 0
    #: See `ISessionData`: set, with the label, at log-in.
    principal = None
    #: See `ISessionData`.
    label = None
    #: See `ISessionData`: the session's own idle timeout, or None.
    timeout = None
    #: See `ISessionData`: the session's own lifetime, or None.
    maxLifetime = None

    def __init__(self):
        self._pkgs = {}
        self._access = AccessTime()

    def getLastAccessTime(self):
        """See `ISessionData`."""
        return self._access.value

    def setLastAccessTime(self, value):
        """See `ISessionData`."""
        self._access.value = value

    lastAccessTime = property(getLastAccessTime, setLastAccessTime,
                              doc="See `ISessionData`.")

    def markRemoved(self):
        """See `ISessionDataRemoval`."""
        self._access.removed = True

    def release(self):
        """Turn this session's records back into ghosts, unless changed.

        For cleaners: what they loaded to look at a session is then freed
        at once rather than kept in the connection's cache, where it would
        live long enough for Python's garbage collector to count it, and
        make the requests of the process pay for full collections.
        """
        self._access._p_deactivate()
        self._p_deactivate()

    def checkCurrentAtCommit(self):
        """See `ISessionDataRemoval`."""
        access = self._access
        jar = access._p_jar
        if jar is not None:
            jar.readCurrent(access)

    def __getitem__(self, pkg_id):
        return self._pkgs[pkg_id]

    def get(self, pkg_id, default=None):
        return self._pkgs.get(pkg_id, default)

    def __contains__(self, pkg_id):
        return pkg_id in self._pkgs

    def __setitem__(self, pkg_id, pkg_data):
        self._pkgs[pkg_id] = pkg_data
        self._p_changed = True

    def __delitem__(self, pkg_id):
        del self._pkgs[pkg_id]
        self._p_changed = True

    def keys(self):
        return list(self._pkgs)

    def __iter__(self):
        return iter(list(self._pkgs))

    def values(self):
        return list(self._pkgs.values())

    def items(self):
        return list(self._pkgs.items())

    def __len__(self):
        return len(self._pkgs)

    def _p_resolveConflict(self, old, committed, new):
        result = dict(committed)
        for name in set(old) | set(committed) | set(new):
            if name == '_pkgs':
                continue
            o = old.get(name, _MISSING)
            c = committed.get(name, _MISSING)
            n = new.get(name, _MISSING)
            if _sameRef(n, o) or _sameRef(n, c):
                continue
            if not _sameRef(c, o):
                raise ConflictError('both changed %r' % (name,))
            if n is _MISSING:
                del result[name]
            else:
                result[name] = n
        result['_pkgs'] = _mergeRefs(old.get('_pkgs', {}),
                                     committed.get('_pkgs', {}),
                                     new.get('_pkgs', {}))
        return result
