"""Helpers shared by the tests and the doctests in docs/*.rst."""
import os
import shutil
import tempfile
import unittest
from io import BytesIO

import transaction
import ZODB
import zope.component
import zope.component.testing
from ZODB.FileStorage import FileStorage
from zope.interface import implementer
from zope.publisher.browser import BrowserRequest
from zope.publisher.http import HTTPRequest

from zope_sessionx import cleanup
from zope_sessionx.interfaces import IClock


#: A fixed starting point for fake clocks (2023-11-14T22:13:20Z).
EPOCH = 1_700_000_000


@implementer(IClock)
class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now=EPOCH):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
        return self.now


def installClock(now=EPOCH):
    """Register and return a `FakeClock` as the `IClock` utility."""
    clock = FakeClock(now)
    zope.component.provideUtility(clock, IClock)
    return clock


def makeRequest(cookies=None, method='GET', environ=None, browser=False):
    """Return a real zope.publisher request with *cookies* sent."""
    env = {'REQUEST_METHOD': method}
    if cookies:
        env['HTTP_COOKIE'] = '; '.join(
            '{}={}'.format(name, value) for name, value in cookies.items())
    env.update(environ or {})
    factory = BrowserRequest if browser else HTTPRequest
    return factory(BytesIO(), env)


def nextRequest(previous, namespace, **kw):
    """Return a request carrying the cookie *previous* was answered with."""
    cookie = previous.response.getCookie(namespace)
    cookies = {namespace: cookie['value']} if cookie else {}
    return makeRequest(cookies, **kw)


def setUpComponents(test=None):
    """Start with a clean component registry (unittest and doctest).

    Containers do not start cleaner threads: tests run cleanup rounds
    themselves, under a fake clock.
    """
    zope.component.testing.setUp(test)
    cleanup.setAutostart(False)


def tearDownComponents(test=None):
    transaction.abort()
    zope.component.testing.tearDown(test)


class ComponentsTestCase(unittest.TestCase):
    """A clean component registry and a fake clock (``self.clock``)."""

    def setUp(self):
        setUpComponents()
        self.clock = installClock()

    def tearDown(self):
        tearDownComponents()


class FileStorageDB:
    """A FileStorage database in a temporary directory."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix='zope_sessionx-')
        self.path = os.path.join(self.directory, 'Data.fs')
        self.open()

    def open(self):
        self.storage = FileStorage(self.path)
        self.db = ZODB.DB(self.storage)
        return self.db

    def reopen(self):
        self.db.close()
        return self.open()

    def close(self):
        self.db.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def lastTransaction(self):
        return self.storage.lastTransaction()
