"""The harness itself: the developer's environment never reaches a test or a service subprocess,
and the redis-server and port helpers do what the other tests rely on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from routeiq.settings import Settings
from tests._harness import (
    REPO,
    RedisServer,
    ServeProcess,
    clean_env,
    free_port,
    is_developer_setting,
    written_rows,
)

# What a developer may well have exported in the shell that runs `make test`.
STRAY = {
    "ROUTEIQ_REDIS_URL": "redis://127.0.0.1:1/0",
    "ROUTEIQ_DEFAULT_PROFILE": "eco",
    "ROUTEIQ_CLIENT_URL": "http://127.0.0.1:1",
    "PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics",
}


def test_no_developer_setting_reaches_the_tests(settings: Settings, tmp_path: Path) -> None:
    """Holds in every run; `test_a_stray_setting_in_the_shell_is_stripped` runs it with STRAY set."""
    assert [name for name in os.environ if is_developer_setting(name)] == []
    assert settings.redis_url is None
    assert settings.default_profile == Settings.model_fields["default_profile"].default
    assert settings.prometheus_multiproc_dir is None
    service_env = ServeProcess(tmp_path, workers=1).env
    assert {name for name in service_env if is_developer_setting(name)} == {"ROUTEIQ_LOG_LEVEL"}


def test_a_stray_setting_in_the_shell_is_stripped() -> None:
    inner = f"{Path(__file__).relative_to(REPO)}::test_no_developer_setting_reaches_the_tests"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", inner, "-q", "-p", "no:cacheprovider"],
        env={**os.environ, **STRAY},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout


def test_clean_env_drops_settings_and_keeps_the_rest() -> None:
    base = {**STRAY, "PATH": "/usr/bin", "HOME": "/home/dev"}
    assert clean_env(base, ROUTEIQ_PORT="9") == {"PATH": "/usr/bin", "HOME": "/home/dev", "ROUTEIQ_PORT": "9"}


def test_free_port_is_bindable_on_loopback() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_redis_server_answers_at_once_and_is_gone_after_kill(
    private_redis_server: RedisServer, tmp_path: Path, tcp: bool
) -> None:
    import redis

    server = RedisServer(tmp_path, tcp=True).start() if tcp else private_redis_server.start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True  # start() returned only once it answers
        client.close()
    finally:
        server.kill()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()


@pytest.mark.redis
def test_a_redis_port_taken_before_the_first_start_is_picked_again(tmp_path: Path) -> None:
    """free_port's port is only free when picked: something may bind it before redis-server
    does (CI saw a cluster node exit so). The first start moves to a new port; a restart keeps
    its address, and a taken port given explicitly is an error that shows redis-server's log."""
    server = RedisServer(tmp_path / "own", tcp=True)
    taken = server.port
    assert taken is not None
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        server.start()
        try:
            assert server.port != taken and server._pong()
            moved = server.port
            server.kill()
            server.start()  # an outage then a restart: same address
            assert server.port == moved
        finally:
            server.kill()
        given = RedisServer(tmp_path / "given", port=taken)
        with pytest.raises(RuntimeError, match="already in use"):
            given.start()
        assert given.process is None  # nothing left running


def test_written_rows_leaves_the_line_being_written_and_keeps_unicode_line_breaks(tmp_path: Path) -> None:
    complete = [{"n": 0, "prompt": "first\u2028second\x85third"}, {"n": 1, "prompt": "café"}]
    torn = json.dumps({"n": 2, "prompt": "café"}, ensure_ascii=False).encode()
    data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in complete)
    (tmp_path / "rows-host-1.jsonl").write_bytes(data + torn[: torn.index("é".encode()) + 1])
    assert written_rows(tmp_path) == complete
