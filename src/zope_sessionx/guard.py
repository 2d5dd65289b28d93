"""The commit guard: a transaction that found a session live conflicts
if it commits after a cleaner may have removed that session.

See "Removing without writing" in ``docs/design.rst``.
"""
from ZODB.POSException import ConflictError


__all__ = [
    'CommitGuard',
]


class CommitGuard:
    """A before-commit hook: the transaction conflicts if it commits after
    a cleaner may have removed a session it found live.

    The cleaner removes a session only ``grace`` seconds after its expiry
    (as stored when the transaction read it), and without writing it.  A
    transaction committing later than half the grace after that expiry
    (the other half covers clocks of the cluster that disagree) could
    write into a session that is gone: it raises a `ConflictError`
    instead, and its retry finds the session expired.
    """

    def __init__(self, clock):
        self.clock = clock
        self.deadline = None

    @classmethod
    def limit(cls, txn, clock, deadline):
        """Register (once per transaction) the guard of *txn*, and have it
        conflict after *deadline*."""
        try:
            guard = txn.data(cls)
        except KeyError:
            guard = cls(clock)
            txn.set_data(cls, guard)
            txn.addBeforeCommitHook(guard)
        if guard.deadline is None or deadline < guard.deadline:
            guard.deadline = deadline

    def __call__(self):
        if self.clock() > self.deadline:
            raise ConflictError(
                'a session this transaction used expired meanwhile and may '
                'have been removed')
