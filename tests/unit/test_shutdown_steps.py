"""Shutdown never hangs on one step: a close that never returns is given up after its bound,
logged, and the steps after it still run."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry

from routeiq.engine import Engine, close_within
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from routeiq.state.memory import MemoryState


class _NeverCloses:
    """Stands in for a Redis client whose close waits on a reply that never comes (seen once in
    CI: a worker's shutdown blocked forever with its event loop idle)."""

    async def close(self) -> None:
        await asyncio.Event().wait()


class _RecordsClose(MemoryState):
    closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()


def test_a_step_that_never_finishes_is_given_up_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> bool:
        return await close_within("a stuck client", _NeverCloses().close(), seconds=0.2)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="routeiq"):
        assert asyncio.run(run()) is False
    assert time.monotonic() - started < 2
    assert "a stuck client did not finish" in caplog.text


def test_a_step_that_fails_is_logged_and_shutdown_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise ConnectionResetError("gone")

    with caplog.at_level(logging.ERROR, logger="routeiq"):
        assert asyncio.run(close_within("a broken client", boom())) is False
    assert "a broken client failed" in caplog.text


def test_engine_close_reaches_its_state_after_a_stuck_shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("routeiq.engine.SHUTDOWN_STEP_SECONDS", 0.2)
    settings = Settings()
    state = _RecordsClose()
    engine = Engine.load(settings, Metrics.create(CollectorRegistry()), state=state)
    engine.shared_cache = _NeverCloses()  # type: ignore[assignment]
    started = time.monotonic()
    asyncio.run(engine.close())
    assert time.monotonic() - started < 3
    assert state.closed
