"""The demo's pages: plain browser views, each a few lines of session use.

Every page reads or writes the data of one package id, ``PKG``.
"""
import html
import time

from zope.component import getUtility

from zope_sessionx.interfaces import MAX_LABEL_LENGTH
from zope_sessionx.interfaces import ISession
from zope_sessionx.interfaces import ISessionDataContainer


PKG = 'zope_sessionx.demo'

PAGE = '''<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<nav><a href="index.html">Counter</a> | <a href="form.html">Form</a> |
<a href="value.html">Template</a> | <a href="notes.html">Notes</a> |
<a href="login.html">Log in</a> |
<a href="sessions.html">Your sessions</a> |
<a href="logout.html">Log out</a> | <a href="admin.html">Admin</a></nav>
<h1>{title}</h1>
{body}
</body></html>
'''


class _Page:

    title = ''

    def __init__(self, context, request):
        self.context = context
        self.request = request

    @property
    def data(self):
        # Stored on the first write only: a page that only reads stores
        # nothing and sets no cookie.
        return ISession(self.request)[PKG]

    def page(self, body):
        self.request.response.setHeader('Content-Type',
                                        'text/html; charset=utf-8')
        return PAGE.format(title=self.title, body=body)


class Counter(_Page):
    """Counts this visitor's visits."""

    title = 'Counter'

    def __call__(self):
        count = self.data.get('count', 0) + 1
        self.data['count'] = count
        user = self.data.get('user')
        who = ('Logged in as <b id="user">{}</b>. '.format(html.escape(user))
               if user else '')
        return self.page('<p>{}Visits: <b id="count">{}</b></p>'.format(
            who, count))


class Form(_Page):
    """Stores a value given in a form (POST)."""

    title = 'Form'

    def __call__(self):
        if self.request.method == 'POST':
            self.data['value'] = self.request.form.get('value', '')
        value = self.data.get('value', '')
        return self.page(
            '<form method="post" action="form.html">'
            '<input name="value" value="{}">'
            '<button type="submit">Store</button></form>'
            '<p>Stored: <b id="value">{}</b></p>'.format(
                html.escape(value, quote=True), html.escape(value)))


class Login(_Page):
    """Logs a visitor in: a new client id, the session kept."""

    title = 'Log in'

    def __call__(self):
        name = self.request.form.get('name', '').strip()
        if self.request.method == 'POST' and name:
            session = ISession(self.request)
            # Against session fixation: a new id at every log-in.
            session.rotateClientId()
            self.data['user'] = name
            # Whose session it is, and how the visitor will recognise it
            # on "Your sessions".
            agent = self.request.get('HTTP_USER_AGENT', '')
            session.setPrincipal(name, agent[:MAX_LABEL_LENGTH] or None)
            return self.page('<p>Welcome, <b id="user">{}</b>.</p>'.format(
                html.escape(name)))
        return self.page(
            '<form method="post" action="login.html">'
            '<input name="name"><button type="submit">Log in</button>'
            '</form>')


class Notes(_Page):
    """Notes under keys of the visitor's choosing: a POST of ``key`` and
    ``value`` stores one (each key its own entry, so that requests
    writing different keys of one session merge); a GET lists them."""

    title = 'Notes'

    def __call__(self):
        form = self.request.form
        key = form.get('key', '')
        if self.request.method == 'POST' and key:
            self.data['note-' + key] = form.get('value', '')
        notes = ISession(self.request).get(PKG) or {}
        return self.page('<ul>{}</ul>'.format(''.join(
            '<li id="{}">{}</li>'.format(
                html.escape(name, quote=True), html.escape(notes[name]))
            for name in sorted(notes) if name.startswith('note-'))))


class Full(_Page):
    """The page of a request that needed a new session when the container
    holds its maximum: 503, try again later."""

    title = 'Busy'

    def __call__(self):
        self.request.response.setStatus(503)
        self.request.response.setHeader('Retry-After', '60')
        return self.page('<p id="full">Too many visitors right now: please '
                         'try again in a minute.</p>')


class Sessions(_Page):
    """Where the visitor is logged in; log out everywhere else."""

    title = 'Your sessions'

    def __call__(self):
        session = ISession(self.request)
        if self.request.method == 'POST':
            handle = self.request.form.get('end')
            if handle:
                session.endSession(handle)
            else:
                session.endOtherSessions()
        if session.principal is None:
            return self.page('<p id="none">Log in to see your sessions.</p>')
        rows = ''.join(
            '<tr class="session"><td>{}</td><td>{}</td><td>{}</td><td>{}'
            '</td></tr>'.format(
                html.escape(found.label or 'unnamed'), _when(found.created),
                _when(found.lastUsed),
                '<b class="current">this one</b>' if found.current else
                '<form method="post" action="sessions.html">'
                '<button name="end" value="{}">End</button></form>'.format(
                    found.handle))
            for found in session.principalSessions())
        return self.page(
            '<table><tr><th>Device</th><th>Since</th><th>Last used</th>'
            '<th></th></tr>{}</table>'
            '<form method="post" action="sessions.html">'
            '<button id="others" type="submit">Log out everywhere else'
            '</button></form>'.format(rows))


def _when(t):
    return time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t))


class Logout(_Page):
    """Ends the visitor's session."""

    title = 'Log out'

    def __call__(self):
        ISession(self.request).invalidate()
        return self.page('<p id="done">Your session has ended.</p>')


class Admin(_Page):
    """The container's statistics (needs zope.ManageServices)."""

    title = 'Admin'

    def __call__(self):
        sdc = getUtility(ISessionDataContainer)
        rows = [('sessions', len(sdc)), ('timeout', sdc.timeout),
                ('maxLifetime', sdc.maxLifetime),
                ('database', getattr(sdc, 'uri', ''))]
        return self.page('<table>{}</table>'.format(''.join(
            '<tr><th>{}</th><td id="{}">{}</td></tr>'.format(
                name, name, html.escape(str(value)))
            for name, value in rows)))
