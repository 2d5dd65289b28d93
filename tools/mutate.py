"""Break the package's key behaviours one line at a time; report which
break no test notices.

Usage (from the project's root, after ``make test`` has set up .venv)::

    .venv/bin/python tools/mutate.py            # every mutant
    .venv/bin/python tools/mutate.py --list     # what they are
    .venv/bin/python tools/mutate.py lease grace  # some, by name

Each mutant replaces one line of ``src/zope_sessionx`` (the text must
stand there exactly once), runs the tests that guard the behaviour, and
puts the line back, whatever happens (Ctrl-C included).  A mutant the
tests pass on *survived*: the behaviour it breaks is not checked.  Exits
1 when any survived, 2 when a mutant no longer applies (the code moved:
update the list).  See docs/testing.rst.
"""
import argparse
import os
import subprocess
import sys
import time
from collections import namedtuple


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'src', 'zope_sessionx')
TESTS = 'src/zope_sessionx/tests/'

Mutant = namedtuple('Mutant', 'name rule module old new tests')

#: The rules of docs/design.rst (storage, client ids) and the behaviours
#: the docs promise, each broken by one line.
MUTANTS = [
    # -- storage ------------------------------------------------------------
    Mutant('resolver-removal', 'a removal and a use never both commit',
           'data.py',
           "if committed.get('_removed') or new.get('_removed'):",
           "if False:",
           ['test_data.py', 'test_ram.py::RAMConcurrencyTests']),
    Mutant('resolver-access-time', 'access times merge: the later wins',
           'data.py',
           "result['_last'] = max(committed.get('_last', 0), "
           "new.get('_last', 0))",
           "result['_last'] = new.get('_last', 0)",
           ['test_data.py', 'test_ram.py::RAMConcurrencyTests']),
    Mutant('resolver-packages', 'the same new package twice conflicts',
           'data.py',
           "raise ConflictError('both changed package %r' % (key,))",
           "pass",
           ['test_data.py']),
    Mutant('reads-write', 'a read within the resolution writes nothing',
           'container.py',
           "if (self.timeout and session_data.getLastAccessTime()",
           "if (self.timeout or session_data.getLastAccessTime()",
           ['test_container.py', 'test_session.py']),
    Mutant('effective-resolution', 'resolution at most timeout / 8',
           'container.py',
           "return min(self.resolution, self.timeout / 8)",
           "return self.resolution",
           ['test_container.py']),
    Mutant('expiry-on-read', 'expired data is never returned',
           'container.py',
           "        if self.isExpired(session_data, now):\n"
           "            raise KeyError(client_id)",
           "        if False:\n"
           "            raise KeyError(client_id)",
           ['test_container.py', 'test_session.py']),
    Mutant('lifetime-wo-timeout', 'maxLifetime is checked on read when '
           'timeout is 0', 'container.py',
           "if not (self.timeout or self.maxLifetime):\n"
           "            return session_data",
           "if not self.timeout:\n"
           "            return session_data",
           ['test_container.py']),
    Mutant('count', 'the number of sessions is kept',
           'container.py',
           "            self._checkLimit()\n"
           "            store.count.change(1)",
           "            self._checkLimit()",
           ['test_container.py']),
    Mutant('grace', 'the cleaner waits out the grace before removing',
           'container.py',
           "if due is not None and due + grace < now:",
           "if due is not None and due < now:",
           ['test_container.py', 'test_cleanup.py']),
    Mutant('reindex', 'a session in use is indexed again, not forgotten',
           'container.py',
           "            self._store.index.insert("
           "self._indexEntry(session_data, key))\n"
           "            result.stale += 1",
           "            result.stale += 1",
           ['test_container.py', 'test_cleanup.py']),
    Mutant('index-lag', 'a shortened timeout is found by sweep and cleanup',
           'schedule.py',
           "self._indexLag += min(old - new, horizon) if old else horizon",
           "pass",
           ['test_container.py']),
    Mutant('schedule', 'a shorter timeout brings the schedule forward',
           'schedule.py',
           "            self._lengthenLag(name, old, new)\n"
           "            self._reschedule(self.now())",
           "            self._lengthenLag(name, old, new)",
           ['test_container.py', 'test_cleanup.py']),
    Mutant('evict-order', 'eviction takes the least recently used',
           'container.py',
           "shard, entry = min(heads.items(), key=lambda item: item[1])",
           "shard, entry = max(heads.items(), key=lambda item: item[1])",
           ['test_container.py']),
    Mutant('rotation-record', 'rotation marks the old record removed',
           'container.py',
           "        session_data.markRemoved()\n        return moved",
           "        return moved",
           ['test_session.py::RotationRaceTests']),
    Mutant('read-current', 'requests in flight with an old id conflict',
           'session.py',
           "            jar.readCurrent(session_data)",
           "            pass",
           ['test_session.py::RotationRaceTests']),
    Mutant('lease-held', 'one cleaner per cluster: a held lease is '
           'respected', 'storage.py',
           "if self.holder != holder and self.expires >= now:",
           "if False:",
           ['test_cleanup.py', 'test_zeo.py']),
    Mutant('lease-duration', 'the lease lasts half a cleanup period',
           'cleanup.py',
           "container.cleanupPeriod / 2):",
           "container.cleanupPeriod):",
           ['test_cleanup.py', 'test_zeo.py']),
    Mutant('ram-sweep-packs', 'RAM sweep frees the memory of removed '
           'sessions', 'ram.py',
           "        removed = super().sweep()\n        ramStore().pack()",
           "        removed = super().sweep()",
           ['test_ram.py']),
    Mutant('ram-resolves', 'RAM sessions merge concurrent writes',
           'ram.py',
           "            data = self.tryToResolveConflict(oid, committed, "
           "serial, data)",
           "            raise",
           ['test_ram.py']),
    Mutant('ram-pack-point', 'a pack spares what open transactions read',
           'ram.py',
           "point = packTimeFor(min(begun)) if begun else time.time()",
           "point = time.time()",
           ['test_ram.py']),
    Mutant('lazy-store', 'package data is stored on its first write only',
           'session.py',
           "                pkg_data._v_attach = (self._attach, sdc, pkg_id)",
           "                self._attach(pkg_data, sdc, pkg_id)",
           ['test_session.py']),
    # -- client ids ---------------------------------------------------------
    Mutant('unsigned-ids', 'an id the server did not sign is ignored',
           'http.py',
           "                return _OLDER if index else _CURRENT\n",
           "                return _OLDER if index else _CURRENT\n"
           "            return _CURRENT\n",
           ['test_http.py', 'test_http_badinput.py']),
    Mutant('constant-time', 'signatures are compared in constant time',
           'http.py',
           "if hmac.compare_digest(_sign(secret, id_part), mac):",
           "if _sign(secret, id_part) == mac:",
           ['test_http.py']),
    Mutant('random-bits', 'ids carry 160 random bits',
           'http.py',
           "return _secrets.token_bytes(n)",
           "return _secrets.token_bytes(n)[:8].ljust(n, b'0')",
           ['test_http.py']),
    Mutant('first-secret-signs', 'the first secret signs',
           'http.py',
           "return (id_part + _sign(self.secret, id_part)).decode('ascii')",
           "return (id_part + _sign(self.secrets[-1], id_part))"
           ".decode('ascii')",
           ['test_http.py']),
    Mutant('http-only', 'the cookie is HttpOnly', 'http.py',
           "        if self.httpOnly:\n            options['httponly'] = True",
           "        if False:\n            options['httponly'] = True",
           ['test_http.py']),
    Mutant('secure-transport', 'Secure follows the transport',
           'http.py',
           "or (self.autoSecure and overHTTPS(request)))",
           "or (self.autoSecure and request.getApplicationURL()"
           ".startswith('https:')))",
           ['test_http.py', 'test_http_transport.py']),
    Mutant('url-ids-no-cookie', 'URL and form ids never become cookies',
           'http.py',
           "        if source == COOKIE:\n            self.setRequestId",
           "        if True:\n            self.setRequestId",
           ['test_http.py']),
    Mutant('duplicates', 'two cookies of our name are both ignored',
           'http.py',
           "if names.count(name) > 1:",
           "if False:",
           ['test_http.py']),
    Mutant('cache-private', 'a response setting the cookie is private',
           'http.py',
           "            kept.append('private')",
           "            pass",
           ['test_http.py']),
    Mutant('short-secret', 'the signing secret has 32 characters or more',
           'http.py',
           "and len(value[0]) < MIN_SECRET_LENGTH):",
           "and len(value[0]) < 1):",
           ['test_http.py']),
    Mutant('legacy-fresh', 'a zope.session id gets a fresh random part',
           'http.py',
           "            new = self.generateUniqueId()",
           "            new = sid[:ID_CHARS].encode('ascii')\n"
           "            new = (new + _sign(self.secret, new)).decode('ascii')",
           ['test_http.py', 'test_migration.py']),
    Mutant('strict-ids', 'an id without a live session is not adopted',
           'session.py',
           "        return manager.newClientId(self.request)\n\n"
           "    def invalidate",
           "        return client_id\n\n    def invalidate",
           ['test_session.py']),
    Mutant('rotation-cookie', 'rotation sends the new id',
           'http.py',
           "        sid = self.generateUniqueId()\n"
           "        self.setRequestId(request, sid)",
           "        sid = self.generateUniqueId()",
           ['test_session.py', 'test_http.py']),
    Mutant('savepoint', 'a savepoint rolled back restores the cookie',
           'rollback.py',
           "        return _Savepoint(_State(self._request, self._name))",
           "        return _Savepoint(self._start)",
           ['test_rollback.py']),
    Mutant('secrets-protected', 'untrusted code cannot read the secrets',
           'configure.zcml',
           '        attributes="secret secrets"\n'
           '        permission="zope.ManageServices"',
           '        attributes="secret secrets"\n'
           '        permission="zope.Public"',
           ['test_configure.py']),
]


def apply(mutant):
    """Return the module's original text, after writing the mutant."""
    path = os.path.join(PACKAGE, mutant.module)
    with open(path, encoding='utf-8') as f:
        original = f.read()
    count = original.count(mutant.old)
    if count != 1:
        raise LookupError('{}: the line to break stands {} times in {}'
                          .format(mutant.name, count, mutant.module))
    with open(path, 'w', encoding='utf-8') as f:
        f.write(original.replace(mutant.old, mutant.new))
    return path, original


def run(mutant, python, timeout):
    path, original = apply(mutant)
    try:
        command = [python, '-m', 'pytest', '-x', '-q', '-p',
                   'no:cacheprovider', '-p', 'no:randomly']
        command += [TESTS + test for test in mutant.tests]
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return 'killed (timeout)'
        # pytest: 0 all passed, 1 some failed; anything else is an error.
        if done.returncode == 0:
            return 'SURVIVED'
        if done.returncode == 1:
            return 'killed'
        return 'error {}'.format(done.returncode)
    finally:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(original)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Break key behaviours one line at a time.')
    parser.add_argument('names', nargs='*',
                        help='mutants to run (default: all)')
    parser.add_argument('--list', action='store_true',
                        help='list the mutants and exit')
    parser.add_argument('--timeout', type=int, default=300,
                        help='seconds one mutant may take (default 300)')
    args = parser.parse_args(argv)
    known = {mutant.name: mutant for mutant in MUTANTS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.exit(2, 'mutate.py: no mutant named {}\n'.format(
            ', '.join(unknown)))
    if args.list:
        for mutant in MUTANTS:
            print('{:<22} {}'.format(mutant.name, mutant.rule))
        return 0
    chosen = [known[name] for name in args.names] or MUTANTS
    started = time.monotonic()
    survivors = []
    for mutant in chosen:
        try:
            outcome = run(mutant, sys.executable, args.timeout)
        except LookupError as error:
            print('mutate.py: {}'.format(error), file=sys.stderr)
            return 2
        print('{:<22} {:<18} {}'.format(mutant.name, outcome, mutant.rule),
              flush=True)
        if outcome != 'killed':
            survivors.append(mutant.name)
    print('{} mutants, {} survived, {:.0f} s'.format(
        len(chosen), len(survivors), time.monotonic() - started))
    return 1 if survivors else 0


if __name__ == '__main__':
    sys.exit(main())
