"""The ZCML directives, and their refusals."""
import os
import shutil
import tempfile

import zope.component
from zope.configuration import xmlconfig
from zope.configuration.exceptions import ConfigurationError

from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.tests.helpers import SECRET
from zope_sessionx.tests.helpers import ComponentsTestCase


TEMPLATE = '''\
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:sessions="http://namespaces.zope.org/sessions">
  <include package="zope_sessionx" file="meta.zcml" />
  {}
</configure>
'''


class DirectivesTests(ComponentsTestCase):

    def setUp(self):
        super().setUp()
        from zope_sessionx.database import closeDatabases
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-zcml-')
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.addCleanup(closeDatabases)
        self.secret_file = self._write('secret.txt', SECRET + '\nolder\n')
        self.uri = 'file://' + os.path.join(self.directory, 'Sessions.fs')

    def _write(self, name, text):
        path = os.path.join(self.directory, name)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        return path

    def _load(self, directives):
        """Load *directives* from a file; return its path."""
        path = self._write('site.zcml', TEMPLATE.format(directives))
        xmlconfig.file(path)
        return path

    def _refused(self, directives):
        """The error loading *directives* gives, as a string."""
        path = os.path.join(self.directory, 'site.zcml')
        with self.assertRaises(ConfigurationError) as caught:
            self._load(directives)
        text = str(caught.exception)
        # Where: the file and the line of the directive.
        self.assertIn(path, text)
        self.assertIn('line 4', text)
        return text

    def test_client_id_manager_from_a_secret_file(self):
        self._load('<sessions:clientIdManager namespace="zsx"'
                   ' secretFile="secret.txt" cookieLifetime="3600"'
                   ' hostPrefix="true" sameSite="Strict"'
                   ' namespaces="cookie form" />')
        manager = zope.component.getUtility(IClientIdManager)
        self.assertEqual(manager.secrets, (SECRET, 'older'))
        self.assertEqual((manager.namespace, manager.cookieLifetime,
                          manager.hostPrefix, manager.sameSite,
                          manager.namespaces),
                         ('zsx', 3600, True, 'Strict', ('cookie', 'form')))
        self.assertFalse(manager.acceptLegacyIds)

    def test_client_id_manager_from_the_environment(self):
        os.environ['ZSX_TEST_SECRET'] = SECRET
        self.addCleanup(os.environ.pop, 'ZSX_TEST_SECRET')
        self._load('<sessions:clientIdManager namespace="zsx"'
                   ' secretEnv="ZSX_TEST_SECRET" />')
        manager = zope.component.getUtility(IClientIdManager)
        self.assertEqual(manager.secrets, (SECRET,))

    def test_secret_refusals(self):
        for attributes, expected in [
                ('secretFile="missing.txt"', "secretFile '"),
                ('secretEnv="ZSX_NO_SUCH_VARIABLE"', 'holds no secret'),
                ('', 'give the secrets in a file'),
                ('secretFile="secret.txt" secretEnv="X"', 'not both')]:
            text = self._refused('<sessions:clientIdManager namespace="zsx" '
                                 + attributes + ' />')
            self.assertIn(expected, text)
            self.assertNotIn(SECRET, text)

    def test_short_secret_refused_and_never_shown(self):
        self._write('short.txt', 'tooshort\n')
        text = self._refused('<sessions:clientIdManager namespace="zsx"'
                             ' secretFile="short.txt" />')
        self.assertIn('attribute secrets', text)
        self.assertNotIn('tooshort', text)

    def test_bad_cookie_setting_names_the_attribute(self):
        text = self._refused('<sessions:clientIdManager namespace="zsx"'
                             ' secretFile="secret.txt" sameSite="lax" />')
        self.assertIn('attribute sameSite', text)

    def test_container_in_a_database_named_by_uri(self):
        self._load('<sessions:container database="{}" timeout="600"'
                   ' maxLifetime="86400" cleanerThread="false"'
                   ' longestTimeout="2592000" longestLifetime="7776000" />'
                   '<sessions:container name="my.wizard" database="{}"'
                   ' timeout="60" cleanerThread="false" />'
                   .format(self.uri, self.uri))
        sdc = zope.component.getUtility(ISessionDataContainer)
        self.assertEqual((sdc.timeout, sdc.maxLifetime), (600, 86400))
        self.assertEqual((sdc.longestTimeout, sdc.longestLifetime),
                         (30 * 86400, 90 * 86400))
        wizard = zope.component.getUtility(ISessionDataContainer,
                                           'my.wizard')
        self.assertEqual(wizard.timeout, 60)
        self.assertIs(wizard.db, sdc.db)

    def test_container_refusals(self):
        for attributes, expected in [
                ('database="nosuch://x"', 'attribute database'),
                ('database="{}" timeout="-1"'.format(self.uri),
                 'attribute timeout'),
                ('database="file://{}/no/such/Data.fs"'.format(
                    self.directory), 'cannot be opened')]:
            text = self._refused('<sessions:container ' + attributes
                                 + ' />')
            self.assertIn(expected, text)
        # Nothing was created.
        self.assertEqual(sorted(os.listdir(self.directory)),
                         ['secret.txt', 'site.zcml'])
