"""Per-category need for a stronger model, from WildBench's published per-task-group scores.

WildBench (github.com/allenai/WildBench, Apache-2.0) judges ~1,000 real user conversations and
publishes, per model, a score for each of five task groups. Across its 61 models the groups
separate strong from weak models very differently (math and coding far more than creative
writing or advice). That is the between-kind question the complexity score's category offset
answers, measured on chat traffic that is in none of the judged test sets.

Need per group = the cross-source target (`crossval.target`: mean of "strong beats weak" and
"weak fails") with the group's scores rescaled to [0, 1], averaged over every pair of a top-10
model and a model ranked 21st or lower by overall score. Our categories take the group that
holds them (the mapping is WildBench's own tag grouping: Editing, Role playing and Brainstorming
are Creative Tasks); `analysis` and `reasoning` span two groups and take their mean; `tool_use`
has no group and takes the mean of all.

Output: bench/data/category_need_wildbench.json — offsets (need minus the mean over categories),
the per-group needs, and the input's sha256. The cross-source table scores `+wb` rows with these
offsets; nothing here is fitted on LLMRouter data.

Usage:
  python tools/wildbench_prior.py --stats all_stat_wildbench.-1.json
(from allenai/WildBench @ d6b8dcaf: leaderboard/data_dir/all_stat_wildbench.-1.json)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "data" / "category_need_wildbench.json"
EXPECTED_SHA256 = "a03044bf4873d6f9db086826b5f932691454012a86bce9936ecfc57f9c1ceef7"
GROUPS = (
    "Creative Tasks",
    "Planning & Reasoning",
    "Math & Data Analysis",
    "Information/Advice seeking",
    "Coding & Debugging",
)
CATEGORY_GROUPS: dict[str, tuple[str, ...]] = {
    "code_generation": ("Coding & Debugging",),
    "creative_writing": ("Creative Tasks",),
    "summarization": ("Creative Tasks",),  # WildBench files summaries and rewrites under Editing
    "translation": ("Creative Tasks",),  # ... and so translations
    "conversation": ("Information/Advice seeking",),
    "analysis": ("Information/Advice seeking", "Planning & Reasoning"),
    "reasoning": ("Planning & Reasoning", "Math & Data Analysis"),
    "tool_use": GROUPS,
}
TOP, WEAK_FROM = 10, 20


def quality(score: float) -> float:
    # WB_score = (s - 5) * 20 for a 1..10 judge score s; quality = s / 10.
    return (score / 20 + 5) / 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stats", type=Path, required=True)
    args = parser.parse_args()
    raw = args.stats.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256:
        raise SystemExit(f"{args.stats}: sha256 {digest}, expected {EXPECTED_SHA256}")
    models = []
    for name, row in json.loads(raw).items():
        try:
            overall = float(row["WB_score"])
            groups = np.array([quality(float(row[f"WB_score.{g}"])) for g in GROUPS])
        except (KeyError, TypeError, ValueError):
            continue
        models.append((overall, name, groups))
    models.sort(key=lambda m: -m[0])
    strong, weak = models[:TOP], models[WEAK_FROM:]
    need = np.zeros(len(GROUPS))
    for _, _, qs in strong:
        for _, _, qw in weak:
            need += (np.clip((qs - qw + 1) / 2, 0, 1) + (1 - qw)) / 2
    need /= len(strong) * len(weak)
    by_group = dict(zip(GROUPS, need.tolist(), strict=True))
    per_category = {c: float(np.mean([by_group[g] for g in gs])) for c, gs in CATEGORY_GROUPS.items()}
    mean = float(np.mean(list(per_category.values())))
    out = {
        "source": "github.com/allenai/WildBench @ d6b8dcaf377d173d031980f97c16e1a82618c03d: "
        "leaderboard/data_dir/all_stat_wildbench.-1.json (Apache-2.0)",
        "sha256": digest,
        "models": len(models),
        "pairs": f"top {TOP} x rank > {WEAK_FROM} by WB_score ({len(strong) * len(weak)} pairs)",
        "need_by_group": {g: round(v, 4) for g, v in by_group.items()},
        "category_groups": {c: list(gs) for c, gs in CATEGORY_GROUPS.items()},
        "offsets": {c: round(v - mean, 4) for c, v in per_category.items()},
    }
    OUT.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["offsets"], indent=2))


if __name__ == "__main__":
    main()
