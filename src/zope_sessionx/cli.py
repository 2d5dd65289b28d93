"""``zope-sessionx``: the operators' command line.

Every subcommand takes ``--database URI`` (a `zodburi` URI: ``file://``,
``zeo://``, ``postgres://`` with RelStorage) and ``--container`` (the
name a ``<sessions:container>`` gave, or a path from the database's root,
``/key/key/...``, where ``++etc++site`` steps into a site manager).  A
mistake is one line on standard error and exit status 2; nothing is
created.
"""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

import transaction
from tqdm import tqdm
from ZODB.POSException import ConflictError

from zope_sessionx.cleanup import Cleaner
from zope_sessionx.cleanup import StoredOpener
from zope_sessionx.database import ROOT_KEY
from zope_sessionx.database import openDatabase
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import ISessionDataContainerMaintenance
from zope_sessionx.migration import SiteMigration
from zope_sessionx.transfer import TransferError
from zope_sessionx.transfer import exportSessions
from zope_sessionx.transfer import importSessions


__all__ = [
    'main',
]

HOUR = 3600
#: Upper bounds of the age histogram, in seconds.
AGES = [('< 1 hour', HOUR), ('< 1 day', 24 * HOUR),
        ('< 1 week', 7 * 24 * HOUR), ('older', None)]


class _Refused(Exception):
    """One line for the operator."""


def _database(uri):
    parts = urlsplit(uri)
    if parts.scheme == 'file' and not os.path.exists(parts.path):
        # Opening would create it.
        raise _Refused('no database at {!r}'.format(uri))
    try:
        return openDatabase(uri)
    except InvalidSettingError as error:
        raise _Refused(str(error)) from None


def _walk(root, path):
    """The object the ``/``-separated *path* names from *root*, where
    ``++etc++site`` steps into a site manager; None if there is none."""
    found = root
    for segment in filter(None, path.split('/')):
        try:
            found = (found.getSiteManager() if segment == '++etc++site'
                     else found[segment])
        except (KeyError, TypeError, AttributeError):
            return None
    return found


def _find(root, container):
    """The container *container* names in the database's root."""
    if container.startswith('/'):
        found = _walk(root, container)
    else:
        found = root.get(ROOT_KEY, {}).get(container)
    if not ISessionDataContainerMaintenance.providedBy(found):
        raise _Refused('no session container {!r} in the database'.format(
            container))
    return found


def _connect(args):
    """(database, transaction manager, root) of ``--database``."""
    db = _database(args.database)
    tm = transaction.TransactionManager()
    connection = db.open(transaction_manager=tm)
    tm.begin()
    return db, tm, connection.root()


def _open(args):
    """(database, transaction manager, container)."""
    db, tm, root = _connect(args)
    return db, tm, _find(root, args.container)


def stats(args, out):
    """The ``stats`` subcommand."""
    db, tm, sdc = _open(args)
    now = sdc.now()
    created, expiring, ages = [], 0, [0] * len(AGES)
    for _key, session in sdc.iterSessions():
        created.append(session.created)
        due = sdc.expiresAt(session)
        if due is not None and now <= due < now + HOUR:
            expiring += 1
        age = now - session.created
        ages[next(slot for slot, (_, bound) in enumerate(AGES)
                  if bound is None or age < bound)] += 1
    tm.abort()

    def when(t):
        return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(t))

    figures = {
        'sessions': len(created),
        'oldest': when(min(created)) if created else None,
        'newest': when(max(created)) if created else None,
        'expiring_next_hour': expiring,
        'ages': dict(zip((label for label, _ in AGES), ages)),
        'database_bytes': db.getSize(),
    }
    if args.json:
        json.dump(figures, out, indent=2)
        out.write('\n')
        return
    out.write('sessions            {}\n'.format(figures['sessions']))
    out.write('oldest              {}\n'.format(figures['oldest']))
    out.write('newest              {}\n'.format(figures['newest']))
    out.write('expiring next hour  {}\n'.format(expiring))
    for label, count in figures['ages'].items():
        out.write('age {:<16}{}\n'.format(label, count))
    out.write('database bytes      {}\n'.format(figures['database_bytes']))


def sweep(args, out):
    """The ``sweep`` subcommand."""
    db, tm, sdc = _open(args)
    total = len(sdc)
    bar = _bar(total)
    removed = 0
    while True:
        result = sdc.cleanup(grace=0)
        tm.commit()
        removed += result.removed()
        bar.update(result.removed())
        if bar.disable and result.removed():
            # Not a terminal: plain lines instead of a bar.
            out.write('removed {} of {}\n'.format(removed, total))
        if not result.more:
            break
    bar.close()
    out.write('{} expired sessions removed\n'.format(removed))


def cleaner(args, out, stopping=None, poll=0.5):
    """The ``cleaner`` subcommand: clean until SIGTERM or Ctrl-C.

    *stopping* (an event) stops it too; *poll* is how often it looks.
    """
    db, tm, sdc = _open(args)
    oid = sdc._p_oid
    tm.abort()
    # A process of its own: no requests to make room for.
    worker = Cleaner(StoredOpener(db, oid), holder=args.holder, share=1)
    stopping = stopping or threading.Event()
    main = threading.current_thread() is threading.main_thread()
    if main:
        # SIGTERM (a service manager's stop) stops it cleanly.
        previous = signal.signal(signal.SIGTERM,
                                 lambda *a: stopping.set())
    out.write('cleaner {} started\n'.format(worker.holder))
    out.flush()
    worker.start()
    try:
        while not stopping.wait(poll) and worker.running:
            pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        worker.stop(60)
    out.write('cleaner {} stopped\n'.format(worker.holder))


def export(args, out):
    """The ``export`` subcommand."""
    db, tm, sdc = _open(args)
    with open(args.file, 'wb') as stream, _bar(len(sdc)) as bar:
        count = exportSessions(sdc, stream, bar.update)
    tm.abort()
    out.write('{} sessions exported to {}\n'.format(count, args.file))


def import_(args, out):
    """The ``import`` subcommand."""
    db, tm, sdc = _open(args)
    try:
        stream = open(args.file, 'rb')
    except OSError as error:
        raise _Refused('cannot read {!r}: {}'.format(
            args.file, error.strerror)) from None
    with stream, _bar(None) as bar:
        try:
            count = importSessions(sdc, stream, commit=tm.commit,
                                   progress=bar.update)
        except TransferError as error:
            tm.abort()
            raise _Refused('{}: {}'.format(args.file, error)) from None
    out.write('{} sessions imported from {}\n'.format(count, args.file))


#: Where `check` provokes a conflict, in the session database's root.
PROBE_KEY = 'zope_sessionx-check'


def _resolves(db):
    """Whether concurrent writes of a package merge in *db* (the storage,
    a ZEO server say, can load zope_sessionx's classes)."""
    from zope_sessionx.data import SessionPkgData
    managers = [transaction.TransactionManager() for _ in range(3)]
    connections = [db.open(transaction_manager=tm) for tm in managers]
    try:
        connections[0].root()[PROBE_KEY] = SessionPkgData()
        managers[0].commit()
        for key, (tm, connection) in enumerate(zip(managers[1:],
                                                   connections[1:])):
            tm.begin()
            connection.root()[PROBE_KEY][key] = True
        managers[1].commit()
        try:
            managers[2].commit()
            return True
        except ConflictError:
            return False
    finally:
        for tm in managers:
            tm.abort()
        managers[0].begin()
        del connections[0].root()[PROBE_KEY]
        managers[0].commit()
        for connection in connections:
            connection.close()


#: What zope.session's default secret looks like ('%.20f' % random()).
ZOPE_SESSION_SECRET = re.compile(r'^0\.\d{20}$')


def _weakSecret(secret):
    """Why *secret* must not sign, or None."""
    if ZOPE_SESSION_SECRET.match(secret):
        return 'is a zope.session default secret (about 2^53 values)'
    if len(secret) < 32:
        return 'has fewer than 32 characters'
    return None


def _siteFindings(args):
    """What is wrong with the client id managers stored in ``--site``."""
    from zope_sessionx.interfaces import IClientIdManager
    from zope_sessionx.migration import OLD_CONTAINERS
    from zope_sessionx.migration import OLD_IDS
    db, tm, site_manager = _siteManager(args)
    findings = []
    try:
        provided = {registration.provided.__identifier__: registration
                    for registration in site_manager.registeredUtilities()}
        if OLD_IDS in provided or OLD_CONTAINERS in provided:
            findings.append(
                'the site still registers zope.session\'s utilities: run '
                'zope-sessionx migrate --database {} --site {}'.format(
                    args.database, args.site))
        registration = provided.get(IClientIdManager.__identifier__)
        secrets = getattr(registration, 'component', None)
        secrets = getattr(secrets, 'secrets', ())
        why = _weakSecret(secrets[0]) if secrets else None
        if why:
            findings.append(
                'the signing secret of the site\'s client id manager {}: '
                'put a fresh one first, keeping the old one to verify '
                '(manager.secrets = (new,) + manager.secrets)'.format(why))
    finally:
        tm.abort()
    return findings


def check(args, out):
    """The ``check`` subcommand: what a deployment gets wrong."""
    db, tm, sdc = _open(args)
    lifetime = sdc.maxLifetime
    tm.abort()
    findings = []
    if not _resolves(db):
        findings.append(
            'the database does not resolve conflicts of zope_sessionx\'s '
            'classes: install zope_sessionx where the ZEO server runs, or '
            'set client-conflict-resolution true in its <zeo> section')
    if not lifetime:
        findings.append(
            'no absolute lifetime (maxLifetime is 0): a session used now '
            'and then lives forever; set maxLifetime, say 86400')
    if args.secret_file:
        try:
            with open(args.secret_file, encoding='utf-8') as f:
                secret = (f.read().split() or [''])[0]
        except OSError as error:
            raise _Refused('cannot read {!r}: {}'.format(
                args.secret_file, error.strerror)) from None
        why = _weakSecret(secret)
        if why:
            findings.append(
                'the signing secret {}: put a fresh one first (python -c '
                '"import secrets; print(secrets.token_urlsafe(32))")'
                .format(why))
    if args.site:
        findings.extend(_siteFindings(args))
    if args.https and not args.secure:
        findings.append(
            'the site is served over HTTPS but the cookie is not always '
            'Secure: set secure="true" (or hostPrefix="true") on the '
            'client id manager')
    for finding in findings:
        out.write('FIX: {}\n'.format(finding))
    if not findings:
        out.write('ok: nothing to fix\n')
    return 1 if findings else 0


def _siteManager(args):
    """(database, transaction manager, site manager) of ``--site``."""
    db, tm, root = _connect(args)
    site = _walk(root, args.site)
    try:
        site_manager = site.getSiteManager()
    except Exception:
        raise _Refused('no site at {!r} in the database'.format(
            args.site)) from None
    return db, tm, site_manager


def migrate(args, out):
    """The ``migrate`` subcommand: a site from zope.session, resumable."""
    db, tm, site_manager = _siteManager(args)
    migration = SiteMigration(site_manager, tm, batch=args.batch)
    if not migration.oldUtilities() and not migration.containers():
        raise _Refused('the site at {!r} has no zope.session utilities to '
                       'migrate'.format(args.site))
    for line in migration.prepare():
        out.write('registered {}\n'.format(line))
    out.flush()
    total = migration.remaining()
    done = [0]
    with _bar(total) as bar:
        def progress(moved):
            bar.update(moved)
            done[0] += moved
            if bar.disable:
                out.write('moved {} of {} sessions\n'.format(done[0], total))
        try:
            copied = migration.copy(progress)
        except ConflictError as error:
            raise _Refused('{}'.format(error)) from None
    out.write('{} live sessions copied\n'.format(copied))
    for line in migration.finish():
        out.write(line + '\n')
    out.write('done: once a session timeout has passed, turn '
              'acceptLegacyIds off and drop the old secret\n')


def _bar(total):
    # A progress bar on a terminal; nothing otherwise.
    return tqdm(total=total, unit='sessions', file=sys.stderr,
                disable=not sys.stderr.isatty())


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            'not a positive whole number: {!r}'.format(text))
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog='zope-sessionx',
        description='Look after zope_sessionx session containers.')
    commands = parser.add_subparsers(dest='command', required=True,
                                     metavar='COMMAND')
    for name, function, text, example in [
            ('stats', stats, 'how many sessions, how old, how soon due',
             'zope-sessionx stats --database file:///var/Sessions.fs'),
            ('sweep', sweep, 'remove every expired session now',
             'zope-sessionx sweep --database zeo://127.0.0.1:8100'),
            ('cleaner', cleaner, 'the cleaner, as a process of its own',
             'zope-sessionx cleaner --database zeo://127.0.0.1:8100'),
            ('export', export, 'write the sessions to a file',
             'zope-sessionx export --database file:///var/Sessions.fs '
             'sessions.bin'),
            ('import', import_, 'read sessions from a file written by '
             'export', 'zope-sessionx import --database '
             'zeo://127.0.0.1:8100 sessions.bin'),
            ('check', check, 'what a deployment gets wrong, and the fix',
             'zope-sessionx check --database zeo://127.0.0.1:8100 '
             '--secret-file /etc/myapp/secret --https --secure'),
            ('migrate', migrate, 'move a site from zope.session (run it '
             'again if interrupted)',
             'zope-sessionx migrate --database file:///var/Data.fs '
             '--site /Application')]:
        command = commands.add_parser(
            name, help=text, description=text.capitalize() + '.',
            epilog='Example: ' + example)
        command.set_defaults(function=function)
        command.add_argument('--database', required=True, metavar='URI',
                             help='the session database (a zodburi URI)')
        if name == 'migrate':
            command.add_argument('--site', required=True, metavar='PATH',
                                 help='the site, a /path from the root')
            command.add_argument('--batch', type=_positive, default=1000,
                                 help='sessions per transaction (default: '
                                 '1000)')
            continue
        command.add_argument('--container', default='', metavar='NAME',
                             help='the container: a name, or a /path '
                             'from the root (default: the unnamed one)')
        if name == 'stats':
            command.add_argument('--json', action='store_true',
                                 help='print JSON, for machines')
        if name in ('export', 'import'):
            command.add_argument('file', help='the file of sessions')
        if name == 'check':
            command.add_argument('--secret-file', help='the file of the '
                                 "client id manager's secrets")
            command.add_argument('--site', metavar='PATH',
                                 help='also check the client id manager '
                                 'a site (a /path from the root) stores')
            command.add_argument('--https', action='store_true',
                                 help='the site is served over HTTPS')
            command.add_argument('--secure', action='store_true',
                                 help='the manager marks the cookie Secure '
                                 '(secure or hostPrefix)')
        if name == 'cleaner':
            command.add_argument('--holder', help='its name in the lease '
                                 '(default: host, process and a random '
                                 'part)')
    return parser


def main(argv=None, out=None):
    """Run the command line; return the exit status."""
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.function(args, out) or 0
    except _Refused as error:
        sys.stderr.write('zope-sessionx: {}\n'.format(error))
        return 2


def main_exit():
    """The console script: exit with `main`'s status."""
    sys.exit(main())


if __name__ == '__main__':  # pragma: no cover
    main_exit()
