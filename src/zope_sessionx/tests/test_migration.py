import unittest

import transaction
import zope.component
import zope.component.hooks
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


class SiteMigrationTests(unittest.TestCase):
    """A site whose site manager holds zope.session's local utilities,
    moved by `SiteMigration` and ``zope-sessionx migrate``."""

    OLD_SECRET = '0.12345678901234567890'

    def setUp(self):
        import os
        import shutil
        import tempfile

        from zope_sessionx.database import closeDatabases
        from zope_sessionx.database import openDatabase
        setUpComponents()
        zope.component.hooks.setHooks()
        self.clock = installClock()
        xmlconfig.file('configure.zcml', zope_sessionx)
        directory = tempfile.mkdtemp(prefix='zope_sessionx-migrate-')
        self.addCleanup(shutil.rmtree, directory, True)
        self.addCleanup(closeDatabases)
        self.uri = 'file://' + os.path.join(directory, 'Data.fs')
        self.db = openDatabase(self.uri)
        self.ids = self._oldSite()

    def tearDown(self):
        zope.component.hooks.setSite(None)
        zope.component.hooks.resetHooks()
        tearDownComponents()

    def _open(self):
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        tm.begin()
        return tm, conn.root()['Application'].getSiteManager()

    def _oldSite(self):
        """A site as zope.session 6 left it: its cookie manager and two
        containers, local utilities, with a live and a stale session in
        the unnamed container and a live one in the named."""
        import zope.session.interfaces as old
        from zope.site.folder import rootFolder
        from zope.site.site import LocalSiteManager
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        app = conn.root()['Application'] = rootFolder()
        sm = LocalSiteManager(app)
        app.setSiteManager(sm)
        folder = sm['default']
        manager = folder['CookieClientIdManager'] = (
            zope.session.http.CookieClientIdManager('sid', self.OLD_SECRET))
        manager.cookieLifetime = 3600
        sm.registerUtility(manager, old.IClientIdManager)
        ids = {}
        for name in ('', 'products.big'):
            sdc = folder['Sessions' + name] = (
                zope.session.session.PersistentSessionDataContainer())
            sdc.disable_implicit_sweeps = True
            sm.registerUtility(sdc, old.ISessionDataContainer, name)
        # (After registering: zope.interface's registry compares a new
        # utility with those registered, and zope.session's containers
        # compare as mappings, reading, and so touching, every session.)
        for name in ('', 'products.big'):
            sdc = folder['Sessions' + name]
            for who, last in (('live', EPOCH - 60), ('stale', EPOCH - 7200)):
                if name and who == 'stale':
                    continue
                client_id = manager.generateUniqueId()
                data = sdc.data[client_id] = zope.session.session.SessionData()
                data.setLastAccessTime(last)
                pkg_id = name or 'products.foo'
                pkg = data[pkg_id] = zope.session.session.SessionPkgData()
                pkg['who'] = who + name
                ids[who + name] = client_id
        tm.commit()
        conn.close()
        return ids

    def _migration(self, tm, sm, **kw):
        from zope_sessionx.migration import SiteMigration
        return SiteMigration(sm, tm, **kw)

    def _request(self, sm, client_id):
        """A request with the old cookie, through the site's utilities."""
        zope.component.hooks.setSite(sm.__parent__)
        request = makeRequest({'sid': client_id})
        return request, ISession(request)

    def _assertMigrated(self, sm):
        from zope_sessionx.migration import OLD_CONTAINERS
        from zope_sessionx.migration import OLD_IDS
        self.assertEqual([r for r in sm.registeredUtilities()
                          if r.provided.__identifier__ in (OLD_IDS,
                                                           OLD_CONTAINERS)],
                         [])
        self.assertEqual(sorted(sm['default'].keys()),
                         ['zope_sessionx-ids', 'zope_sessionx-sessions',
                          'zope_sessionx-sessions-products.big'])
        manager = sm.getUtility(IClientIdManager)
        self.assertIsInstance(manager, CookieClientIdManager)
        self.assertEqual(manager.namespace, 'sid')
        self.assertEqual(manager.cookieLifetime, 3600)
        self.assertEqual(manager.secrets[1], self.OLD_SECRET)
        self.assertGreaterEqual(len(manager.secrets[0]), 32)
        self.assertTrue(manager.acceptLegacyIds)
        default = sm.getUtility(ISessionDataContainer)
        named = sm.getUtility(ISessionDataContainer, 'products.big')
        self.assertEqual((len(default), len(named)), (1, 1))
        self.assertIsNone(default.legacySource)
        self.assertNotIn('legacySource', default.__dict__)
        return default, named

    def test_run_moves_the_site(self):
        tm, sm = self._open()
        lines = self._migration(tm, sm).run()
        self.assertEqual(len(lines), 3)
        tm.begin()
        default, named = self._assertMigrated(sm)
        # A client comes back with its zope.session cookie: its session
        # is there, under a new id.
        request, session = self._request(sm, self.ids['live'])
        self.assertEqual(session['products.foo']['who'], 'live')
        reissued = request.response.getCookie('sid')['value']
        self.assertNotEqual(reissued, self.ids['live'])
        tm.commit()
        session = self._request(sm, self.ids['liveproducts.big'])[1]
        self.assertEqual(session['products.big']['who'], 'liveproducts.big')
        tm.commit()
        self.assertIsNone(self._request(sm, self.ids['stale'])[1]
                          .get('products.foo'))

    def test_session_used_during_the_migration_is_adopted_once(self):
        tm, sm = self._open()
        migration = self._migration(tm, sm)
        migration.prepare()
        # The site works before any session is copied: the client's
        # session is adopted on first use, and follows its new id.
        tm.begin()
        request, session = self._request(sm, self.ids['live'])
        self.assertEqual(session['products.foo']['who'], 'live')
        reissued = request.response.getCookie('sid')['value']
        tm.commit()
        self.assertEqual(migration.copy(), 1)   # products.big's only
        migration.finish()
        tm.begin()
        default, named = self._assertMigrated(sm)
        self.assertIn(reissued, default)
        self.assertNotIn(self.ids['live'], default)

    def test_interrupted_anywhere_then_run_again_copies_each_once(self):
        tm, sm = self._open()
        migration = self._migration(tm, sm, batch=1)

        class Interrupted(Exception):
            pass

        def interrupt(moved):
            raise Interrupted

        self.assertRaises(Interrupted, migration.run, interrupt)
        tm.abort()
        # One transaction of one session was committed, no more.
        tm.begin()
        self.assertEqual(migration.remaining(), 2)
        # Run again, in a fresh process (a fresh object), to the end.
        tm, sm = self._open()
        self.assertEqual(self._migration(tm, sm).prepare(), [])
        self._migration(tm, sm).run()
        tm.begin()
        self._assertMigrated(sm)

    def test_a_client_and_the_copy_adopting_at_once_conflict(self):
        tm, sm = self._open()
        migration = self._migration(tm, sm)
        migration.prepare()
        # The copy reads the old container ...
        tm.begin()
        migration.remaining()
        # ... while a request adopts a session from it, and commits.
        other, osm = self._open()
        self._request(osm, self.ids['live'])[1]['products.foo']['x'] = 1
        other.commit()
        # The copy's transaction conflicts, and is retried.
        self.assertEqual(migration.copy(), 1)   # products.big's only
        self.assertEqual(migration.conflicts, 1)
        # Retried, the copy did not copy the adopted session again.
        migration.finish()
        tm.begin()
        default, named = self._assertMigrated(sm)
        self.assertNotIn(self.ids['live'], default)

    def test_command(self):
        from zope_sessionx.tests.test_cli import _CommandLineTestCase
        run = _CommandLineTestCase._run
        status, out, err = run(None, 'migrate', '--database', self.uri,
                               '--site', '/Application', '--batch', '1')
        self.assertEqual((status, err), (0, ''))
        self.assertIn("registered client id manager '': cookie 'sid'", out)
        self.assertIn('moved 3 of 3 sessions', out)
        self.assertIn('2 live sessions copied', out)
        self.assertIn("removed zope.session's ISessionDataContainer "
                      "'products.big'", out)
        tm, sm = self._open()
        self._assertMigrated(sm)
        # Nothing left to migrate: one line, status 2.
        status, out, err = run(None, 'migrate', '--database', self.uri,
                               '--site', '/Application')
        self.assertEqual((status, err), (2, (
            "zope-sessionx: the site at '/Application' has no "
            "zope.session utilities to migrate\n")))

    def test_command_refuses_bad_input(self):
        from zope_sessionx.tests.test_cli import _CommandLineTestCase
        run = _CommandLineTestCase._run
        for site in ('/Nowhere', '/Application/x', '/'):
            status, out, err = run(None, 'migrate', '--database', self.uri,
                                   '--site', site)
            self.assertEqual((status, err), (
                2, 'zope-sessionx: no site at {!r} in the database\n'
                .format(site)))
        status, out, err = run(None, 'migrate', '--database', self.uri,
                               '--site', '/Application', '--batch', 'x')
        self.assertEqual(status, 2)
        self.assertIn("not a positive whole number: 'x'", err)

    def test_check_finds_a_site_not_migrated_and_a_weak_secret(self):
        from zope_sessionx.tests.test_cli import _CommandLineTestCase
        run = _CommandLineTestCase._run
        tm, sm = self._open()
        self._migration(tm, sm).prepare()
        argv = ['check', '--database', self.uri, '--site', '/Application',
                '--container',
                '/Application/++etc++site/default/zope_sessionx-sessions']
        status, out, err = run(None, *argv)
        self.assertEqual(status, 1)
        self.assertIn("FIX: the site still registers zope.session's "
                      "utilities: run zope-sessionx migrate --database "
                      "{} --site /Application".format(self.uri), out)
        self.assertNotIn('signing secret', out)
        # A zope.session secret first, as a hand-written script that
        # bypassed the manager's check could have stored it.
        tm.begin()
        manager = sm.getUtility(IClientIdManager)
        manager.__dict__['secrets'] = (self.OLD_SECRET,) + manager.secrets
        manager._p_changed = True
        tm.commit()
        status, out, err = run(None, *argv)
        self.assertIn("FIX: the signing secret of the site's client id "
                      "manager is a zope.session default secret", out)
        # Not a site.
        status, out, err = run(None, *argv[:4] + ['/Nowhere'] + argv[5:])
        self.assertEqual((status, err), (
            2, "zope-sessionx: no site at '/Nowhere' in the database\n"))

    def test_names_taken_in_the_folder_are_not_reused(self):
        tm, sm = self._open()
        sm['default']['zope_sessionx-ids'] = zope.session.session.SessionData()
        self._migration(tm, sm).run()
        tm.begin()
        self.assertIsInstance(sm['default']['zope_sessionx-ids_'],
                              CookieClientIdManager)

    def test_finish_refuses_while_sessions_are_left(self):
        tm, sm = self._open()
        migration = self._migration(tm, sm)
        migration.prepare()
        tm.begin()
        self.assertRaises(ValueError, migration.finish)

    def test_gives_up_after_conflicts_and_says_run_again(self):
        from unittest import mock

        from ZODB.POSException import ConflictError
        tm, sm = self._open()
        migration = self._migration(tm, sm)
        migration.prepare()

        def conflicting():
            raise ConflictError('meanwhile')

        with mock.patch.object(tm, 'commit', conflicting):
            with self.assertRaises(ConflictError) as caught:
                migration.copy()
        self.assertIn('run the migration again', str(caught.exception))
        self.assertEqual(migration.conflicts, migration.max_attempts)
        # The command says so in one line.
        from zope_sessionx import migration as module
        from zope_sessionx.tests.test_cli import _CommandLineTestCase
        with mock.patch.object(module.SiteMigration, 'copy',
                               side_effect=ConflictError('gave up; run it '
                                                         'again')):
            status, out, err = _CommandLineTestCase._run(
                None, 'migrate', '--database', self.uri, '--site',
                '/Application')
        self.assertEqual(status, 2)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn('run it again', err)

    def test_command_on_a_terminal_shows_a_bar(self):
        import io
        from unittest import mock

        from tqdm import tqdm

        from zope_sessionx.tests.test_cli import _CommandLineTestCase
        shown = io.StringIO()
        with mock.patch('zope_sessionx.cli._bar',
                        lambda total: tqdm(total=total, file=shown)):
            status, out, err = _CommandLineTestCase._run(
                None, 'migrate', '--database', self.uri, '--site',
                '/Application')
        self.assertEqual(status, 0)
        self.assertNotIn('moved 3 of 3 sessions', out)
        self.assertIn('3/3', shown.getvalue())

    def test_check_a_migrated_site(self):
        from zope_sessionx.tests.test_cli import _CommandLineTestCase
        tm, sm = self._open()
        self._migration(tm, sm).run()
        status, out, err = _CommandLineTestCase._run(
            None, 'check', '--database', self.uri, '--site', '/Application',
            '--container',
            '/Application/++etc++site/default/zope_sessionx-sessions')
        self.assertNotIn('zope.session', out)
        self.assertNotIn('signing secret', out)
