"""A countdown on a terminal for each of the library's waits longer than a second.

What lives here: :func:`show_waits`, which the command line calls with its stderr, and
:class:`Countdown`, the watcher it registers. What does not: the waits themselves and how
they are announced (:mod:`._waits`), or the log lines that record them.

The countdown is for a person watching: one line, rewritten in place every second
(``waiting 12 s: Criteo asked to wait (HTTP 429)``) and wiped when the wait ends. A stream
that is not a terminal (a pipe, a file, a CI log) gets none of it, not even the wiping,
so nothing but the log lines reaches a script reading stderr.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

from ._waits import watch

__all__ = ["Countdown", "show_waits"]


def show_waits(stream: TextIO, *, prefix: str = "") -> Callable[[], None]:
    """Count each wait of over a second down on *stream* if it is a terminal.

    Returns what stops it. On anything but a terminal nothing is registered or shown.
    """
    try:
        terminal = stream.isatty()
    except ValueError:  # a closed stream
        terminal = False
    if not terminal:
        return _nothing
    return watch(Countdown(stream, prefix=prefix))


def _nothing() -> None:
    return None


class Countdown:
    """A :data:`~requests_criteo._waits.Watcher` that counts a wait down on one line.

    The first frame is written at once, so even a wait that a test's sleep cuts short is
    seen; a daemon thread rewrites it as each second passes, and stops when the wait ends.

    :param stream: a terminal.
    :param prefix: put before each frame, e.g. ``"criteo-auth: "``.
    :param clock: a monotonic clock, in seconds.
    """

    #: Waits of this many seconds or less are not shown: too short to wonder about.
    SHORTEST = 1.0

    def __init__(
        self, stream: TextIO, *, prefix: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.prefix = prefix
        self.clock = clock
        self._lock = threading.Lock()  # one writer at a time, for waits in several threads
        self._shown = 0  # characters on the line now, to wipe

    def __call__(self, seconds: float, reason: str) -> Callable[[], None]:
        if not seconds > self.SHORTEST:
            return _nothing
        ends_at = self.clock() + seconds
        done = threading.Event()
        self._frame(ends_at, reason)
        ticker = threading.Thread(
            target=self._tick, args=(ends_at, reason, done), name="requests-criteo-countdown"
        )
        ticker.daemon = True
        ticker.start()

        def end() -> None:
            done.set()
            ticker.join()
            self._write("")

        return end

    def _tick(self, ends_at: float, reason: str, done: threading.Event) -> None:
        # Wake when the whole seconds left change: 12.3 s left shows 13 until 12.0.
        while True:
            left = ends_at - self.clock()
            if done.wait(left - math.ceil(left) + 1.0 if left > 0 else 1.0):
                return
            self._frame(ends_at, reason)

    def _frame(self, ends_at: float, reason: str) -> None:
        left = max(0, math.ceil(ends_at - self.clock()))
        self._write(f"{self.prefix}waiting {left} s: {reason}")

    def _write(self, text: str) -> None:
        """Replace the line with *text* (cut to the terminal's width); ``""`` wipes it."""
        text = text[: self._width() - 1]
        with self._lock, contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe
            pad = " " * max(0, self._shown - len(text))
            self.stream.write(f"\r{text}{pad}" + ("\r" if not text else ""))
            self.stream.flush()
            self._shown = len(text)

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):  # no fd (a test's stream), or closed
            return 80
