"""The demo application: through WebTest, and over real sockets."""
import base64
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import webtest

from zope_sessionx.tests.helpers import setUpComponents
from zope_sessionx.tests.helpers import tearDownComponents


COOKIE = 'zsx_demo'


def count(response):
    return int(re.search(r'id="count">(\d+)<', response.text).group(1))


class _DemoTestCase(unittest.TestCase):

    def setUp(self):
        setUpComponents()
        self.addCleanup(tearDownComponents)
        self.var = tempfile.mkdtemp(prefix='zope_sessionx-demo-')
        self.addCleanup(shutil.rmtree, self.var, True)

    def _start(self, **kw):
        from zope_sessionx.demo import makeApplication
        tearDownComponents()
        setUpComponents()
        self.demo = makeApplication(self.var, **kw)
        self.addCleanup(self.demo.close)
        return webtest.TestApp(self.demo.wsgi)


class DemoTests(_DemoTestCase):

    def test_counter_per_visitor(self):
        browser = self._start()
        self.assertEqual(count(browser.get('/index.html')), 1)
        self.assertEqual(count(browser.get('/index.html')), 2)
        other = webtest.TestApp(self.demo.wsgi)
        self.assertEqual(count(other.get('/index.html')), 1)
        cookie = browser.cookies[COOKIE]
        self.assertEqual(len(cookie), 54)

    def test_cookie_flags(self):
        browser = self._start()
        header = browser.get('/index.html').headers['Set-Cookie']
        self.assertIn('HttpOnly', header)
        self.assertIn('SameSite=Lax', header)

    def test_survives_a_restart(self):
        browser = self._start()
        browser.get('/index.html')
        browser.get('/index.html')
        cookies = dict(browser.cookies)
        self.demo.close()
        again = self._start()
        for name, value in cookies.items():
            again.set_cookie(name, value)
        self.assertEqual(count(again.get('/index.html')), 3)

    def test_tampered_cookie_gets_a_fresh_session(self):
        browser = self._start()
        browser.get('/index.html')
        value = browser.cookies[COOKIE]
        browser.set_cookie(COOKIE, value[:-1] + ('A' if value[-1] != 'A'
                                                 else 'B'))
        response = browser.get('/index.html')
        self.assertEqual(count(response), 1)
        self.assertNotIn(browser.cookies[COOKIE], (value,))

    def test_form_and_template(self):
        browser = self._start()
        self.assertIn('nothing yet', browser.get('/value.html').text)
        # Reading stored nothing, and set no cookie.
        self.assertNotIn(COOKIE, browser.cookies)
        form = browser.get('/form.html').forms[0]
        form['value'] = '<b>tea</b>'
        response = form.submit()
        self.assertIn('&lt;b&gt;tea&lt;/b&gt;', response.text)
        self.assertIn('&lt;b&gt;tea&lt;/b&gt;',
                      browser.get('/value.html').text)

    def test_login_rotates_the_id_and_keeps_the_count(self):
        browser = self._start()
        browser.get('/index.html')
        browser.get('/index.html')
        before = browser.cookies[COOKIE]
        form = browser.get('/login.html').forms[0]
        form['name'] = 'ann'
        self.assertIn('Welcome', form.submit().text)
        after = browser.cookies[COOKIE]
        self.assertNotEqual(after, before)
        response = browser.get('/index.html')
        self.assertEqual(count(response), 3)
        self.assertIn('id="user">ann<', response.text)
        # The old id reaches nothing.
        stranger = webtest.TestApp(self.demo.wsgi)
        stranger.set_cookie(COOKIE, before)
        self.assertEqual(count(stranger.get('/index.html')), 1)

    def test_your_sessions_and_log_out_everywhere_else(self):
        self._start()
        browsers = []
        for agent in ('Laptop browser', 'Phone browser', None):
            browser = webtest.TestApp(
                self.demo.wsgi,
                extra_environ={'HTTP_USER_AGENT': agent} if agent else {})
            form = browser.get('/login.html').forms[0]
            form['name'] = 'ann'
            form.submit()
            browsers.append(browser)
        laptop, phone, third = browsers
        page = laptop.get('/sessions.html')
        self.assertEqual(page.text.count('class="session"'), 3)
        self.assertIn('Phone browser', page.text)
        self.assertIn('unnamed', page.text)
        self.assertEqual(page.text.count('class="current"'), 1)
        # End the third one by its button ...
        handle = re.search(r'<td>unnamed</td>.*?name="end" value="(\w+)"',
                           page.text).group(1)
        page = laptop.post('/sessions.html', {'end': handle})
        self.assertEqual(page.text.count('class="session"'), 2)
        self.assertNotIn('unnamed', page.text)
        # ... then every other one.
        page = page.forms[len(page.forms) - 1].submit()
        self.assertEqual(page.text.count('class="session"'), 1)
        self.assertIn('Laptop browser', page.text)
        # The phone is logged out: its counter starts again.
        self.assertEqual(count(phone.get('/index.html')), 1)
        self.assertNotIn('id="user"', phone.get('/index.html').text)
        self.assertIn('id="none"', phone.get('/sessions.html').text)
        self.assertIn('id="user">ann<', laptop.get('/index.html').text)

    def test_notes_under_keys(self):
        browser = self._start()
        self.assertNotIn('<li', browser.get('/notes.html').text)
        browser.post('/notes.html', {'key': 'a', 'value': '<1>'})
        browser.post('/notes.html', {'key': 'b', 'value': '2'})
        text = browser.get('/notes.html').text
        self.assertIn('<li id="note-a">&lt;1&gt;</li>', text)
        self.assertIn('<li id="note-b">2</li>', text)

    def test_full_container_answers_503(self):
        browser = self._start(max_sessions=1)
        self.assertEqual(count(browser.get('/index.html')), 1)
        late = webtest.TestApp(self.demo.wsgi)
        response = late.get('/index.html', status=503)
        self.assertIn('id="full"', response.text)
        self.assertEqual(response.headers['Retry-After'], '60')
        # The first visitor's session is still there.
        self.assertEqual(count(browser.get('/index.html')), 2)

    def test_logout_ends_the_session(self):
        browser = self._start()
        browser.get('/index.html')
        response = browser.get('/logout.html')
        self.assertIn('id="done"', response.text)
        self.assertIn('Max-Age=0', response.headers['Set-Cookie'])
        self.assertEqual(count(browser.get('/index.html')), 1)

    def test_admin_page_needs_the_permission(self):
        browser = self._start()
        browser.get('/index.html')
        browser.get('/admin.html', status=401)
        credentials = base64.b64encode(
            ('admin:' + self.demo.password).encode('ascii')).decode('ascii')
        response = browser.get(
            '/admin.html', headers={'Authorization': 'Basic ' + credentials})
        self.assertIn('<td id="sessions">1</td>', response.text)
        self.assertIn('Sessions.fs', response.text)

    def test_secret_and_password_made_once_and_private(self):
        self._start()
        for name in ('secret.txt', 'admin-password.txt'):
            path = os.path.join(self.var, name)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        password = self.demo.password
        self.demo.close()
        self._start()
        self.assertEqual(self.demo.password, password)

    def test_sessions_elsewhere_by_uri(self):
        browser = self._start(database='memory://')
        browser.get('/index.html')
        self.assertFalse(os.path.exists(os.path.join(self.var,
                                                     'Sessions.fs')))


class Conflicting:
    """A page that writes a note, then fails to commit (a conflict) as
    many times as `left` says."""

    left = 0

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __call__(self):
        from ZODB.POSException import ConflictError

        from zope_sessionx.demo.views import PKG
        from zope_sessionx.interfaces import ISession
        data = ISession(self.request)[PKG]
        data['note-tries'] = data.get('note-tries', '') + 'x'
        if Conflicting.left:
            Conflicting.left -= 1
            raise ConflictError('in the test')
        return 'stored'


class RetryTests(_DemoTestCase):
    """A conflicting request is tried again after a random wait, twice as
    long each time (`zope_sessionx.demo.publication`)."""

    def setUp(self):
        super().setUp()
        from zope.configuration import xmlconfig

        from zope_sessionx.demo.publication import BackoffBrowserPublication
        self.browser = self._start()
        xmlconfig.string("""
          <configure xmlns:browser="http://namespaces.zope.org/browser">
            <include package="zope.browserpage" file="meta.zcml" />
            <browser:page
                for="zope.site.interfaces.IRootFolder"
                name="conflict.html"
                class="zope_sessionx.tests.test_demo.Conflicting"
                permission="zope.Public" />
          </configure>""")
        self.waits = []
        for name, value in (('sleep', self.waits.append),
                            ('random', lambda: 0.5)):
            setattr(BackoffBrowserPublication, name, staticmethod(value))
            self.addCleanup(delattr, BackoffBrowserPublication, name)
        self.addCleanup(setattr, Conflicting, 'left', 0)

    def test_three_conflicts_retried_after_growing_waits(self):
        Conflicting.left = 3
        response = self.browser.post('/conflict.html')
        self.assertEqual(response.text, 'stored')
        # 0.025 s, then twice, then four times as long (the random factor
        # 0.5 + 0.5).
        self.assertEqual(self.waits, [0.025, 0.05, 0.1])
        # The note was written once: what the failed tries wrote is gone.
        self.assertIn('<li id="note-tries">x</li>',
                      self.browser.get('/notes.html').text)

    def test_a_fourth_conflict_is_an_error_without_a_last_wait(self):
        Conflicting.left = 4
        self.browser.post('/conflict.html', status=500)
        self.assertEqual(len(self.waits), 3)
        self.assertNotIn('note-tries', self.browser.get('/notes.html').text)

    def test_a_request_without_conflict_does_not_wait(self):
        self.browser.post('/conflict.html')
        self.assertEqual(self.waits, [])

    def test_interfaces(self):
        from zope.app.publication.interfaces import IRequestPublicationFactory
        from zope.interface.verify import verifyObject
        from zope.publisher.interfaces import IPublication

        from zope_sessionx.demo.publication import BackoffBrowserFactory
        from zope_sessionx.demo.publication import BackoffBrowserPublication
        factory = BackoffBrowserFactory()
        verifyObject(IRequestPublicationFactory, factory)
        request_class, publication_class = factory()
        self.assertIs(publication_class, BackoffBrowserPublication)
        verifyObject(IPublication, BackoffBrowserPublication(self.demo.db))

    def test_waits_are_random_between_half_and_one_and_a_half(self):
        from zope_sessionx.demo.publication import BackoffBrowserPublication
        publication = BackoffBrowserPublication(self.demo.db)
        for value, expected in ((0.0, 0.0125), (0.999, 0.037475)):
            publication.random = lambda: value
            self.assertAlmostEqual(publication.wait(0), expected)
        self.assertAlmostEqual(publication.wait(2), 4 * 0.037475)


class _Process:
    """``python -m zope_sessionx.demo`` on a free port of 127.0.0.1."""

    def __init__(self, var, *args):
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'zope_sessionx.demo', '--port', '0',
             '--var', var] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.line = self.process.stdout.readline()
        match = re.search(r':(\d+)/index.html', self.line)
        self.port = int(match.group(1)) if match else None
        self.cookies = {}

    def get(self, path):
        connection = http.client.HTTPConnection('127.0.0.1', self.port,
                                                timeout=30)
        try:
            headers = {}
            if self.cookies:
                headers['Cookie'] = '; '.join(
                    '{}={}'.format(k, v) for k, v in self.cookies.items())
            connection.request('GET', path, headers=headers)
            response = connection.getresponse()
            body = response.read().decode('utf-8')
            for header in response.headers.get_all('Set-Cookie') or ():
                name, value = header.split(';')[0].split('=', 1)
                self.cookies[name] = value
            return body
        finally:
            connection.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


class ServerTests(_DemoTestCase):
    """The demo as ``make demo`` runs it, over sockets."""

    def test_counter_survives_a_restart_of_the_server(self):
        server = _Process(self.var)
        self.addCleanup(server.stop)
        self.assertIn('Serving the demo on http://127.0.0.1:', server.line)
        frozen = int(server.line.split('; ')[1].split()[0])
        self.assertGreater(frozen, 10000)
        body = server.get('/index.html')
        self.assertIn('id="count">1<', body)
        self.assertIn('id="count">2<', server.get('/index.html'))
        self.assertEqual(server.stop()[0], 0)
        again = _Process(self.var)
        self.addCleanup(again.stop)
        again.cookies = dict(server.cookies)
        self.assertIn('id="count">3<', again.get('/index.html'))

    def test_port_in_use(self):
        server = _Process(self.var)
        self.addCleanup(server.stop)
        taken = subprocess.run(
            [sys.executable, '-m', 'zope_sessionx.demo', '--port',
             str(server.port), '--var', self.var + '-other'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(taken.returncode, 1)
        self.assertEqual(
            taken.stderr.strip(),
            'zope_sessionx.demo: cannot listen on 127.0.0.1:{}: Address '
            'already in use'.format(server.port))
        self.assertFalse(os.path.exists(self.var + '-other'))

    def test_bad_settings_are_one_line(self):
        for argv in (['--timeout', 'x'], ['--max-sessions', '-1']):
            bad = _Process(self.var, *argv)
            code, err = bad.stop()
            self.assertEqual(code, 2)
            self.assertIn('not a whole number, 0 or more', err)

    def test_bad_database_is_one_line(self):
        bad = _Process(self.var, '--database', 'nosuch://x')
        code, err = bad.stop()
        self.assertEqual(code, 2)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.assertIn("database='nosuch://x' refused", err)


class ZEOClusterTests(_DemoTestCase):
    """Two demo processes on one ZEO server share their visitors."""

    def test_a_session_written_through_one_is_read_through_the_other(self):
        import ZEO
        zeo = os.path.join(self.var, 'zeo')
        os.mkdir(zeo)
        address, stop = ZEO.server(path=os.path.join(zeo, 'Sessions.fs'),
                                   threaded=False)
        self.addCleanup(stop)
        uri = 'zeo://{}:{}'.format(*address)
        secret = os.path.join(self.var, 'shared-secret.txt')
        one = _Process(os.path.join(self.var, 'one'), '--database', uri,
                       '--secret-file', secret)
        self.addCleanup(one.stop)
        two = _Process(os.path.join(self.var, 'two'), '--database', uri,
                       '--secret-file', secret)
        self.addCleanup(two.stop)
        self.assertIn('id="count">1<', one.get('/index.html'))
        self.assertIn('id="count">2<', one.get('/index.html'))
        two.cookies = dict(one.cookies)
        self.assertIn('id="count">3<', two.get('/index.html'))
        one.cookies = dict(two.cookies)
        self.assertIn('id="count">4<', one.get('/index.html'))
