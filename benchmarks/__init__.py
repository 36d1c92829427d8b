"""Benchmarks of requests-criteo against bare requests and the other token libraries.

Run ``python -m benchmarks`` (``--quick`` for a run under a minute, ``--json PATH`` and
``--markdown PATH`` to keep the results, ``--check`` to fail when a target is missed).
Extra dependencies: ``pip install -e . -r benchmarks/requirements.txt``.

Modules:

* :mod:`benchmarks.__main__`: the command line, which runs the sections below in turn;
* :mod:`benchmarks.transports`: an in-memory transport adapter (no socket) and helpers;
* :mod:`benchmarks.server`: a fast keep-alive HTTP/1.1 server run in another process;
* :mod:`benchmarks.candidates`: the clients compared on the hot path, built alike;
* :mod:`benchmarks.hotpath`: the interleaved timing of one request through each client;
* :mod:`benchmarks.concurrency`: token requests of 64 threads over several token
  lifetimes, and a 401 storm, against :class:`requests_criteo.testing.FakeCriteo`;
* :mod:`benchmarks.processes`: 8 processes sharing a file store or a Redis store;
* :mod:`benchmarks.footprint`: import time and memory per cached token;
* :mod:`benchmarks.profiling`: where requests-criteo's hot path spends its time;
* :mod:`benchmarks.report`: sections, targets, machine facts, text/JSON/Markdown output.
"""
