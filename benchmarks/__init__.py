"""Benchmarks of requests-criteo against bare requests and the token libraries a user
would pick instead; ``python -m benchmarks`` prints the report of docs/performance.md.

Modules: :mod:`~benchmarks.__main__` (the command, the targets, the Markdown),
:mod:`~benchmarks.clients` (the clients compared), :mod:`~benchmarks.hotpath` (timing
and noise), :mod:`~benchmarks.httpx_path` (the httpx clients, sync and async, timed the
same way), :mod:`~benchmarks.httpx_counts` (token requests of tasks, and of threads with
tasks, at a cold start), :mod:`~benchmarks.counts` (token requests under threads, a 401
storm and processes), :mod:`~benchmarks.fleet` (one rate budget shared by a fleet of
processes), :mod:`~benchmarks.transport` (in-memory and gated transports) and
:mod:`~benchmarks.server` (the loopback server). Only the library's public API is used.
"""
