"""Source-invariant embedding scorers for complexity, leave-one-source-out (same folds, pairs and
APGR as `routeiq eval --cross-source`).

Trained routers across sources sit at random because the embedding mostly says which benchmark
a prompt came from. Here every training source has its mean embedding *and* its mean target
removed before a ridge fit, so the fit can only use how prompts differ inside one source; on the
held-out source a constant shift of the embedding moves every score equally, so nothing is lost
by not centring it there. Two scorers per L2 strength:
- `centred-emb ridge`: the embedding alone;
- `length + λ×centred-emb-residual`: standardised length plus λ times the standardised
  embedding score fitted on what length leaves (so it can only add to length).

Usage: python bench/cross_source_invariant.py --data ROWS.jsonl [--json OUT]
(ROWS from `python tools/decontaminate.py build`). Prints a markdown table by kind of task.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routeiq.decision.classify import FEATURES
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.training import crossval as cv

F64 = npt.NDArray[np.float64]
L2S = (1e-3, 1e-2, 1e-1)
LAMBDAS = (0.25, 0.5, 1.0)
KINDS = ("exam", "math", "open", "code", "logic")


def centre(m: F64, groups: npt.NDArray[np.str_]) -> F64:
    out = m.copy()
    for g in set(groups.tolist()):
        rows = groups == g
        out[rows] -= out[rows].mean(axis=0)
    return out


def ridge(a: F64, b: F64, l2: float) -> F64:
    w: F64 = np.linalg.solve(a.T @ a + l2 * len(b) * np.eye(a.shape[1]), a.T @ b)
    return w


def standard(v: F64) -> F64:
    out: F64 = (v - v.mean()) / (v.std() + 1e-12)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings()
    start = time.time()
    data = cv.load(args.data, settings, OnnxEmbedder(settings.embedder_dir))
    pairs = list(cv.PAIRS)
    y = cv.target(data.scores, data.models, pairs)
    src = np.array(data.sources)
    x = data.vectors.astype(np.float64)
    length = data.features[:, FEATURES.index("length")]
    result: dict[str, dict[str, float]] = {}

    def add(name: str, source: str, score: F64) -> None:
        rows = src == source
        result.setdefault(name, {})[source] = cv._mean_apgr(score, data.scores[rows], data.models, pairs)

    for source in sorted(set(data.sources)):
        te, tr = src == source, src != source
        xc, yc = centre(x[tr], src[tr]), cv.demean(y[tr], src[tr])
        lc = centre(length[tr, None], src[tr])[:, 0]
        add("length", source, data.length[te])
        beta = float(lc @ yc / (lc @ lc))
        for l2 in L2S:
            add(f"centred-emb ridge l2={l2:g}", source, x[te] @ ridge(xc, yc, l2))
            residual = x[te] @ ridge(xc, yc - beta * lc, l2)
            for lam in LAMBDAS:
                name = f"length + {lam:g}×centred-emb-residual l2={l2:g}"
                add(name, source, standard(length[te]) + lam * standard(residual))

    def by_kind(per_source: dict[str, float]) -> dict[str, float]:
        kinds: dict[str, list[float]] = {}
        for s, v in per_source.items():
            kinds.setdefault(cv.KINDS.get(s, "other"), []).append(v)
        return {k: float(np.mean(v)) for k, v in kinds.items()}

    base = by_kind(result["length"])
    print(f"{len(y)} rows, {len(set(data.sources))} sources, {time.time() - start:.0f} s\n")
    print("| scorer | " + " | ".join(KINDS) + " | mean of kinds | worst kind − length |")
    print("|---|" + "---|" * (len(KINDS) + 2))
    for name, per_source in result.items():
        k = by_kind(per_source)
        cells = " | ".join(f"{k[kind]:.3f}" for kind in KINDS)
        worst = min(k[kind] - base[kind] for kind in KINDS)
        print(f"| {name} | {cells} | {np.mean([k[kind] for kind in KINDS]):.3f} | {worst:+.3f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
