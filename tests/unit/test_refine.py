"""`routeiq refine` on rows shaped like the service writes them: real embeddings of real prompts,
two catalog models served half and half (an A/B), outcomes that depend on the prompt — the weak
model fails hard prompts. The candidate must learn that, verify, and be proposed, never promoted."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from routeiq.artifacts.integrity import Bundle
from routeiq.cli import main
from routeiq.decision.schemas import Candidate, RouteRequest
from routeiq.engine import Engine
from routeiq.observability.metrics import Metrics
from routeiq.pipeline import Context, decide
from routeiq.settings import Settings
from routeiq.trained.router import TrainedRouter

STRONG = ("gpt-4o", "openai/gpt-4o")
WEAK = ("gpt-4o-mini", "openai/gpt-4o-mini")

HARD = [
    "Prove that there are infinitely many primes of the form 4k+3, {}",
    "Implement a lock-free concurrent hash map in Rust with resizing, {}",
    "Derive the closed form of the integral of x^2 e^(-x) from 0 to infinity, {}",
    "Write a Python interpreter for a subset of Scheme with tail calls, {}",
    "Explain the proof of the Cook-Levin theorem step by step, {}",
    "Design a distributed consensus protocol tolerant to Byzantine faults, {}",
]
EASY = [
    "Say hello to my friend {}",
    "What is the capital of France? Asking for {}",
    "Give me a synonym for happy, thanks {}",
    "Translate 'thank you' into Spanish for {}",
    "Tell me a short joke about cats for {}",
    "What day comes after Monday? {}",
]
NAMES = ["Alice", "Bob", "Chen", "Dana", "Emil", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mo"]
NAMES += ["Nia", "Oli", "Pia", "Quin", "Rui", "Sam", "Tom", "Uma", "Vik", "Wen", "Xia", "Yan", "Zoe"]


def _write_rows(folder: Path, count: int, seed: int = 0) -> Path:
    """Rows the way production makes them: real decisions (`pipeline.decide`) over the two
    candidates on an engine with rows enabled, the gateway's A/B pick of which one served, and
    the outcome joined as /feedback joins it, written by the real writer thread."""
    rng = np.random.default_rng(seed)
    prompts = [(t.format(n), True) for t, n in itertools.product(HARD, NAMES)]
    prompts += [(t.format(n), False) for t, n in itertools.product(EASY, NAMES)]
    chosen = [prompts[i] for i in rng.permutation(len(prompts))[:count]]
    engine = Engine.load(Settings(training_rows_dir=folder), Metrics.create())
    engine.ready = True
    rows = engine.training_rows
    assert rows is not None
    candidates = [Candidate(deployment_id=d, model=m) for d, m in (STRONG, WEAK)]

    async def traffic() -> None:
        for n, (text, hard) in enumerate(chosen):
            request = RouteRequest(prompt=text, candidates=candidates)
            await decide(engine, request, Context(request_id=f"req-{n}"))
            served = STRONG if rng.random() < 0.5 else WEAK  # assigned at random, as in an A/B
            good = 0.9 if served is STRONG else (0.2 if hard else 0.88)
            success = not (served is WEAK and hard and rng.random() < 0.3)
            quality = float(np.clip(good + rng.normal(0, 0.05), 0, 1))
            assert rows.join(
                f"req-{n}",
                served[0],
                success=success,
                quality=quality if success else None,
                latency_ms=200.0,
                tenant="default",
                embedder_sha256=engine.embedder.fingerprint,
            )

    try:
        asyncio.run(traffic())
    finally:
        asyncio.run(engine.close())  # the writer flushes what is queued
    path = rows.writer.path
    assert len(path.read_text().splitlines()) == count
    with path.open("a") as handle:
        handle.write('{"torn": ')  # a row being written (no newline yet): skipped, counted apart
    return path


@pytest.fixture(scope="module")
def rows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rows")
    _write_rows(folder, 300)
    return folder


def test_refine_writes_a_verified_candidate_and_compares_it(
    rows_dir: Path, tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "candidate"
    code = main(["refine", "--rows", str(rows_dir), "--out", str(out), "--name", "prod-knn", "--propose"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "routeiq verify with ml:prod-knn: ok" in printed
    assert "APGR openai/gpt-4o:openai/gpt-4o-mini" in printed
    assert "skipped: {'unreadable': 0, 'incomplete': 1, 'other_embedder': 0, 'other_tenant': 0}" in printed
    # The folder is the active one plus the router, pinned; the router loads on this embedder.
    bundle = Bundle.verify(out)
    assert "routers/prod-knn.onnx" in bundle.files and "catalog.yaml" in bundle.files
    router = TrainedRouter(out / "routers" / "prod-knn.json", engine.embedder.fingerprint)
    refine = router.manifest.metrics["refine"]
    assert refine["train_rows"] == 240 and refine["holdout_rows"] == 60
    pair = refine["pairs"]["openai/gpt-4o:openai/gpt-4o-mini"]
    # The candidate learnt which prompts the weak model fails: far above random on new rows.
    assert pair["candidate"] > pair["random"] + 0.1, pair
    assert refine["outcome_scores"]["candidate"]["auc"] > 0.7, refine["outcome_scores"]
    # Proposed as an experiment against the active strategy, not applied.
    body = json.loads(printed.split("-d '", 1)[1].split("'", 1)[0])
    assert body == {
        "name": "refine-prod-knn",
        "variants": [
            {"name": "active", "weight": 50, "strategy": "centroid"},
            {"name": "candidate", "weight": 50, "strategy": "ml:prod-knn"},
        ],
    }


def test_too_few_rows_is_a_clear_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_rows(tmp_path / "rows", 30)
    out = tmp_path / "candidate"
    code = main(["refine", "--rows", str(tmp_path / "rows"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "too few training rows: 30 usable" in err and "at least 200" in err
    assert not out.exists()


def test_rows_from_another_embedder_do_not_count(
    rows_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.jsonl"
    (written,) = rows_dir.glob("*.jsonl")
    rows = [json.loads(line) for line in written.read_text().splitlines()[:-1]]
    other.write_text("".join(json.dumps({**r, "embedder_sha256": "0" * 64}) + "\n" for r in rows))
    code = main(["refine", "--rows", str(other), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2
    assert "0 usable" in err and "'other_embedder': 300" in err


def test_tenant_keeps_that_tenants_rows_only(
    rows_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["refine", "--rows", str(rows_dir), "--out", str(tmp_path / "c"), "--tenant", "acme"])
    err = capsys.readouterr().err
    assert code == 2
    assert "0 usable" in err and "'other_tenant': 300" in err
