"""Loopback ports and bounded polling."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
    alive: Callable[[], str | None] | None = None,
) -> float:
    """Poll `ready` until it is true or `timeout` seconds pass; return the seconds it took.

    A fixed sleep is either too short on a loaded machine or wasted on an idle one; a deadline
    is neither. `alive` returns an explanation once waiting is pointless (the process died)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if ready():
            return time.monotonic() - start
        if alive is not None and (gone := alive()) is not None:
            raise RuntimeError(f"{what}: {gone}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)
