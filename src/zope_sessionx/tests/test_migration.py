import unittest

import transaction
import zope.component
import zope.session.http
import zope.session.session
from zope.configuration import xmlconfig

import zope_sessionx
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


class ImportZopeSessionsTests(unittest.TestCase):
    """A site switching from zope.session keeps its users' sessions."""

    def setUp(self):
        setUpComponents()
        self.clock = installClock()
        xmlconfig.file('configure.zcml', zope_sessionx)
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)

    def tearDown(self):
        tearDownComponents()

    def _callFUT(self, source, target):
        from zope_sessionx.migration import importZopeSessions
        return importZopeSessions(source, target)

    def _oldSite(self, conn):
        """Sessions as zope.session 6 stored them, under its own ids."""
        old_ids = zope.session.http.CookieClientIdManager('sid', 'shared')
        old = conn.root()['old'] = (
            zope.session.session.PersistentSessionDataContainer())
        old.disable_implicit_sweeps = True
        ids = {}
        for name, last_access in (('live', EPOCH - 60),
                                  ('stale', EPOCH - 7200)):
            client_id = old_ids.generateUniqueId()
            data = zope.session.session.SessionData()
            old.data[client_id] = data
            data.setLastAccessTime(last_access)
            pkg = data['products.foo'] = zope.session.session.SessionPkgData()
            pkg['who'] = name
            ids[name] = client_id
        transaction.commit()
        return old, ids

    def test_sessions_found_through_legacy_ids(self):
        conn = self.fs.db.open()
        old, ids = self._oldSite(conn)
        new = conn.root()['new'] = PersistentSessionDataContainer()
        new.cleanerThread = False
        self.assertEqual(self._callFUT(old, new), 1)
        del conn.root()['old']
        transaction.commit()

        # A fresh secret signs; zope.session's verifies its ids.
        manager = CookieClientIdManager(
            'sid', secrets=('a-fresh-secret-a-fresh-secret-a-fresh', 'shared'),
            acceptLegacyIds=True)
        zope.component.provideUtility(manager, IClientIdManager)
        zope.component.provideUtility(new, ISessionDataContainer)
        request = makeRequest({'sid': ids['live']})
        self.assertEqual(ISession(request)['products.foo']['who'], 'live')
        reissued = request.response.getCookie('sid')['value']
        # With a fresh random part.
        self.assertNotEqual(reissued[:27], ids['live'][:27])
        transaction.commit()
        self.assertIn(reissued, new)
        self.assertNotIn(ids['live'], new)
        # The stale session was not imported.
        stale = makeRequest({'sid': ids['stale']})
        self.assertIsNone(ISession(stale).get('products.foo'))
        conn.close()

    def test_without_timeout_everything_is_copied(self):
        conn = self.fs.db.open()
        old, ids = self._oldSite(conn)
        old.timeout = 0
        new = PersistentSessionDataContainer()
        self.assertEqual(self._callFUT(old, new), 2)
        self.assertEqual(len(new), 2)
        transaction.abort()
        conn.close()
