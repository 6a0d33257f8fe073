"""Shared fixtures: the real embedder and engine (loaded once per session), the real app, a real
redis-server; and the one rule that keeps the developer's environment out of every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from routeiq.engine import Engine
from routeiq.http.app import create_app
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from tests._harness import RedisServer, RedisServerMissing, redis_server_binary, strip_developer_settings

_STRIPPED = pytest.StashKey[dict[str, str]]()
REDIS_FIXTURES = frozenset({"redis_server", "private_redis_server"})


def pytest_configure(config: pytest.Config) -> None:
    # Before collection, so no Settings() anywhere (fixture, test module, subprocess env) can see
    # a ROUTEIQ_* or PROMETHEUS_MULTIPROC_DIR left in the developer's shell.
    config.stash[_STRIPPED] = strip_developer_settings(os.environ)
    config.addinivalue_line(
        "markers", "redis: needs the redis-server binary (set on every test using a redis fixture)"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    os.environ.update(config.stash.get(_STRIPPED, {}))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REDIS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


def _redis(factory: pytest.TempPathFactory) -> RedisServer:
    # Missing binary = a failure, not a skip: a run that silently skipped the shared-state tests
    # would pass without testing half of the service.
    try:
        redis_server_binary()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    return RedisServer(factory.mktemp("redis"))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One running redis-server per module; tests keep apart by `namespace`."""
    with _redis(tmp_path_factory) as server:
        yield server


@pytest.fixture
def private_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for one test alone, not started yet: the test starts, kills and restarts
    it (killed at teardown whatever happened)."""
    server = _redis(tmp_path_factory)
    yield server
    server.kill()


@pytest.fixture
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = Engine.load(settings, Metrics.create())
    engine.warm_up()
    yield engine
    engine.executor.shutdown()


def make_client(**overrides: object) -> TestClient:
    app = create_app(Settings(**overrides), registry=CollectorRegistry())  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c
