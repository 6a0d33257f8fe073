"""Load generation for the open-loop benches: keep-alive HTTP/1.1 to a local `routeiq serve`
with no client library in the measured path (they time the service, not an HTTP client's
per-request cost), and Poisson arrivals that keep coming whatever the answers."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable


class Http:
    """Keep-alive HTTP/1.1 connections to one port; POST a body and read the answer (a
    `Connection: close` answer closes it)."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.port = port
        self.head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # The server closes keep-alive connections idle for 5 s: never reuse one idle for 2 s,
        # or the bench would count the client's stale socket as a failed request.
        while self.idle:
            used, reader, writer = self.idle.pop()
            if time.monotonic() - used < 2.0:
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, body: bytes) -> int:
        reader, writer = await self._connection()
        request = f"{self.head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(request.encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        close = False
        for line in head.split(b"\r\n"):
            lower = line.lower()
            if lower.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            close = close or lower == b"connection: close"
        await reader.readexactly(length)
        if close:
            writer.close()
        else:
            self.idle.append((time.monotonic(), reader, writer))
        return status


async def poisson_arrivals(
    http: Http, body: Callable[[int], bytes], rate: float, seconds: float, seed: int, timeout_s: float
) -> list[tuple[int, float]]:
    """Poisson arrivals at `rate`/s for `seconds`, whatever the answers; request i sends
    `body(i)`. (status, ms) per request, status 0 = no answer within `timeout_s`."""
    rng = random.Random(seed)
    results: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        start = time.perf_counter()
        try:
            status = await asyncio.wait_for(http.post(body(i)), timeout_s)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
        results.append((status, (time.perf_counter() - start) * 1000))

    tasks = []
    begin = time.perf_counter()
    at = 0.0
    while at < seconds:
        delay = begin + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(len(tasks))))
        at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    return results
