"""The one after-fork registry: what a forked child must start afresh.

A lock held, or a token request under way, in one of the parent's other threads is never
released in the child, where those threads do not exist. Objects that own such state
register here and get their ``_after_fork()`` called in the child; module-level state
registers a function. Registering holds objects weakly: it never keeps one alive.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["forget_in_child", "reset_in_child"]


class _ForkAware(Protocol):
    def _after_fork(self) -> None: ...


_objects: weakref.WeakSet[_ForkAware] = weakref.WeakSet()
_functions: list[Callable[[], None]] = []
_lock = threading.Lock()


def reset_in_child(obj: _ForkAware) -> None:
    """Call ``obj._after_fork()`` in every child forked while *obj* is alive."""
    with _lock:
        _objects.add(obj)


def forget_in_child(function: Callable[[], None]) -> Callable[[], None]:
    """Call *function* in every forked child (usable as a decorator)."""
    with _lock:
        _functions.append(function)
    return function


def _in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent's thread may have held it while registering
    for function in _functions:
        function()
    for obj in list(_objects):
        obj._after_fork()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
    os.register_at_fork(after_in_child=_in_child)
