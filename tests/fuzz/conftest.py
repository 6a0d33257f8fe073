"""Fuzz-run plumbing: the big tests only run under `-m fuzz`; counts are printed and checked."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests._harness import ServeProcess
from tests.fuzz.counts import ADMIN_KEY, COUNTS, FULL_RUN_MINIMUM, TOKEN, full_run


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One real `routeiq serve` (127.0.0.1, client tokens and admin key on) for every HTTP fuzzer in the session. After
    the last fuzzer: zero worker crashes — the same process still answers, and it logged no
    unexpected error (a teardown failure fails the run)."""
    with ServeProcess(
        tmp_path_factory.mktemp("fuzz"), log_level="info", auth_tokens=f"fuzz:{TOKEN}", admin_key=ADMIN_KEY
    ) as server:
        yield server
        alive = server.alive()
        COUNTS["worker_crashes"] += 0 if alive else 1
        assert alive, server.log()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        log = server.log()
        assert "unexpected error" not in log and "Traceback" not in log, log[-3000:]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_run(config):
        return
    skip = pytest.mark.skip(reason="full fuzz run: `pytest -m fuzz tests/fuzz` (its own CI step)")
    for item in items:
        if item.get_closest_marker("fuzz") is not None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if not COUNTS:
        return
    generated = sum(v for k, v in COUNTS.items() if k.startswith("generated:"))
    terminalreporter.section("fuzz counts")
    for key in sorted(COUNTS):
        terminalreporter.write_line(f"{key:<32} {COUNTS[key]:>8}")
    server_errors = sum(v for k, v in COUNTS.items() if k.endswith(":5xx"))
    terminalreporter.write_line(
        f"generated requests: {generated}; 5xx responses: {server_errors}; "
        f"worker crashes: {COUNTS['worker_crashes']}"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    generated = sum(v for k, v in COUNTS.items() if k.startswith("generated:"))
    if full_run(session.config) and exitstatus == 0 and generated < FULL_RUN_MINIMUM:
        print(f"\nfull fuzz run generated {generated} requests, fewer than {FULL_RUN_MINIMUM}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
