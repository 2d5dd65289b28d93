"""Sessions to and from a stream, with the API (the command line is
tested in test_cli)."""
import io

from zope_sessionx.tests.helpers import ComponentsTestCase


class TransferTests(ComponentsTestCase):

    def _container(self, sessions=0):
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.data import SessionData
        sdc = PersistentSessionDataContainer()
        for n in range(sessions):
            sdc['client%d' % n] = SessionData()
        return sdc

    def test_in_batches_replacing_what_is_there(self):
        from zope_sessionx.data import SessionData
        from zope_sessionx.transfer import exportSessions
        from zope_sessionx.transfer import importSessions
        stream = io.BytesIO()
        self.assertEqual(exportSessions(self._container(5), stream), 5)
        target = self._container()
        target['client0'] = SessionData()
        self.clock.advance(60)
        commits = []
        stream.seek(0)
        self.assertEqual(
            importSessions(target, stream, commit=lambda: commits.append(1),
                           batch=2), 5)
        # After every two sessions, and at the end.
        self.assertEqual(len(commits), 3)
        # client0 was replaced by the exported one, not counted twice.
        self.assertEqual(len(target), 5)
        self.assertEqual(target['client0'].created,
                         self.clock() - 60)

    def test_without_commits(self):
        from zope_sessionx.transfer import exportSessions
        from zope_sessionx.transfer import importSessions
        stream = io.BytesIO()
        exportSessions(self._container(2), stream)
        stream.seek(0)
        target = self._container()
        self.assertEqual(importSessions(target, stream), 2)
        self.assertIn('client1', target)

    def test_refusal_names_the_record(self):
        from zope_sessionx.transfer import TransferError
        from zope_sessionx.transfer import importSessions
        with self.assertRaises(TransferError) as caught:
            importSessions(self._container(), io.BytesIO(b'nonsense'))
        self.assertEqual(caught.exception.record, 0)
