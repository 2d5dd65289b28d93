"""A real browser (headless Chromium, through Selenium) on the demo."""
import os
import shutil
import tempfile
import unittest

from zope_sessionx.tests.helpers import skipUnlessAvailable


CHROMIUM = '/usr/bin/chromium'
DRIVER = '/usr/bin/chromedriver'


def unavailable():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        return ('Chromium is not installed '
                '(apt-get install chromium chromium-driver)')
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'Selenium is not installed'
    return None


@skipUnlessAvailable(unavailable())
class BrowserTests(unittest.TestCase):

    def setUp(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        from zope_sessionx.tests.test_demo import _Process
        self.var = tempfile.mkdtemp(prefix='zope_sessionx-browser-')
        self.addCleanup(shutil.rmtree, self.var, True)
        self.server = _Process(self.var)
        self.addCleanup(self.server.stop)
        self.base = 'http://127.0.0.1:{}/'.format(self.server.port)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ('--headless=new', '--no-sandbox',
                         '--disable-dev-shm-usage', '--disable-gpu'):
            options.add_argument(argument)
        self.browser = webdriver.Chrome(service=Service(DRIVER),
                                        options=options)
        self.addCleanup(self.browser.quit)

    def _count(self):
        return int(self.browser.find_element('id', 'count').text)

    def _cookie(self):
        return self.browser.get_cookie('zsx_demo')

    def test_cookie_counter_and_login(self):
        browser = self.browser
        browser.get(self.base + 'index.html')
        self.assertEqual(self._count(), 1)
        cookie = self._cookie()
        self.assertTrue(cookie['httpOnly'])
        self.assertEqual(cookie['sameSite'], 'Lax')
        self.assertEqual(len(cookie['value']), 54)
        # Scripts cannot read it.
        self.assertNotIn('zsx_demo', browser.execute_script(
            'return document.cookie'))
        browser.get(self.base + 'index.html')
        self.assertEqual(self._count(), 2)
        # Log in: a new cookie value, the same session.
        browser.get(self.base + 'login.html')
        browser.find_element('name', 'name').send_keys('ann')
        browser.find_element('css selector', 'button').click()
        # The form's answer may take its time under load.
        from selenium.webdriver.support.ui import WebDriverWait
        user = WebDriverWait(browser, 30).until(
            lambda b: b.find_elements('id', 'user'))[0]
        self.assertEqual(user.text, 'ann')
        self.assertNotEqual(self._cookie()['value'], cookie['value'])
        browser.get(self.base + 'index.html')
        self.assertEqual(self._count(), 3)
        # Log out: the session ends.
        browser.get(self.base + 'logout.html')
        self.assertIsNone(self._cookie())
        browser.get(self.base + 'index.html')
        self.assertEqual(self._count(), 1)
