"""One process of the mixed-load benchmark (see bench.py).

``python zeoload.py IMPL HOST PORT NAME REQUESTS``: 70 % reads, 20 % writes
of a key of its own, 10 % new clients; up to three attempts per request.
Prints one JSON line.
"""
import json
import os
import random
import sys
import time
from io import BytesIO

import transaction
import ZEO
from ZODB.POSException import ConflictError
from zope.publisher.http import HTTPRequest


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import impls  # noqa: E402


def main():
    impl, host, port, name, requests = sys.argv[1:6]
    db = ZEO.DB((host, int(port)))
    conn = db.open()
    root = conn.root()
    api = impls.configure(impl, root)
    ISession = api.interfaces.ISession
    clients = list(root['clients'])
    rng = random.Random(name)
    counts = {'requests': 0, 'conflicts': 0, 'conflicted': [], 'failures': 0,
              'written': [], 'latencies': []}
    for number in range(int(requests)):
        roll = rng.random()
        client_id = rng.choice(clients) if clients and roll < 0.9 else None
        key = '{}-{}'.format(name, number)
        started = time.perf_counter()
        for attempt in range(3):
            try:
                transaction.begin()
                env = {'REQUEST_METHOD': 'GET'}
                if client_id:
                    env['HTTP_COOKIE'] = 'sid=' + client_id
                request = HTTPRequest(BytesIO(), env)
                data = ISession(request)['products.bench']
                if roll < 0.7:
                    data.get('k')
                else:
                    data[key] = number
                cookie = request.response.getCookie('sid')
                transaction.commit()
            except ConflictError as error:
                transaction.abort()
                counts['conflicts'] += 1
                oid = getattr(error, 'oid', None)
                counts['conflicted'].append('{} {}'.format(
                    type(conn.get(oid)).__name__ if oid else '?', error))
                continue
            if roll >= 0.7:
                written_to = client_id or (cookie and cookie['value'])
                counts['written'].append([written_to, key])
            break
        else:
            counts['failures'] += 1
        counts['latencies'].append(time.perf_counter() - started)
        counts['requests'] += 1
    conn.close()
    db.close()
    print(json.dumps(counts), flush=True)


if __name__ == '__main__':
    main()
