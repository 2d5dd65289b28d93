"""A user's sessions: listed, ended, logged out everywhere; through real
requests and two transaction managers, on both containers."""
import os

import transaction
import zope.component
from ZODB.POSException import ConflictError
from zope.interface.verify import verifyObject

from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import IPrincipalSession
from zope_sessionx.interfaces import IPrincipalSessions
from zope_sessionx.interfaces import ISessionDataContainer
from zope_sessionx.tests.helpers import TwoRequestsTestCase
from zope_sessionx.tests.helpers import makeRequest


class _PrincipalTests:
    """Run against `factory`'s container."""

    factory = None

    def setUp(self):
        super().setUp()
        manager, conn = self._open()
        old = conn.root()['sdc']
        sdc = conn.root()['sdc'] = self.factory()
        for name in ('cleanerThread', 'timeout', 'resolution'):
            setattr(sdc, name, getattr(old, name))
        manager.commit()

    def _logIn(self, label=None, principal='alice', client_id=None):
        """A log-in request: rotate the id, say whose session it is."""
        manager, conn = self._open()
        session = self._session(conn, client_id)
        session['products.foo']['seen'] = True
        session.rotateClientId()
        session.setPrincipal(principal, label)
        manager.commit()
        return session.client_id

    def _as(self, client_id):
        manager, conn = self._open()
        return manager, self._session(conn, client_id)

    def test_conforms(self):
        manager, session = self._as(None)
        verifyObject(IPrincipalSessions, session)
        laptop = self._logIn('Firefox on Linux')
        manager, session = self._as(laptop)
        [found] = session.principalSessions()
        verifyObject(IPrincipalSession, found)
        self.assertEqual(repr(found),
                         '<PrincipalSession {} (current)>'.format(
                             found.handle[:8]))

    def test_list_across_clients(self):
        laptop = self._logIn('Firefox on Linux')
        self.clock.advance(700)
        phone = self._logIn()
        manager, session = self._as(laptop)
        self.assertEqual(session.principal, 'alice')
        found = session.principalSessions()
        # Most recently used first, the current one marked.
        self.assertEqual([(f.label, f.current) for f in found],
                         [(None, False), ('Firefox on Linux', True)])
        self.assertEqual(found[1].created, found[1].lastUsed)
        self.assertGreater(found[0].lastUsed, found[1].lastUsed)
        self.assertEqual(len(found[0].handle), 32)
        # The other client sees the same two, itself current.
        manager, session = self._as(phone)
        self.assertEqual([f.current for f in session.principalSessions()],
                         [True, False])

    def test_log_out_everywhere_else(self):
        laptop = self._logIn()
        phone = self._logIn()
        manager, session = self._as(laptop)
        self.assertEqual(session.endOtherSessions(), 1)
        manager.commit()
        # The phone's next request has no session any more.
        self.assertEqual(self._read(phone), {})
        manager, session = self._as(laptop)
        self.assertEqual(len(session.principalSessions()), 1)
        self.assertEqual(self._read(laptop), {'seen': True})

    def test_log_out_everywhere(self):
        laptop = self._logIn()
        phone = self._logIn()
        manager, session = self._as(phone)
        self.assertEqual(session.endAllSessions(), 2)
        # The current client drops its cookie.
        self.assertEqual(
            session.request.response.getCookie('sid')['max_age'], 0)
        manager.commit()
        self.assertEqual((self._read(laptop), self._read(phone)), ({}, {}))
        manager, session = self._as(laptop)
        self.assertEqual(session.principalSessions(), [])
        # Nothing left to end: not an error.
        self.assertEqual(session.endAllSessions(), 0)

    def test_end_one(self):
        laptop = self._logIn()
        phone = self._logIn()
        mallory = self._logIn(principal='mallory')
        manager, session = self._as(laptop)
        other = [f for f in session.principalSessions() if not f.current][0]
        manager.abort()
        # Not a session of the principal's: nothing ended.
        manager, session = self._as(mallory)
        self.assertFalse(session.endSession(other.handle))
        manager.commit()
        manager, session = self._as(laptop)
        self.assertFalse(session.endSession('not hexadecimal'))
        self.assertTrue(session.endSession(other.handle))
        manager.commit()
        self.assertEqual(self._read(phone), {})
        self.assertEqual(self._read(mallory), {'seen': True})

    def test_ended_session_in_flight_conflicts(self):
        laptop = self._logIn()
        phone = self._logIn()
        # The phone's request is in flight ...
        manager, session = self._as(phone)
        data = session['products.foo']
        # ... when the laptop logs out everywhere else.
        ender, ending = self._as(laptop)
        ending.endOtherSessions()
        ender.commit()
        data['late'] = True
        self.assertRaises(ConflictError, manager.commit)
        manager.abort()
        self.assertEqual(self._read(phone), {})

    def test_logins_of_one_principal_at_once_do_not_conflict(self):
        self._logIn()
        requests = []
        for n in range(2):
            manager, conn = self._open()
            session = self._session(conn)
            session['products.foo']['n'] = n
            requests.append((manager, conn, session))
        for manager, conn, session in requests:
            # (Each request its own connection's container.)
            zope.component.provideUtility(conn.root()['sdc'],
                                          ISessionDataContainer)
            session.setPrincipal('alice')
        for manager, conn, session in requests:
            manager.commit()
        manager, session = self._as(requests[0][2].client_id)
        self.assertEqual(len(session.principalSessions()), 3)

    def test_read_only_request_writes_nothing(self):
        laptop = self._logIn()
        size = os.path.getsize(self.fs.path)
        manager, session = self._as(laptop)
        session.principalSessions()
        self.assertEqual(session.principal, 'alice')
        session['products.foo'].get('seen')
        manager.commit()
        self.assertEqual(os.path.getsize(self.fs.path), size)

    def test_same_principal_again_writes_nothing(self):
        laptop = self._logIn('Laptop')
        manager, session = self._as(laptop)
        session.setPrincipal('alice', 'Laptop')
        self.assertEqual(session.request.response.getCookie('sid'), None)
        size = os.path.getsize(self.fs.path)
        manager.commit()
        self.assertEqual(os.path.getsize(self.fs.path), size)
        # Another principal moves the session's entry.
        manager, session = self._as(laptop)
        session.setPrincipal('bob')
        manager.commit()
        manager, session = self._as(laptop)
        self.assertEqual(session.principal, 'bob')
        self.assertEqual(len(session.principalSessions()), 1)
        sdc = zope.component.getUtility(ISessionDataContainer)
        self.assertEqual(sdc.principalSessions('alice'), [])

    def test_log_in_without_a_session_creates_one(self):
        manager, session = self._as(None)
        session.setPrincipal('alice')
        self.assertIsNotNone(session.request.response.getCookie('sid'))
        manager.commit()
        manager, session = self._as(session.client_id)
        self.assertEqual(session.principal, 'alice')

    def test_bad_input_stores_nothing(self):
        manager, session = self._as(None)
        for principal, label, setting in [
                (None, None, 'principal'), ('', None, 'principal'),
                (b'alice', None, 'principal'),
                ('alice', 'x' * 201, 'label'), ('alice', 7, 'label')]:
            with self.assertRaises(InvalidSettingError) as caught:
                session.setPrincipal(principal, label)
            self.assertEqual(caught.exception.setting, setting)
        self.assertIsNone(session.request.response.getCookie('sid'))
        self.assertEqual(session.principalSessions(), [])
        self.assertEqual(session.endAllSessions(), 0)

    def test_rotation_keeps_the_session_listed(self):
        laptop = self._logIn('Laptop')
        manager, session = self._as(laptop)
        before = session.principalSessions()[0].handle
        rotated = session.rotateClientId()
        manager.commit()
        manager, session = self._as(rotated)
        [found] = session.principalSessions()
        self.assertNotEqual(found.handle, before)
        self.assertEqual((found.label, found.current), ('Laptop', True))

    def test_cleaner_removal_leaves_no_entry(self):
        laptop = self._logIn()
        self.clock.advance(3600 + 60 + 2 * 60 + 1)
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        self.assertEqual(sdc.cleanup().timeout, 1)
        manager.commit()
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        self.assertEqual(sdc.principalSessions('alice'), [])
        self.assertEqual(sdc._store.principals.keys(
            __import__('zope_sessionx.storage').storage.principalKey(
                'alice')), [])
        self.assertEqual(self._read(laptop), {})

    def test_eviction_leaves_no_entry(self):
        self._logIn()
        self._logIn()
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        sdc.targetNumber = 1
        self.assertEqual(sdc.cleanup().evicted, 1)
        manager.commit()
        manager, conn = self._open()
        self.assertEqual(len(conn.root()['sdc'].principalSessions('alice')),
                         1)

    def test_expired_session_is_not_listed(self):
        laptop = self._logIn()
        self.clock.advance(3601)
        manager, conn = self._open()
        self.assertEqual(conn.root()['sdc'].principalSessions('alice'), [])
        self.assertIsNone(
            conn.root()['sdc'].setPrincipal(laptop, 'bob'))

    def test_named_container_merged(self):
        # The client's sessions in two containers are one session.
        manager, conn = self._open()
        conn.root()['other'] = self.factory()
        conn.root()['other'].cleanerThread = False
        manager.commit()
        manager, conn = self._open()
        zope.component.provideUtility(conn.root()['other'],
                                      ISessionDataContainer, 'products.bar')
        session = self._session(conn)
        session['products.foo']['x'] = 1
        self.clock.advance(5)
        session['products.bar']['y'] = 2
        session.setPrincipal('alice', 'Both')
        manager.commit()
        [found] = session.principalSessions()
        other = conn.root()['other'].peek(session.client_id)
        self.assertEqual(found.created, self.clock() - 5)
        self.assertEqual(found.lastUsed, other.getLastAccessTime())
        self.assertEqual(found.label, 'Both')


class PersistentContainerTests(_PrincipalTests, TwoRequestsTestCase):

    @property
    def factory(self):
        from zope_sessionx.container import PersistentSessionDataContainer
        return PersistentSessionDataContainer


class RAMContainerTests(_PrincipalTests, TwoRequestsTestCase):

    @property
    def factory(self):
        from zope_sessionx.ram import RAMSessionDataContainer
        return RAMSessionDataContainer

    def test_read_only_request_writes_nothing(self):
        pass    # The RAM container's writes do not reach the FileStorage.

    def test_same_principal_again_writes_nothing(self):
        pass


class SecurityTests(TwoRequestsTestCase):

    def test_only_trusted_code_sets_the_principal(self):
        from zope.configuration import xmlconfig
        from zope.security.interfaces import Unauthorized
        from zope.security.management import endInteraction
        from zope.security.management import newInteraction
        from zope.security.management import setSecurityPolicy
        from zope.security.proxy import ProxyFactory
        from zope.security.simplepolicies import ParanoidSecurityPolicy

        import zope_sessionx
        from zope_sessionx.session import Session
        xmlconfig.file('configure.zcml', zope_sessionx)

        class Participation:
            class principal:
                id = 'anonymous'
            interaction = None

        self.addCleanup(setSecurityPolicy,
                        setSecurityPolicy(ParanoidSecurityPolicy))
        newInteraction(Participation())
        self.addCleanup(endInteraction)
        manager, conn = self._open()
        zope.component.provideUtility(conn.root()['sdc'],
                                      ISessionDataContainer)
        from zope_sessionx.interfaces import ISession
        session = ISession(makeRequest())
        self.assertIsInstance(session, Session)
        session.setPrincipal('alice', 'Laptop')
        proxied = ProxyFactory(session)
        self.assertRaises(Unauthorized, getattr, proxied, 'setPrincipal')
        self.assertRaises(Unauthorized, getattr, proxied, 'setExpiry')
        [found] = proxied.principalSessions()
        self.assertEqual((found.label, found.current), ('Laptop', True))
        self.assertEqual(proxied.principal, 'alice')
        for name in ('endSession', 'endOtherSessions', 'endAllSessions'):
            getattr(proxied, name)
        self.assertIsNotNone(zope.component.getUtility(IClientIdManager))
        transaction.abort()


class EdgeTests(TwoRequestsTestCase):

    def test_remove_unknown_session_and_entry(self):
        from zope_sessionx.storage import PrincipalIndex
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        self.assertFalse(sdc.removeSession(b'\0' * 16))
        index = PrincipalIndex()
        index.remove(b'\1' * 16, b'\2' * 16)
        self.assertEqual(index.keys(b'\1' * 16), [])

    def test_unnamed_container_that_knows_no_principals(self):
        from zope.interface import implementer

        @implementer(ISessionDataContainer)
        class Plain(dict):
            pass

        zope.component.provideUtility(Plain(), ISessionDataContainer)
        manager, conn = self._open()
        zope.component.provideUtility(conn.root()['sdc'],
                                      ISessionDataContainer, 'products.foo')
        from zope_sessionx.session import Session
        session = Session(makeRequest())
        session.setPrincipal('alice')
        session.setExpiry(timeout=60)
        self.assertEqual(session.principalSessions(), [])
        self.assertEqual(len(conn.root()['sdc']), 0)

    def test_session_data_of_another_kind(self):
        # A container of another package, holding zope.session's data.
        import zope.session.session
        from zope.interface import implementer

        @implementer(ISessionDataContainer)
        class Plain(dict):
            pass

        ids = zope.component.getUtility(IClientIdManager)
        client_id = ids.generateUniqueId()
        data = zope.session.session.SessionData()
        data['products.foo'] = zope.session.session.SessionPkgData()
        data['products.foo']['x'] = 1
        zope.component.provideUtility(Plain({client_id: data}),
                                      ISessionDataContainer)
        from zope_sessionx.session import Session
        session = Session(makeRequest({'sid': client_id}))
        self.assertEqual(session['products.foo']['x'], 1)

    def test_peek_without_expiry(self):
        manager, conn = self._open()
        sdc = conn.root()['sdc']
        sdc.timeout = sdc.maxLifetime = 0
        data = sdc['x'] = __import__('zope_sessionx.data').data.SessionData()
        self.clock.advance(10 ** 6)
        self.assertIs(sdc.peek('x'), data)
