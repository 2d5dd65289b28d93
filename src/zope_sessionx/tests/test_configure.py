"""configure.zcml: adapters, security, TALES and site registration."""
import unittest

import transaction
import zope.component
from zope.component.hooks import setHooks
from zope.component.hooks import setSite
from zope.configuration import xmlconfig
from zope.pagetemplate.engine import AppPT
from zope.pagetemplate.engine import TrustedAppPT
from zope.pagetemplate.pagetemplate import PageTemplate
from zope.security.checker import CheckerPublic
from zope.security.checker import getCheckerForInstancesOf
from zope.traversing.interfaces import IPathAdapter

import zope_sessionx
from zope_sessionx.container import PersistentSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.session import Session
from zope_sessionx.session import SessionPathAdapter
from zope_sessionx.tests.helpers import SECRET
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import installClock
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest
from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


class _Template(TrustedAppPT, PageTemplate):
    """A page template with the Zope TALES engine, rendered with options."""

    def pt_getContext(self, args=(), options=None, **kw):
        namespace = PageTemplate.pt_getContext(self, args=args)
        namespace.update(options or {})
        return namespace


class _UntrustedTemplate(AppPT, PageTemplate):
    """A page template whose expressions see security proxies only."""

    def pt_getContext(self, args=(), options=None, **kw):
        namespace = PageTemplate.pt_getContext(self, args=args)
        namespace.update(options or {})
        return namespace


class ConfigureTests(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        installClock()
        xmlconfig.file('configure.zcml', zope_sessionx)

    def tearDown(self):
        setSite(None)
        tearDownComponents()

    def _anonymous(self, policy=None):
        """An interaction of an unprivileged principal, under *policy*."""
        from zope.security.management import endInteraction
        from zope.security.management import newInteraction
        from zope.security.management import setSecurityPolicy

        class Principal:
            id = 'anonymous'

        class Participation:
            principal = Principal()
            interaction = None

        if policy is not None:
            self.addCleanup(setSecurityPolicy, setSecurityPolicy(policy))
        newInteraction(Participation())
        self.addCleanup(endInteraction)

    def _provideUtilities(self):
        zope.component.provideUtility(
            CookieClientIdManager('sid', SECRET), IClientIdManager)
        sdc = PersistentSessionDataContainer()
        zope.component.provideUtility(sdc, ISessionDataContainer)
        return sdc

    def test_registers_adapters(self):
        self._provideUtilities()
        request = makeRequest()
        session = ISession(request)
        self.assertIsInstance(session, Session)
        self.assertEqual(str(IClientId(request)), session.client_id)
        adapter = zope.component.getAdapter(request, IPathAdapter, 'session')
        self.assertIsInstance(adapter, SessionPathAdapter)
        self.assertTrue(IPathAdapter.providedBy(adapter))

    def test_registers_url_namespace(self):
        from zope.traversing.namespace import namespaceLookup
        ids = CookieClientIdManager('sid', SECRET, namespaces=('url',))
        zope.component.provideUtility(ids, IClientIdManager)
        sid = ids.generateUniqueId()
        request = makeRequest()
        context = object()
        self.assertIs(namespaceLookup('sid', sid, context, request), context)
        self.assertEqual(str(IClientId(request)), sid)

    def test_declares_security(self):
        from zope_sessionx.data import SessionData
        from zope_sessionx.data import SessionPkgData
        from zope_sessionx.ram import RAMSessionDataContainer
        checker = getCheckerForInstancesOf(Session)
        self.assertIs(checker.permission_id('get'), CheckerPublic)
        manager = getCheckerForInstancesOf(CookieClientIdManager)
        self.assertIs(manager.permission_id('getClientId'), CheckerPublic)
        self.assertEqual(manager.setattr_permission_id('namespace'),
                         'zope.ManageServices')
        for klass in (PersistentSessionDataContainer,
                      RAMSessionDataContainer):
            checker = getCheckerForInstancesOf(klass)
            self.assertEqual(checker.setattr_permission_id('timeout'),
                             'zope.ManageServices')
            self.assertIs(checker.permission_id('get'), CheckerPublic)
        for klass in (SessionData, SessionPkgData):
            checker = getCheckerForInstancesOf(klass)
            self.assertIs(checker.permission_id('keys'), CheckerPublic)
        # Only containers mark session data removed.
        self.assertEqual(getCheckerForInstancesOf(SessionData)
                         .permission_id('markRemoved'),
                         'zope.ManageServices')

    def test_maintenance_needs_manage_services_through_a_proxy(self):
        from zope.security.interfaces import Unauthorized
        from zope.security.proxy import ProxyFactory
        from zope.security.simplepolicies import ParanoidSecurityPolicy

        from zope_sessionx.interfaces import ISessionDataContainerMaintenance
        from zope_sessionx.ram import RAMSessionDataContainer

        self._anonymous(ParanoidSecurityPolicy)
        for klass in (PersistentSessionDataContainer,
                      RAMSessionDataContainer):
            sdc = klass()
            sdc.cleanerThread = False
            proxied = ProxyFactory(sdc)
            # What requests use is public ...
            self.assertEqual(proxied.timeout, 3600)
            self.assertIsNone(proxied.get('client'))
            # ... what only a cleaner or an operator calls is not.
            for name in ISessionDataContainerMaintenance.names():
                self.assertRaises(Unauthorized, getattr, proxied, name)
            self.assertRaises(Unauthorized, setattr, proxied, 'timeout', 1)

    def test_every_manager_name_declared_secrets_protected(self):
        from zope.security.interfaces import Unauthorized
        from zope.security.proxy import ProxyFactory
        from zope.security.simplepolicies import ParanoidSecurityPolicy

        from zope_sessionx.interfaces import ICookieClientIdManager
        checker = getCheckerForInstancesOf(CookieClientIdManager)
        for name in ICookieClientIdManager.names(all=True):
            self.assertIn(checker.permission_id(name),
                          (CheckerPublic, 'zope.ManageServices'), name)
            self.assertEqual(checker.setattr_permission_id(name) in
                             (None, 'zope.ManageServices'), True, name)

        self._anonymous(ParanoidSecurityPolicy)
        manager = CookieClientIdManager('sid', SECRET)
        proxied = ProxyFactory(manager)
        self.assertEqual(proxied.namespace, 'sid')
        self.assertEqual(proxied.cookieName, 'sid')
        self.assertIsNotNone(proxied.getClientId(makeRequest()))
        for name in ('secret', 'secrets'):
            self.assertRaises(Unauthorized, getattr, proxied, name)
            self.assertRaises(Unauthorized, setattr, proxied, name, ('x',))

    def test_virtual_host_subscriber(self):
        import zope.traversing

        from zope_sessionx.tests.helpers import virtualHost
        xmlconfig.file('configure.zcml', zope.traversing)
        self._provideUtilities()
        request = makeRequest()
        IClientId(request)
        virtualHost(request, 'http:example.org:80', ['site'])
        self.assertEqual(request.response.getCookie('sid')['path'], '/site')

    def test_tales_session_path(self):
        import zope.traversing
        xmlconfig.file('configure.zcml', zope.traversing)
        self._provideUtilities()
        template = _Template()
        template.write(
            '<p tal:content="request/session:products.foo/color'
            ' | default">green</p>')
        request = makeRequest()
        sdc = zope.component.getUtility(ISessionDataContainer)
        self.assertEqual(template(request=request).strip(), '<p>green</p>')
        # Reading through TALES stores nothing and issues no id.
        self.assertEqual(len(sdc), 0)
        self.assertIsNone(request.response.getCookie('sid'))
        ISession(request)['products.foo']['color'] = 'red'
        following = nextRequest(request, 'sid')
        self.assertEqual(template(request=following).strip(),
                         '<p>red</p>')

    def test_tales_path_finds_keys_before_methods(self):
        import zope.traversing
        xmlconfig.file('configure.zcml', zope.traversing)
        self._provideUtilities()
        template = _Template()
        template.write(
            '<p tal:content="request/session:my.shop/items">x</p>'
            '<i tal:content="request/session:my.shop/missing | string:no"'
            '>x</i>')
        request = makeRequest()
        ISession(request)['my.shop']['items'] = 3
        following = nextRequest(request, 'sid')
        self.assertEqual(template(request=following).strip(),
                         '<p>3</p><i>no</i>')

    def test_tales_session_path_in_untrusted_template(self):
        import zope.traversing
        from zope.security.interfaces import ForbiddenAttribute
        from zope.security.proxy import ProxyFactory
        from zope.security.proxy import removeSecurityProxy
        xmlconfig.file('configure.zcml', zope.traversing)
        self._provideUtilities()
        request = makeRequest()
        ISession(request)['products.foo']['color'] = 'red'
        ISession(request)['products.bar']['secret'] = 'hidden'
        following = nextRequest(request, 'sid')

        self._anonymous()
        template = _UntrustedTemplate()
        template.write(
            '<p tal:content="request/session:products.foo/color">x</p>')
        proxied = ProxyFactory(following)
        self.assertEqual(template(request=proxied).strip(), '<p>red</p>')
        # What the template gets is proxied, and offers only reading.
        adapter = zope.component.getAdapter(proxied, IPathAdapter, 'session')
        self.assertIsNot(removeSecurityProxy(adapter), adapter)
        self.assertRaises(ForbiddenAttribute, getattr, adapter, 'request')
        self.assertEqual(adapter['products.foo']['color'], 'red')


class SiteRegistrationTests(unittest.TestCase):
    """A site administrator's local utilities, stored in a FileStorage."""

    def setUp(self):
        setUpComponents()
        installClock()
        setHooks()
        xmlconfig.file('configure.zcml', zope_sessionx)
        self.fs = FileStorageDB()

    def tearDown(self):
        setSite(None)
        self.fs.close()
        tearDownComponents()

    def test_local_utilities_used_after_reopening(self):
        from zope.site.folder import rootFolder
        from zope.site.site import LocalSiteManager
        conn = self.fs.db.open()
        site = conn.root()['app'] = rootFolder()
        site.setSiteManager(LocalSiteManager(site))
        sm = site.getSiteManager()
        sdc = sm['default']['sessions'] = PersistentSessionDataContainer()
        sdc.cleanerThread = False
        sm.registerUtility(sdc, ISessionDataContainer)
        ids = sm['default']['ids'] = CookieClientIdManager('site_sid')
        sm.registerUtility(ids, IClientIdManager)
        transaction.commit()
        secret = ids.secret
        conn.close()
        self.fs.reopen()

        conn = self.fs.db.open()
        site = conn.root()['app']
        setSite(site)
        request = makeRequest()
        ISession(request)['products.foo']['color'] = 'red'
        transaction.commit()
        cookie = request.response.getCookie('site_sid')
        self.assertIsNotNone(cookie)
        local_sdc = site.getSiteManager()['default']['sessions']
        self.assertEqual(local_sdc[cookie['value']]['products.foo']['color'],
                         'red')
        self.assertEqual(
            site.getSiteManager()['default']['ids'].secret, secret)
        # Outside the site the global registry has neither utility.
        setSite(None)
        self.assertIsNone(
            zope.component.queryUtility(ISessionDataContainer))
        self.assertIsNone(zope.component.queryUtility(IClientIdManager))
        conn.close()
