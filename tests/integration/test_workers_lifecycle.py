"""`routeiq serve --workers N` on real processes: start-up failures end the command with a
non-zero exit (no crash loop), a SIGKILLed worker's live gauges stop counting, and the metric
folder the command made for itself is gone when it exits."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests._harness import REPO, ServeProcess, wait_until

pytestmark = pytest.mark.slow


def test_a_worker_that_cannot_start_ends_the_command_non_zero(tmp_path: Path) -> None:
    # An embedder graph that matches its manifest's sha256 but is not ONNX: pre-flight checks
    # hashes only, so it is the workers that fail, when they load it.
    embedder = tmp_path / "embedder"
    embedder.mkdir()
    shipped = REPO / "models" / "embedder"
    (embedder / "tokenizer.json").write_bytes((shipped / "tokenizer.json").read_bytes())
    graph = b"not an onnx graph"
    (embedder / "model.onnx").write_bytes(graph)
    manifest = json.loads((shipped / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["model.onnx"]["sha256"] = hashlib.sha256(graph).hexdigest()
    (embedder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    started = time.monotonic()
    result = ServeProcess(tmp_path, workers=2, embedder_path=embedder).run(timeout=90)
    assert result.returncode == 3, result.stderr.decode()[-2000:]  # was 0
    assert time.monotonic() - started < 60


def test_an_unusable_metrics_folder_stops_start_up_without_a_crash_loop(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x", encoding="utf-8")
    process = ServeProcess(tmp_path, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(not_a_folder / "m")})
    result = process.run(timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr[-2000:]
    assert "PROMETHEUS_MULTIPROC_DIR" in stderr and "Traceback" not in stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _in_flight(url: str) -> float:
    for line in httpx.get(url + "/metrics", trust_env=False).text.splitlines():
        if line.startswith("routeiq_decisions_in_flight"):
            return float(line.split()[-1])
    return 0.0


def test_a_killed_workers_gauges_go_and_no_metrics_folder_is_left(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = ServeProcess(tmp_path, workers=2, embedding_cache_mb=0, env={"TMPDIR": str(tmp)})
    del process.env["PROMETHEUS_MULTIPROC_DIR"]  # let `routeiq serve` make its own folder
    process.start()
    try:
        assert process.process is not None
        workers = [p for p in _children(process.process.pid) if _is_worker(p)]
        assert len(workers) == 2, workers
        stop = threading.Event()

        def burst() -> None:
            with httpx.Client(trust_env=False, timeout=10) as client:
                i = 0
                while not stop.is_set():
                    i += 1
                    with contextlib.suppress(httpx.HTTPError):
                        client.post(process.url + "/route", json={"prompt": f"explain b-trees, take {i}"})

        threads = [threading.Thread(target=burst) for _ in range(24)]
        for t in threads:
            t.start()
        wait_until(lambda: _in_flight(process.url) >= 4, 20, "decisions in flight")
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        wait_until(lambda: _in_flight(process.url) == 0, 20, "in-flight gauge back at 0")
    finally:
        process.stop()
    assert list(tmp.glob("routeiq-metrics-*")) == []


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _is_worker(pid: int) -> bool:
    return "spawn_main" in _cmd(pid)
