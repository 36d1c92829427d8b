"""Reading a body the library reads itself: capped, bounded in time, through public API.

What lives here: :func:`read_capped`, the one reader of the bodies this library reads on
its own account (the token endpoint's answer, a 401 drained before its resend, an error
body searched for Criteo's envelope), and :func:`body_unread`, which says whether a body
is still the caller's to read. What does not: what the bytes mean (:mod:`._answer`,
:mod:`.envelope`).

Only requests' public interface is used, so any transport adapter works, not only
urllib3's: ``iter_content`` reads, ``raw`` is swapped for the bytes kept, ``content``
gives them back. Nothing private of requests or urllib3 is read or written.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator

import requests

#: Bytes asked for per read when reading is bounded in time (*within* or *stop*). urllib3's
#: ``read(n)`` waits until *n* bytes came (or the body ended): against a server trickling
#: one byte a tick, a bounded read overshoots its bound by up to this many ticks. Measured
#: on loopback (Python 3.11, urllib3 2.8), a 64 KiB body takes 290 ms in 1-byte reads,
#: 95 ms in 4, 45 ms in 8, 15 ms in 16, 0.1 ms in 8192. At 8, a 401 trickled at 50 ms a
#: byte stops 0.4 s past its second, and the largest 401 kept (64 KiB) takes 45 ms; a
#: token answer (about 1.5 KB) takes a millisecond.
BOUNDED_CHUNK = 8
#: Bytes asked for per read when nothing bounds the time (an error body for its envelope).
CHUNK = 8192


def body_unread(response: requests.Response) -> bool:
    """Whether *response*'s body is still there to be read, by the caller or by us.

    No public flag of requests says so; the body's file (``response.raw``) does. Reading a
    body to its end closes urllib3's file (``raw.closed``), so a body read by requests
    (``stream=False``, ``.content``, ``iter_content`` to the end) is not unread. A
    transport's own file that can seek (an ``io.BytesIO``, or the bytes :func:`read_capped`
    kept) is unread while it is short of its end. A file that says neither counts as
    unread, which errs on the safe side: :func:`~requests_criteo.envelope` leaves it alone.
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

    Returns up to ``limit + 1`` bytes: one more than *limit* says there was more. Reading
    stops after *within* seconds, or as soon as *stop* returns true (each is checked
    between reads of :data:`BOUNDED_CHUNK` bytes, whose wait the request's read timeout
    bounds). A body cut short (over the limit, out of time, stopped, or unreadable) has
    its connection closed, never handed back to the pool half-read; a body read to its
    end gives its connection back. Afterwards ``response.content``, ``.text`` and
    ``.json()`` give the bytes kept.

    A body already read is returned as requests kept it (``b""`` if ``iter_content``
    streamed it away). A body that cannot be read gives what came before the failure, or
    with *strict* raises the failure (after closing the connection).
    """
    if not body_unread(response):
        return _content(response)
    bounded = within is not None or stop is not None
    deadline = None if within is None else time.monotonic() + within
    # A response of our own to iterate, so that the caller's is not marked consumed; its
    # close() closes the connection when the body was not read to its end (requests
    # then closes raw) and otherwise gives it back to the pool (raw.release_conn).
    reader = requests.Response()
    reader.raw = response.raw
    chunks = reader.iter_content(BOUNDED_CHUNK if bounded else CHUNK)
    kept = bytearray()
    whole = False
    try:
        whole = _take(chunks, kept, limit + 1, deadline, stop)
    except Exception:  # a broken body must stop neither a resend nor an error report
        if strict:
            raise
    finally:
        reader.close()
    if whole and not kept:
        return _content(response)  # nothing left: requests may have read it before us
    response.raw = io.BytesIO(bytes(kept[:limit]))
    _ = response.content  # read now: the kept bytes are requests' to hand out
    return bytes(kept)


def _take(
    chunks: Iterator[bytes],
    kept: bytearray,
    size: int,
    deadline: float | None,
    stop: Callable[[], bool] | None,
) -> bool:
    """Add chunks to *kept*, up to *size* bytes; whether the body ended before any bound."""
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
