import zope.component

from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import ComponentsTestCase


class CurrentTimeTests(ComponentsTestCase):

    def _callFUT(self):
        from zope_sessionx.clock import currentTime
        return currentTime()

    def test_uses_registered_clock(self):
        self.assertEqual(self._callFUT(), EPOCH)
        self.clock.advance(5)
        self.assertEqual(self._callFUT(), EPOCH + 5)

    def test_wo_clock_uses_time_time_at_call_time(self):
        from unittest import mock
        zope.component.getGlobalSiteManager().unregisterUtility(self.clock)
        with mock.patch('time.time', return_value=42.5):
            self.assertEqual(self._callFUT(), 42.5)
