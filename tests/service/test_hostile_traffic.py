"""Hostile and careless traffic: what one caller can grow, stall or hold is bounded.

Load-shaped checks compare a hostile case with a baseline measured in the same test, never with
a fixed time. Connection-level checks use a real `routeiq serve` and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from routeiq.decision.sessions import SessionRecord
from routeiq.state.memory import MemoryState
from tests._harness import ServeProcess
from tests.conftest import make_client

RECORD = SessionRecord("d", "m", "auto", "code", "complex", 0.5)


# -- finding 1: a full session table is not scanned on insert ----------------------------------


def _insert_seconds(state: MemoryState, first: int, count: int) -> float:
    async def run() -> float:
        start = time.perf_counter()
        for i in range(first, first + count):
            await state.set_session(f"new{i}", RECORD, 1800)
        return time.perf_counter() - start

    return min(asyncio.run(run()) for _ in range(3))


def test_inserting_into_a_full_session_table_costs_what_an_empty_one_does() -> None:
    cap = 100_000
    quiet = MemoryState(max_sessions=cap)
    full = MemoryState(max_sessions=cap)

    async def fill() -> None:
        for i in range(cap):
            await full.set_session(f"s{i}", RECORD, 1800)

    asyncio.run(fill())
    baseline = _insert_seconds(quiet, 0, 300)
    at_cap = _insert_seconds(full, 0, 300)
    # Before, every insert into the full table scanned all 100k entries (~1,000x the baseline).
    assert at_cap < 20 * baseline + 0.005, (at_cap, baseline)
    assert full.session_count() == cap  # bounded


def test_session_lru_keeps_the_recently_used_and_drops_expired() -> None:
    now = [0.0]
    state = MemoryState(clock=lambda: now[0], max_sessions=3)

    async def run() -> None:
        for key in ("a", "b", "c"):
            await state.set_session(key, RECORD, 10)
        assert await state.get_session("a", 10) is not None  # a is now the most recent
        await state.set_session("d", RECORD, 10)  # full: the least recently used (b) goes
        assert await state.get_session("b", 10) is None
        assert await state.get_session("a", 10) is not None
        now[0] = 100.0  # everything expired: inserts clear them from the front
        await state.set_session("e", RECORD, 10)
        assert state.session_count() == 1

    asyncio.run(run())


# -- finding 2: /feedback keeps nothing for ids nobody routed to -------------------------------

CANDIDATES = [
    {"deployment_id": "gw-a", "model": "x/a", "tier": "premium", "quality": 0.9},
    {"deployment_id": "gw-b", "model": "x/b", "tier": "budget", "quality": 0.5},
]


def test_feedback_for_made_up_ids_is_ignored_and_state_stays_bounded() -> None:
    with make_client(breaker_min_requests=2, feedback_new_ids_per_minute=5) as client:
        decision = client.post("/route", json={"prompt": "hello there", "candidates": CANDIDATES})
        assert decision.status_code == 200
        ignored = 0
        for batch in range(20):  # 20,000 distinct made-up ids, all failing
            outcomes = [{"deployment_id": f"junk-{batch}-{i}", "success": False} for i in range(1000)]
            answer = client.post("/feedback", json={"outcomes": outcomes}).json()
            ignored += answer["ignored"]
            assert answer["ignored_reason"] == "unknown_deployment"
        assert ignored >= 20_000 - 5  # only the budget of never-seen ids got in
        assert len(client.get("/v1/deployments/stats").json()["deployments"]) <= 5
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert len(asyncio.run(engine.state.breakers())) <= 5

        # Offered candidates (the pick and the others) and catalog ids still count.
        catalog_id = engine.snapshot.catalog.entries[0].deployment_id
        known = [
            {"deployment_id": "gw-b", "success": False, "experiment": "nope", "variant": "x"},
            {"deployment_id": "gw-b", "success": False},
            {"deployment_id": catalog_id, "success": True},
        ]
        assert client.post("/feedback", json={"outcomes": known}).json() == {"accepted": 3}
        stats = client.get("/v1/deployments/stats").json()["deployments"]
        assert {"gw-b", catalog_id} <= set(stats) and len(stats) <= 2 + 5
        assert asyncio.run(engine.state.experiment_counts("nope")).outcomes == {}  # unknown: not kept


def test_known_deployment_ids_are_bounded_and_expire() -> None:
    from routeiq.state.recent_ids import RecentIds

    now = [0.0]
    ids = RecentIds(capacity=2, ttl_seconds=10, new_per_minute=2, clock=lambda: now[0])
    ids.add(["a", "b"])
    ids.add(["c"])
    assert "a" not in ids and "b" in ids and "c" in ids and len(ids) == 2
    now[0] = 11.0
    assert "c" not in ids
    # never-seen ids: two a minute get in (and are remembered), the rest wait for the bucket
    assert ids.admit("n1") and ids.admit("n2") and not ids.admit("n3")
    assert ids.admit("n2")  # known now: costs nothing
    now[0] += 30.0
    assert ids.admit("n3") and not ids.admit("n4")


# -- finding 5: a body of many items is refused before its items are validated -----------------


def _post_seconds(client: object, body: bytes, path: str = "/route") -> tuple[float, int, dict]:
    best, status, payload = float("inf"), 0, {}
    for _ in range(3):
        start = time.perf_counter()
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})  # type: ignore[attr-defined]
        best = min(best, time.perf_counter() - start)
        status, payload = response.status_code, response.json()
    return best, status, payload


ONES = b"[" + b",".join([b"1"] * 400_000) + b"]"
EMPTIES = b"[" + b",".join([b"{}"] * 300_000) + b"]"


@pytest.mark.parametrize(
    ("body", "items", "path", "field"),
    [
        (b'{"messages": ' + ONES + b"}", ONES, "/route", "messages"),
        (b'{"prompt": "x", "candidates": ' + EMPTIES + b"}", EMPTIES, "/route", "candidates"),
        (EMPTIES, EMPTIES, "/route/batch", "body"),
        (b'{"outcomes": ' + EMPTIES + b"}", EMPTIES, "/feedback", "outcomes"),
    ],
    ids=["messages", "candidates", "batch", "outcomes"],
)
def test_a_body_of_many_items_costs_about_what_parsing_it_does(
    body: bytes, items: bytes, path: str, field: str
) -> None:
    # Baseline: the same items under a key the schema ignores: parsed, never validated.
    ignored = b'{"prompt": "hello there", "ignored": ' + items + b"}"
    with make_client() as client:
        baseline, status, _ = _post_seconds(client, ignored)
        assert status == 200
        hostile, status, payload = _post_seconds(client, body, path)
    assert status == 413 and payload["error"]["field"] == field, payload
    # Before, validating (or collecting an error for) every item took 10-100x the parse.
    assert hostile < 3 * baseline + 0.01, (hostile, baseline)


# -- findings 3, 4, 13: limits on a connection, before anything is trusted ---------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServeProcess]:
    with ServeProcess(
        header_timeout_seconds=1,
        body_timeout_seconds=1,
        max_connections=40,
        max_header_bytes=8192,
        max_headers=20,
    ) as process:
        yield process


_OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _connect(process: ServeProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", process.port), timeout=5)
    _OPEN.append(sock)
    return sock


def _read_all(sock: socket.socket, timeout: float = 5) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, BrokenPipeError):
        pass
    return b"".join(chunks)


def _status_and_json(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_a_huge_header_is_refused_as_it_arrives(guarded: ServeProcess) -> None:
    sock = _connect(guarded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    try:
        for _ in range(64):  # up to 4 MiB, stopped by the server long before
            sock.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, headers, body = _status_and_json(_read_all(sock))
    assert status == 431 and body["error"]["type"] == "headers_too_large"
    assert "ROUTEIQ_MAX_HEADER_BYTES" in body["error"]["message"] and headers["x-request-id"]


def test_a_large_body_that_arrives_with_its_headers_is_not_counted_as_headers(guarded: ServeProcess) -> None:
    # A whole request in one read (loopback delivers 64 kB and more at once): its body is not
    # part of the header block, however it is chunked. Twice: bodies larger than the header cap
    # arriving in one write, then in pieces whose last one completes the message.
    prompt = "explain " * 6000  # ~48 kB, six times the 8 kB header cap of this server
    body = json.dumps({"prompt": prompt}).encode()
    head = (
        f"POST /route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = _connect(guarded)
    sock.sendall(head + body)
    sock.settimeout(10)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first[:300]
    sock = _connect(guarded)
    sock.sendall(head + body[:1000])
    time.sleep(0.1)
    sock.sendall(body[1000:])  # 47 kB that end the message in one read
    sock.settimeout(10)
    second = sock.recv(65536)
    assert second.startswith(b"HTTP/1.1 200"), second[:300]


def test_too_many_headers_and_a_long_url_are_refused(guarded: ServeProcess) -> None:
    many = "".join(f"X-H{i}: v\r\n" for i in range(50))
    sock = _connect(guarded)
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    status, headers, body = _status_and_json(_read_all(sock))
    assert status == 431 and "ROUTEIQ_MAX_HEADERS" in body["error"]["message"] and headers["x-request-id"]
    sock = _connect(guarded)
    sock.sendall(b"GET /healthz?" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = _status_and_json(_read_all(sock))
    assert status in (414, 431) and body["error"]["type"] == "headers_too_large"


def test_idle_and_slow_connections_are_closed(guarded: ServeProcess) -> None:
    idle = _connect(guarded)
    slow = _connect(guarded)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    slow_body = _connect(guarded)
    slow_body.sendall(
        b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"
    )
    start = time.perf_counter()
    assert _read_all(idle, 6) == b""  # closed without a word: it never asked for anything
    status, headers, _ = _status_and_json(_read_all(slow, 6))
    assert status == 408 and headers["x-request-id"]
    status, _, body = _status_and_json(_read_all(slow_body, 6))
    assert status == 408 and "ROUTEIQ_BODY_TIMEOUT_SECONDS" in body["error"]["message"]
    assert time.perf_counter() - start < 5  # 1 s deadlines; before, none of them ever closed
    metrics = httpx.get(guarded.url + "/metrics", trust_env=False).text
    for reason in ("idle", "header_timeout", "body_timeout"):
        assert f'routeiq_connections_closed_total{{reason="{reason}"}}' in metrics
    assert "connection limit: idle" in guarded.log()


def test_at_the_connection_cap_a_new_client_is_still_served(guarded: ServeProcess) -> None:
    hogs = [_connect(guarded) for _ in range(120)]  # three times the cap, all idle
    try:
        with httpx.Client(trust_env=False, timeout=5) as client:
            for _ in range(5):
                assert client.get(guarded.url + "/healthz").status_code == 200
        closed = 0
        for hog in hogs:
            hog.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                closed += hog.recv(1) == b""
        assert closed >= 120 - 40  # the oldest idle ones were pushed out
    finally:
        for hog in hogs:
            hog.close()
        _OPEN.clear()
    assert "connection limit: evicted" in guarded.log()


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
        b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    ],
    ids=["duplicate-cl", "bad-cl", "cl-and-chunked", "nul"],
)
def test_malformed_framing_gets_json_and_a_request_id(guarded: ServeProcess, raw: bytes) -> None:
    sock = _connect(guarded)
    sock.sendall(raw)
    status, headers, body = _status_and_json(_read_all(sock))
    assert status == 400 and headers["content-type"] == "application/json" and headers["x-request-id"]
    assert body["error"]["type"] == "bad_request"


def test_responses_while_draining_say_connection_close() -> None:
    with ServeProcess(drain_delay_seconds=3) as process:
        with httpx.Client(trust_env=False, timeout=5) as client:
            assert "close" not in client.get(process.url + "/healthz").headers.get("connection", "")
            process.terminate()
            time.sleep(0.5)  # readiness flips at once; the listener stays open for the delay
            response = client.get(process.url + "/healthz")
            assert response.status_code == 200 and response.headers["connection"] == "close"
        assert process.wait(20) == 0


# -- finding 6: a refusal under overload costs no parsing ---------------------------------------


def test_a_decision_refused_under_overload_is_refused_before_its_body_is_read() -> None:
    with make_client(inference_threads=1, queue_depth_per_thread=2) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        for _ in range(2):
            assert engine.admission.embeddings.try_acquire()
        try:
            # Malformed JSON: were it parsed, this would be a 400.
            shed = client.post("/route", content=b"{not json", headers={"Content-Type": "application/json"})
            assert shed.status_code == 503 and shed.json()["error"]["type"] == "overloaded"
            assert shed.headers["Retry-After"] == "1" and shed.headers["X-Request-ID"]
            assert client.get("/healthz").status_code == 200  # only decisions are shed
        finally:
            for _ in range(2):
                engine.admission.embeddings.release()
        assert client.post("/route", json={"prompt": "hello"}).status_code == 200


def test_breakers_and_stats_are_bounded_and_the_view_reads_only_tripped_ones() -> None:
    from routeiq.state.breakers import BreakerPolicy, MemoryBreakers

    breakers = MemoryBreakers(BreakerPolicy(min_requests=1, failure_rate=1.0), lambda: 0.0, max_items=100)
    for i in range(1000):
        breakers.record(f"d{i}", False)
    assert len(breakers.info()) == 100
    assert len(breakers.view().open) == 100
    for i in range(1000, 1100):  # healthy ones push the tripped ones out
        breakers.record(f"d{i}", True)
    assert breakers.view().open == frozenset()
