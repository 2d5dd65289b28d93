"""Set up zope.session or zope_sessionx the same way, for the benchmarks."""
import types

import transaction
import zope.component
import zope.component.testing
from zope.publisher.interfaces import IRequest


SECRET = 'benchmark-secret-benchmark-secret-bench'


def modules(impl):
    if impl == 'zope.session':
        import zope.session.http as http
        import zope.session.interfaces as interfaces
        import zope.session.session as session
    else:
        import zope_sessionx.http as http
        import zope_sessionx.interfaces as interfaces
        import zope_sessionx.session as session
    return types.SimpleNamespace(http=http, interfaces=interfaces,
                                 session=session)


def configure(impl, root, reset=True):
    """Register the id manager, the adapters and a container in *root*.

    The two packages use different interfaces, so both can be registered
    at once (*reset* false keeps what is registered).
    """
    if reset:
        zope.component.testing.setUp()
    api = modules(impl)
    api.ids = api.http.CookieClientIdManager('sid', SECRET)
    zope.component.provideUtility(api.ids, api.interfaces.IClientIdManager)
    zope.component.provideAdapter(
        api.session.ClientId, (IRequest,), api.interfaces.IClientId)
    zope.component.provideAdapter(
        api.session.Session, (IRequest,), api.interfaces.ISession)
    if 'sdc' not in root:
        sdc = root['sdc'] = api.session.PersistentSessionDataContainer()
        if impl == 'zope_sessionx':
            # The benchmarks run their cleaners themselves.
            sdc.cleanerThread = False
        transaction.commit()
    zope.component.provideUtility(
        root['sdc'], api.interfaces.ISessionDataContainer)
    return api


def populate(impl, api, root, count, key='k', batch=1000):
    """Store *count* sessions with one package; return their client ids."""
    sdc = root['sdc']
    clients = []
    for n in range(count):
        client_id = api.ids.generateUniqueId()
        data = sdc[client_id] = api.session.SessionData()
        pkg = data['products.bench'] = api.session.SessionPkgData()
        pkg[key] = n
        clients.append(client_id)
        if n % batch == batch - 1:
            transaction.commit()
    transaction.commit()
    return clients


def rawPackage(impl, root, client_id):
    """The stored package data of *client_id*, without sweeping."""
    sdc = root['sdc']
    if impl == 'zope.session':
        data = sdc.data.get(client_id)
    else:
        data = sdc.get(client_id)
    return None if data is None else data.get('products.bench')
