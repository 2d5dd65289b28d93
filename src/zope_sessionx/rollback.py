"""Making the id cookie transactional: `CookieRollback`."""
from transaction.interfaces import ISavepointDataManager
from zope.interface import implementer


__all__ = [
    'CookieRollback',
]


class _State:
    """The id cookie of a request's response and what the request
    remembers of its id, at one moment."""

    def __init__(self, request, name):
        self._request = request
        self._name = name
        cookie = request.response.getCookie(name)
        self._cookie = None if cookie is None else dict(cookie)
        self._annotations = self._ours(request.annotations)

    @staticmethod
    def _ours(annotations):
        return {key: value for key, value in annotations.items()
                if key.startswith('zope_sessionx.')}

    def restore(self):
        cookies = getattr(self._request.response, '_cookies', {})
        cookies.pop(self._name, None)
        if self._cookie is not None:
            cookies[self._name] = dict(self._cookie)
        annotations = self._request.annotations
        for key in self._ours(annotations):
            del annotations[key]
        annotations.update(self._annotations)


class _Savepoint:
    """Rolls the cookie back to where it was at a savepoint."""

    def __init__(self, state):
        self._state = state

    def rollback(self):
        self._state.restore()


@implementer(ISavepointDataManager)
class CookieRollback:
    """Puts a request's id cookie back as it was if the transaction aborts,
    or as it was at a savepoint rolled back to.

    Session changes are transactional; joined to the transaction that
    holds them, this makes the id cookie that goes with them (and what the
    request remembers of its id) transactional too.
    """

    def __init__(self, request, manager, transaction_manager):
        self.transaction_manager = transaction_manager
        self._request = request
        self._name = manager.cookieName
        self._start = _State(request, self._name)

    def savepoint(self):
        """Remember the cookie as it is now."""
        return _Savepoint(_State(self._request, self._name))

    def abort(self, txn):
        self._start.restore()

    def tpc_abort(self, txn):
        self._start.restore()

    def tpc_begin(self, txn):
        """Nothing to prepare: the cookie is sent after the commit."""

    def commit(self, txn):
        """Nothing to write."""

    def tpc_vote(self, txn):
        """Nothing can fail."""

    def tpc_finish(self, txn):
        """The cookie stays as it is."""

    def sortKey(self):
        return 'zope_sessionx.rollback.CookieRollback:%d' % id(self)
