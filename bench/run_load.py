"""Load tests, side by side with the raw limit: one command, one run, one report.

For every server configuration it starts a real `routeiq serve` (time from start to ready, RSS
per worker after load), measures the raw ONNX embedding throughput on exactly the texts the
service embeds for the workload (same threads, in this process, before and after the locust
steps: the machine is shared, so the baseline is taken next to the numbers it divides), then
runs locust headless for a fixed time per step and keeps its CSV in bench/out/<run>/.

Steps of `--all` (each `--duration` seconds):
- matrix: workloads short32 / mixed / repeat x users 1, 8, 32, 64, in-memory and Redis mode;
- overload: offered load at 1x and 2x the measured capacity (users with a fixed request rate);
- depth: ROUTEIQ_QUEUE_DEPTH_PER_THREAD 4 / 8 / 16 at 64 users (the default's evidence);
- workers: 1 worker x 2 inference threads x 1 ORT thread vs 2 x 1 x 1 vs 1 x 1 x 2;
- batching: bench/batching.py (micro-batching vs batch-1 on the same prompts).

Usage: python bench/run_load.py --all [--duration 12] [--write]   (or: make bench-load)
`--write` replaces the "Performance under load" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prompts import WORKLOADS, bodies, raw_segments
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests._harness import RedisServer, RedisServerMissing, ServeProcess, redis_server_binary  # noqa: E402

BENCH = ROOT / "bench"
USERS = (1, 8, 32, 64)
CACHED = ("repeat", "cached32")  # served with the embedding cache on; the others with it off
BEGIN, END = "<!-- load:begin -->", "<!-- load:end -->"


@dataclass(frozen=True)
class ServerConfig:
    workers: int = 1
    inference_threads: int = 2
    ort_threads: int = 1
    cache: bool = True
    redis: bool = False
    depth: int | None = None

    @property
    def threads(self) -> int:
        return self.workers * self.inference_threads

    def settings(self, redis_url: str | None) -> dict[str, object]:
        """The service settings of this configuration (workers go on the command line)."""
        settings: dict[str, object] = {
            "inference_threads": self.inference_threads,
            "ort_intra_op_threads": self.ort_threads,
            "log_level": "warning",
        }
        if not self.cache:
            settings["embedding_cache_mb"] = 0
        if self.depth is not None:
            settings["queue_depth_per_thread"] = self.depth
        if self.redis and redis_url:
            settings["redis_url"] = redis_url
            if self.cache:
                settings["embedding_cache_redis"] = "true"
        return settings

    def label(self) -> str:
        return f"{self.workers}w x {self.inference_threads} inference x {self.ort_threads} ORT"


@dataclass
class Step:
    name: str
    workload: str
    users: int
    ok_per_s: float = 0.0
    rejected_per_s: float = 0.0
    failures: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    reject_p99: float = 0.0
    reject_max: float = 0.0
    load: float = 0.0
    cpu_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Server:
    config: ServerConfig
    ready_s: float
    port: int
    process: subprocess.Popen[bytes]

    def rss_mb(self) -> list[float]:
        """RSS of each process that serves (the workers; with one worker, the server itself)."""
        children = _children(self.process.pid)
        pids = children if self.config.workers > 1 and children else [self.process.pid]
        return [_rss_mb(pid) for pid in pids]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn workers), in seconds."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def redis_server() -> Iterator[str | None]:
    try:
        redis_server_binary()
    except RedisServerMissing:
        print("redis-server not found: Redis mode skipped", file=sys.stderr)
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="routeiq-bench-redis-"))
    try:
        with RedisServer(folder) as server:
            yield server.url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def serve(config: ServerConfig, redis_url: str | None) -> Iterator[Server]:
    server = ServeProcess(workers=config.workers, **config.settings(redis_url)).start(timeout=60)
    try:
        assert server.process is not None
        yield Server(config, server.ready_seconds, server.port, server.process)
    finally:
        server.stop(timeout=15)


def raw_throughput(
    embedder: OnnxEmbedder, items: list[list[str]], threads: int, seconds: float, budget: int
) -> tuple[float, float]:
    """Embeddings/s with `threads` threads each embedding batch-1 as fast as it can, and the
    CPU milliseconds one embedding costs (this process's CPU time over the count)."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def run(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            embedder.embed([items[i % len(items)]], budget)
            counts[k] += 1
            i += threads

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    cpu = time.process_time()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    done = max(sum(counts), 1)
    return done / seconds, (time.process_time() - cpu) * 1000 / done


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = BENCH / "out" / datetime.now(UTC).strftime("load-%Y%m%d-%H%M%S")
        self.out.mkdir(parents=True, exist_ok=True)
        self.settings = Settings()
        self.budget = self.settings.token_budget
        self._embedders: dict[int, OnnxEmbedder] = {}
        probe = self.embedder(1)
        self.bodies = {w: bodies(w, probe, count=args.bodies) for w in WORKLOADS}
        self.segments = {w: [raw_segments(b, self.budget) for b in bs] for w, bs in self.bodies.items()}
        for w, bs in self.bodies.items():
            (self.out / f"bodies-{w}.json").write_text(json.dumps(bs), encoding="utf-8")
        self.lines: list[str] = []
        self.loads: list[float] = []

    def embedder(self, ort_threads: int) -> OnnxEmbedder:
        if ort_threads not in self._embedders:
            self._embedders[ort_threads] = OnnxEmbedder(
                self.settings.embedder_dir, intra_op_threads=ort_threads
            )
        return self._embedders[ort_threads]

    def raw(self, config: ServerConfig, workload: str) -> tuple[float, float]:
        seconds = self.args.raw_seconds
        return raw_throughput(
            self.embedder(config.ort_threads), self.segments[workload], config.threads, seconds, self.budget
        )

    def locust(self, server: Server, workload: str, users: int, name: str, rate: float = 0.0) -> Step:
        prefix = self.out / name
        env = {
            **os.environ,
            "BENCH_BODIES": str(self.out / f"bodies-{workload}.json"),
            "BENCH_SESSIONS": "natural" if workload in CACHED else "unique",
            "BENCH_USER_RATE": str(rate),
        }
        load = os.getloadavg()[0]
        self.loads.append(load)
        cpu_before = cpu_seconds(server.process.pid)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(BENCH / "locustfile.py"), "--headless",
            "-u", str(users), "-r", str(users), "-t", f"{self.args.duration}s",
            "--host", f"http://127.0.0.1:{server.port}", "--csv", str(prefix),
            "--only-summary", "--reset-stats", "--loglevel", "WARNING", "--stop-timeout", "5",
        ]  # fmt: skip
        subprocess.run(
            cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=BENCH
        )
        cpu = cpu_seconds(server.process.pid) - cpu_before
        step = Step(name, workload, users, load=load)
        with open(f"{prefix}_stats.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row["Name"] == "/route":
                    step.ok_per_s = float(row["Requests/s"])
                    step.failures = int(row["Failure Count"])
                    step.p50, step.p95, step.p99 = (float(row[k] or 0) for k in ("50%", "95%", "99%"))
                elif row["Name"] == "/route 503":
                    step.rejected_per_s = float(row["Requests/s"])
                    step.reject_p99, step.reject_max = float(row["99%"] or 0), float(row["Max Response Time"])
        answered = (step.ok_per_s + step.rejected_per_s) * self.args.duration
        # Server CPU over the whole locust run (spawn and drain too) per counted answer: an upper bound.
        step.cpu_ms = cpu * 1000 / max(answered, 1)
        print(
            f"  {name}: {step.ok_per_s:.0f}/s p99 {step.p99:.0f} ms, 503 {step.rejected_per_s:.0f}/s, "
            f"server CPU {step.cpu_ms:.2f} ms/answer, load {load:.1f}",
            file=sys.stderr,
        )
        return step

    def emit(self, text: str = "") -> None:
        self.lines.append(text)

    # -- sections -----------------------------------------------------------------------------

    def matrix(self, redis_url: str | None) -> float:
        """Returns the short32 capacity (best accepted decisions/s) for the overload steps."""
        capacity = 0.0
        modes = [("in-memory", False)] + ([("Redis", True)] if redis_url else [])
        self.emit("#### Decisions/s and latency by workload and concurrency")
        self.emit()
        self.emit(
            "Default configuration (1 worker x 2 inference threads x 1 ORT thread, queue depth 8 per thread, expected wait ≤ 30 ms). "
            "`raw /s` is batch-1 ONNX embedding throughput on the same texts with the same threads, measured "
            "in the same run just before and after the workload's steps (mean). short32 and mixed run with the "
            "embedding cache off and a fresh session id per request, so every decision embeds; repeat and "
            "cached32 run with defaults (cache on; raw ÷ is then the gain over embedding every request). Latency in ms (locust, client side). "
            "503 = fast refusals (queue depth or expected wait); a refused user pauses 0.25 s (its fallback LLM "
            "call) before its next request, an answered one sends the next at once."
        )
        self.emit()
        self.emit(
            "| mode | workload | users | decisions/s | p50 | p95 | p99 | 503/s | raw /s | service ÷ raw "
            "| server CPU ms/answer | raw CPU ms/embed | load |"
        )
        self.emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        rss: list[tuple[str, float, list[float]]] = []
        for mode, redis in modes:
            for workload in self.args.workloads:
                config = ServerConfig(cache=workload in CACHED, redis=redis)
                before = self.raw(config, workload)
                steps = []
                with serve(config, redis_url) as server:
                    for users in self.args.users:
                        steps.append(self.locust(server, workload, users, f"{mode}-{workload}-u{users}"))
                    rss.append((f"{mode}, {workload}", server.ready_s, server.rss_mb()))
                after = self.raw(config, workload)
                raw, raw_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
                for s in steps:
                    if workload == "short32" and not redis:
                        capacity = max(capacity, s.ok_per_s)
                    self.emit(
                        f"| {mode} | {workload} | {s.users} | {s.ok_per_s:.0f} | {s.p50:.0f} | {s.p95:.0f} | {s.p99:.0f} | "
                        f"{s.rejected_per_s:.0f} | {raw:.0f} | {s.ok_per_s / raw:.2f} | {s.cpu_ms:.2f} | "
                        f"{raw_cpu:.2f} | {s.load:.1f} |"
                    )
        self.emit()
        self.emit("#### Start-up and memory (default configuration)")
        self.emit()
        self.emit("| server | start → ready s | RSS per worker after load, MB |")
        self.emit("|---|---|---|")
        for name, ready, mbs in rss:
            self.emit(f"| {name} | {ready:.2f} | {', '.join(f'{m:.0f}' for m in mbs)} |")
        self.emit()
        return capacity

    def overload(self, capacity: float) -> None:
        users = 64
        per_user = capacity / users
        self.emit("#### Overload: offered load at 1x and 2x capacity (short32)")
        self.emit()
        self.emit(
            f"Capacity = best short32 decisions/s above ({capacity:.0f}/s). Each user sends {per_user:.1f} requests/s "
            "(Poisson arrivals) whatever happens (a refused caller falls back and carries on); 1x = 64 users, 2x = 128 users."
        )
        self.emit()
        self.emit("| offered | decisions/s | p50 | p99 | 503/s | 503 p99 | slowest 503 | failures | load |")
        self.emit("|---|---|---|---|---|---|---|---|---|")
        with serve(ServerConfig(cache=False), None) as server:
            results = []
            for factor in (1, 2):
                s = self.locust(server, "short32", users * factor, f"overload-{factor}x", rate=per_user)
                results.append(s)
                self.emit(
                    f"| {factor}x ({capacity * factor:.0f}/s) | {s.ok_per_s:.0f} | {s.p50:.0f} | {s.p99:.0f} | "
                    f"{s.rejected_per_s:.0f} | {s.reject_p99:.0f} | {s.reject_max:.0f} | {s.failures} | {s.load:.1f} |"
                )
        at1, at2 = results
        ratio = at2.p99 / at1.p99 if at1.p99 else float("nan")
        self.emit()
        self.emit(f"p99 of accepted requests at 2x ÷ at 1x: **{ratio:.2f}** (target ≤ 2).")
        self.emit()

    def depth(self) -> None:
        self.emit("#### Queue depth per inference thread (short32, 64 users, closed loop)")
        self.emit()
        self.emit("| depth per thread | queue capacity | decisions/s | p50 | p99 | 503/s | load |")
        self.emit("|---|---|---|---|---|---|---|")
        for depth in (4, 8, 16, 32):
            config = ServerConfig(cache=False, depth=depth)
            with serve(config, None) as server:
                s = self.locust(server, "short32", 64, f"depth-{depth}")
            self.emit(
                f"| {depth} | {depth * config.threads} | {s.ok_per_s:.0f} | {s.p50:.0f} | {s.p99:.0f} | "
                f"{s.rejected_per_s:.0f} | {s.load:.1f} |"
            )
        self.emit()

    def workers(self) -> None:
        self.emit(
            "#### Workers x inference threads x ORT threads (2 cores, 8 users: saturated, below the queue depth)"
        )
        self.emit()
        self.emit(
            "| configuration | workload | users | decisions/s | p50 | p99 | 503/s | raw /s | service ÷ raw | ready s | RSS per worker MB | load |"
        )
        self.emit("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for shape in ((1, 2, 1), (2, 1, 1), (1, 1, 2)):
            for workload in ("short32", "mixed", "cached32"):
                config = ServerConfig(*shape, cache=workload in CACHED)
                raw, _ = self.raw(config, workload)
                with serve(config, None) as server:
                    s = self.locust(
                        server,
                        workload,
                        8,
                        f"workers-{config.workers}-{config.inference_threads}-{config.ort_threads}-{workload}",
                    )
                    ready, rss = server.ready_s, server.rss_mb()
                self.emit(
                    f"| {config.label()} | {workload} | 8 | {s.ok_per_s:.0f} | {s.p50:.0f} | {s.p99:.0f} | {s.rejected_per_s:.0f} | "
                    f"{raw:.0f} | {s.ok_per_s / raw:.2f} | {ready:.2f} | {', '.join(f'{m:.0f}' for m in rss)} | {s.load:.1f} |"
                )
        self.emit()

    def batching(self) -> None:
        self.emit("#### Micro-batching vs batch-1 (bench/batching.py, same run)")
        self.emit()
        result = subprocess.run(
            [sys.executable, str(BENCH / "batching.py"), "--seconds", str(max(4, self.args.duration // 2))],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        self.emit(result.stdout.strip())
        self.emit()


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--all", action="store_true", help="every section below")
    parser.add_argument("--matrix", action="store_true")
    parser.add_argument("--overload", action="store_true")
    parser.add_argument("--depth", action="store_true")
    parser.add_argument("--workers", action="store_true")
    parser.add_argument("--batching", action="store_true")
    parser.add_argument("--no-redis", action="store_true", help="skip Redis mode in the matrix")
    parser.add_argument("--capacity", type=float, help="decisions/s for --overload without --matrix")
    parser.add_argument("--users", type=int, nargs="+", default=list(USERS), help="matrix concurrency levels")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--duration", type=int, default=10, help="seconds per locust step")
    parser.add_argument("--raw-seconds", type=float, default=3.0)
    parser.add_argument("--bodies", type=int, default=512, help="distinct request bodies per workload")
    parser.add_argument("--write", action="store_true", help="replace the section in bench/RESULTS.md")
    args = parser.parse_args()
    if args.all:
        args.matrix = args.overload = args.depth = args.workers = args.batching = True
    runner = Runner(args)
    started = _uptime()
    capacity = args.capacity or 0.0
    if args.matrix:
        with redis_server() if not args.no_redis else _none() as redis_url:
            capacity = runner.matrix(redis_url) or capacity
    if args.overload:
        if not capacity:
            parser.error("--overload needs --matrix in the same run or --capacity")
        runner.overload(capacity)
    if args.depth:
        runner.depth()
    if args.workers:
        runner.workers()
    if args.batching:
        runner.batching()
    header = [
        "### Latest run",
        "",
        f"Command: `python bench/run_load.py {' '.join(sys.argv[1:])}` (`make bench-load`) — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, locust {_locust_version()} on the same machine (it takes CPU from the "
        f"service too), {args.duration} s per step. CSVs: `{runner.out.relative_to(ROOT)}/`.",
        "",
        f"Machine load: at start `{started}`; at end `{_uptime()}`; 1-minute load average per step "
        f"{min(runner.loads, default=0):.1f}–{max(runner.loads, default=0):.1f} (2 cores: above 2 means other "
        "work was queued for the CPU while these numbers were taken).",
        "",
    ]
    report = "\n".join(header + runner.lines)
    (runner.out / "report.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    if args.write:
        write_results(report)


@contextmanager
def _none() -> Iterator[None]:
    yield None


def _locust_version() -> str:
    from importlib.metadata import version

    return version("locust")


def write_results(report: str) -> None:
    path = BENCH / "RESULTS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = f"{BEGIN}\n{report}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
