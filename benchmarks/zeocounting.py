"""A ZEO server that counts the conflicts it resolves, by class.

``python zeocounting.py PORT PATH COUNTS``: serves the FileStorage *PATH*
on 127.0.0.1:*PORT* and appends the class of every conflict it resolves,
one per line, to the file *COUNTS*.  (ZEO's own ``conflicts_resolved``
statistic is never incremented.)  Stop it with SIGTERM.
"""
import sys

import ZODB.ConflictResolution
from ZODB.utils import get_pickle_metadata


def main():
    port, path, counts = sys.argv[1:4]
    resolve = ZODB.ConflictResolution.ConflictResolvingStorage
    original = resolve.tryToResolveConflict

    def counted(self, oid, committedSerial, oldSerial, newpickle,
                committedData=b''):
        data = original(self, oid, committedSerial, oldSerial, newpickle,
                        committedData)
        with open(counts, 'a') as f:
            f.write('.'.join(get_pickle_metadata(newpickle)) + '\n')
        return data

    resolve.tryToResolveConflict = counted
    from ZEO.runzeo import main as runzeo
    runzeo(['-a', '127.0.0.1:' + port, '-f', path])


if __name__ == '__main__':
    main()
