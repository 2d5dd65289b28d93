"""``python -m zope_sessionx.demo``: serve the demo with waitress.

Example::

    python -m zope_sessionx.demo --port 8080 --var var
    python -m zope_sessionx.demo --database zeo://127.0.0.1:8100
"""
import argparse
import gc
import signal

from waitress.server import create_server
from zope.configuration.exceptions import ConfigurationError

from zope_sessionx.demo import makeApplication


def _seconds(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            'not a whole number, 0 or more: {!r}'.format(text))
    return value


def prepare(argv=None):
    """Parse *argv*, listen, set the demo up; return ``(server, demo)``.

    A mistake is one line on standard error and a non-zero exit: 1 for a
    port that cannot be listened on (nothing is set up then), 2 for bad
    arguments or configuration.
    """
    parser = argparse.ArgumentParser(
        prog='python -m zope_sessionx.demo',
        description='Serve the zope_sessionx demo application.',
        epilog='Example: python -m zope_sessionx.demo --port 8080')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=8080,
                        help='port to listen on (default 8080; 0: any)')
    parser.add_argument('--var', default='var',
                        help="directory of the demo's data (default var)")
    parser.add_argument('--database',
                        help='URI of the session database (default: a '
                        'FileStorage in the var directory)')
    parser.add_argument('--secret-file',
                        help='file of the cookie secret, the same for '
                        'every process of a cluster (default: '
                        'secret.txt in the var directory, made if '
                        'missing)')
    parser.add_argument('--timeout', type=_seconds, default=3600,
                        help='idle timeout of sessions, in seconds '
                        '(default 3600)')
    parser.add_argument('--max-sessions', type=_seconds, default=0,
                        help='most sessions stored at once (default 0: '
                        'no limit)')
    args = parser.parse_args(argv)
    application = {}
    try:
        # The port first: nothing is set up if it is taken.
        server = create_server(
            lambda environ, start: application['app'](environ, start),
            host=args.host, port=args.port)
    except OSError as error:
        parser.exit(1, 'zope_sessionx.demo: cannot listen on {}:{}: {}\n'
                    .format(args.host, args.port, error.strerror))
    try:
        demo = makeApplication(args.var, args.database, args.secret_file,
                               args.timeout, args.max_sessions)
    except ConfigurationError as error:
        server.close()
        parser.exit(2, 'zope_sessionx.demo: {}\n'.format(
            ' '.join(line.strip() for line in str(error).splitlines())))
    application['app'] = demo.wsgi
    # What start-up made stays: leave it out of every full collection,
    # which would otherwise walk it and stop the requests meanwhile
    # (docs/operations.rst).
    gc.collect()
    gc.freeze()
    print('Serving the demo on http://{}:{}/index.html (log in to '
          'admin.html as "admin" with the password in {}/admin-password'
          '.txt; {} start-up objects left out of garbage collection)'
          .format(args.host, server.effective_port, args.var,
                  gc.get_freeze_count()),
          flush=True)
    return server, demo


def _stop(signum, frame):
    # SIGTERM stops as Ctrl-C does: databases closed cleanly.
    raise KeyboardInterrupt


def serve(server, close):
    """Run the waitress *server* until Ctrl-C or SIGTERM; then close it,
    and call *close* (which closes the databases)."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        # Returns on Ctrl-C (and so on SIGTERM): waitress stops then.
        server.run()
    finally:
        server.close()
        close()


def main(argv=None):
    """Serve the demo until Ctrl-C or SIGTERM."""
    server, demo = prepare(argv)
    serve(server, demo.close)


if __name__ == '__main__':  # pragma: no cover
    main()
