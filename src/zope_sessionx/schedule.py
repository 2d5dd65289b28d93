"""The cleanup schedule of a container: when cleanup next has work, so
that asking costs a record or two, and the lag that lets cleanup find the
sessions a shortened setting made due (see ``docs/design.rst``).

`CleanupSchedule` is a base of the containers; it keeps its state in the
container's store (``schedule``) and in ``_indexLag``.
"""
from zope_sessionx.storage import entryStep


__all__ = [
    'CleanupSchedule',
]


class CleanupSchedule:
    """When a container's cleanup next has work."""

    # Seconds added to every expiry in the index and to the cleanup's
    # cutoff: see _lengthenLag.
    _indexLag = 0

    def _cutoff(self, now, grace):
        # Index entries of steps before this one are due before now -
        # grace: with a grace, whole steps only, so that a round never
        # revisits (and rewrites) entries of the current step.
        now += self._indexLag
        if grace:
            return int(now - grace) // self.indexStep
        return int(now) // self.indexStep + 1

    def _dueSettings(self):
        return (self.timeout, self.maxLifetime, self.indexStep)

    def _nextStep(self, now):
        # No index entry is earlier than the first of its shard, and a
        # session created from now on is due no earlier than now plus the
        # shorter of timeout and maximum lifetime (when neither is set,
        # nothing expires and the step goes unused).
        shortest = min(filter(None, (self.timeout, self.maxLifetime)),
                       default=0)
        step = int(now + shortest + self._indexLag) // self.indexStep
        for entry in self._store.index.heads().values():
            step = min(step, entryStep(entry))
        return step

    def _settingsChanged(self, name, old, new):
        # Now, rather than in a cleanup transaction for just that.  (Not
        # while the container is being set up: nothing is indexed yet.)
        if self._store is not None:
            self._lengthenLag(name, old, new)
            self._reschedule(self.now())

    def _lengthenLag(self, name, old, new):
        # Shortening timeout or maxLifetime makes stored sessions due
        # earlier than their index entries say, by at most as much as it
        # was shortened, and never by more than the old horizon (no
        # entry was further ahead of now than the old timeout, or without
        # one the old lifetime).  Adding that much to the cleanup's
        # cutoff finds them; adding it to every entry indexed from now on
        # keeps the order, and keeps new entries from coming due early.
        if not new or (old and new >= old):
            return
        timeout, lifetime = self.timeout, self.maxLifetime
        if name == 'timeout':
            timeout = old
        else:
            lifetime = old
        horizon = timeout or lifetime
        self._indexLag += min(old - new, horizon) if old else horizon

    def _reschedule(self, now):
        schedule = self._store.schedule
        step, settings = self._nextStep(now), self._dueSettings()
        if (schedule.step, schedule.settings) != (step, settings):
            schedule.step, schedule.settings = step, settings

    def _dueBy(self, entry):
        # An entry indexed out of the usual order (a restored session):
        # the schedule must not promise that nothing is due before it.
        schedule = self._store.schedule
        step = entryStep(entry)
        if step < schedule.step:
            schedule.step = step

    def hasCleanupWork(self):
        """See `ISessionDataContainerMaintenance`."""
        if self.targetNumber and len(self) > self.targetNumber:
            return True
        if not (self.timeout or self.maxLifetime):
            return False
        cutoff = self._cutoff(self.now(), self.grace)
        schedule = self._store.schedule
        if (schedule.settings == self._dueSettings()
                and schedule.step >= cutoff):
            return False
        # Perhaps something is due.  Rather than look at the front of
        # every shard of the index in each round until something is, let
        # the cleanup find out: it also works out the schedule anew.
        # Without sessions, nothing is due (entries of removed sessions
        # can wait for the next ones).
        return len(self) > 0
