"""The demo's pages on zope.session, for the reliability suite's side by
side runs: ``python benchmarks/peerdemo.py --port 0 --var DIR --database
URI --secret-file FILE``.

Set up as a zope.session user sets a cluster up: the application's
database is the shared one (opened with zodburi, as ``zope.conf`` would),
a ``PersistentSessionDataContainer`` with zope.session's defaults is a
utility of the root folder, and every process has the same cookie name
and secret.  The
pages answer the suite's requests as the demo's do (``notes.html``,
``value.html``, ``login.html``); zope.session cannot change a client's id,
so a log-in here only records the name.  Conflicting requests are tried
again as the demo's are, after a short random wait
(``zope_sessionx.demo.publication``).

Not part of the package: it exists to measure zope.session.
"""
import argparse
import gc
import html
import os
import sys

import transaction
import zodburi
import zope.event
import zope.processlifetime
from waitress.server import create_server
from ZODB.DB import DB
from zope.app.appsetup.appsetup import config
from zope.app.appsetup.bootstrap import ensureUtility
from zope.app.appsetup.bootstrap import getInformationFromEvent
from zope.app.wsgi import WSGIPublisherApplication
from zope.session.interfaces import ISession
from zope.session.interfaces import ISessionDataContainer
from zope.session.session import PersistentSessionDataContainer

from zope_sessionx.demo.__main__ import serve


PKG = 'zope_sessionx.demo'
COOKIE = 'zsx_demo'
TEMPLATE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'src',
    'zope_sessionx', 'demo', 'value.pt')

SITE = '''<configure
    xmlns="http://namespaces.zope.org/zope"
    xmlns:browser="http://namespaces.zope.org/browser">
  <include package="zope.component" file="meta.zcml" />
  <include package="zope.security" file="meta.zcml" />
  <include package="zope.publisher" file="meta.zcml" />
  <include package="zope.principalregistry" file="meta.zcml" />
  <include package="zope.browserpage" file="meta.zcml" />
  <include package="zope.app.publication" file="meta.zcml" />
  <include package="zope.securitypolicy" file="meta.zcml" />
  <include package="zope.security" file="permissions.zcml" />
  <include package="zope.app.publication" />
  <include package="zope.authentication" />
  <include package="zope.component" />
  <include package="zope.container" />
  <include package="zope.error" />
  <include package="zope.location" />
  <include package="zope.principalregistry" />
  <include package="zope.publisher" />
  <include package="zope.security" />
  <include package="zope.site" />
  <include package="zope.traversing" />
  <include package="zope.traversing.browser" />
  <include package="zope.app.wsgi" />
  <include package="zope.session" />
  <include package="zope_sessionx.demo" file="publication.zcml" />
  <subscriber
      handler="zope.app.appsetup.bootstrap.bootStrapSubscriber"
      for="zope.processlifetime.IDatabaseOpened" />
  <subscriber
      handler="peerdemo.bootstrap"
      for="zope.processlifetime.IDatabaseOpened" />
  <utility
      factory="peerdemo.idManager"
      provides="zope.session.interfaces.IClientIdManager" />
  <securityPolicy
      component="zope.securitypolicy.zopepolicy.ZopeSecurityPolicy" />
  <unauthenticatedPrincipal id="peer.anybody" title="Anybody" />
  <everybodyGroup id="peer.everybody" title="Everybody" />
  <grant permission="zope.View" principal="peer.everybody" />
  <browser:page for="zope.site.interfaces.IRootFolder" name="notes.html"
      class="peerdemo.Notes" permission="zope.Public" />
  <browser:page for="zope.site.interfaces.IRootFolder" name="login.html"
      class="peerdemo.Login" permission="zope.Public" />
  <browser:page for="zope.site.interfaces.IRootFolder" name="value.html"
      template="{template}" permission="zope.Public" />
</configure>
'''


def bootstrap(event):
    """zope.app.appsetup's session bootstrap, but for the id manager: the
    container in the root folder, where every process finds it."""
    db, connection, root, root_folder = getInformationFromEvent(event)
    ensureUtility(root_folder, ISessionDataContainer,
                  'PersistentSessionDataContainer',
                  PersistentSessionDataContainer)
    transaction.commit()
    connection.close()


def idManager():
    """The cookie id manager: a global utility, with the suite's cookie
    name and the cluster's shared secret."""
    from zope.session.http import CookieClientIdManager
    with open(os.environ['PEERDEMO_SECRET_FILE']) as f:
        return CookieClientIdManager(COOKIE, f.read().strip())


class _Page:

    def __init__(self, context, request):
        self.context = context
        self.request = request


class Notes(_Page):
    """A POST of ``key`` and ``value`` stores a note; a GET lists them."""

    def __call__(self):
        form = self.request.form
        key = form.get('key', '')
        if self.request.method == 'POST' and key:
            ISession(self.request)[PKG]['note-' + key] = form.get('value', '')
        notes = ISession(self.request).get(PKG) or {}
        return '<ul>{}</ul>'.format(''.join(
            '<li id="{}">{}</li>'.format(
                html.escape(name, quote=True), html.escape(notes[name]))
            for name in sorted(notes) if name.startswith('note-')))


class Login(_Page):
    """Records the name: zope.session has no way to change the id."""

    def __call__(self):
        name = self.request.form.get('name', '').strip()
        if self.request.method == 'POST' and name:
            ISession(self.request)[PKG]['user'] = name
        return '<p>{}</p>'.format(html.escape(name))


def makeApplication(var, database, secret_file):
    """The WSGI application and its database."""
    os.makedirs(var, exist_ok=True)
    os.environ['PEERDEMO_SECRET_FILE'] = os.path.abspath(secret_file)
    site = os.path.join(var, 'site.zcml')
    with open(site, 'w', encoding='utf-8') as f:
        f.write(SITE.format(template=TEMPLATE))
    config(site)
    factory, dbkw = zodburi.resolve_uri(database)
    db = DB(factory(), **dbkw)
    zope.event.notify(zope.processlifetime.DatabaseOpened(db))
    return WSGIPublisherApplication(db), db


def main(argv=None):
    parser = argparse.ArgumentParser(prog='benchmarks/peerdemo.py')
    parser.add_argument('--port', type=int, default=8080)
    parser.add_argument('--var', required=True)
    parser.add_argument('--database', required=True)
    parser.add_argument('--secret-file', required=True)
    args = parser.parse_args(argv)
    application, db = makeApplication(args.var, args.database,
                                      args.secret_file)
    server = create_server(application, host='127.0.0.1', port=args.port)
    gc.collect()
    gc.freeze()
    print('Serving zope.session on http://127.0.0.1:{}/index.html'.format(
        server.effective_port), flush=True)
    serve(server, db.close)


if __name__ == '__main__':
    sys.modules.setdefault('peerdemo', sys.modules['__main__'])
    main()
