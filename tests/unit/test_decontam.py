"""The judged test sets stay out of the data complexity and routers are fitted on.

The shipped signatures (bench/data/decontam_signatures.npz, hashes only) must cover every judged
benchmark; the matcher must catch exact and near duplicates and nothing else; and when the
public LLMRouter files are on this machine, the rows built from them must be clean while the
disguised GSM8K test items in them are caught.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from routeiq.training.decontam import Signatures

ROOT = Path(__file__).resolve().parents[2]
SIGNATURES = ROOT / "bench" / "data" / "decontam_signatures.npz"
MANIFEST = ROOT / "bench" / "data" / "routing_data_manifest.json"
# The public LLMRouter data folder (ulab-uiuc/LLMRouter, data/), when this machine has a copy.
LLMROUTER = Path(os.environ.get("LLMROUTER_DATA", "llmrouter-data-not-set"))
ROWS = Path("/tmp/riq15/data/routing_rows.jsonl")

JUDGED = {
    "gsm8k_test": 1319,
    "mmlu_test": 14042,
    "math_test": 1000,
    "humaneval": 164,
    "mt_bench": 160,
    "alpaca_eval": 805,
    "arena_hard": 500,
    "bfcl": 1000,
}

ITEM = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' market."
)


@pytest.fixture(scope="module")
def shipped() -> Signatures:
    return Signatures.load(SIGNATURES)


def test_signatures_cover_every_judged_benchmark(shipped: Signatures) -> None:
    counts = shipped.counts()
    for name, least in JUDGED.items():
        assert counts.get(name, 0) >= least, (name, counts.get(name))


def test_exact_and_near_duplicates_match_and_others_do_not() -> None:
    sig = Signatures.build({"bench": [ITEM, "Name three primary colours."]})
    assert sig.match(ITEM) == "bench"
    assert sig.match("  NAME three primary colours!! ") == "bench"  # exact after normalising
    wrapped = f"Solve step by step.\nQ: {ITEM.upper()} How much does she make?\nA: Let's think."
    assert sig.match(wrapped) == "bench"  # contained in a template, re-cased
    assert sig.match(ITEM.replace("'", "").replace(",", " ,")) == "bench"  # re-punctuated
    assert sig.match("Name three primary colours of light and explain additive mixing.") is None
    # one shared 8-word phrase is not a duplicate
    assert sig.match("My ducks lay 16 eggs per day. She eats three for lunch.") is None
    assert sig.match("What is the capital of France?") is None


def test_shipped_signatures_catch_the_disguised_gsm8k_test_items(shipped: Signatures) -> None:
    if not LLMROUTER.is_dir():
        pytest.skip("LLMROUTER_DATA does not name a copy of the public LLMRouter data folder")
    text = (LLMROUTER / "default_query_train.jsonl").read_text()
    queries = [json.loads(x) for x in text.split("\n") if x.strip()]
    mgsm = [q["query"] for q in queries if q["task_name"] == "agentverse-mgsm"][:40]
    assert mgsm and all(shipped.match(q) == "gsm8k_test" for q in mgsm)


def test_built_rows_hold_no_judged_item(shipped: Signatures) -> None:
    manifest = json.loads(MANIFEST.read_text())
    kept = manifest["rows_per_task_kept"]
    for task in ("human_eval", "agentverse-mgsm", "math"):
        assert task not in kept and task in manifest["dropped_tasks"]
    if not ROWS.is_file():
        pytest.skip(f"{ROWS} not built here (python tools/decontaminate.py build)")
    assert hashlib.sha256(ROWS.read_bytes()).hexdigest() == manifest["output_sha256"]
    rows = [json.loads(line) for line in ROWS.read_text().split("\n") if line.strip()]
    assert len(rows) == manifest["rows_kept"]
    slipped = [(r["source"], r["prompt"][:80]) for r in rows if shipped.match(r["prompt"])]
    assert slipped == []


def test_prototypes_the_category_head_is_fitted_on_hold_no_judged_item(shipped: Signatures) -> None:
    """models/prototypes.yaml is the category head's (and the centroids') fitting data."""
    import yaml

    data = yaml.safe_load((ROOT / "models" / "prototypes.yaml").read_text())
    prompts = [p for section in ("categories", "tiers") for items in data[section].values() for p in items]
    assert len(prompts) > 700
    slipped = [(shipped.match(p), p[:80]) for p in prompts if shipped.match(p)]
    assert slipped == []


def test_chat_evaluation_set_holds_no_judged_item(shipped: Signatures) -> None:
    """bench/data/chat_eval_oasst.jsonl shares its source (OASST1) with AlpacaEval's oasst subset:
    no user turn of a kept conversation may match a judged test set, and the file is the one its
    manifest describes."""
    path = ROOT / "bench" / "data" / "chat_eval_oasst.jsonl"
    manifest = json.loads((ROOT / "bench" / "data" / "chat_eval_manifest.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["output_sha256"]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    assert len(rows) == manifest["rows"] > 300
    assert manifest["dropped"].get("matches alpaca_eval", 0) > 100  # the overlap was found and removed
    slipped = [
        (shipped.match(t["content"]), t["content"][:80])
        for r in rows
        for t in r["messages"]
        if t["role"] == "user" and shipped.match(t["content"])
    ]
    assert slipped == []
    assert all(r["messages"][-1]["role"] == "user" and r["share"] for r in rows)
