"""At the process's file limit a new client is still served: the connection cap stays below
RLIMIT_NOFILE, so idle sockets are pushed out before accept() runs out of descriptors (with the
cap above it, accept fails with EMFILE and nobody new is served until the idle ones time out).
And a soft limit below what the cap needs is raised at start, up to the hard limit, instead of
capping connections at a distribution's 1024 default."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests._harness import ServeProcess

LIMIT = 256  # the server's RLIMIT_NOFILE; the default cap (1024 connections) is above it


def open_files_limit(pid: int) -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of a running process, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-files line in /proc/{pid}/limits")


def test_new_requests_are_served_with_more_idle_sockets_than_file_descriptors(tmp_path: Path) -> None:
    # soft = hard: nothing to raise, so the cap must come down to the limit
    process = ServeProcess(tmp_path, file_limit=(LIMIT, LIMIT)).start()
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
        assert "capping connections" in process.log()
    finally:
        for sock in idle:
            sock.close()
        process.stop()


def test_a_low_soft_limit_is_raised_to_what_the_connection_cap_needs(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, workers=2, file_limit=(LIMIT, 8192)) as process:
        assert process.process is not None
        workers = [
            int(pid)
            for pid in Path(f"/proc/{process.process.pid}/task/{process.process.pid}/children")
            .read_text()
            .split()
        ]
        assert len(workers) >= 2  # the workers (and any helper process the supervisor runs)
        for pid in (process.process.pid, *workers):
            soft, hard = open_files_limit(pid)
            assert hard == 8192 and 1024 + 64 <= soft <= hard, (pid, soft, hard)
        assert "capping connections" not in process.log()
    # and never past the hard limit: a cap that needs more than it is still capped
    with ServeProcess(tmp_path / "tight", file_limit=(LIMIT, 512)) as tight:
        assert tight.process is not None
        assert open_files_limit(tight.process.pid) == (512, 512)
        assert "capping connections at 448" in tight.log()
