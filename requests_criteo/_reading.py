"""Reading a body the library reads itself: capped, bounded in time, through public API.

What lives here: :func:`read_capped`, the one reader of the bodies this library reads on
its own account (the token endpoint's answer, a 401 drained before its resend, an error
body searched for Criteo's envelope), and :func:`body_unread`, which says whether a body
is still the caller's to read. What does not: what the bytes mean (:mod:`._answer`,
:mod:`.envelope`).

Only requests' public interface is used, so any transport adapter works, not only
urllib3's: ``iter_content`` reads, ``content`` is filled from the bytes kept (``raw`` is
lent to them for that one read), ``close`` closes or releases the connection. Nothing
private of requests or urllib3 is read or written.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import requests

#: Bytes asked for per read when reading is bounded in time (*within* or *stop*). urllib3's
#: ``read(n)`` waits until *n* bytes came (or the body ended), so against a server
#: trickling a byte a tick the bound is overshot by up to this many ticks; smaller reads
#: cost more per byte. At 8, the largest 401 kept (64 KiB) reads in tens of milliseconds
#: and a trickled one stops well within a second of its bound (measurements: changelog).
BOUNDED_CHUNK = 8


def body_unread(response: requests.Response) -> bool:
    """Whether *response*'s body is still there to be read, by the caller or by us.

    No public flag of requests says so; the body's file (``response.raw``) does. Reading a
    body to its end closes urllib3's file (``raw.closed``), so a body read by requests
    (``stream=False``, ``.content``, ``iter_content`` to the end) is not unread, nor is
    one :func:`read_capped` cut short (it closes the file). A transport's own file that
    can seek (an ``io.BytesIO``) is unread while it is short of its end. A file that says
    neither counts as unread, which errs on the safe side: :func:`~requests_criteo.envelope`
    leaves it alone.
    """
    raw = response.raw
    if raw is None or getattr(raw, "closed", False):
        return False
    seekable = getattr(raw, "seekable", None)
    if seekable is None or not seekable():
        return True
    here = raw.tell()
    end: int = raw.seek(0, io.SEEK_END)
    raw.seek(here)
    return bool(here < end)


def read_capped(
    response: requests.Response,
    limit: int,
    within: float | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    strict: bool = False,
) -> bytes:
    """Read *response*'s body, keep at most *limit* bytes of it, and return them.

    Returns up to ``limit + 1`` bytes: one more than *limit* says there was more; no more
    than that is read (but for up to :data:`BOUNDED_CHUNK` bytes when bounded in time).
    Reading stops after *within* seconds, or once *stop* returns true:
    both are checked between reads of at most :data:`BOUNDED_CHUNK` bytes, each byte of
    which the request's read timeout bounds. A body cut short (over the limit, out of time,
    stopped, or unreadable) has its connection closed, never handed back to the pool
    half-read; a body read to its end gives its connection back. Afterwards
    ``response.content``, ``.text`` and ``.json()`` give the bytes kept, and
    ``response.raw`` is the body's file as it was (its headers, its cookies).

    A body already read is returned as requests kept it (``b""`` if ``iter_content``
    streamed it away). A body that cannot be read gives what came before the failure, or
    with *strict* raises the failure (after closing the connection).
    """
    if not body_unread(response):
        return _content(response)
    # Bounded in time: small reads, checked between. Otherwise one read of the cap and its
    # extra byte, so that no more than that is taken from the connection.
    step = BOUNDED_CHUNK if within is not None or stop is not None else limit + 1
    deadline = None if within is None else time.monotonic() + within
    # A response of our own to iterate, so that the caller's is not marked consumed; its
    # close() closes the connection when the body was not read to its end (requests
    # then closes raw) and otherwise gives it back to the pool (raw.release_conn).
    raw = response.raw
    reader = requests.Response()
    reader.raw = raw
    kept = bytearray()
    whole = False
    try:
        whole = _take(reader, kept, limit + 1, step, deadline, stop)
    except Exception:  # a broken body must stop neither a resend nor an error report
        if strict:
            raise
    finally:
        reader.close()
    if whole and not kept:
        return _content(response)  # nothing left: requests may have read it before us
    # requests reads .content from raw once and keeps it: read the kept bytes in, then
    # give the response its own raw back (its headers and cookies are read from there).
    response.raw = io.BytesIO(bytes(kept[:limit]))
    _ = response.content
    response.raw = raw
    return bytes(kept)


def _take(
    reader: requests.Response,
    kept: bytearray,
    size: int,
    step: int,
    deadline: float | None,
    stop: Callable[[], bool] | None,
) -> bool:
    """Add *reader*'s body to *kept*, up to *size* bytes; whether it ended within bounds.

    One iterator for the whole body: a chunked body's iterator, once dropped, closes it.
    """
    chunks = reader.iter_content(step)
    while not (stop is not None and stop()):
        if deadline is not None and time.monotonic() >= deadline:
            break
        chunk = next(chunks, None)
        if chunk is None:
            return True
        kept += chunk
        if len(kept) >= size:
            del kept[size:]
            break
    return False


def _content(response: requests.Response) -> bytes:
    """The body requests kept, or ``b""`` when it kept none (streamed away, or no body)."""
    try:
        content = response.content
    except (RuntimeError, requests.RequestException, OSError, ValueError):
        return b""  # RuntimeError: streamed away by iter_content; the others: unreadable
    return content if isinstance(content, bytes) else b""
