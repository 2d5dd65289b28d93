"""The root site gets its session utilities when the database opens."""
import transaction
import ZODB
import zope.component
import zope.event
from zope.app.publication.zopepublication import ZopePublication
from zope.component.hooks import setHooks
from zope.component.hooks import setSite
from zope.configuration import xmlconfig
from zope.processlifetime import DatabaseOpenedWithRoot
from zope.site.folder import rootFolder
from zope.site.site import LocalSiteManager

import zope_sessionx
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest


class BootstrapTests(ComponentsTestCase):

    def setUp(self):
        super().setUp()
        setHooks()
        self.addCleanup(setSite, None)
        # What a Zope application's configuration holds anyway.
        import zope.container
        import zope.traversing
        xmlconfig.file('configure.zcml', zope.traversing)
        xmlconfig.file('configure.zcml', zope.container)
        xmlconfig.file('configure.zcml', zope_sessionx)
        xmlconfig.file('bootstrap.zcml', zope_sessionx)
        self.db = ZODB.DB(None)
        self.addCleanup(self.db.close)
        connection = self.db.open()
        # As zope.app.appsetup's own bootstrap makes it.
        root = connection.root()[ZopePublication.root_name] = rootFolder()
        root.setSiteManager(LocalSiteManager(root))
        transaction.commit()
        connection.close()

    def _open(self):
        zope.event.notify(DatabaseOpenedWithRoot(self.db))
        connection = self.db.open()
        self.addCleanup(connection.close)
        return connection.root()[ZopePublication.root_name]

    def _local(self, site):
        return {reg.provided: reg.component
                for reg in site.getSiteManager().registeredUtilities()}

    def test_root_site_gets_working_sessions(self):
        site = self._open()
        local = self._local(site)
        manager = local[IClientIdManager]
        self.assertGreaterEqual(len(manager.secret), 32)
        self.assertIn(ISessionDataContainer, local)
        # They work: a session written through the site, read back.
        setSite(site)
        request = makeRequest()
        ISession(request)['my.app']['n'] = 1
        transaction.commit()
        following = nextRequest(request, manager.namespace)
        self.assertEqual(ISession(following)['my.app']['n'], 1)

    def test_twice_changes_nothing(self):
        first = self._local(self._open())
        last = self.db.lastTransaction()
        second = self._local(self._open())
        self.assertEqual(self.db.lastTransaction(), last)
        self.assertEqual(
            {k: v.secret for k, v in first.items()
             if k is IClientIdManager},
            {k: v.secret for k, v in second.items()
             if k is IClientIdManager})

    def test_global_utilities_are_not_shadowed(self):
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.tests.helpers import SECRET
        zope.component.provideUtility(
            CookieClientIdManager('global', SECRET), IClientIdManager)
        local = self._local(self._open())
        self.assertNotIn(IClientIdManager, local)
        self.assertIn(ISessionDataContainer, local)

    def test_database_without_root_site_is_left_alone(self):
        for root in (None, rootFolder()):
            db = ZODB.DB(None)
            self.addCleanup(db.close)
            if root is not None:
                connection = db.open()
                connection.root()[ZopePublication.root_name] = root
                transaction.commit()
                connection.close()
            last = db.lastTransaction()
            zope.event.notify(DatabaseOpenedWithRoot(db))
            self.assertEqual(db.lastTransaction(), last)
