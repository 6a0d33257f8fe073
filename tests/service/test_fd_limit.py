"""At the process's file limit a new client is still served: the connection cap stays below
RLIMIT_NOFILE, so idle sockets are pushed out before accept() runs out of descriptors (with the
cap above it, accept fails with EMFILE and nobody new is served until the idle ones time out)."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests._harness import ServeProcess

LIMIT = 256  # the server's soft RLIMIT_NOFILE; the default cap (1024 connections) is above it


@contextmanager
def server_file_limit(soft: int) -> Iterator[None]:
    """Processes started inside inherit this soft limit; the test gets its own back after."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_new_requests_are_served_with_more_idle_sockets_than_file_descriptors(tmp_path: Path) -> None:
    process = ServeProcess(tmp_path)
    with server_file_limit(LIMIT):
        process.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(LIMIT * 2):  # more idle connections than the server has descriptors
            sock = socket.create_connection(("127.0.0.1", process.port), timeout=2)
            idle.append(sock)
        time.sleep(0.5)  # let the server accept what it can
        served, started = 0, time.monotonic()
        for i in range(5):
            response = httpx.post(
                f"{process.url}/route", json={"prompt": f"hello {i}"}, timeout=3, trust_env=False
            )
            served += response.status_code == 200
        assert served == 5
        assert time.monotonic() - started < 10  # not after the 10 s header deadline freed fds
        assert process.alive()
    finally:
        for sock in idle:
            sock.close()
        process.stop()
