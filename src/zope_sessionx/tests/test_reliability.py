"""The reliability suite (``benchmarks/reliability.py``): its small
version runs with the tests, against a real ZEO server and a real
PostgreSQL, and must keep every promise."""
import contextlib
import importlib.util
import io
import os
import pathlib
import tempfile
import unittest
from unittest import mock

from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import skipUnlessAvailable
from zope_sessionx.tests.helpers import tearDownComponents
from zope_sessionx.tests.postgres import unavailable


SUITE = (pathlib.Path(__file__).resolve().parents[3] / 'benchmarks'
         / 'reliability.py')


def _suite():
    spec = importlib.util.spec_from_file_location('reliability', SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ReliabilityTests(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        self.addCleanup(tearDownComponents)
        self.suite = _suite()

    def _main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(
                err):
            status = self.suite.main(list(argv))
        return status, out.getvalue(), err.getvalue()

    @skipUnlessAvailable(unavailable())
    def test_small_version(self):
        status, out, err = self._main('--duration', '10')
        # Known and open (docs/reliability.rst, "What it found"): over
        # RelStorage, a write acknowledged just before PostgreSQL crashed
        # was once lost; reported, not yet a promise kept.
        lost = 'acknowledged writes lost otherwise: 0'
        broken = [line for line in out.splitlines()
                  if 'BROKEN' in line and lost not in line
                  and line != 'BROKEN:']
        self.assertEqual(broken, [], out + err)
        self.assertEqual(out.count(lost), 2)
        for promise in ('failures only during faults',
                        'database needs no repair',
                        'another cleaner took over in time',
                        'reopened with every committed session',
                        'forged ids let in: 0', 'writes caused: 0',
                        'no other answer than 200 or 503',
                        'the old id reaches nothing after log-in'):
            self.assertIn(promise, out)
        self.assertIn('load RelStorage', out)

    @skipUnlessAvailable(unavailable())
    def test_small_load_without_faults_loses_nothing(self):
        status, out, err = self._main('--duration', '10', '--no-faults',
                                      '--scenarios', 'load')
        self.assertNotIn('BROKEN', out)
        self.assertEqual(status, 0, out + err)
        self.assertIn('load ZEO (no faults) acknowledged writes lost '
                      'otherwise: 0', out)
        self.assertIn('load RelStorage (no faults)', out)

    def test_bad_arguments_are_one_line(self):
        for argv, message in [
                (['--duration', '5'], '--duration must be between 10 and '
                 '3600 seconds, not 5'),
                (['--processes', '40'], '--processes must be between 2 and '
                 '16, not 40'),
                (['--backends', 'mysql'], "unknown backend 'mysql'"),
                (['--restarts', '0'], '--restarts must be between 1 and '
                 '20, not 0'),
                (['--scenarios', 'load,chaos'], "unknown scenario 'chaos'")]:
            status, out, err = self._main(*argv)
            self.assertEqual(status, 2)
            self.assertEqual(err, 'reliability: {}'.format(message)
                             + err[len('reliability: ') + len(message):])
            self.assertEqual(len(err.splitlines()), 1)

    def test_interrupted_run_stops_what_it_started(self):
        started, servers = [], []
        real = self.suite.App
        realServer = self.suite.ZEOBackend

        class Recorded(real):
            def start(self):
                super().start()
                started.append(self.process)

        class RecordedServer(realServer):
            def start(self):
                super().start()
                servers.append(self.process)
                return self

        def interrupt(*args):
            raise KeyboardInterrupt

        def leftovers():
            return {name for name in os.listdir(tempfile.gettempdir())
                    if name.startswith('zope_sessionx-reliability-')}

        before = leftovers()
        with mock.patch.object(self.suite, 'App', Recorded), \
                mock.patch.object(self.suite, 'ZEOBackend', RecordedServer), \
                mock.patch.object(self.suite, 'loadScenario', interrupt):
            status, out, err = self._main('--backends', 'zeo',
                                          '--scenarios', 'load',
                                          '--processes', '2')
        self.assertEqual(status, 130)
        self.assertIn('interrupted', err)
        self.assertEqual(len(started), 2)
        self.assertEqual(len(servers), 1)
        for process in started + servers:
            self.assertIsNotNone(process.poll())
        self.assertEqual(leftovers() - before, set())
