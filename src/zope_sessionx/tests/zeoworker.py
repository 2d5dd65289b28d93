"""A process of a ZEO cluster, for the multi-process tests and benchmarks.

``python -m zope_sessionx.tests.zeoworker clean HOST PORT NAME SECONDS
[OFFSET]`` runs a cleaner (named NAME) until killed or SECONDS have
passed, its clock OFFSET seconds ahead of the real one (so that sessions
are expired for it at once).

``python -m zope_sessionx.tests.zeoworker load HOST PORT NAME REQUESTS``
plays REQUESTS requests of the clients listed in the database's root
(``'clients'``): each reads its session and writes a key of its own, with
up to three attempts on a conflict.  Prints one JSON line of counts.

Instead of HOST PORT, a database URI and ``-`` name any other database
(RelStorage on PostgreSQL, say).
"""
import json
import random
import sys
import time

import transaction
import ZEO
import ZODB
import zodburi
import zope.component
from ZODB.POSException import ConflictError

from zope_sessionx import cleanup
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import IClock
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.session import ClientId
from zope_sessionx.session import Session
from zope_sessionx.tests.helpers import makeRequest


SECRET = 'cluster-secret-cluster-secret-cluster'


class QuickContainer(PersistentSessionDataContainer):
    """A container whose cleanup follows expiry closely (for tests)."""

    grace = 0
    indexStep = 1

    def __init__(self):
        super().__init__()
        # The tests start cleaners themselves.
        self.cleanerThread = False


def _register(root):
    zope.component.provideUtility(
        CookieClientIdManager('sid', SECRET), IClientIdManager)
    zope.component.provideAdapter(ClientId, provides=IClientId)
    zope.component.provideAdapter(Session, provides=ISession)
    zope.component.provideUtility(root['sdc'], ISessionDataContainer)


def clean(db, name, seconds, offset=0):
    if offset:
        zope.component.provideUtility(
            lambda: time.time() + offset, IClock)
    tm = transaction.TransactionManager()
    conn = db.open(tm)
    oid = conn.root()['sdc']._p_oid
    tm.abort()
    cleaner = cleanup.Cleaner(cleanup.StoredOpener(db, oid), holder=name)
    cleaner.start()
    print('ready', flush=True)
    deadline = time.monotonic() + seconds
    while cleaner.running and time.monotonic() < deadline:
        time.sleep(0.1)
    cleaner.stop(10)


def load(db, name, requests):
    conn = db.open()
    root = conn.root()
    _register(root)
    clients = list(root['clients'])
    rng = random.Random(name)
    counts = {'requests': 0, 'conflicts': 0, 'failures': 0, 'written': [],
              'slowest': 0.0}
    for number in range(requests):
        client_id = rng.choice(clients)
        key = '{}-{}'.format(name, number)
        started = time.perf_counter()
        for attempt in range(3):
            try:
                transaction.begin()
                request = makeRequest({'sid': client_id})
                data = ISession(request)['products.load']
                data.get('shared')
                data[key] = number
                transaction.commit()
            except ConflictError:
                transaction.abort()
                counts['conflicts'] += 1
                continue
            counts['written'].append([client_id, key])
            break
        else:
            counts['failures'] += 1
        counts['slowest'] = max(counts['slowest'],
                                time.perf_counter() - started)
        counts['requests'] += 1
    conn.close()
    print(json.dumps(counts), flush=True)


def main(argv=None):
    mode, host, port, name, amount = (argv or sys.argv)[1:6]
    extra = (argv or sys.argv)[6:]
    if '://' in host:
        # A database URI (RelStorage, say) instead of HOST PORT ('-').
        factory, options = zodburi.resolve_uri(host)
        db = ZODB.DB(factory())
    else:
        db = ZEO.DB((host, int(port)))
    try:
        if mode == 'clean':
            clean(db, name, float(amount), *[float(x) for x in extra])
        else:
            load(db, name, int(amount))
    finally:
        db.close()


if __name__ == '__main__':
    main()
