"""Build decontaminated routing data (prompt + per-model scores + source) and its manifest.

Two steps, both offline:

  python tools/decontaminate.py signatures --from DIR
      DIR holds public copies of the judged test sets (see SOURCES below; they stay out of the
      repository). Writes bench/data/decontam_signatures.npz: hashes only, no text.

  python tools/decontaminate.py build [--out DIR]
      Reads the LLMRouter files (the folder LLMROUTER_DATA names), names each prompt's source task by
      matching it to default_query_{train,test}.jsonl, drops every prompt that duplicates a
      judged test item (exactly or nearly) and every source that *is* a judged test set, writes
      DIR/routing_rows.jsonl (default /tmp/riq15/data) and bench/data/routing_data_manifest.json.

The test tests/unit/test_decontam.py fails if a row of the built file matches a signature.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routeiq.training.decontam import Signatures

ROOT = Path(__file__).resolve().parents[1]
# The public LLMRouter data folder (ulab-uiuc/LLMRouter, data/; MIT), not kept in this repository.
LLMROUTER = Path(os.environ.get("LLMROUTER_DATA", "llmrouter-data-not-set"))
SIGNATURES = ROOT / "bench" / "data" / "decontam_signatures.npz"
MANIFEST = ROOT / "bench" / "data" / "routing_data_manifest.json"

# Where the public copies of the judged test sets were taken from (repository @ commit: path).
SOURCES = {
    "gsm8k_test": "openai/grade-school-math@3101c7d5: grade_school_math/data/test.jsonl (1,319)",
    "mmlu_test": "yyin-dev/cs336-a5@HEAD: data/mmlu/test/*.csv (57 subjects, 14,042)",
    "math_test": "yyin-dev/cs336-a5@dbfa5129: data/math/test.jsonl (1,200 of MATH test's 5,000)",
    "humaneval": "openai/human-eval@6d43fb98: data/HumanEval.jsonl.gz (164)",
    "mt_bench": "lm-sys/FastChat@0e6d3e4b: fastchat/llm_judge/data/mt_bench/question.jsonl (80, both turns)",
    "alpaca_eval": "naver-ai/rethinking-proxy-reward@70f2ecf2: data/alpaca_eval.json (805; incl. Vicuna, Koala, self-instruct, helpful_base, oasst)",
    "arena_hard": "lmarena/arena-hard-auto@196f6b82: data/arena-hard-v0.1/question.jsonl (500)",
    "bfcl": "ShishirPatil/gorilla@6ea57973: berkeley-function-call-leaderboard/bfcl_eval/data/BFCL_v4_*.json (user turns)",
}

# LLMRouter tasks that are themselves judged test sets, or derived from one, and cannot be
# checked item by item against a complete copy: dropped whole.
BLOCKED_TASKS = {
    "human_eval": "HumanEval has only a test split",
    "agentverse-mgsm": "GSM8K test questions re-templated (near-duplicates of gsm8k_test)",
    "math": "MATH test split; only 1,200 of its 5,000 items are available here to check against",
}
# A task is dropped whole when more than this share of its rows match a judged test set: the
# rest are then very likely the same split with edits the matcher did not see.
DROP_TASK_SHARE = 0.5


def _lines(path: Path) -> list[str]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            text = f.read()
    else:
        text = path.read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line.strip()]


def _csv_first_column(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row[0] for row in csv.reader(f) if row]


def _bfcl_user_turns(path: Path) -> list[str]:
    out: list[str] = []
    for line in _lines(path):
        try:
            question = json.loads(line).get("question", [])
        except (json.JSONDecodeError, AttributeError):
            continue  # a few BFCL files are not JSON lines (format variants of the same items)
        for turn in question:
            for m in turn if isinstance(turn, list) else [turn]:
                if isinstance(m, dict) and m.get("role") == "user" and m.get("content"):
                    out.append(str(m["content"]))
    return out


def _read_items(src: Path) -> dict[str, list[str]]:
    def jsonl(name: str, key: str) -> list[Any]:
        return [json.loads(x)[key] for x in _lines(src / name)]

    return {
        "gsm8k_test": jsonl("gsm8k_test.jsonl", "question"),
        "mmlu_test": [q for f in sorted((src / "mmlu").glob("*.csv")) for q in _csv_first_column(f)],
        "math_test": jsonl("math_test.jsonl", "question"),
        "humaneval": jsonl("humaneval.jsonl.gz", "prompt"),
        "mt_bench": [t for turns in jsonl("mt_bench.jsonl", "turns") for t in turns],
        "alpaca_eval": [r["instruction"] for r in json.loads((src / "alpaca_eval.json").read_text())],
        "arena_hard": jsonl("arena_hard.jsonl", "prompt"),
        "bfcl": [t for f in sorted((src / "bfcl").glob("*.json")) for t in _bfcl_user_turns(f)],
    }


def cmd_signatures(args: argparse.Namespace) -> None:
    items = _read_items(Path(args.src))
    sig = Signatures.build(items)
    sig.save(SIGNATURES)
    print({k: len(v) for k, v in items.items()}, "->", SIGNATURES)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cmd_build(args: argparse.Namespace) -> None:
    sig = Signatures.load(SIGNATURES)
    queries = [
        json.loads(x)
        for name in ("default_query_train.jsonl", "default_query_test.jsonl")
        for x in (LLMROUTER / name).open()
    ]
    task_of = {q["query"].strip(): q["task_name"] for q in queries}
    rows, seen = [], set()
    for name in ("dcrouter_train.json", "dcrouter_test.json"):
        for r in json.loads((LLMROUTER / name).read_text()):
            key = " ".join(r["question"].split()).casefold()
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {"prompt": r["question"], "scores": r["scores"], "source": task_of[r["question"].strip()]}
            )
    per_task: Counter[str] = Counter(r["source"] for r in rows)
    hits: dict[str, Counter[str]] = {t: Counter() for t in per_task}
    matched = []
    for r in rows:
        m = sig.match(r["prompt"])
        matched.append(m)
        if m:
            hits[r["source"]][m] += 1
    dropped_tasks = dict(BLOCKED_TASKS)
    for task, c in hits.items():
        if task not in dropped_tasks and sum(c.values()) > DROP_TASK_SHARE * per_task[task]:
            dropped_tasks[task] = f"{sum(c.values())}/{per_task[task]} rows match a judged test set"
    kept = [r for r, m in zip(rows, matched, strict=True) if m is None and r["source"] not in dropped_tasks]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "routing_rows.jsonl"
    with path.open("w") as f:
        for r in kept:
            f.write(json.dumps(r) + "\n")  # ASCII: no U+2028 inside a line
    manifest = {
        "built_by": "python tools/decontaminate.py build",
        "built_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "inputs": {
            name: {
                "source": "ulab-uiuc/LLMRouter @ 4e7a796 (data/), via LLMROUTER_DATA",
                "licence": "MIT (LLMRouter LICENSE, shipped beside the files)",
                "sha256": _sha(LLMROUTER / name),
            }
            for name in (
                "dcrouter_train.json",
                "dcrouter_test.json",
                "default_query_train.jsonl",
                "default_query_test.jsonl",
            )
        },
        "how_scores_were_made": (
            "LLMRouter's dcrouter files: one answer per model and prompt from 9 open models, graded "
            "against the task's ground truth by its metric (exact match / accuracy / pass@1 / F1-style), "
            "mostly 0/1. Source task per prompt from default_query_*.jsonl (every prompt matched)."
        ),
        "judged_test_sets": {"sources": SOURCES, "signature_items": sig.counts()},
        "rows_before": len(rows),
        "rows_per_task_before": dict(sorted(per_task.items())),
        "matches_per_task": {t: dict(c) for t, c in sorted(hits.items()) if c},
        "dropped_tasks": dropped_tasks,
        "rows_kept": len(kept),
        "rows_per_task_kept": dict(sorted(Counter(r["source"] for r in kept).items())),
        "output_sha256": _sha(path),
        "ship": "not shipped: rebuilt from the public MIT files by this command (output outside the repo)",
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        json.dumps(
            {k: manifest[k] for k in ("matches_per_task", "dropped_tasks", "rows_per_task_kept")}, indent=1
        )
    )
    print(f"{len(kept)} rows -> {path}; manifest -> {MANIFEST}")


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("signatures")
    s.add_argument("--from", dest="src", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", default="/tmp/riq15/data")
    args = p.parse_args()
    {"signatures": cmd_signatures, "build": cmd_build}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
