"""The category head (models/category_head.json): loading, how classify uses it, when the snapshot
falls back to centroids, and that the shipped one is the one the shipped prototypes give."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from routeiq.artifacts.integrity import sha256_file, write_manifest
from routeiq.decision import category_head
from routeiq.decision.category_head import CategoryHead
from routeiq.decision.classify import classify
from routeiq.decision.schemas import RouteRequest
from routeiq.engine import Engine
from routeiq.errors import ArtifactError
from routeiq.pipeline import Context, decide
from routeiq.selfcheck import check_head_is_current
from routeiq.settings import Settings
from routeiq.snapshot import centroids_for
from tests.unit.test_classify import CATS, CLEAR_CODE, MODEL, centroids
from tests.unit.test_policy import signals

ROOT = Path(__file__).parents[2]
MODELS = ROOT / "models"
LABELLED = ROOT / "bench" / "data" / "labelled_prompts.jsonl"


def head_for(winner: str, labels: tuple[str, ...] = CATS, **kw: float) -> CategoryHead:
    """A head that puts every vector in `winner`, whatever the centroids say."""
    weights = np.zeros((8, len(labels)), dtype=np.float32)
    bias = np.zeros(len(labels), dtype=np.float32)
    bias[labels.index(winner)] = 5.0
    return CategoryHead("x", labels, weights, bias, **kw)


def test_classify_takes_the_category_from_the_head() -> None:
    plain = classify(CLEAR_CODE, signals(), centroids(), MODEL, min_confidence=0.35)
    assert plain.category == "code_generation"
    with_head = replace(centroids(), head=head_for("translation"))
    c = classify(CLEAR_CODE, signals(), with_head, MODEL, min_confidence=0.35)
    assert c.category == "translation"
    assert c.category_scores["translation"] > 0.9
    assert set(c.category_scores) == set(CATS)


def test_head_labels_in_another_order_are_matched_by_name() -> None:
    shuffled = tuple(reversed(CATS))
    found = replace(centroids(), head=head_for("reasoning", shuffled))
    c = classify(CLEAR_CODE, signals(), found, MODEL, min_confidence=0.35)
    assert c.category == "reasoning"
    assert max(c.category_scores, key=c.category_scores.__getitem__) == "reasoning"


def test_centroid_share_mixes_the_two() -> None:
    found = replace(centroids(), head=head_for("translation", centroid_weight=0.5))
    c = classify(CLEAR_CODE, signals(), found, MODEL, min_confidence=0.35)
    # half of each: the head's translation (~0.98) and the centroids' code (~1.0) are both ~0.5
    assert c.category_scores["translation"] == pytest.approx(0.5, abs=0.02)
    assert c.category_scores["code_generation"] == pytest.approx(0.5, abs=0.02)


def test_tool_offering_requests_stay_tool_use_with_a_head() -> None:
    found = replace(centroids(), head=head_for("conversation"))
    c = classify(CLEAR_CODE, signals(tools=2), found, MODEL, min_confidence=0.35)
    assert c.category == "tool_use"
    assert "rule:tools_offered" in c.notes
    looping = classify(CLEAR_CODE, signals(tool_loop=True), found, MODEL, min_confidence=0.35)
    assert looping.category == "tool_use"


def _write(tmp_path: Path, **changes: object) -> Path:
    data = category_head.to_json(head_for("translation"), {"fitted_by": "test"})
    data.update(changes)
    path = tmp_path / "category_head.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"embedder_sha256": "other"}, "fitted on embedder 'other'"),
        ({"bias": [0.0, 1.0]}, "do not fit dimension 8"),
        ({"weights": [[float("nan")] * 6] * 8}, "finite"),
        ({"labels": [*CATS[:-1], CATS[0]]}, "distinct"),
        ({"centroid_weight": 2.0}, r"centroid_weight must be in \[0, 1\]"),
        ({"weights": "no"}, "malformed|do not fit"),
    ],
)
def test_a_bad_head_file_is_refused_naming_it(tmp_path: Path, changes: dict, message: str) -> None:
    path = _write(tmp_path, **changes)
    with pytest.raises(ArtifactError, match=message) as info:
        category_head.load(path, "x", 8)
    assert str(path) in str(info.value)


def test_a_good_head_file_round_trips(tmp_path: Path) -> None:
    loaded = category_head.load(_write(tmp_path), "x", 8)
    assert loaded.labels == CATS
    assert loaded.centroid_weight == 0.0
    assert int(loaded.probabilities(CLEAR_CODE).argmax()) == CATS.index("translation")


def test_bundled_snapshot_classifies_with_the_head(engine: Engine) -> None:
    head = engine.snapshot.centroids.head
    assert head is not None
    assert set(head.labels) == set(engine.snapshot.centroids.categories.labels)


def test_user_prototypes_switch_back_to_centroids(engine: Engine, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text('categories:\n  legal:\n    - "review this NDA clause"\n    - "is this lease legal"\n')
    found = centroids_for(Settings(prototypes_file=extra), engine.embedder)
    assert found.head is None
    assert "legal" in found.categories.labels


def test_a_head_whose_labels_differ_from_the_centroids_is_refused(engine: Engine, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("routers", "embedder"))
    data = json.loads((models / "category_head.json").read_text())
    data["labels"] = [f"x{i}" for i in range(len(data["labels"]))]
    (models / "category_head.json").write_text(json.dumps(data))
    write_manifest(models)
    settings = Settings(models_path=models, embedder_path=engine.settings.embedder_dir)
    with pytest.raises(ArtifactError, match=r"labels .* differ from the centroids"):
        centroids_for(settings, engine.embedder)


def test_shipped_head_was_fitted_on_the_shipped_prototypes() -> None:
    about = json.loads((MODELS / "category_head.json").read_text())["about"]
    assert about["prototypes_sha256"] == sha256_file(MODELS / "prototypes.yaml")
    check_head_is_current(MODELS)


def test_verify_refuses_a_head_older_than_the_prototypes(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MODELS / "category_head.json", models)
    (models / "prototypes.yaml").write_text((MODELS / "prototypes.yaml").read_text() + "\n# edited\n")
    with pytest.raises(ArtifactError, match="refit it"):
        check_head_is_current(models)


def _decide_all(engine: Engine, prompts: list[str]) -> list[str]:
    async def run() -> list[str]:
        out = []
        for prompt in prompts:
            d = await decide(engine, RouteRequest(prompt=prompt), Context("test"))
            out.append(d.category)
        return out

    engine.ready = True
    return asyncio.run(run())


def test_hand_labelled_accuracy_holds(engine: Engine) -> None:
    """bench/data/labelled_prompts.jsonl is never used to fit or choose anything; main's
    centroids scored 0.725 on it, the head 0.750 (bench/RESULTS.md, "Category head"). The bound
    leaves two prompts of room for another CPU's int8 kernels."""
    items = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
    got = _decide_all(engine, [item["prompt"] for item in items])
    accuracy = sum(g == item["category"] for g, item in zip(got, items, strict=True)) / len(items)
    assert accuracy >= 0.74, accuracy


def test_eval_categories_reads_llmrouter_data_only_from_where_it_is_told(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMROUTER_DATA"}
    script = ROOT / "bench" / "eval_categories.py"
    assert "shared" not in script.read_text().replace("shared box", "")
    (tmp_path / "default_query_test.jsonl").write_text(
        json.dumps({"task_name": "mbpp", "query": "Write a function to add two numbers."}) + "\n"
    )
    spec = importlib.util.spec_from_file_location("eval_categories", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.mapped_tasks(tmp_path, 50)
    assert rows == [("Write a function to add two numbers.", "code_generation", "mbpp")]
    shown = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "--llmrouter" in shown and "LLMROUTER_DATA" in shown
