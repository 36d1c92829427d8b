"""The Redis server of the tests: the testing kit's, and how to say it is missing."""

from __future__ import annotations

import shutil

from requests_criteo.testing import RedisServer

__all__ = ["HOW_TO_GET_IT", "REDIS_SERVER", "RedisServer"]

REDIS_SERVER = shutil.which("redis-server")
HOW_TO_GET_IT = (
    "redis-server is not installed: the Redis tests need it "
    "(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis). "
    "CI installs it in .ci/run."
)
