
import transaction
import zope.component
from ZODB.POSException import ConflictError
from zope.interface import implementer
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from zope_sessionx.interfaces import IClientId
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.interfaces import ISessionPkgData
from zope_sessionx.tests.helpers import EPOCH
from zope_sessionx.tests.helpers import SECRET
from zope_sessionx.tests.helpers import ComponentsTestCase
from zope_sessionx.tests.helpers import FileStorageDB
from zope_sessionx.tests.helpers import TwoRequestsTestCase
from zope_sessionx.tests.helpers import makeRequest
from zope_sessionx.tests.helpers import nextRequest


class ClientIdTests(ComponentsTestCase):

    def _getTargetClass(self):
        from zope_sessionx.session import ClientId
        return ClientId

    def setUp(self):
        super().setUp()
        from zope_sessionx.http import CookieClientIdManager
        self.manager = CookieClientIdManager('cookie', 'secret' * 6)
        zope.component.provideUtility(self.manager, IClientIdManager)

    def test_class_conforms(self):
        verifyClass(IClientId, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(IClientId, self._getTargetClass()(makeRequest()))

    def test_same_request_same_id(self):
        request = makeRequest()
        first = self._getTargetClass()(request)
        self.assertEqual(first, self._getTargetClass()(request))
        self.assertEqual(str(first), self.manager.getClientId(request))


class SessionTests(ComponentsTestCase):

    def _getTargetClass(self):
        from zope_sessionx.session import Session
        return Session

    def _makeOne(self, request=None):
        return self._getTargetClass()(request or makeRequest())

    def setUp(self):
        super().setUp()
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        zope.component.provideUtility(
            CookieClientIdManager('cookie', 'secret' * 6), IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        self.sdc = PersistentSessionDataContainer()
        zope.component.provideUtility(self.sdc, ISessionDataContainer)

    def test_class_conforms(self):
        verifyClass(ISession, self._getTargetClass())

    def test_instance_conforms(self):
        verifyObject(ISession, self._makeOne())

    def test_get_is_lazy(self):
        request = makeRequest()
        session = self._makeOne(request)
        self.assertEqual(session.get('products.foo', 'default'), 'default')
        self.assertIsNone(session.get('products.foo'))
        self.assertEqual(len(self.sdc), 0)

    def test_limit_error_comes_from_the_first_write(self):
        from zope_sessionx.interfaces import SessionLimitError
        self.sdc.maxNumber = 1
        self._makeOne()['products.foo']['x'] = 1
        # Handing out package data to a new client still works ...
        data = self._makeOne()['products.foo']
        self.assertEqual(len(data), 0)
        # ... the write that would create a session is refused.
        self.assertRaises(SessionLimitError, data.__setitem__, 'x', 1)
        self.assertEqual(len(self.sdc), 1)

    def test_get_w_session_wo_package(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        client_id = self._makeOne(request).client_id
        self.assertIn(client_id, self.sdc)
        following = makeRequest({'cookie': client_id})
        session = self._makeOne(following)
        self.assertIsNone(session.get('products.bar'))
        self.assertEqual(session.get('products.bar', 'default'), 'default')
        self.assertEqual(dict(session.get('products.foo')), {'color': 'red'})
        self.assertNotIn('products.bar', self.sdc[client_id])

    def test_getitem_creates_on_first_write(self):
        request = makeRequest()
        pkg = self._makeOne(request)['products.foo']
        self.assertTrue(ISessionPkgData.providedBy(pkg))
        self.assertIs(self._makeOne(request)['products.foo'], pkg)
        self.assertIs(self._makeOne(request).get('products.foo'), pkg)
        self.assertEqual(len(self.sdc), 0)
        self.assertIsNone(request.response.getCookie('cookie'))
        pkg['color'] = 'red'
        self.assertEqual(len(self.sdc), 1)
        client_id = request.response.getCookie('cookie')['value']
        self.assertIs(self.sdc[client_id]['products.foo'], pkg)
        self.assertIs(self._makeOne(request)['products.foo'], pkg)
        self.assertEqual(self._makeOne(request).client_id, client_id)

    def test_read_only_request_of_new_client_stores_nothing(self):
        request = makeRequest()
        session = self._makeOne(request)
        pkg = session['products.foo']
        self.assertEqual(pkg.get('color', 'none'), 'none')
        self.assertNotIn('color', pkg)
        self.assertEqual(list(pkg.items()), [])
        self.assertRaises(KeyError, pkg.__getitem__, 'color')
        self.assertIsNone(session.get('products.bar'))
        self.assertEqual(len(self.sdc), 0)
        self.assertIsNone(request.response.getCookie('cookie'))
        self.assertEqual(
            [name for name, value in request.response.getHeaders()
             if name == 'Set-Cookie'], [])

    def test_read_only_request_w_expired_session_stores_nothing(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        self.clock.advance(3601)
        following = nextRequest(request, 'cookie')
        pkg = self._makeOne(following)['products.foo']
        self.assertNotIn('color', pkg)
        self.assertIsNone(following.response.getCookie('cookie'))
        self.assertFalse(self.sdc.get(self._makeOne(following).client_id))

    def test_every_mutator_stores_pending_data(self):
        calls = [
            ('__setitem__', ('k', 1)), ('__delitem__', ('k',)),
            ('clear', ()), ('insert', ('k', 1)), ('pop', ('k', None)),
            ('setdefault', ('k', 1)), ('update', ({'k': 1},)),
        ]
        for method, args in calls:
            request = makeRequest()
            pkg = self._makeOne(request)['products.foo']
            try:
                getattr(pkg, method)(*args)
            except KeyError:
                pass
            client_id = request.response.getCookie('cookie')['value']
            self.assertIs(self.sdc[client_id]['products.foo'], pkg, method)
        request = makeRequest()
        pkg = self._makeOne(request)['products.foo']
        self.assertRaises(KeyError, pkg.popitem)
        self.assertIsNotNone(request.response.getCookie('cookie'))

    def test_pending_data_merges_data_stored_meanwhile(self):
        from zope_sessionx.data import SessionData
        from zope_sessionx.data import SessionPkgData
        request = makeRequest()
        pkg = self._makeOne(request)['products.foo']
        client_id = self._makeOne(request).client_id
        stored = SessionPkgData()
        stored['size'] = 'L'
        self.sdc[client_id] = SessionData()
        self.sdc[client_id]['products.foo'] = stored
        pkg['color'] = 'red'
        self.assertIs(self.sdc[client_id]['products.foo'], pkg)
        self.assertEqual(dict(pkg), {'size': 'L', 'color': 'red'})

    def test_packages_do_not_share_a_namespace(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        self._makeOne(request)['products.bar']['color'] = 'blue'
        self._makeOne()['products.bar']['color'] = 'green'
        self.assertEqual(self._makeOne(request)['products.foo']['color'],
                         'red')
        self.assertEqual(self._makeOne(request)['products.bar']['color'],
                         'blue')

    def test_named_container_wins_unnamed_is_fallback(self):
        from zope_sessionx.container import PersistentSessionDataContainer
        named = PersistentSessionDataContainer()
        zope.component.provideUtility(
            named, ISessionDataContainer, 'products.foo')
        request = makeRequest()
        session = self._makeOne(request)
        foo = session['products.foo']
        bar = session['products.bar']
        foo['color'] = bar['color'] = 'red'
        self.assertIs(named[session.client_id]['products.foo'], foo)
        self.assertIs(self.sdc[session.client_id]['products.bar'], bar)
        self.assertNotIn('products.foo', self.sdc[session.client_id])

    def test_expired_session_is_replaced_by_a_fresh_one(self):
        request = makeRequest()
        self._makeOne(request)['products.foo']['color'] = 'red'
        self.clock.advance(3601)
        self.assertIsNone(self._makeOne(request).get('products.foo'))
        fresh = self._makeOne(request)['products.foo']
        self.assertNotIn('color', fresh)
        self.assertEqual(len(self.sdc), 1)

    def test_thirdparty_without_id_reads_default_and_refuses_writes(self):
        from zope_sessionx.interfaces import MissingClientIdException
        manager = zope.component.getUtility(IClientIdManager)
        manager.thirdparty = True
        session = self._makeOne()
        self.assertIsNone(session.get('products.foo'))
        pkg = session['products.foo']
        self.assertRaises(MissingClientIdException, pkg.__setitem__, 'k', 1)
        self.assertRaises(MissingClientIdException, pkg.__setitem__, 'k', 1)
        self.assertEqual(len(self.sdc), 0)

    def test_not_a_container(self):
        session = self._makeOne()
        self.assertRaises(TypeError, lambda: 'products.foo' in session)
        self.assertRaises(NotImplementedError, iter, session)


class _Picky:
    """A value that refuses to be pickled."""

    def __reduce__(self):
        raise TypeError('_Picky objects cannot be pickled')


class StrictIdsTests(ComponentsTestCase):
    """An id the server did not issue for a live session is never adopted
    for new data: fixated ids die with their session."""

    def setUp(self):
        super().setUp()
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import Session
        self.ids = CookieClientIdManager('sid', SECRET)
        zope.component.provideUtility(self.ids, IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        zope.component.provideAdapter(Session, provides=ISession)
        self.sdc = PersistentSessionDataContainer()
        self.other = PersistentSessionDataContainer()
        zope.component.provideUtility(self.sdc, ISessionDataContainer)
        zope.component.provideUtility(self.other, ISessionDataContainer,
                                      'products.other')

    def _write(self, client_id):
        """A request carrying *client_id* stores data; return its id."""
        victim = makeRequest({'sid': client_id})
        ISession(victim)['products.foo']['cart'] = ['book']
        return ISession(victim).client_id

    def _sessionOf(self):
        """An id with a live session."""
        request = makeRequest()
        ISession(request)['products.foo']['x'] = 1
        return ISession(request).client_id

    def test_id_never_used_for_a_session_is_not_adopted(self):
        # Any visitor can be given a validly signed id: IClientId mints
        # one without storing anything.
        fixated = str(IClientId(makeRequest()))
        self.assertNotIn(fixated, self.sdc)
        new = self._write(fixated)
        self.assertNotEqual(new, fixated)
        self.assertIn(new, self.sdc)
        self.assertNotIn(fixated, self.sdc)

    def test_expired_id_is_not_adopted(self):
        fixated = self._sessionOf()
        self.clock.advance(self.sdc.timeout + 1)
        self.assertNotEqual(self._write(fixated), fixated)

    def test_invalidated_id_is_not_adopted(self):
        fixated = self._sessionOf()
        ISession(makeRequest({'sid': fixated})).invalidate()
        self.assertNotEqual(self._write(fixated), fixated)

    def test_id_with_a_live_session_is_kept(self):
        client_id = self._sessionOf()
        self.assertEqual(self._write(client_id), client_id)

    def test_live_session_in_another_container_counts(self):
        request = makeRequest()
        ISession(request)['products.other']['step'] = 1
        client_id = ISession(request).client_id
        self.assertNotIn(client_id, self.sdc)
        self.assertEqual(self._write(client_id), client_id)
        self.assertIn(client_id, self.sdc)

    def test_off_adopts_any_valid_id(self):
        # zope.session's behaviour.
        self.ids.strictIds = False
        fixated = str(IClientId(makeRequest()))
        self.assertEqual(self._write(fixated), fixated)


class CookieRefreshTests(StrictIdsTests):
    """A cookie of finite lifetime is re-sent with the access time."""

    def test_resent_when_the_access_is_recorded(self):
        self.ids.cookieLifetime = 86400
        client_id = self._sessionOf()
        # Within the resolution, reads send nothing.
        self.clock.advance(60)
        reader = makeRequest({'sid': client_id})
        self.assertEqual(ISession(reader)['products.foo']['x'], 1)
        self.assertIsNone(reader.response.getCookie('sid'))
        # Once the access time is recorded, the cookie is renewed.
        self.clock.advance(self.sdc.effectiveResolution() + 1)
        later = makeRequest({'sid': client_id})
        ISession(later).get('products.foo')
        cookie = later.response.getCookie('sid')
        self.assertEqual((cookie['value'], cookie['max_age']),
                         (client_id, 86400))

    def test_resent_when_data_is_first_stored_for_a_live_id(self):
        self.ids.cookieLifetime = 86400
        request = makeRequest()
        ISession(request)['products.other']['step'] = 1
        client_id = ISession(request).client_id
        writer = makeRequest({'sid': client_id})
        ISession(writer)['products.foo']['cart'] = []
        self.assertEqual(writer.response.getCookie('sid')['max_age'], 86400)

    def test_session_cookie_never_resent(self):
        client_id = self._sessionOf()
        self.clock.advance(self.sdc.effectiveResolution() + 1)
        later = makeRequest({'sid': client_id})
        ISession(later).get('products.foo')
        self.assertIsNone(later.response.getCookie('sid'))


class NoTouchRequestsTests(ComponentsTestCase):
    """Polling that does not keep an abandoned session alive."""

    def setUp(self):
        super().setUp()
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.http import CookieClientIdManager
        from zope_sessionx.session import ClientId
        from zope_sessionx.session import Session
        self.ids = CookieClientIdManager('sid', SECRET, cookieLifetime=86400)
        zope.component.provideUtility(self.ids, IClientIdManager)
        zope.component.provideAdapter(ClientId, provides=IClientId)
        zope.component.provideAdapter(Session, provides=ISession)
        self.sdc = PersistentSessionDataContainer()
        self.sdc.timeout = 600
        zope.component.provideUtility(self.sdc, ISessionDataContainer)
        request = makeRequest()
        ISession(request)['app']['unread'] = 3
        self.client_id = ISession(request).client_id

    def _poll(self):
        from zope.interface import alsoProvides

        from zope_sessionx.interfaces import INoTouchRequest
        request = makeRequest({'sid': self.client_id})
        alsoProvides(request, INoTouchRequest)
        return request, ISession(request).get('app')

    def test_polling_reads_but_does_not_keep_alive(self):
        for _ in range(10):
            self.clock.advance(60)
            request, data = self._poll()
            self.assertEqual(data['unread'], 3)
            # No access recorded, no cookie renewed.
            self.assertEqual(self.sdc.peek(self.client_id).getLastAccessTime(),
                             EPOCH)
            self.assertIsNone(request.response.getCookie('sid'))
        # Ten minutes of polling only: the session expires at ten.
        self.clock.advance(60)
        self.assertIsNone(self._poll()[1])
        self.assertNotIn(self.client_id, self.sdc)

    def test_polling_never_renews_the_cookie(self):
        # Not even just after the access was recorded (same second).
        request, data = self._poll()
        self.assertEqual(data['unread'], 3)
        self.assertIsNone(request.response.getCookie('sid'))
        ordinary = makeRequest({'sid': self.client_id})
        ISession(ordinary).get('app')
        self.assertEqual(ordinary.response.getCookie('sid')['max_age'],
                         86400)

    def test_an_ordinary_request_keeps_alive(self):
        for _ in range(12):
            self.clock.advance(60)
            ISession(makeRequest({'sid': self.client_id})).get('app')
        self.assertEqual(self._poll()[1]['unread'], 3)

    def test_writes_of_a_polling_request_are_stored(self):
        request, data = self._poll()
        data['unread'] = 0
        self.assertEqual(self.sdc[self.client_id]['app']['unread'], 0)

    def test_peek(self):
        self.assertIs(self.sdc.peek('nobody', 'x'), 'x')
        data = self.sdc.peek(self.client_id)
        self.assertEqual(data['app']['unread'], 3)
        self.clock.advance(601)
        self.assertIsNone(self.sdc.peek(self.client_id))


class ConcurrencyTests(TwoRequestsTestCase):

    def test_concurrent_reads_across_resolution_boundary_commit(self):
        client_id = self._createClient(color='red')
        self.clock.advance(601)
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self.assertEqual(
            self._session(conn1, client_id)['products.foo']['color'], 'red')
        self.assertEqual(
            self._session(conn2, client_id)['products.foo']['color'], 'red')
        before = self.fs.lastTransaction()
        tm1.commit()
        tm2.commit()  # the access-time bumps merge: no ConflictError
        self.assertNotEqual(self.fs.lastTransaction(), before)
        tm3, conn3 = self._open()
        data = conn3.root()['sdc'][client_id]
        self.assertEqual(data.getLastAccessTime(), EPOCH + 601)

    def test_concurrent_writes_of_different_keys_commit(self):
        client_id = self._createClient(color='red')
        tm1, conn1 = self._open()
        tm2, conn2 = self._open()
        self._session(conn1, client_id)['products.foo']['size'] = 'L'
        self._session(conn2, client_id)['products.foo']['shape'] = 'round'
        tm1.commit()
        tm2.commit()
        self.assertEqual(self._read(client_id),
                         {'color': 'red', 'size': 'L', 'shape': 'round'})

    def test_concurrent_new_clients_commit(self):
        for existing in (False, True):
            if existing:
                self._createClient(color='red')
            tm1, conn1 = self._open()
            tm2, conn2 = self._open()
            one = self._session(conn1)
            two = self._session(conn2)
            one['products.foo']['who'] = 'one'
            two['products.foo']['who'] = 'two'
            tm1.commit()
            tm2.commit()
            self.assertEqual(self._read(one.client_id), {'who': 'one'})
            self.assertEqual(self._read(two.client_id), {'who': 'two'})
        tm, conn = self._open()
        self.assertEqual(len(conn.root()['sdc']), 5)

    def test_concurrent_creations_rarely_conflict(self):
        # Two requests creating sessions at once, 2000 times, among 10,000
        # sessions, with a new expiry step every 100 pairs.  Sessions
        # created at the same moment are indexed under the same step: were
        # that step one range at the end of the index, each split of its
        # last bucket would conflict with the concurrent creation.  And a
        # BTree insert reads every node on its path, so in one big tree of
        # sessions a split anywhere below a node conflicts with every
        # concurrent insert below it.  With one tree of sessions and one
        # of the index, in sixteen ranges: 26 pairs conflict, 5 of them on
        # the tree of sessions (with one range: 215).  With 256 trees of
        # sessions and 64 of the index: 4.
        from zope_sessionx.data import SessionData
        tm, conn = self._open()
        sdc = conn.root()['sdc']
        for n in range(10000):
            sdc['old-%d' % n] = SessionData()
        tm.commit()
        (tm1, conn1), (tm2, conn2) = self._open(), self._open()
        conflicts = []
        for n in range(2000):
            if n % 100 == 0:
                self.clock.advance(sdc.indexStep)
            tm1.begin()
            tm2.begin()
            conn1.root()['sdc']['one-%d' % n] = SessionData()
            conn2.root()['sdc']['two-%d' % n] = SessionData()
            tm1.commit()
            try:
                tm2.commit()
            except ConflictError as error:
                tm2.abort()
                conflicts.append(type(conn2.get(error.oid)).__name__)
        self.assertLessEqual(len(conflicts), 10)
        self.assertNotIn('_SessionTree', conflicts)
        tm.begin()
        self.assertEqual(len(sdc), 14000 - len(conflicts))

    def test_read_of_recent_session_writes_nothing(self):
        client_id = self._createClient(color='red')
        # The effective resolution is min(600, 3600 / 8) = 450 seconds.
        self.clock.advance(450)
        before = self.fs.lastTransaction()
        manager, conn = self._open()
        session = self._session(conn, client_id)
        self.assertEqual(session['products.foo']['color'], 'red')
        self.assertEqual(session.get('products.foo')['color'], 'red')
        manager.commit()
        self.assertEqual(self.fs.lastTransaction(), before)

    def test_get_for_new_client_writes_nothing(self):
        before = self.fs.lastTransaction()
        manager, conn = self._open()
        self.assertIsNone(self._session(conn).get('products.foo'))
        manager.commit()
        self.assertEqual(self.fs.lastTransaction(), before)

    def test_expired_data_never_returned_and_sweep_removes_it(self):
        client_id = self._createClient(color='red')
        self.clock.advance(3601)
        manager, conn = self._open()
        self.assertIsNone(self._session(conn, client_id).get('products.foo'))
        manager.commit()
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        self.assertEqual(len(sdc), 1)
        self.assertEqual(sdc.sweep(), 1)
        manager.commit()
        manager, conn = self._open()
        self.assertEqual(len(conn.root()['sdc']), 0)

    def test_unpicklable_value_fails_commit_and_keeps_stored_session(self):
        client_id = self._createClient(color='red')
        manager, conn = self._open()
        pkg = self._session(conn, client_id)['products.foo']
        pkg['color'] = 'blue'
        pkg['oops'] = _Picky()
        with self.assertRaises(TypeError) as caught:
            manager.commit()
        self.assertIn('cannot be pickled', str(caught.exception))
        manager.abort()
        self.assertEqual(self._read(client_id), {'color': 'red'})


@implementer(IClientIdManager)
class _FixedIdManager:
    """An id manager of another kind: one id for everybody."""

    def getClientId(self, request):
        return 'always-the-same'


class SessionLifecycleTests(ComponentsTestCase):
    """invalidate() and rotateClientId(), with a stored container."""

    def setUp(self):
        super().setUp()
        from zope.configuration import xmlconfig

        import zope_sessionx
        from zope_sessionx.container import PersistentSessionDataContainer
        from zope_sessionx.http import CookieClientIdManager
        xmlconfig.file('configure.zcml', zope_sessionx)
        self.ids = CookieClientIdManager('sid', SECRET)
        zope.component.provideUtility(self.ids, IClientIdManager)
        self.fs = FileStorageDB()
        self.addCleanup(self.fs.close)
        self.conn = self.fs.db.open()
        self.addCleanup(self.conn.close)
        root = self.conn.root()
        self.sdc = root['sdc'] = PersistentSessionDataContainer()
        self.other = root['other'] = PersistentSessionDataContainer()
        self.sdc.cleanerThread = self.other.cleanerThread = False
        zope.component.provideUtility(self.sdc, ISessionDataContainer)
        zope.component.provideUtility(
            self.other, ISessionDataContainer, 'products.other')
        transaction.commit()

    def _login(self):
        """A client with data in both containers, committed."""
        request = makeRequest()
        ISession(request)['products.foo']['cart'] = ['book']
        ISession(request)['products.other']['step'] = 2
        transaction.commit()
        return nextRequest(request, 'sid')

    def _data(self, client_id):
        return {name: {pkg: dict(data) for pkg, data in sdc[client_id].items()}
                for name, sdc in (('main', self.sdc), ('other', self.other))
                if client_id in sdc}

    def test_rotate_moves_data_and_kills_old_id(self):
        request = self._login()
        old = ISession(request).client_id
        new = ISession(request).rotateClientId()
        self.assertNotEqual(new, old)
        self.assertEqual(request.response.getCookie('sid')['value'], new)
        self.assertEqual(ISession(request)['products.foo']['cart'], ['book'])
        transaction.commit()
        self.assertEqual(self._data(new), {
            'main': {'products.foo': {'cart': ['book']}},
            'other': {'products.other': {'step': 2}}})
        self.assertEqual(self._data(old), {})
        attacker = makeRequest({'sid': old})
        self.assertIsNone(ISession(attacker).get('products.foo'))
        self.assertEqual(dict(ISession(attacker)['products.foo']), {})
        self.assertEqual(len(self.sdc), 1)

    def test_rotate_skips_containers_that_cannot_move(self):
        from zope.interface import implementer

        @implementer(ISessionDataContainer)
        class Minimal(dict):
            timeout = 3600
            resolution = 600

        minimal = Minimal()
        zope.component.provideUtility(
            minimal, ISessionDataContainer, 'products.minimal')
        request = self._login()
        old = ISession(request).client_id
        ISession(request)['products.minimal']['x'] = 1
        new = ISession(request).rotateClientId()
        self.assertIn(new, self.sdc)
        self.assertEqual(list(minimal), [old])

    def test_rotate_aborted_changes_nothing(self):
        request = self._login()
        old = ISession(request).client_id
        ISession(request).rotateClientId()
        transaction.abort()
        self.assertIsNone(request.response.getCookie('sid'))
        self.assertEqual(ISession(request).client_id, old)
        self.assertEqual(self._data(old)['main'],
                         {'products.foo': {'cart': ['book']}})

    def test_rotate_for_client_without_session(self):
        request = makeRequest()
        new = ISession(request).rotateClientId()
        self.assertEqual(request.response.getCookie('sid')['value'], new)
        self.assertEqual(len(self.sdc), 0)
        self.assertEqual(self.ids.getClientIdSource(request), 'new')

    def test_rotate_refused_for_third_party_ids(self):
        from zope_sessionx.interfaces import SessionError
        self.ids.thirdparty = True
        request = makeRequest({'sid': 'from-the-front-end'})
        with self.assertRaises(SessionError) as caught:
            ISession(request).rotateClientId()
        self.assertIn("namespace='sid'", str(caught.exception))

    def test_rotate_refused_for_other_managers(self):
        from zope_sessionx.interfaces import SessionError
        zope.component.provideUtility(_FixedIdManager(), IClientIdManager)
        session = ISession(makeRequest())
        session['products.foo']['x'] = 1
        self.assertEqual(session.client_id, 'always-the-same')
        self.assertRaises(SessionError, session.rotateClientId)

    def test_invalidate_deletes_data_and_expires_cookie(self):
        request = self._login()
        old = ISession(request).client_id
        ISession(request).invalidate()
        self.assertEqual(self._data(old), {})
        self.assertEqual(request.response.getCookie('sid')['max_age'], 0)
        # The request goes on with a fresh session.
        self.assertIsNone(ISession(request).get('products.foo'))
        ISession(request)['products.foo']['fresh'] = True
        new = request.response.getCookie('sid')['value']
        self.assertNotEqual(new, old)
        transaction.commit()
        self.assertEqual(self._data(new),
                         {'main': {'products.foo': {'fresh': True}}})
        self.assertEqual(self._data(old), {})

    def test_invalidate_drops_pending_data(self):
        request = makeRequest()
        pending = ISession(request)['products.foo']
        ISession(request).invalidate()
        pending['lost'] = True
        self.assertEqual(len(self.sdc), 0)
        self.assertIsNot(ISession(request)['products.foo'], pending)

    def test_invalidate_aborted_changes_nothing(self):
        request = self._login()
        old = ISession(request).client_id
        ISession(request).invalidate()
        transaction.abort()
        self.assertIsNone(request.response.getCookie('sid'))
        self.assertEqual(ISession(request).client_id, old)
        self.assertIn('main', self._data(old))

    def test_invalidate_w_other_manager_deletes_data(self):
        zope.component.provideUtility(_FixedIdManager(), IClientIdManager)
        request = makeRequest()
        ISession(request)['products.foo']['x'] = 1
        ISession(request).invalidate()
        self.assertNotIn('always-the-same', self.sdc)

    def test_data_follows_id_reissued_under_new_secret(self):
        request = self._login()
        old = ISession(request).client_id
        self.ids.secrets = ('new' * 11, SECRET)
        # Any use of the id moves the data: here the IClientId adapter.
        following = makeRequest({'sid': old})
        new = str(IClientId(following))
        self.assertNotEqual(new, old)
        self.assertEqual(str(IClientId(following)), new)
        transaction.commit()
        self.assertEqual(self._data(old), {})
        self.assertEqual(self._data(new)['other'],
                         {'products.other': {'step': 2}})
        self.assertEqual(
            ISession(nextRequest(following, 'sid'))['products.foo']['cart'],
            ['book'])

    def test_data_follows_reissued_id_on_read_through_session(self):
        old = ISession(self._login()).client_id
        self.ids.secrets = ('new' * 11, SECRET)
        following = makeRequest({'sid': old})
        self.assertEqual(ISession(following).get('products.foo')['cart'],
                         ['book'])
        transaction.commit()
        self.assertEqual(len(self.sdc), 1)
        self.assertIn(following.response.getCookie('sid')['value'],
                      self.sdc)


class RotationRaceTests(TwoRequestsTestCase):
    """After rotation the old id reaches nothing, also for requests that
    were already running with it when the rotation committed."""

    def _inFlight(self, client_id):
        """A request with *client_id* that has read the session."""
        tm, conn = self._open()
        session = self._session(conn, client_id)
        return tm, session, session['products.foo']

    def _rotate(self, client_id):
        tm, conn = self._open()
        new = self._session(conn, client_id).rotateClientId()
        tm.commit()
        return new

    def test_write_to_a_package_in_flight_conflicts(self):
        client_id = self._createClient(note='victim')
        tm, session, pkg = self._inFlight(client_id)
        new = self._rotate(client_id)
        pkg['note'] = 'attacker'
        self.assertRaises(ConflictError, tm.commit)
        tm.abort()
        # Retried, the request finds no session under the old id; its
        # write gets a fresh id of its own.
        tm, conn = self._open()
        retried = self._session(conn, client_id)
        self.assertIsNone(retried.get('products.foo'))
        retried['products.foo']['note'] = 'attacker'
        self.assertNotIn(retried.client_id, (client_id, new))
        tm.commit()
        self.assertEqual(self._read(new), {'note': 'victim'})

    def test_new_package_in_flight_conflicts(self):
        client_id = self._createClient(note='victim')
        tm, conn = self._open()
        session = self._session(conn, client_id)
        session.get('products.foo')
        self._rotate(client_id)
        # (The request goes on with its own connection's container.)
        zope.component.provideUtility(conn.root()['sdc'],
                                      ISessionDataContainer)
        session['products.bar']['x'] = 1
        self.assertRaises(ConflictError, tm.commit)

    def test_write_to_a_value_in_flight_conflicts(self):
        from persistent.list import PersistentList
        tm, conn = self._open()
        session = self._session(conn)
        session['products.foo']['cart'] = PersistentList(['book'])
        tm.commit()
        client_id = session.client_id
        tm, session, pkg = self._inFlight(client_id)
        new = self._rotate(client_id)
        pkg['cart'].append('bomb')
        self.assertRaises(ConflictError, tm.commit)
        self.assertEqual(list(self._read(new)['cart']), ['book'])

    def test_reads_in_flight_still_commit(self):
        client_id = self._createClient(note='victim')
        tm, session, pkg = self._inFlight(client_id)
        self._rotate(client_id)
        self.assertEqual(pkg['note'], 'victim')
        tm.commit()
