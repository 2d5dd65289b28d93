"""``zope-sessionx``: the operators' command line."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import redirect_stderr

import transaction

from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import ComponentsTestCase


class _CommandLineTestCase(ComponentsTestCase):

    def setUp(self):
        super().setUp()
        from zope_sessionx.database import closeDatabases
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-cli-')
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.addCleanup(closeDatabases)
        self.path = os.path.join(self.directory, 'Sessions.fs')
        self.uri = 'file://' + self.path

    def _container(self, sessions=0, **settings):
        from zope_sessionx.data import SessionData
        from zope_sessionx.database import DatabaseSessionDataContainer
        settings.setdefault('cleanerThread', False)
        sdc = DatabaseSessionDataContainer(self.uri, **settings)
        for n in range(sessions):
            sdc['client%d' % n] = SessionData()
        transaction.commit()
        return sdc

    def _run(self, *argv):
        """(status, standard output, standard error)."""
        from zope_sessionx.cli import main
        out, err = io.StringIO(), io.StringIO()
        with redirect_stderr(err):
            try:
                status = main(list(argv), out)
            except SystemExit as exit:
                status = exit.code
        return status, out.getvalue(), err.getvalue()


class CommandLineTests(_CommandLineTestCase):

    def test_stats(self):
        sdc = self._container(sessions=3, timeout=7200)
        self.clock.advance(2 * 3600)
        sdc['new'] = __import__('zope_sessionx.data').data.SessionData()
        transaction.commit()
        status, out, err = self._run('stats', '--database', self.uri,
                                     '--json')
        self.assertEqual(status, 0)
        figures = json.loads(out)
        self.assertEqual(figures['sessions'], 4)
        self.assertEqual(figures['oldest'], '2023-11-14 22:13:20 UTC')
        self.assertEqual(figures['newest'], '2023-11-15 00:13:20 UTC')
        # The three old ones are due within the hour (idle for two of
        # their two hours... now due exactly): the new one is not.
        self.assertEqual(figures['expiring_next_hour'], 3)
        self.assertEqual(figures['ages'], {'< 1 hour': 1, '< 1 day': 3,
                                           '< 1 week': 0, 'older': 0})
        self.assertGreater(figures['database_bytes'], 0)
        status, text, err = self._run('stats', '--database', self.uri)
        self.assertIn('sessions            4\n', text)
        self.assertIn('age < 1 hour        1\n', text)

    def test_stats_of_an_empty_container(self):
        self._container()
        status, out, err = self._run('stats', '--database', self.uri,
                                     '--json')
        self.assertEqual((json.loads(out)['oldest'],
                          json.loads(out)['sessions']), (None, 0))

    def test_sweep_in_batches_with_plain_lines(self):
        self._container(sessions=5, timeout=60, cleanupBatch=2)
        self.clock.advance(61)
        status, out, err = self._run('sweep', '--database', self.uri)
        self.assertEqual(status, 0)
        self.assertEqual(out.splitlines(), [
            'removed 2 of 5', 'removed 4 of 5', 'removed 5 of 5',
            '5 expired sessions removed'])
        self.assertEqual(self._run('sweep', '--database', self.uri)[1],
                         '0 expired sessions removed\n')

    def test_container_by_path(self):
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.database import openDatabase
        db = openDatabase(self.uri)
        tm = transaction.TransactionManager()
        connection = db.open(transaction_manager=tm)
        connection.root()['app'] = {'sessions': None}
        from persistent.mapping import PersistentMapping
        folder = connection.root()['app'] = PersistentMapping()
        folder['sessions'] = PersistentSessionDataContainer()
        tm.commit()
        connection.close()
        status, out, err = self._run('stats', '--database', self.uri,
                                     '--container', '/app/sessions')
        self.assertEqual((status, err), (0, ''))

    def test_container_in_a_site_manager(self):
        from zope.site.folder import rootFolder
        from zope.site.site import LocalSiteManager

        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.database import openDatabase
        db = openDatabase(self.uri)
        tm = transaction.TransactionManager()
        connection = db.open(transaction_manager=tm)
        site = connection.root()['Application'] = rootFolder()
        site.setSiteManager(LocalSiteManager(site))
        site.getSiteManager()['default']['sessions'] = (
            PersistentSessionDataContainer())
        tm.commit()
        connection.close()
        status, out, err = self._run(
            'stats', '--database', self.uri, '--container',
            '/Application/++etc++site/default/sessions')
        self.assertEqual((status, err), (0, ''))

    def test_mistakes_are_one_line_and_create_nothing(self):
        self._container()
        missing = 'file://' + os.path.join(self.directory, 'none.fs')
        for argv, expected in [
                (['stats', '--database', missing],
                 "zope-sessionx: no database at '{}'\n".format(missing)),
                (['stats', '--database', 'nosuch://x'],
                 "zope-sessionx: database='nosuch://x' refused: 'No "
                 "resolver found for uri: nosuch://x'\n"),
                (['sweep', '--database', self.uri, '--container', 'other'],
                 "zope-sessionx: no session container 'other' in the "
                 "database\n"),
                (['stats', '--database', self.uri, '--container', '/x/y'],
                 "zope-sessionx: no session container '/x/y' in the "
                 "database\n")]:
            status, out, err = self._run(*argv)
            self.assertEqual((status, err), (2, expected))
        self.assertFalse(os.path.exists(missing))
        status, out, err = self._run('stats')
        self.assertEqual(status, 2)
        self.assertIn('the following arguments are required: --database',
                      err)
        self.assertEqual(len(err.strip().splitlines()), 2)  # usage + line

    def test_help_has_an_example(self):
        for command in ('stats', 'sweep', 'cleaner'):
            out = io.StringIO()
            from contextlib import redirect_stdout
            with redirect_stdout(out):
                status = self._run(command, '--help')[0]
            self.assertEqual(status, 0)
            self.assertIn('Example: zope-sessionx ' + command, out.getvalue())

    def test_cleaner_cleans_until_stopped(self):
        from zope_sessionx.cli import _parser
        from zope_sessionx.cli import cleaner
        self._container(sessions=3, timeout=60)
        self.clock.advance(60 + 60 + 60 + 1)
        args = _parser().parse_args(['cleaner', '--database', self.uri,
                                     '--holder', 'ops'])
        stopping = _LookedAt()
        out = io.StringIO()
        runner = threading.Thread(target=cleaner,
                                  args=(args, out, stopping, 0.01))
        from zope_sessionx.database import DatabaseSessionDataContainer
        sdc = DatabaseSessionDataContainer(self.uri)

        def emptied():
            transaction.begin()
            return len(sdc) == 0

        from unittest import mock

        import zope_sessionx.cli
        made = []

        class Recorded(zope_sessionx.cli.Cleaner):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                made.append(self)

        with mock.patch.object(zope_sessionx.cli, 'Cleaner', Recorded):
            runner.start()
            from zope_sessionx.tests.test_zeo import _waitFor
            _waitFor(emptied, 30, 'the cleaner')
        # A process of its own: it never pauses for requests.
        self.assertEqual([cleaner.share for cleaner in made], [1])
        # It kept looking, and stops once asked.
        _waitFor(lambda: stopping.looks >= 2, 30, 'the cleaner to look')
        stopping.set()
        runner.join(30)
        self.assertEqual(out.getvalue(), 'cleaner ops started\n'
                                         'cleaner ops stopped\n')
        self.assertEqual(sdc.lease.holder, 'ops')

    def test_cleaner_process_stops_on_sigterm(self):
        from zope_sessionx.database import closeDatabases
        self._container(sessions=2, timeout=60)
        # A FileStorage is opened by one process at a time.
        closeDatabases()
        process = subprocess.Popen(
            [sys.executable, '-m', 'zope_sessionx.cli', 'cleaner',
             '--database', self.uri, '--holder', 'ops'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(process.stdout.readline(), 'cleaner ops started\n')
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        self.assertEqual((process.returncode, out, err),
                         (0, 'cleaner ops stopped\n', ''))

    def test_console_script(self):
        script = os.path.join(os.path.dirname(sys.executable),
                              'zope-sessionx')
        done = subprocess.run([script, 'stats', '--database', 'nosuch://x'],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stderr.count('\n'), 1)
        self.assertTrue(done.stderr.startswith("zope-sessionx: database="))


class TransferTests(_CommandLineTestCase):
    """Sessions moved from one database to another, through a file."""

    def _filled(self):
        from persistent.list import PersistentList

        from zope_sessionx.data import SessionPkgData
        sdc = self._container(sessions=3, timeout=600)
        sdc['client0']['shop'] = SessionPkgData()
        sdc['client0']['shop']['cart'] = PersistentList(['book'])
        sdc['client1']['shop'] = SessionPkgData()
        sdc['client1']['shop']['n'] = 1
        transaction.commit()
        return sdc

    def _other(self):
        from zope_sessionx.database import DatabaseSessionDataContainer
        uri = 'file://' + os.path.join(self.directory, 'Other.fs')
        # Sessions move, settings do not: the target has its own.
        return uri, DatabaseSessionDataContainer(uri, cleanerThread=False,
                                                 timeout=600)

    def test_round_trip_keeps_every_session_for_its_client(self):
        self._filled()
        self.clock.advance(100)
        path = os.path.join(self.directory, 'sessions.bin')
        status, out, err = self._run('export', '--database', self.uri, path)
        self.assertEqual((status, out),
                         (0, '3 sessions exported to {}\n'.format(path)))
        uri, other = self._other()
        status, out, err = self._run('import', '--database', uri, path)
        self.assertEqual((status, out),
                         (0, '3 sessions imported from {}\n'.format(path)))
        transaction.begin()
        self.assertEqual(len(other), 3)
        # Found by the same client ids, with the same data and times.
        self.assertEqual(list(other['client0']['shop']['cart']), ['book'])
        self.assertEqual(dict(other['client1']['shop']), {'n': 1})
        self.assertEqual(other['client2'].created, EPOCH)
        # And due when they were due: the index came along.
        self.clock.advance(600 + 60 + 60)
        self.assertEqual(other.cleanup().timeout, 3)
        transaction.abort()

    def test_refused_files_write_nothing(self):
        from zope_sessionx.transfer import MAGIC
        self._filled()
        path = os.path.join(self.directory, 'sessions.bin')
        self._run('export', '--database', self.uri, path)
        with open(path, 'rb') as f:
            good = f.read()
        uri, other = self._other()
        transaction.commit()
        flipped = bytearray(good)
        flipped[len(MAGIC) + 10] ^= 0xff
        for name, data, expected in [
                ('foreign', b'PK\x03\x04 a zip file', 'record 0: not a file'),
                ('truncated', good[:-20], 'the file ends here'),
                ('cut', good[:len(MAGIC) + 30], 'record 1: the file ends'),
                ('header', good[:len(MAGIC) + 2], 'record 1: the file ends'),
                ('damaged', bytes(flipped), 'record 1: cannot be read'),
                ('summed', good[:-40] + b'\x00' * 40, 'checksum'),
        ]:
            bad = os.path.join(self.directory, name + '.bin')
            with open(bad, 'wb') as f:
                f.write(data)
            status, out, err = self._run('import', '--database', uri, bad)
            self.assertEqual(status, 2, name)
            self.assertIn(expected, err, name)
            self.assertEqual(err.count('\n'), 1, name)
            transaction.begin()
            self.assertEqual(len(other), 0, name)
        status, out, err = self._run('import', '--database', uri,
                                     os.path.join(self.directory, 'none'))
        self.assertEqual(status, 2)
        self.assertIn('cannot read', err)


class _LookedAt(threading.Event):
    """An event that counts how often it was waited for."""

    looks = 0

    def wait(self, timeout=None):
        self.looks += 1
        return super().wait(timeout)


class CheckTests(_CommandLineTestCase):

    def _secret(self, value):
        path = os.path.join(self.directory, 'secret.txt')
        with open(path, 'w') as f:
            f.write(value + '\n')
        return path

    def test_a_good_deployment(self):
        from zope_sessionx.database import ROOT_KEY
        from zope_sessionx.database import openDatabase
        from zope_sessionx.tests.helpers import SECRET
        self._container(maxLifetime=86400)
        status, out, err = self._run(
            'check', '--database', self.uri, '--secret-file',
            self._secret(SECRET), '--https', '--secure')
        self.assertEqual((status, out, err), (0, 'ok: nothing to fix\n', ''))
        # The probe left nothing behind.
        connection = openDatabase(self.uri).open()
        self.assertEqual(list(connection.root()), [ROOT_KEY])
        connection.close()

    def test_what_it_finds_with_the_fix(self):
        self._container()
        status, out, err = self._run(
            'check', '--database', self.uri, '--secret-file',
            self._secret('short'), '--https')
        self.assertEqual(status, 1)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(all(line.startswith('FIX: ') for line in lines))
        self.assertIn('set maxLifetime', lines[0])
        self.assertIn('fewer than 32 characters', lines[1])
        self.assertIn('secure="true"', lines[2])
        self.assertNotIn('short', out.replace('shortened', ''))

    def test_unreadable_secret_file(self):
        self._container()
        status, out, err = self._run(
            'check', '--database', self.uri, '--secret-file',
            os.path.join(self.directory, 'none'))
        self.assertEqual(status, 2)
        self.assertIn('cannot read', err)
