"""ZCML directives: ``<sessions:clientIdManager>`` and
``<sessions:container>`` (``meta.zcml`` declares them).

Both register global utilities.  A mistake stops start-up with an error
that zope.configuration places at the directive's file and line, naming
the attribute: a missing secret, an unknown database scheme, a database
that cannot be opened, a refused setting.
"""
import os

from zope.component.zcml import utility
from zope.configuration.exceptions import ConfigurationError
from zope.configuration.fields import Bool
from zope.configuration.fields import Path
from zope.configuration.fields import Tokens
from zope.interface import Interface
from zope.schema import Int
from zope.schema import TextLine

from zope_sessionx.database import DatabaseSessionDataContainer
from zope_sessionx.http import CookieClientIdManager
from zope_sessionx.interfaces import IClientIdManager
from zope_sessionx.interfaces import InvalidSettingError
from zope_sessionx.interfaces import ISessionDataContainer


__all__ = [
    'IClientIdManagerDirective',
    'IContainerDirective',
    'clientIdManager',
    'container',
]


def _int(title):
    return Int(title=title, required=False)


def _bool(title):
    return Bool(title=title, required=False)


class IClientIdManagerDirective(Interface):
    """Register a `~zope_sessionx.http.CookieClientIdManager`.

    The secrets come from a file (one per line, newest first) or from an
    environment variable (separated by white space), never from the ZCML
    itself.  Every other attribute is the manager's setting of that name.
    """

    namespace = TextLine(title='Cookie name', required=True)
    secretFile = Path(title='File holding the secrets', required=False)
    secretEnv = TextLine(title='Environment variable holding the secrets',
                         required=False)
    cookieLifetime = _int('Cookie lifetime')
    thirdparty = _bool('Third-party cookie')
    domain = TextLine(title='Domain', required=False)
    cookiePath = TextLine(title='Path', required=False)
    secure = _bool('Always Secure')
    autoSecure = _bool('Secure over HTTPS')
    postOnly = _bool('Only on POST')
    httpOnly = _bool('HttpOnly')
    sameSite = TextLine(title='SameSite', required=False)
    hostPrefix = _bool('__Host- prefix')
    namespaces = Tokens(title='Namespaces', value_type=TextLine(),
                        required=False)
    acceptLegacyIds = _bool('Accept zope.session ids')
    strictIds = _bool('Strict ids')


class IContainerDirective(Interface):
    """Register a session data container stored in the database *database*
    names (a `zodburi` URI) as the `ISessionDataContainer` utility *name*.
    Every other attribute is the container's setting of that name.
    """

    name = TextLine(title='Utility name (a package id, or empty)',
                    required=False, default='')
    database = TextLine(title='Database URI', required=True)
    timeout = _int('Timeout')
    resolution = _int('Resolution')
    maxLifetime = _int('Maximum lifetime')
    targetNumber = _int('Target number')
    maxNumber = _int('Maximum number')
    cleanupPeriod = _int('Cleanup period')
    cleanupBatch = _int('Cleanup batch')
    cleanerThread = _bool('Cleaner thread')
    longestTimeout = _int('Longest timeout a session may be given')
    longestLifetime = _int('Longest lifetime a session may be given')


def _given(settings):
    return {name: value for name, value in settings.items()
            if value is not None}


def _secrets(secretFile, secretEnv):
    if secretFile and secretEnv:
        raise ConfigurationError('give secretFile or secretEnv, not both')
    if secretFile:
        try:
            with open(secretFile, encoding='utf-8') as f:
                secrets = f.read().split()
        except OSError as error:
            raise ConfigurationError(
                'secretFile {!r} cannot be read: {}'.format(
                    secretFile, error.strerror)) from None
        where = 'secretFile {!r}'.format(secretFile)
    elif secretEnv:
        secrets = os.environ.get(secretEnv, '').split()
        where = 'secretEnv {!r}'.format(secretEnv)
    else:
        raise ConfigurationError(
            'give the secrets in a file (secretFile) or an environment '
            'variable (secretEnv)')
    if not secrets:
        raise ConfigurationError('{} holds no secret'.format(where))
    return tuple(secrets)


def clientIdManager(_context, namespace, secretFile=None, secretEnv=None,
                    namespaces=None, **settings):
    """The ``<sessions:clientIdManager>`` directive."""
    settings = _given(settings)
    if namespaces:
        settings['namespaces'] = tuple(namespaces)
    secrets = _secrets(secretFile, secretEnv)
    try:
        manager = CookieClientIdManager(namespace, secrets[0], **settings)
        manager.secrets = secrets
    except InvalidSettingError as error:
        raise ConfigurationError(
            'attribute {}: {}'.format(error.setting, error)) from None
    utility(_context, provides=IClientIdManager, component=manager)


def container(_context, database, name='', **settings):
    """The ``<sessions:container>`` directive."""
    try:
        sdc = DatabaseSessionDataContainer(database, name,
                                           **_given(settings))
    except InvalidSettingError as error:
        raise ConfigurationError(
            'attribute {}: {}'.format(error.setting, error)) from None
    utility(_context, provides=ISessionDataContainer, component=sdc,
            name=name)
