"""Redis capacity per topology: Redis commands and round trips per decision, Redis CPU per
decision (so: decisions/s one Redis core sustains), and the latency added per decision against
in-memory state measured in the same run.

Real processes on 127.0.0.1: one `redis-server`; a Sentinel-managed primary + replica (the
replica's replication work is not counted: it runs on another core in production); a 3-primary
Redis Cluster with one replica each (commands and CPU summed over the primaries). Decisions run
in process through `pipeline.decide` on the real engine with warm embedding caches, so what
differs between rows is the state's own cost. Rounds alternate between backends.

    .venv/bin/python bench/redis_capacity.py            # prints the table
    .venv/bin/python bench/redis_capacity.py --write    # and writes it to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio.connection import AbstractConnection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.state_cost import SCENARIOS, load, run, write_section  # noqa: E402
from tests._harness import RedisServer  # noqa: E402
from tests._harness.redis_topologies import RedisClusterNodes, SentinelSet, cli  # noqa: E402

from routeiq.engine import Engine  # noqa: E402
from routeiq.settings import Settings  # noqa: E402

SECTION = "## Redis capacity per topology"
ROUND_TRIPS = [0]


def _count_round_trips() -> None:
    """One `send_packed_command` = one request written = one round trip (a pipeline is one)."""
    original = AbstractConnection.send_packed_command

    async def counted(self: Any, command: Any, check_health: bool = True) -> None:
        ROUND_TRIPS[0] += 1
        await original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def _server_totals(ports: list[int]) -> tuple[int, float]:
    """Commands processed and CPU seconds used (user + sys) so far, summed over `ports`."""
    commands, cpu = 0, 0.0
    for port in ports:
        info = dict(line.split(":", 1) for line in cli(port, "info", "all").splitlines() if ":" in line)
        commands += int(info["total_commands_processed"])
        cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return commands, cpu


async def measure(
    engines: dict[str, Engine], ports: dict[str, Callable[[], list[int]]], n: int, rounds: int
) -> dict[tuple[str, str], dict[str, Any]]:
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for engine in engines.values():
        for scenario in SCENARIOS:
            await run(engine, scenario, 100, 0)
    for r in range(rounds):
        for scenario in SCENARIOS:
            for name, engine in engines.items():
                where = ports[name]()
                before_cmd, before_cpu = _server_totals(where) if where else (0, 0.0)
                before_rt = ROUND_TRIPS[0]
                samples = await run(engine, scenario, n, (r + 1) * n)
                after_cmd, after_cpu = _server_totals(where) if where else (0, 0.0)
                cell = cells.setdefault((scenario, name), {"us": [], "cmd": 0, "cpu": 0.0, "rt": 0, "n": 0})
                cell["us"] += samples
                cell["cmd"] += after_cmd - before_cmd - (len(where) if where else 0)  # the INFO itself
                cell["cpu"] += after_cpu - before_cpu
                cell["rt"] += ROUND_TRIPS[0] - before_rt
                cell["n"] += n
    return cells


async def main_async(n: int, rounds: int) -> tuple[list[str], dict[str, str]]:
    _count_round_trips()
    tmp = Path(tempfile.mkdtemp(prefix="routeiq-capacity-"))
    single = RedisServer(tmp / "single", tcp=True).start()
    sentinel = SentinelSet(tmp / "sentinel").start()
    cluster = RedisClusterNodes(tmp / "cluster").start()
    common: dict[str, Any] = {"redis_timeout_ms": 1000}
    backends = {
        "memory": Settings(),
        "single redis (tcp)": Settings(redis_url=single.url, **common),
        "sentinel primary": Settings(
            redis_sentinels=sentinel.addresses, redis_sentinel_service=sentinel.service, **common
        ),
        "cluster (3 primaries)": Settings(redis_url=cluster.url, redis_cluster=True, **common),
    }
    primaries = [n.port for n in cluster.nodes if "role:master" in cli(n.port or 0, "info", "replication")]
    ports: dict[str, Callable[[], list[int]]] = {
        "memory": list,
        "single redis (tcp)": lambda: [single.port or 0],
        "sentinel primary": lambda: [sentinel.primary_port()],
        "cluster (3 primaries)": lambda: [p or 0 for p in primaries],
    }
    engines = {name: load(s) for name, s in backends.items()}
    try:
        cells = await measure(engines, ports, n, rounds)
        degraded = {name: not await e.state.healthy() for name, e in engines.items()}
    finally:
        for engine in engines.values():
            await engine.close()
        single.kill()
        sentinel.stop()
        cluster.stop()
    rows = [
        "| scenario | backend | commands / decision | round trips / decision | Redis CPU µs / decision "
        "| decisions/s per Redis core | p50 µs | Δ p50 vs memory µs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        base = statistics.median(cells[(scenario, "memory")]["us"])
        for name in backends:
            c = cells[(scenario, name)]
            p50 = statistics.median(c["us"])
            if name == "memory":
                rows.append(f"| {scenario} | {name} | 0 | 0 | — | — | {p50:.0f} | — |")
                continue
            cpu_us = c["cpu"] / c["n"] * 1e6
            per_core = f"{1e6 / cpu_us:,.0f}" if cpu_us > 0 else "—"
            rows.append(
                f"| {scenario} | {name} | {c['cmd'] / c['n']:.2f} | {c['rt'] / c['n']:.2f} | {cpu_us:.1f} "
                f"| {per_core} | {p50:.0f} | {p50 - base:+.0f} |"
            )
    meta = {
        "command": f"`.venv/bin/python bench/redis_capacity.py --n {n} --rounds {rounds} --write`",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": f"{os.getloadavg()[0]:.1f}",
        "degraded": ", ".join(k for k, v in degraded.items() if v) or "none",
    }
    return rows, meta


def render(rows: list[str], meta: dict[str, str], n: int, rounds: int) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: {meta['command']}  ",
            f"Machine: {meta['machine']}; load average at the end {meta['load']} (a shared box).  ",
            f"Date: {meta['date']}",
            "",
            f"{n * rounds} in-process decisions per cell in {rounds} alternating rounds, in-memory state "
            "as the same-run baseline. *Commands* are counted by the Redis servers (`INFO`, "
            "`total_commands_processed`; a Lua script counts its own calls), *round trips* by the "
            "client (one write of a command or a pipeline). *Redis CPU* is the servers' user+sys CPU "
            "over the cell divided by its decisions; *decisions/s per Redis core* is its inverse: "
            "what one fully busy Redis core would carry for this mix. The circuit-breaker view is "
            "reused for 100 ms per worker (`ROUTEIQ_BREAKER_VIEW_CACHE_MS`), so it costs far less "
            "than one call per decision here (one worker, thousands of decisions/s); a fleet pays it "
            "per worker per 100 ms.",
            "",
            *rows,
            "",
            f"Backends that ended degraded (fell back to local state): {meta['degraded']}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="decisions per scenario, backend and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args()
    start = time.monotonic()
    rows, meta = asyncio.run(main_async(args.n, args.rounds))
    text = render(rows, meta, args.n, args.rounds)
    print(text)
    print(f"({time.monotonic() - start:.0f} s)")
    if args.write:
        write_section_named(text)


def write_section_named(text: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text(encoding="utf-8")
    if SECTION in current:
        start = current.index(SECTION)
        nxt = current.find("\n## ", start + len(SECTION))
        current = current[:start] + text + (current[nxt + 1 :] if nxt != -1 else "")
    else:
        marker = "\n## LiteLLM client overhead"
        at = current.find(marker)
        current = current[: at + 1] + text + "\n" + current[at + 1 :] if at != -1 else current + "\n" + text
    path.write_text(current, encoding="utf-8")


_ = write_section  # the shared-state section keeps its own writer

if __name__ == "__main__":
    main()
