"""The demo: a Zope application whose pages use sessions.

`makeApplication` builds it: ``zope.app.wsgi``'s WSGI application over
``zope.app.publication``'s ZODB publication (a connection per request,
retries on conflicts, site hooks), configured entirely by ZCML
(``site.zcml.in``) with the package's directives.  Its own data lives in
a FileStorage under *var*; its sessions in the database *database* names
(default: another FileStorage under *var*).  ``python -m
zope_sessionx.demo`` (``make demo``) serves it with waitress.
"""
import os
import secrets

import zope.event
import zope.processlifetime
from ZODB.DB import DB
from ZODB.FileStorage import FileStorage
from zope.app.appsetup.appsetup import config
from zope.app.wsgi import WSGIPublisherApplication

from zope_sessionx.database import closeDatabases


__all__ = [
    'Demo',
    'makeApplication',
]

HERE = os.path.dirname(os.path.abspath(__file__))


def _private(path, make):
    """Return the text of *path*, made by *make* (mode 0600) if missing."""
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(make() + '\n')
    with open(path, encoding='utf-8') as f:
        return f.read().strip()


class Demo:
    """The demo application: ``wsgi`` is the WSGI application, ``db`` its
    own database, ``password`` the administrator's password."""

    def __init__(self, wsgi, db, password):
        self.wsgi = wsgi
        self.db = db
        self.password = password

    def close(self):
        """Close the application's database and the session databases."""
        self.db.close()
        closeDatabases()


def makeApplication(var, database=None, secret_file=None, timeout=3600,
                    max_sessions=0):
    """Set the demo up and return it, a `Demo`.

    *var* is the directory of the demo's data, made if missing: the
    application's FileStorage (``Data.fs``), the sessions' (``Sessions.fs``,
    unless *database* names another database), the id manager's secret
    and the administrator's password (both made at the first start).
    Processes that share a session database must share the secret: give
    them the same *secret_file* (made if missing).  *timeout* and
    *max_sessions* are the container's ``timeout`` and ``maxNumber``.
    """
    os.makedirs(var, exist_ok=True)
    var = os.path.abspath(var)
    secret_file = os.path.abspath(
        secret_file or os.path.join(var, 'secret.txt'))
    _private(secret_file, lambda: secrets.token_urlsafe(32))
    password = _private(os.path.join(var, 'admin-password.txt'),
                        lambda: secrets.token_urlsafe(12))
    database = database or 'file://' + os.path.join(var, 'Sessions.fs')
    with open(os.path.join(HERE, 'site.zcml.in'), encoding='utf-8') as f:
        zcml = f.read() % {'admin_password': password,
                           'secret_file': secret_file,
                           'database': database.replace('&', '&amp;'),
                           'package': HERE,
                           'timeout': int(timeout),
                           'max_number': int(max_sessions)}
    site = os.path.join(var, 'site.zcml')
    with open(site, 'w', encoding='utf-8') as f:
        f.write(zcml)
    config(site)
    db = DB(FileStorage(os.path.join(var, 'Data.fs')))
    zope.event.notify(zope.processlifetime.DatabaseOpened(db))
    return Demo(WSGIPublisherApplication(db), db, password)
