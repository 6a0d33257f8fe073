"""Shared fixtures: the real embedder and engine (loaded once per session), the real app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from routeiq.engine import Engine
from routeiq.http.app import create_app
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings


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
