"""The one test harness, shared by tests/ and bench/: a free loopback port, a clean environment
for subprocesses, a real `routeiq serve` process and a real `redis-server`."""

from __future__ import annotations

from tests._harness.env import clean_env, is_developer_setting, strip_developer_settings
from tests._harness.net import REPO, free_port, wait_until
from tests._harness.redis import RedisServer, RedisServerMissing, redis_server_binary
from tests._harness.rows import written_rows
from tests._harness.service import ServeProcess, http_ok, no_keepalive_client, replicas_of

__all__ = [
    "REPO",
    "RedisServer",
    "RedisServerMissing",
    "ServeProcess",
    "clean_env",
    "free_port",
    "http_ok",
    "is_developer_setting",
    "no_keepalive_client",
    "redis_server_binary",
    "replicas_of",
    "strip_developer_settings",
    "wait_until",
    "written_rows",
]
