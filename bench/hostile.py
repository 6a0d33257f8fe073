"""Hostile and careless traffic, each scenario beside a baseline from the same run.

Every scenario runs against this tree and, with `--main DIR` (a checkout of the previous code's
`service/` folder, e.g. `git archive main service | tar -x -C DIR`), against that code too, in
the same run, on the same machine. The load generator is a small asyncio HTTP/1.1 client with
pre-encoded requests on kept-alive connections (cheaper per request than locust, so the load
generator takes less of the shared CPU from the server).

- sessions:    MemoryState in process: insert cost at an empty table, at the 100k cap, and over
               1M new sessions (10x the cap);
- feedback:    /feedback floods of made-up deployment ids (400k, and 4M = 10x on this tree):
               cached-decision latency, RSS, /metrics and /v1/deployments/stats sizes;
- overload:    capacity (closed loop, unique prompts, cache off), then offered load at 2x and 4x
               it: accepted decisions/s and p99, 503s;
- connections: p99 of a probe alone, then beside 2,000 idle, 1,000 slowloris and 500 slow-body
               connections; how many of those are still open after 15 s;
- fdlimit:     a server started with a soft RLIMIT_NOFILE of 256, 500 idle connections, then new
               clients one at a time: are they served;
- connection_cost: the same cached load on plain uvicorn httptools and on the connection layer
               (GuardedHttpToolsProtocol), alternating rounds.

Usage: python bench/hostile.py [--main DIR]
       [--only sessions feedback overload connections fdlimit connection_cost]
Each step is at most ~30 s. Prints markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests._harness import ServeProcess  # noqa: E402

PROMPTS = [
    json.loads(line)["prompt"]
    for line in (ROOT / "bench/data/labelled_prompts.jsonl").read_text(encoding="utf-8").splitlines()
]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def server(code: str | None, **settings: object) -> Iterator[ServeProcess]:
    env = {"ROUTEIQ_MODELS_PATH": str(ROOT / "models")}
    if code is not None:
        env["PYTHONPATH"] = code
    with ServeProcess(env=env, **settings) as process:
        yield process


# -- a small HTTP/1.1 client ------------------------------------------------------------------


def post(path: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


class Results:
    def __init__(self) -> None:
        self.ok: list[float] = []
        self.shed: list[float] = []
        self.other = 0
        self.errors = 0


async def drive(
    port: int, requests: list[bytes], connections: int, seconds: float, rate: float | None, results: Results
) -> None:
    """`connections` kept-alive connections; with `rate` (requests/s in all) each paces itself,
    sending late requests at once (an open-loop schedule as far as one connection allows)."""
    stop = time.perf_counter() + seconds
    interval = connections / rate if rate else 0.0

    async def one(index: int) -> None:
        rng = random.Random(index)
        reader = writer = None
        next_at = time.perf_counter() + rng.random() * interval
        while time.perf_counter() < stop:
            if interval:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += interval
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                start = time.perf_counter()
                writer.write(requests[rng.randrange(len(requests))])
                status, _ = await asyncio.wait_for(read_response(reader), 5)
                elapsed = (time.perf_counter() - start) * 1000
                if status == 200:
                    results.ok.append(elapsed)
                elif status == 503:
                    results.shed.append(elapsed)
                else:
                    results.other += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                results.errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))


def load(port: int, requests: list[bytes], connections: int, seconds: float, rate: float | None) -> Results:
    results = Results()
    asyncio.run(drive(port, requests, connections, seconds, rate, results))
    return results


def unique_route_requests(count: int = 4000, extra: str = "") -> list[bytes]:
    rng = random.Random(3)
    out = []
    for i in range(count):
        prompt = f"{rng.choice(PROMPTS)} (case {i})"
        out.append(post("/route", json.dumps({"prompt": prompt}).encode(), extra))
    return out


# -- scenarios ---------------------------------------------------------------------------------


def sessions(main: str | None) -> list[str]:
    from routeiq.decision.sessions import SessionRecord

    def load_memory(path: Path | None) -> Any:
        if path is None:
            from routeiq.state.memory import MemoryState

            return MemoryState
        spec = importlib.util.spec_from_file_location("main_memory", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.MemoryState

    record = SessionRecord("d", "m", "auto", "code", "complex", 0.5)
    rows = [
        "| code | table size | inserts timed | inserts/s | p50 µs | p99 µs | max µs |",
        "|---|---|---|---|---|---|---|",
    ]

    async def run(cls: Any, label: str, total: int, budget_s: float) -> None:
        state = cls()
        timings: dict[str, list[float]] = {
            "empty (first 10k)": [],
            "full (100k..200k)": [],
            "10x (last 100k of 1M)": [],
        }
        deadline = time.perf_counter() + budget_s
        done = 0
        for i in range(total):
            t = time.perf_counter_ns()
            await state.set_session(f"s{i}", record, 1800)
            dt = (time.perf_counter_ns() - t) / 1000
            if i < 10_000:
                timings["empty (first 10k)"].append(dt)
            elif 100_000 <= i < 200_000:
                timings["full (100k..200k)"].append(dt)
            elif i >= total - 100_000:
                timings["10x (last 100k of 1M)"].append(dt)
            done = i + 1
            if i >= 100_000 and time.perf_counter() > deadline:
                break
        for phase, values in timings.items():
            if not values:
                rows.append(
                    f"| {label} | {phase} | 0 (stopped at {done:,} inserts after {budget_s:.0f} s) | | | | |"
                )
                continue
            rate = len(values) / (sum(values) / 1e6)
            rows.append(
                f"| {label} | {phase} | {len(values):,} | {rate:,.0f} | {pct(values, 0.5):.1f} | "
                f"{pct(values, 0.99):.1f} | {max(values):.0f} |"
            )

    if main is not None:
        asyncio.run(run(load_memory(Path(main) / "routeiq/state/memory.py"), "main", 1_000_000, 20))
    asyncio.run(run(load_memory(None), "this tree", 1_000_000, 60))
    return rows


def feedback(main: str | None) -> list[str]:
    rows = [
        "| code | made-up ids sent | ids kept (stats entries) | cached /route p50 / p99 ms (before → after) | RSS MB (before → after) | /metrics bytes | stats bytes | flood s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    probe = post("/route", json.dumps({"prompt": "translate good morning into French"}).encode())

    def measure(port: int) -> tuple[float, float]:
        r = load(port, [probe], 1, 3, None)
        return pct(r.ok, 0.5), pct(r.ok, 0.99)

    for label, code, asked in [
        ("main", main, 400_000),
        ("this tree", None, 400_000),
        ("this tree", None, 4_000_000),
    ]:
        if label == "main" and code is None:
            continue
        with server(code, log_level="warning") as proc:
            assert proc.process is not None
            before = measure(proc.port)
            rss_before = rss_mb(proc.process.pid)
            start = time.perf_counter()
            _, total = asyncio.run(_flood(proc.port, asked, budget_s=45))
            flood_s = time.perf_counter() - start
            after = measure(proc.port)
            rss_after = rss_mb(proc.process.pid)
            metrics = len(httpx.get(proc.url + "/metrics", trust_env=False).content)
            answer = httpx.get(proc.url + "/v1/deployments/stats", trust_env=False, timeout=60)
            stats = len(answer.content)
            kept = len(answer.json()["deployments"])
        rows.append(
            f"| {label} | {total:,} | {kept:,} | {before[0]:.2f} / {before[1]:.2f} → {after[0]:.2f} / {after[1]:.2f} "
            f"| {rss_before:.0f} → {rss_after:.0f} | {metrics:,} | {stats:,} | {flood_s:.0f} |"
        )
    return rows


async def _flood(port: int, total: int, budget_s: float) -> tuple[int, int]:
    """Up to `total` failing outcomes for distinct made-up ids, 1000 per call, 8 connections,
    for at most `budget_s`; (accepted, sent)."""
    batches = total // 1000
    accepted = sent = 0
    counter = iter(range(batches))
    stop = time.perf_counter() + budget_s

    async def one() -> None:
        nonlocal accepted, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for b in counter:
            if time.perf_counter() > stop:
                break
            sent += 1000
            outcomes = [{"deployment_id": f"x{b}-{i}", "success": False} for i in range(1000)]
            try:
                writer.write(post("/feedback", json.dumps({"outcomes": outcomes}).encode()))
                status, body = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if status == 200:
                accepted += json.loads(body)["accepted"]
        writer.close()

    await asyncio.gather(*(one() for _ in range(8)))
    return accepted, sent


BUDGET_MS = 50.0  # what a gateway gives a decision (the client's default deadline)


def overload(
    main: str | None, rounds: int = 3, variants: tuple[str, ...] = (), deadline_ms: float | None = None
) -> list[str]:
    """Both codes' servers run side by side; each round measures capacity, then 2x and 4x it,
    on one and then the other, so machine noise lands on both alike. Medians over the rounds.

    capacity: closed loop on 4 connections (two per inference thread: one running, one queued),
    unique prompts, cache off — the most it answers without refusing. goodput: accepted answers
    that came back within the client's budget (BUDGET_MS), the ones a gateway can use. The load
    generator's own CPU (it shares the cores) is shown per row."""
    rows = [
        "| code | offered | accepted / capacity | goodput (<= 50 ms) / capacity | accepted p50 ms | accepted p99 ms "
        "| 503/s | 503 p99 ms | generator CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    requests = unique_route_requests()
    # (label, code folder, extra settings): main, this tree, and this tree with each variant
    # (`name=value` settings, e.g. max_queue_wait_ms=20).
    codes: list[tuple[str, str | None, dict[str, str]]] = [("this tree", None, {})]
    if main:
        codes.insert(0, ("main", main, {}))
    for variant in variants:
        name, _, value = variant.partition("=")
        codes.append((f"this tree, {name}={value}", None, {name: value}))
    # The same tree once more, its callers sending their deadline as routeiq-client does.
    with_deadline = f"this tree, callers send X-RouteIQ-Deadline-Ms: {deadline_ms:g}" if deadline_ms else None
    if with_deadline:
        codes.append((with_deadline, None, {}))
    deadline_header = f"X-RouteIQ-Deadline-Ms: {deadline_ms:g}\r\n" if deadline_ms else ""
    deadline_requests = unique_route_requests(extra=deadline_header) if deadline_ms else []
    figures: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    with contextlib.ExitStack() as stack:
        procs = {
            label: stack.enter_context(server(code, embedding_cache_mb=0, log_level="warning", **extra))
            for label, code, extra in codes
        }
        for proc in procs.values():
            load(proc.port, requests, 4, 2, None)  # warm
        for _ in range(rounds):
            for label, proc in procs.items():
                sent = deadline_requests if label == with_deadline else requests
                cpu = time.process_time()
                cap = load(proc.port, sent, 4, 8, None)
                capacity = len(cap.ok) / 8
                figures.setdefault((label, "capacity"), []).append(
                    _figures(cap, 8, capacity, time.process_time() - cpu)
                )
                for factor in (2, 4):
                    cpu = time.process_time()
                    r = load(proc.port, sent, 128, 8, capacity * factor)
                    figures.setdefault((label, f"{factor}x"), []).append(
                        _figures(r, 8, capacity, time.process_time() - cpu)
                    )
    for label, _, _ in codes:
        for shape, name in (
            ("capacity", "capacity (4 conns, closed loop)"),
            ("2x", "2x (128 conns)"),
            ("4x", "4x (128 conns)"),
        ):
            m = [float(np.median(column)) for column in zip(*figures[(label, shape)], strict=True)]
            accepted, goodput, p50, p99, shed_rate, shed_p99, gen_cpu, errors, capacity = m
            rows.append(
                f"| {label} | {name}{f' = {capacity:.0f}/s' if shape == 'capacity' else ''} | {accepted:.2f} | {goodput:.2f} "
                f"| {p50:.1f} | {p99:.1f} | {shed_rate:.0f} | {shed_p99:.1f} | {gen_cpu:.0%} | {errors:.0f} |"
            )
    rows.append(f"\nMedians of {rounds} interleaved rounds of 8 s per step.")
    return rows


def _figures(r: Results, seconds: float, capacity: float, generator_cpu_s: float) -> tuple[float, ...]:
    accepted = len(r.ok) / seconds
    in_budget = sum(1 for ms in r.ok if ms <= BUDGET_MS) / seconds
    return (
        accepted / capacity,
        in_budget / capacity,
        pct(r.ok, 0.5),
        pct(r.ok, 0.99),
        len(r.shed) / seconds,
        pct(r.shed, 0.99) if r.shed else 0.0,
        generator_cpu_s / seconds,
        float(r.errors),
        capacity,
    )


def connections(main: str | None) -> list[str]:
    rows = [
        "| code | beside the probe | probe ok / sent | probe p50 ms | probe p99 ms | attack connections still open after 15 s |",
        "|---|---|---|---|---|---|",
    ]
    probe = post("/route", json.dumps({"prompt": "translate good morning into French"}).encode())
    for label, code in [("main", main), ("this tree", None)]:
        if label == "main" and code is None:
            continue
        with server(code, log_level="warning") as proc:
            base = load(proc.port, [probe], 1, 5, 50)
            rows.append(
                f"| {label} | nothing | {len(base.ok)} / {len(base.ok) + len(base.shed) + base.other + base.errors} "
                f"| {pct(base.ok, 0.5):.2f} | {pct(base.ok, 0.99):.2f} | — |"
            )
            r, still_open = asyncio.run(_attack(proc.port, probe))
            rows.append(
                f"| {label} | 2,000 idle + 1,000 slowloris + 500 slow-body | {len(r.ok)} / "
                f"{len(r.ok) + len(r.shed) + r.other + r.errors} | {pct(r.ok, 0.5):.2f} | {pct(r.ok, 0.99):.2f} "
                f"| {still_open:,} of 3,500 |"
            )
    return rows


async def _attack(port: int, probe: bytes) -> tuple[Results, int]:
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []

    async def opened(first: bytes) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        if first:
            writer.write(first)
        readers.append(reader)
        writers.append(writer)

    for _ in range(20):  # 2,000 idle, opened in bursts
        await asyncio.gather(*(opened(b"") for _ in range(100)))
    for _ in range(10):
        await asyncio.gather(*(opened(b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(100)))
    body = post("/route", b'{"prompt": "' + b"x" * 100, "")  # declares 112 bytes, sends fewer
    body = body.replace(b"Content-Length: 112", b"Content-Length: 100000")
    for _ in range(5):
        await asyncio.gather(*(opened(body) for _ in range(100)))

    async def trickle() -> None:  # slowloris: one header byte per second on each
        for _ in range(15):
            await asyncio.sleep(1)
            for w in writers[2000:3000]:
                if not w.is_closing():
                    w.write(b"X")

    results = Results()
    await asyncio.gather(trickle(), drive(port, [probe], 1, 15, 50, results))
    still_open = 0
    for reader in readers:
        try:
            data = await asyncio.wait_for(reader.read(65536), 0.001)
            if data and not reader.at_eof():
                still_open += 1
        except TimeoutError:
            still_open += 1
        except OSError:
            pass
    for w in writers:
        w.close()
    return results, still_open


FD_LIMIT = 256  # the server's RLIMIT_NOFILE (soft) in the fd-limit scenario


@contextmanager
def nofile_limit(soft: int) -> Iterator[None]:
    """Children started inside inherit a soft RLIMIT_NOFILE of `soft`; this process gets its own
    back at once (it needs the fds for the idle sockets)."""
    import resource

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


async def _fresh_probes(port: int, probe: bytes, seconds: float) -> Results:
    """One request at a time, each on a new connection (a newcomer, not a kept-alive client)."""
    results = Results()
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        start = time.perf_counter()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            writer.write(probe)
            status, _ = await asyncio.wait_for(read_response(reader), 2)
            (results.ok if status == 200 else results.shed).append((time.perf_counter() - start) * 1000)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            results.errors += 1
        finally:
            if writer is not None:
                writer.close()
        await asyncio.sleep(0.1)
    return results


async def _idle_then_probe(port: int, probe: bytes, idle: int) -> tuple[int, Results]:
    writers: list[asyncio.StreamWriter] = []

    async def opened() -> None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
        except (OSError, TimeoutError):
            return
        writers.append(writer)

    for _ in range(idle // 100):
        await asyncio.gather(*(opened() for _ in range(100)))
    results = await _fresh_probes(port, probe, 8)
    for w in writers:
        w.close()
    return len(writers), results


def fdlimit(main: str | None) -> list[str]:
    idle = FD_LIMIT * 2
    rows = [
        "| code | server RLIMIT_NOFILE | beside the probe | new-connection probes ok / sent | probe p50 ms | probe max ms |",
        "|---|---|---|---|---|---|",
    ]
    probe = post("/route", json.dumps({"prompt": "translate good morning into French"}).encode())
    for label, code in [("main", main), ("this tree", None)]:
        if label == "main" and code is None:
            continue
        with ExitStack() as stack:
            with nofile_limit(FD_LIMIT):  # the server starts under it; this process gets its own back
                proc = stack.enter_context(server(code, log_level="warning"))
            base = asyncio.run(_fresh_probes(proc.port, probe, 4))
            sent = len(base.ok) + len(base.shed) + base.errors
            rows.append(
                f"| {label} | {FD_LIMIT} | nothing | {len(base.ok)} / {sent} | {pct(base.ok, 0.5):.2f} "
                f"| {max(base.ok, default=float('nan')):.2f} |"
            )
            opened, r = asyncio.run(_idle_then_probe(proc.port, probe, idle))
            sent = len(r.ok) + len(r.shed) + r.errors
            rows.append(
                f"| {label} | {FD_LIMIT} | {opened:,} idle connections opened | {len(r.ok)} / {sent} "
                f"| {pct(r.ok, 0.5):.2f} | {max(r.ok, default=float('nan')):.2f} |"
            )
    return rows


@contextmanager
def bare_uvicorn(http: str) -> Iterator[int]:
    """The app under plain uvicorn with `http` as its protocol: the same app, with or without
    the connection layer (`routeiq serve` always runs it)."""
    import subprocess

    from tests._harness import free_port, wait_until

    port = free_port()
    code = (
        "import sys, uvicorn\n"
        "from routeiq.http.connections import GuardedHttpToolsProtocol\n"
        "http = GuardedHttpToolsProtocol if sys.argv[2] == 'guarded' else 'httptools'\n"
        "uvicorn.run('routeiq.http.app:create_app', factory=True, host='127.0.0.1', port=int(sys.argv[1]),"
        " http=http, log_level='warning', access_log=False)\n"
    )
    env = {**os.environ, "ROUTEIQ_MODELS_PATH": str(ROOT / "models")}
    process = subprocess.Popen([sys.executable, "-c", code, str(port), http], env=env)
    try:

        def ready() -> bool:
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1, trust_env=False).status_code
                    == 200
                )
            except httpx.HTTPError:
                return False

        wait_until(ready, 90, f"uvicorn with {http}")
        yield port
    finally:
        process.terminate()
        process.wait(20)


def connection_cost(main: str | None) -> list[str]:
    """Cached /route on 8 kept-alive connections, closed loop, with and without the layer;
    alternating rounds, so the box's noise falls on both."""
    probe = post("/route", json.dumps({"prompt": "translate good morning into French"}).encode())
    samples: dict[str, Results] = {"httptools": Results(), "guarded": Results()}
    seconds: dict[str, float] = {"httptools": 0.0, "guarded": 0.0}
    with bare_uvicorn("httptools") as plain, bare_uvicorn("guarded") as guarded:
        ports = {"httptools": plain, "guarded": guarded}
        for port in ports.values():
            load(port, [probe], 8, 2, None)  # warm-up
        for _ in range(3):
            for name, port in ports.items():
                r = load(port, [probe], 8, 8, None)
                samples[name].ok += r.ok
                samples[name].errors += r.errors
                seconds[name] += 8
    rows = [
        "| protocol | requests/s | p50 ms | p99 ms | errors | p50 / without the layer |",
        "|---|---|---|---|---|---|",
    ]
    base = pct(samples["httptools"].ok, 0.5)
    labels = {"httptools": "uvicorn httptools (no connection layer)", "guarded": "GuardedHttpToolsProtocol"}
    for name, r in samples.items():
        rows.append(
            f"| {labels[name]} | {len(r.ok) / seconds[name]:.0f} | {pct(r.ok, 0.5):.2f} | {pct(r.ok, 0.99):.2f} "
            f"| {r.errors} | {pct(r.ok, 0.5) / base:.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--main", help="a `service/` folder of the code to compare with")
    parser.add_argument(
        "--only",
        nargs="+",
        default=["sessions", "feedback", "overload", "connections", "fdlimit", "connection_cost"],
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="overload: also run this tree with a setting changed, e.g. --variant max_queue_wait_ms=20",
    )
    parser.add_argument("--rounds", type=int, default=3, help="overload: interleaved rounds (medians)")
    parser.add_argument(
        "--deadline-ms",
        type=float,
        default=None,
        help="overload: also run this tree with callers sending X-RouteIQ-Deadline-Ms (e.g. 50)",
    )
    args = parser.parse_args()
    steps = {
        "sessions": sessions,
        "feedback": feedback,
        "overload": overload,
        "connections": connections,
        "fdlimit": fdlimit,
        "connection_cost": connection_cost,
    }
    print(f"<!-- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, shared -->")
    for name in args.only:
        print(f"\n#### {name}\n")
        rows = (
            overload(args.main, args.rounds, tuple(args.variant), args.deadline_ms)
            if name == "overload"
            else steps[name](args.main)
        )
        for row in rows:
            print(row, flush=True)


if __name__ == "__main__":
    main()
