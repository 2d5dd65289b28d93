import unittest

from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from zope_sessionx.interfaces import ISessionData
from zope_sessionx.interfaces import ISessionPkgData
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import TwoRequestsTestCase


class SessionPkgDataTests(unittest.TestCase):

    def _getTargetClass(self):
        from zope_sessionx.data import SessionPkgData
        return SessionPkgData

    def _makeOne(self):
        return self._getTargetClass()()

    def test_class_conforms(self):
        verifyClass(ISessionPkgData, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ISessionPkgData, self._makeOne())

    def test_mapping(self):
        data = self._makeOne()
        data['color'] = 'red'
        self.assertEqual(data['color'], 'red')
        self.assertEqual(data.get('missing', 'x'), 'x')
        self.assertIn('color', data)
        self.assertEqual(list(data.items()), [('color', 'red')])
        del data['color']
        self.assertEqual(len(data), 0)


class SessionDataTests(unittest.TestCase):

    def _getTargetClass(self):
        from zope_sessionx.data import SessionData
        return SessionData

    def _makeOne(self):
        return self._getTargetClass()()

    def test_class_conforms(self):
        verifyClass(ISessionData, self._getTargetClass())

    def test_instance_conforms(self):
        from zope_sessionx.interfaces import ISessionDataRemoval
        verifyObject(ISessionData, self._makeOne())
        verifyObject(ISessionDataRemoval, self._makeOne())

    def test_new_has_no_times(self):
        data = self._makeOne()
        self.assertEqual(data.created, 0)
        self.assertEqual(data.getLastAccessTime(), 0)
        self.assertEqual(data.lastAccessTime, 0)

    def test_setLastAccessTime_sets_the_value_given(self):
        # As in zope.session: tests wind it back to make a session expire.
        data = self._makeOne()
        data.setLastAccessTime(20)
        self.assertEqual(data.getLastAccessTime(), 20)
        data.lastAccessTime = 10
        self.assertEqual(data.getLastAccessTime(), 10)

    def test_mapping_of_packages(self):
        from zope_sessionx.data import SessionPkgData
        data = self._makeOne()
        pkg = data['products.foo'] = SessionPkgData()
        self.assertIs(data['products.foo'], pkg)
        self.assertIs(data.get('products.foo'), pkg)
        self.assertIsNone(data.get('products.bar'))
        self.assertIn('products.foo', data)
        self.assertEqual(list(data), ['products.foo'])
        self.assertEqual(list(data.keys()), ['products.foo'])
        self.assertEqual(list(data.values()), [pkg])
        self.assertEqual(list(data.items()), [('products.foo', pkg)])
        self.assertEqual(len(data), 1)
        del data['products.foo']
        self.assertRaises(KeyError, data.__getitem__, 'products.foo')


class SessionDataConflictTests(TwoRequestsTestCase):
    """What concurrent requests (and the cleaner) do to one session."""

    def test_new_packages_and_access_time_merge(self):
        client_id = self._createClient(color='red')
        self.clock.advance(451)
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self._session(conn1, client_id)['products.bar']['x'] = 1
        self._session(conn2, client_id)['products.baz']['y'] = 2
        tm1.commit()
        tm2.commit()
        tm3, conn3 = self._open()
        data = conn3.root()['sdc'][client_id]
        self.assertEqual(sorted(data.keys()),
                         ['products.bar', 'products.baz', 'products.foo'])
        self.assertEqual(data.getLastAccessTime(), EPOCH + 451)

    def test_same_new_package_conflicts(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self._session(conn1, client_id)['products.bar']['x'] = 1
        self._session(conn2, client_id)['products.bar']['x'] = 2
        tm1.commit()
        self.assertRaises(ConflictError, tm2.commit)

    def test_removal_and_use_never_both_commit(self):
        from ZODB.POSException import ConflictError
        client_id = self._createClient(color='red')
        self.clock.advance(451)
        for remover_first in (True, False):
            if not remover_first:
                client_id = self._createClient(color='blue')
                self.clock.advance(451)
            tm1, conn1 = self._open()
            tm2, conn2 = self._open()
            # One request uses the session (recording the access) ...
            self._session(conn1, client_id)['products.foo']
            # ... while another removes it.
            del conn2.root()['sdc'][client_id]
            first, second = (tm2, tm1) if remover_first else (tm1, tm2)
            first.commit()
            self.assertRaises(ConflictError, second.commit)

    def test_resolver_merges_references_by_oid(self):
        from ZODB.ConflictResolution import PersistentReference

        from zope_sessionx.data import SessionData

        def ref(oid):
            return PersistentReference((oid, 'SessionPkgData'))

        access = ref(b'9')
        old = {'created': 1, '_access': access, '_pkgs': {'a': ref(b'1')}}
        committed = {'created': 1, '_access': ref(b'9'),
                     '_pkgs': {'a': ref(b'1'), 'b': ref(b'2')}}
        new = {'created': 1, '_access': ref(b'9'),
               '_pkgs': {'c': ref(b'3')}, 'extra': 'x'}
        result = SessionData()._p_resolveConflict(old, committed, new)
        self.assertEqual(result['_access'].oid, b'9')
        self.assertEqual(result['extra'], 'x')
        self.assertEqual(sorted((k, v.oid) for k, v in
                                result['_pkgs'].items()),
                         [('b', b'2'), ('c', b'3')])

    def test_access_time_resolver(self):
        from ZODB.POSException import ConflictError

        from zope_sessionx.data import AccessTime

        resolve = AccessTime()._p_resolveConflict
        # Concurrent accesses: the later time wins.
        self.assertEqual(resolve(5, 9, 7), 9)
        self.assertEqual(resolve(5, 7, 9), 9)
        # An access and a removal never merge.
        self.assertRaises(ConflictError, resolve, 5, ('removed', 5), 7)
        self.assertRaises(ConflictError, resolve, 5, 7, ('removed', 5))

    def test_access_time_state_is_the_time_or_the_removal(self):
        from zope_sessionx.data import AccessTime

        access = AccessTime()
        access.value = 1234
        self.assertEqual(access.__getstate__(), 1234)
        access.removed = True
        self.assertEqual(access.__getstate__(), ('removed', 1234))
        copy = AccessTime()
        copy.__setstate__(('removed', 1234))
        self.assertEqual((copy.removed, copy.value), (True, 1234))
        copy.__setstate__(99)
        self.assertEqual((copy.removed, copy.value), (False, 99))

    def test_resolver_refuses(self):
        from ZODB.ConflictResolution import PersistentReference
        from ZODB.POSException import ConflictError

        from zope_sessionx.data import SessionData

        def ref(oid):
            return PersistentReference((oid, 'SessionPkgData'))

        resolve = SessionData()._p_resolveConflict
        base = {'created': 1, '_access': ref(b'9'), '_pkgs': {}}
        cases = [
            (base, dict(base, created=2), dict(base, created=3)),
            (base, dict(base, _pkgs={'a': ref(b'1')}),
             dict(base, _pkgs={'a': ref(b'2')})),
        ]
        for old, committed, new in cases:
            self.assertRaises(ConflictError, resolve, old, committed, new)
        # Removing an attribute on one side only is kept.
        result = resolve(dict(base, extra=1), dict(base, extra=1), base)
        self.assertNotIn('extra', result)
