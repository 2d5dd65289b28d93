"""Sessions to and from a file, so that they survive a move between
databases (FileStorage, ZEO, RelStorage).

The file: a first line naming the format, then one record per session
(a 4-byte big-endian length and a pickle of the session's key, creation
time, last access time and packages' items), then an empty record
followed by the SHA-256 of every record before it and their number.
Both directions stream, in constant memory.  `importSessions` reads the
whole file once, checking it, before it writes anything: a truncated,
damaged or foreign file is refused, naming the record at fault.

Values are pickled: import only files you exported yourself, as you
would restore only your own backups.
"""
import hashlib
import pickle
import struct

from zope_sessionx.data import SessionData
from zope_sessionx.data import SessionPkgData
from zope_sessionx.interfaces import SessionError


__all__ = [
    'TransferError',
    'exportSessions',
    'importSessions',
]

MAGIC = b'zope_sessionx sessions 1\n'
_LENGTH = struct.Struct('>I')
_TRAILER = struct.Struct('>32sQ')


class TransferError(SessionError):
    """A file of sessions was refused: ``record`` is the number of the
    record at fault (0 for the file's first line)."""

    def __init__(self, record, reason):
        super().__init__('record {}: {}'.format(record, reason))
        self.record = record


def exportSessions(container, stream, progress=None):
    """Write every session of *container* to the binary *stream*.

    *progress*, if given, is called with 1 after each session.  Returns
    the number of sessions written.
    """
    stream.write(MAGIC)
    checksum = hashlib.sha256()
    count = 0
    for key, session in container.iterSessions():
        record = pickle.dumps((
            key, session.created, session.getLastAccessTime(),
            [(pkg_id, list(pkg.items())) for pkg_id, pkg in session.items()],
        ), protocol=pickle.HIGHEST_PROTOCOL)
        header = _LENGTH.pack(len(record))
        checksum.update(header + record)
        stream.write(header + record)
        count += 1
        if progress is not None:
            progress(1)
    stream.write(_LENGTH.pack(0) + _TRAILER.pack(checksum.digest(), count))
    return count


def _records(stream):
    """Yield (number, record) from *stream*, checking it as it goes."""
    if stream.read(len(MAGIC)) != MAGIC:
        raise TransferError(0, 'not a file of zope_sessionx sessions')
    checksum = hashlib.sha256()
    number = 0
    while True:
        number += 1
        header = stream.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            raise TransferError(number, 'the file ends here (truncated)')
        (length,) = _LENGTH.unpack(header)
        if not length:
            break
        body = stream.read(length)
        if len(body) < length:
            raise TransferError(number, 'the file ends here (truncated)')
        checksum.update(header + body)
        try:
            record = pickle.loads(body)
            key, created, last, packages = record
        except Exception as error:
            raise TransferError(number, 'cannot be read: {}: {}'.format(
                type(error).__name__, error)) from None
        yield number, (key, created, last, packages)
    trailer = stream.read(_TRAILER.size)
    if len(trailer) < _TRAILER.size:
        raise TransferError(number, 'the file ends here (truncated)')
    digest, count = _TRAILER.unpack(trailer)
    if digest != checksum.digest() or count != number - 1:
        raise TransferError(number, 'the checksum does not match')


def importSessions(container, stream, commit=None, batch=1000,
                   progress=None):
    """Read the sessions *stream* holds into *container*.

    *stream* must be seekable: it is read once to check it (nothing is
    written if it is refused, with `TransferError`), then once to import.
    *commit*, if given, is called after every *batch* sessions, so that
    transactions stay short.  Returns the number of sessions imported.
    """
    start = stream.tell()
    for _ in _records(stream):
        pass
    stream.seek(start)
    count = 0
    for number, (key, created, last, packages) in _records(stream):
        session = SessionData()
        session.created = created
        session.setLastAccessTime(last)
        for pkg_id, items in packages:
            pkg = session[pkg_id] = SessionPkgData()
            pkg.update(items)
        container.restoreSession(key, session)
        count += 1
        if progress is not None:
            progress(1)
        if commit is not None and count % batch == 0:
            commit()
    if commit is not None:
        commit()
    return count
