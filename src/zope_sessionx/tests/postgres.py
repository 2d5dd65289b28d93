"""A PostgreSQL server of the tests' own, in a temporary directory.

Debian's ``postgresql`` package, run as the ``postgres`` user on
127.0.0.1 and a free port.  Without it (or without root, to become that
user) the tests that need it skip, saying what to install; under CI
(``CI=true``) they fail instead, since CI must run them.
"""
import glob
import os
import shutil
import socket
import subprocess
import tempfile


def _binaries():
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'))
    return os.path.dirname(found[-1]) if found else None


def unavailable():
    """Why a server cannot be started here, or None."""
    if _binaries() is None:
        return 'PostgreSQL is not installed (apt-get install postgresql)'
    if os.geteuid() != 0 or shutil.which('runuser') is None:
        return 'running as the postgres user needs root and runuser'
    try:
        import psycopg2  # noqa: F401
        import relstorage  # noqa: F401
    except ImportError:
        return 'RelStorage and psycopg2 are not installed'
    return None


def _freePort():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class PostgresServer:
    """Start with `start`, stop with `stop`; `uri(name)` names a fresh,
    history-free RelStorage database on it."""

    def start(self):
        self.bin = _binaries()
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-pg-')
        os.chmod(self.directory, 0o755)
        shutil.chown(self.directory, 'postgres', 'postgres')
        self.data = os.path.join(self.directory, 'data')
        self.port = _freePort()
        self._run('initdb', '-D', self.data, '-A', 'trust', '-U',
                  'postgres', '--no-sync')
        self._run('pg_ctl', '-D', self.data, '-w', '-l',
                  os.path.join(self.directory, 'log'), '-o',
                  '-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off'
                  .format(self.port, self.directory), 'start')
        self.databases = 0
        return self

    def _run(self, program, *args):
        subprocess.run(['runuser', '-u', 'postgres', '--',
                        os.path.join(self.bin, program)] + list(args),
                       check=True, capture_output=True, timeout=120)

    def uri(self):
        """A new, empty database: its RelStorage URI (history-free)."""
        self.databases += 1
        name = 'zsx{}'.format(self.databases)
        self._run('createdb', '-h', '127.0.0.1', '-p', str(self.port), name)
        return ('postgres://postgres@127.0.0.1:{}/{}?keep_history=false'
                .format(self.port, name))

    def stop(self):
        try:
            self._run('pg_ctl', '-D', self.data, '-m', 'fast', '-w', 'stop')
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
