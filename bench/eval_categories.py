"""Category accuracy of the zero-config classifier at several token budgets.

Data the prototypes (and the category head fitted on them) were not written from:
- bench/data/labelled_prompts.jsonl: 200 hand-labelled prompts in real-world styles;
- LLMRouter's `default_query_test.jsonl` (ulab-uiuc/LLMRouter, MIT, data/ folder), task names
  mapped onto our categories by bench/data/task_category_map.json (unmapped tasks are left out,
  the map says why). It is not in this repository: pass its folder with `--llmrouter DIR` or
  LLMROUTER_DATA; without either, that set is skipped.

Classifiers (`--classifiers`): `head` is the service as shipped (the category head when
models/category_head.json is there), `centroid` the same engine with the head taken off the
snapshot, and `before` the models folder given by `--before-models DIR` (e.g. main's `models/`
in a `git worktree`), all measured in one run on the same prompts.

Usage: python bench/eval_categories.py [--budgets 32,64,128,256,510]
       [--classifiers before,centroid,head --before-models DIR] [--llmrouter DIR]
Prints markdown tables (accuracy per budget, per-class recall, confusion matrix at the default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from routeiq.decision.schemas import RouteRequest
from routeiq.engine import Engine
from routeiq.observability.metrics import Metrics
from routeiq.pipeline import Context, decide
from routeiq.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


TIERS = ("trivial", "simple", "moderate", "complex", "expert")


def labelled() -> list[tuple[str, str, str]]:
    rows = []
    for line in (ROOT / "bench/data/labelled_prompts.jsonl").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        item = json.loads(line)
        rows.append((item["prompt"], item["category"], item["source_style"]))
    return rows


def tier_agreement(budget: int) -> tuple[float, float, float]:
    """Exact and within-one tier agreement with the hand labels, and Spearman of complexity."""
    items = [
        json.loads(line) for line in (ROOT / "bench/data/labelled_prompts.jsonl").read_text().splitlines()
    ]
    engine = Engine.load(Settings(token_budget=budget, embedding_cache_size=0), Metrics.create())
    engine.ready = True

    async def run() -> list[tuple[int, int, float]]:
        out = []
        for item in items:
            d = await decide(engine, RouteRequest(prompt=item["prompt"]), Context("eval"))
            out.append((TIERS.index(item["tier"]), TIERS.index(d.tier), d.complexity))
        return out

    try:
        got = asyncio.run(run())
    finally:
        engine.executor.shutdown()
    exact = sum(a == b for a, b, _ in got) / len(got)
    near = sum(abs(a - b) <= 1 for a, b, _ in got) / len(got)
    true_rank = np.argsort(np.argsort([a for a, _, _ in got]))
    score_rank = np.argsort(np.argsort([c for _, _, c in got]))
    spearman = float(np.corrcoef(true_rank, score_rank)[0, 1])
    return exact, near, spearman


def mapped_tasks(folder: Path, limit_per_task: int) -> list[tuple[str, str, str]]:
    mapping = json.loads((ROOT / "bench/data/task_category_map.json").read_text())["map"]
    seen: set[str] = set()
    per_task: Counter[str] = Counter()
    rows = []
    for line in (folder / "default_query_test.jsonl").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        item = json.loads(line)
        task, query = item["task_name"], item["query"]
        if task not in mapping or query in seen or per_task[task] >= limit_per_task:
            continue
        seen.add(query)
        per_task[task] += 1
        rows.append((query, mapping[task], task))
    return rows


def evaluate(
    rows: list[tuple[str, str, str]], budget: int, classifier: str = "head", before: Path | None = None
) -> list[tuple[str, str, str, float]]:
    settings = Settings(token_budget=budget, embedding_cache_size=0)
    if classifier == "before":
        if before is None:
            raise SystemExit("classifier 'before' needs --before-models DIR")
        settings = Settings(token_budget=budget, embedding_cache_size=0, models_path=before)
    engine = Engine.load(settings, Metrics.create())
    engine.ready = True
    if classifier == "centroid":
        snap = engine.snapshot
        engine.publish(replace(snap, centroids=replace(snap.centroids, head=None)))
    elif classifier not in ("head", "before"):
        raise SystemExit(f"unknown classifier {classifier!r}: head, centroid or before")

    async def run() -> list[tuple[str, str, str, float]]:
        out = []
        for prompt, label, group in rows:
            start = time.perf_counter()
            decision = await decide(engine, RouteRequest(prompt=prompt), Context("eval"))
            out.append((label, decision.category, group, (time.perf_counter() - start) * 1000))
        return out

    try:
        return asyncio.run(run())
    finally:
        engine.executor.shutdown()


def confusion(results: list[tuple[str, str, str, float]]) -> str:
    labels = sorted({r[0] for r in results} | {r[1] for r in results})
    counts = Counter((r[0], r[1]) for r in results)
    short = {lab: lab[:6] for lab in labels}
    head = "| true \\ predicted | " + " | ".join(short[lab] for lab in labels) + " | recall |"
    lines = [head, "|" + "---|" * (len(labels) + 2)]
    for true in labels:
        total = sum(counts[(true, p)] for p in labels)
        if not total:
            continue
        cells = " | ".join(str(counts[(true, p)] or "") for p in labels)
        lines.append(f"| {true} | {cells} | {counts[(true, true)] / total:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", default="32,64,128,256,510")
    parser.add_argument("--per-task", type=int, default=50)
    parser.add_argument("--default", type=int, default=Settings().token_budget)
    parser.add_argument("--classifiers", default="head", help="comma-separated: head, centroid, before")
    parser.add_argument(
        "--before-models", type=Path, help="models folder measured as the classifier 'before'"
    )
    parser.add_argument(
        "--llmrouter",
        default=os.environ.get("LLMROUTER_DATA"),
        help="folder with LLMRouter's default_query_test.jsonl (default: LLMROUTER_DATA)",
    )
    args = parser.parse_args()
    sets = {"labelled (200, hand)": labelled()}
    if args.llmrouter:
        sets["mapped tasks"] = mapped_tasks(Path(args.llmrouter), args.per_task)
    classifiers = args.classifiers.split(",")
    print(
        f"# Category accuracy — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.processor() or platform.machine()}\n"
    )
    if not args.llmrouter:
        print("(mapped tasks skipped: no --llmrouter folder or LLMROUTER_DATA)\n")
    print("| classifier | budget (tokens) | " + " | ".join(sets) + " | mean decision ms (labelled) |")
    print("|---|---|" + "---|" * (len(sets) + 1))
    keep: dict[tuple[str, str, int], list[tuple[str, str, str, float]]] = {}
    for budget in (int(b) for b in args.budgets.split(",")):
        for classifier in classifiers:
            cells = []
            for name, rows in sets.items():
                results = evaluate(rows, budget, classifier, args.before_models)
                keep[(classifier, name, budget)] = results
                accuracy = sum(r[0] == r[1] for r in results) / len(results)
                cells.append(f"{accuracy:.3f} (n={len(results)})")
            labelled_rows = keep[(classifier, "labelled (200, hand)", budget)]
            mean_ms = sum(r[3] for r in labelled_rows) / len(labelled_rows)
            label = "full (510)" if budget >= 510 else str(budget)
            print(f"| {classifier} | {label} | " + " | ".join(cells) + f" | {mean_ms:.2f} |")
    exact, near, rho = tier_agreement(args.default)
    print(
        f"\nTier vs hand labels (labelled set, budget {args.default}): exact {exact:.2f}, "
        f"within one tier {near:.2f}, Spearman(complexity, labelled tier) {rho:.2f}"
    )
    for classifier in classifiers:
        for name in sets:
            results = keep[(classifier, name, args.default)]
            print(f"\n## Confusion at budget {args.default}, {classifier}: {name}\n")
            print(confusion(results))
            by_group: dict[str, list[bool]] = defaultdict(list)
            for true, pred, group, _ in results:
                by_group[group].append(true == pred)
            print(
                "\nBy "
                + ("style" if name.startswith("labelled") else "task")
                + ": "
                + ", ".join(f"{g} {sum(v) / len(v):.2f} (n={len(v)})" for g, v in sorted(by_group.items()))
            )


if __name__ == "__main__":
    main()
