"""Trained routers: train -> ONNX -> load round trip on real embeddings, refusal of tampered or
foreign graphs, unknown-model candidates, and the shipped routers."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.estimators import CentroidEstimator
from routeiq.engine import Engine
from routeiq.errors import ArtifactError, InvalidRequest
from routeiq.trained.router import PRIOR_SOURCE, TrainedEstimator, TrainedRouter, load_trained
from routeiq.training import data
from routeiq.training.train import TrainPlan, run

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "routers"

# Two kinds of prompt with opposite winners, so every kind of router has something to learn.
MATH = [
    f"Prove that the sum of the first {n} odd numbers is {n} squared, step by step." for n in range(3, 23)
]
CHAT = [f"hey, thanks a lot for the help with my {w} yesterday!" for w in (
    "garden", "car", "cat", "move", "taxes", "essay", "party", "bike", "kitchen", "resume",
    "laptop", "trip", "dog", "sofa", "wedding", "fridge", "roof", "piano", "lawn", "shed",
)]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> tuple[Path, list, np.ndarray]:
    folder = tmp_path_factory.mktemp("routers")
    rows = [{"prompt": p, "scores": {"big-model": 1.0, "small-model": 0.0}} for p in MATH]
    rows += [{"prompt": p, "scores": {"big-model": 0.6, "small-model": 1.0}} for p in CHAT]
    rows.append({"prompt": CHAT[0], "scores": {"big-model": 0.0, "small-model": 0.0}})  # a duplicate
    source = folder / "train.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    plan = TrainPlan(
        data=source,
        out=folder,
        prefix="t",
        token_budget=engine.settings.token_budget,
        val_share=0.2,
        cache_dir=None,
    )
    results = run(plan, engine.embedder)
    examples = data.load_examples(source, engine.settings.token_budget)
    vectors = engine.embedder.embed([list(e.segments) for e in examples], engine.settings.token_budget)
    return folder, results, vectors


def test_every_kind_round_trips_through_onnx_within_1e5(trained, engine: Engine) -> None:
    folder, results, vectors = trained
    assert sorted(m.kind for m, _ in results) == ["knn", "linear", "mf", "mlp"]
    for manifest, params in results:
        router = TrainedRouter(folder / f"{manifest.name}.json", engine.embedder.fingerprint)
        served = router.predict(vectors)
        assert served.shape == (len(vectors), 2)
        np.testing.assert_allclose(served, params.predict(vectors), atol=1e-5, err_msg=manifest.kind)
        assert manifest.training["rows"] == 40 and manifest.training["duplicates_dropped"] == 1
        assert manifest.models == ("big-model", "small-model")


def test_trained_routers_learn_which_model_wins(trained, engine: Engine) -> None:
    folder, results, _ = trained
    probe = engine.embedder.embed(
        [["Prove that the sum of the first 40 odd numbers is 40 squared."], ["hey, thanks for the help!"]],
        engine.settings.token_budget,
    )
    for manifest, _ in results:
        q = TrainedRouter(folder / f"{manifest.name}.json", engine.embedder.fingerprint).predict(probe)
        assert q[0, 0] > q[0, 1], manifest.kind  # math: the big model
        assert q[1, 1] > q[1, 0], manifest.kind  # chat: the small model


def _copy(folder: Path, name: str, dest: Path) -> Path:
    for suffix in (".json", ".onnx"):
        shutil.copy(folder / f"{name}{suffix}", dest / f"{name}{suffix}")
    return dest / f"{name}.json"


def test_a_tampered_graph_is_refused(trained, engine: Engine, tmp_path: Path) -> None:
    folder, _, _ = trained
    manifest = _copy(folder, "t-linear", tmp_path)
    graph = tmp_path / "t-linear.onnx"
    blob = bytearray(graph.read_bytes())
    blob[-20] ^= 0x01  # one bit in a weight
    graph.write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        TrainedRouter(manifest, engine.embedder.fingerprint)
    loaded, report = load_trained(
        tmp_path, engine.embedder.fingerprint, engine.snapshot.estimator("centroid")
    )
    assert loaded == {} and "does not match" in report.refused["t-linear"]


def test_a_router_trained_on_another_embedder_is_refused(trained, engine: Engine, tmp_path: Path) -> None:
    folder, _, _ = trained
    manifest = _copy(folder, "t-mlp", tmp_path)
    body = json.loads(manifest.read_text())
    body["embedder"]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(body))
    with pytest.raises(ArtifactError, match="retrain it"):
        TrainedRouter(manifest, engine.embedder.fingerprint)


def test_a_missing_graph_is_refused(trained, engine: Engine, tmp_path: Path) -> None:
    folder, _, _ = trained
    manifest = _copy(folder, "t-mf", tmp_path)
    (tmp_path / "t-mf.onnx").unlink()
    with pytest.raises(ArtifactError, match="graph is missing"):
        TrainedRouter(manifest, engine.embedder.fingerprint)


def _classification(complexity: float = 0.5) -> Classification:
    return Classification("reasoning", 0.9, False, complexity, "moderate", {}, {}, {})


def test_unknown_model_candidates_fall_back_to_the_prior(trained, engine: Engine) -> None:
    folder, _, vectors = trained
    router = TrainedRouter(folder / "t-knn.json", engine.embedder.fingerprint)
    fallback = CentroidEstimator(engine.snapshot.complexity)
    strategy = TrainedEstimator(router, fallback)
    entries = [
        CatalogEntry(deployment_id="a", model="provider/big-model", tier="premium"),  # known by suffix
        CatalogEntry(deployment_id="b", model="mystery-model", tier="budget", quality=0.7),
        CatalogEntry(deployment_id="c", model="x", model_group="SMALL-MODEL", tier="budget"),
    ]
    estimates = strategy.estimate(vectors[0], _classification(), entries)
    predicted = router.predict(vectors[0])[0]
    assert estimates[0] == (round(float(predicted[0]), 4), "ml:t-knn")
    assert estimates[2] == (round(float(predicted[1]), 4), "ml:t-knn")
    prior = fallback.estimate(vectors[0], _classification(), entries)
    assert estimates[1] == (prior[1][0], PRIOR_SOURCE)
    only_unknown = strategy.estimate(vectors[0], _classification(), entries[1:2])
    assert only_unknown == prior[1:2]


def test_shipped_routers_load_and_cover_the_dcrouter_models(engine: Engine) -> None:
    names = {p.stem for p in SHIPPED.glob("*.json")}
    assert names == {"dcrouter-knn", "dcrouter-mlp", "dcrouter-linear", "dcrouter-mf"}
    assert {f"ml:{n}" for n in names} <= set(engine.snapshot.estimators)
    for name in names:
        router = TrainedRouter(SHIPPED / f"{name}.json", engine.embedder.fingerprint)
        assert len(router.manifest.models) == 9
        assert router.manifest.training["holdout_prompts_dropped"] > 0


def test_training_data_formats_and_errors(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps([
        {"question": "What is 2+2?", "scores": {"m1": 1, "m2": 0.5}},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "WHAT is  2+2?"}],
         "scores": {"m2": 1.0}},
    ]))  # fmt: skip
    examples = data.load_examples(array, 128)
    assert [e.segments for e in examples] == [("What is 2+2?",), ("WHAT is  2+2?", "Be brief.")]
    assert data.model_names(examples) == ["m1", "m2"]
    scores, mask = data.score_matrix(examples, ["m1", "m2"])
    assert mask.tolist() == [[1, 1], [0, 1]] and scores[1].tolist() == [0, 1]
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps({"prompt": "what is 2+2?", "scores": {"m1": 0}}) + "\n")
    assert len(data.exclude(examples, data.load_examples(held, 128))) == 1  # case/space-insensitive
    bad = tmp_path / "bad.jsonl"
    for row, message in (
        ({"prompt": "x", "scores": {"m": 1.5}}, "in \\[0, 1\\]"),
        ({"scores": {"m": 1}}, "needs 'prompt'"),
        ({"prompt": "x"}, "'scores' must be"),
    ):
        bad.write_text(json.dumps(row) + "\n")
        with pytest.raises(InvalidRequest, match=message):
            data.load_examples(bad, 128)
    bad.write_text(json.dumps({"prompt": "no scores needed for a traffic sample"}) + "\n")
    assert data.load_examples(bad, 128, scores=False)[0].scores == {}


def test_reload_swaps_routers_but_never_drops_the_active_one(trained, tmp_path: Path) -> None:
    from routeiq.config_sync import ConfigSync
    from routeiq.observability.metrics import Metrics
    from routeiq.settings import Settings

    folder, _, _ = trained
    for name in ("t-linear", "t-mf"):
        _copy(folder, name, tmp_path)
    engine = Engine.load(Settings(routers_path=tmp_path, strategy="ml:t-linear"), Metrics.create())
    sync = ConfigSync(engine)
    try:
        assert {"ml:t-linear", "ml:t-mf"} <= set(engine.snapshot.estimators)
        (tmp_path / "t-mf.json").unlink()
        (tmp_path / "t-mf.onnx").unlink()
        asyncio.run(sync.reload())
        assert "ml:t-linear" in engine.snapshot.estimators and "ml:t-mf" not in engine.snapshot.estimators
        graph = tmp_path / "t-linear.onnx"
        graph.write_bytes(graph.read_bytes() + b"\x00")
        before = engine.snapshot
        with pytest.raises(ArtifactError, match="active strategy ml:t-linear would be lost"):
            asyncio.run(sync.reload())
        assert engine.snapshot is before and engine.snapshot.estimator().name == "ml:t-linear"
    finally:
        engine.executor.shutdown()


def test_verify_fails_on_a_refused_router(trained, tmp_path: Path) -> None:
    from routeiq.selfcheck import verify
    from routeiq.settings import Settings

    folder, _, _ = trained
    _copy(folder, "t-mlp", tmp_path)
    graph = tmp_path / "t-mlp.onnx"
    graph.write_bytes(graph.read_bytes() + b"\x00")
    with pytest.raises(ArtifactError, match=r"trained routers refused.*t-mlp"):
        verify(Settings(routers_path=tmp_path))
