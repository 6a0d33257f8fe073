"""Render one `routeiq eval` run: a Markdown section for bench/RESULTS.md, PNG plots, JSON."""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routeiq.training.evaluate import EvalResult, pair_curves, per_model_auc, routing_summary, threshold_curve
from routeiq.training.scores import PairCurve

SECTION = "## Trained routers"
TARGET_US = {"knn": 300.0, "mlp": 100.0, "linear": 100.0, "mf": 100.0}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pair_table(result: EvalResult, curves: dict[tuple[str, str], dict[str, PairCurve]]) -> list[str]:
    pairs = list(curves)
    head = "| scorer | " + " | ".join(f"{s} vs {w}: APGR / CPT(50%) / CPT(80%)" for s, w in pairs) + " |"
    lines = [head, "|---|" + "---|" * len(pairs)]
    names = list(next(iter(curves.values())))
    for name in names:
        cells = []
        for pair in pairs:
            c = curves[pair].get(name)
            cells.append("n/a" if c is None else f"{c.apgr:.3f} / {_pct(c.cpt(0.5))} / {_pct(c.cpt(0.8))}")
        label = f"**{name}**" if name in {r.name for r in result.routers} else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _pair_summary(result: EvalResult, curves: dict[tuple[str, str], dict[str, PairCurve]]) -> str:
    routers = {r.name for r in result.routers}
    parts = []
    for (strong, weak), by_name in curves.items():
        trained = [c.apgr for name, c in by_name.items() if name in routers]
        parts.append(
            f"{strong} vs {weak}: trained routers APGR {min(trained):.3f}–{max(trained):.3f}, "
            f"centroid complexity {by_name['centroid complexity'].apgr:.3f}, "
            f"prompt length {by_name['prompt length'].apgr:.3f}"
        )
    return "Reading: " + "; ".join(parts) + " (random 0.500)."


def _pair_gaps(result: EvalResult) -> list[str]:
    out = []
    for strong, weak in result.plan.pairs:
        qs = result.actual[:, result.models.index(strong)].mean()
        qw = result.actual[:, result.models.index(weak)].mean()
        out.append(f"`{strong}` {qs:.3f} vs `{weak}` {qw:.3f}")
    return out


def markdown(result: EvalResult, command: str, plots: dict[str, str]) -> str:
    info = result.info
    curves = {pair: pair_curves(result, *pair) for pair in result.plan.pairs}
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
    ]
    train = info.get("train")
    if train:
        lines.append(
            f"Data: trained on `{train['source']}` ({train['rows_in_file']} rows; "
            f"{train.get('holdout_prompts_dropped', 0)} prompts that also appear in the evaluation file "
            f"dropped, {train['duplicates_dropped']} duplicates → {train['rows']} rows), evaluated on "
            f"`{result.plan.data.name}` ({info['eval_rows']} prompts). Split verified: each router's "
            "manifest records the sha256 of its training rows, and it equals the hash of "
            "(train file − evaluation prompts) recomputed here: "
            + ", ".join(f"{r.name} {'yes' if r.verified_split else 'NO'}" for r in result.routers)
            + "."
        )
    lines += [
        "",
        f"Embedder `{info['embedder']}` (sha256 `{info['embedder_sha256'][:12]}…`), token budget "
        f"{info['token_budget']}, the service's own text extraction; centroid `complexity` from the "
        f"live classify() with `models/complexity.json` sha256 `{info['complexity_sha256'][:12]}…`.",
        "",
        "### Strong/weak pairs (RouteLLM metrics)",
        "",
        "Score = predicted quality(strong) − predicted quality(weak) for routers; prompt length "
        "(task tokens) and the centroid pipeline's `complexity` as baselines; random is the "
        "straight line (APGR 0.5); oracle knows the answers. Mean quality on the evaluation set: "
        + "; ".join(_pair_gaps(result))
        + ".",
        "",
        *_pair_table(result, curves),
        "",
        _pair_summary(result, curves),
        "",
    ]
    lines += [f"![{k}]({v})" for k, v in plots.items() if k.startswith("pair")]
    lines += ["", "### Nine-model routing and per-model prediction", ""]
    lines += _routing_table(result)
    lines += ["", "Per-model AUC (score ≥ 0.5 counts as a good answer):", ""]
    lines += _auc_table(result)
    lines += ["", *[f"![{k}]({v})" for k, v in plots.items() if k.startswith("cost")], ""]
    lines += ["### Inference cost per decision beyond the embedding", ""]
    lines += _timing_table(result)
    if result.refused:
        lines += ["", "Refused routers: " + "; ".join(f"{k}: {v}" for k, v in result.refused.items())]
    return "\n".join(lines) + "\n"


def _routing_table(result: EvalResult) -> list[str]:
    y, costs = result.actual, result.costs
    best = int(y.mean(axis=0).argmax())
    lines = [
        "Serving rule = the cheapest model whose predicted quality meets a threshold (what `ml:<name>` "
        "does with `balanced` profiles); `argmax` = the best-predicted model regardless of cost. "
        f"Hindsight best single model on this set: `{result.models[best]}` (quality "
        f"{y[:, best].mean():.3f} at ${costs[best]:.2f}/Mtok); oracle quality {y.max(axis=1).mean():.3f}; "
        f"a random model {y.mean():.3f} at ${costs.mean():.2f}. On "
        f"{_pct(float((y.max(axis=1) - y.min(axis=1) < 1e-9).mean()))} of the prompts every model "
        "scores the same (any pick is right there, which inflates every accuracy).",
        "",
        "| router | mean AUC | mean MAE | argmax accuracy | argmax quality | argmax $/Mtok "
        "| best quality at ≤ best-single cost | lowest $/Mtok matching best single |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best_q, best_c = y[:, best].mean(), costs[best]
    for router in result.routers:
        s = routing_summary(result, router)
        curve = threshold_curve(result, router)
        under = [p["quality"] for p in curve if p["cost"] <= best_c + 1e-9]
        match = [p["cost"] for p in curve if p["quality"] >= best_q - 1e-9]
        lines.append(
            f"| {router.name} | {s['auc']:.3f} | {s['mae']:.3f} | {_pct(s['accuracy'])} | {s['quality']:.3f} "
            f"| {s['cost']:.3f} | {max(under):.3f} | {f'{min(match):.3f}' if match else 'never'} |"
        )
    return lines


def _auc_table(result: EvalResult) -> list[str]:
    names = [r.name for r in result.routers]
    lines = ["| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    aucs = {r.name: per_model_auc(result, r) for r in result.routers}
    for model in result.models:
        cells = [f"{aucs[n][model]:.3f}" if model in aucs[n] else "n/a" for n in names]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def _timing_table(result: EvalResult) -> list[str]:
    lines = [
        "One prompt's vector through onnxruntime (1 thread), after warm-up; `estimate` adds candidate "
        f"name matching over the {len(result.models)} catalog models. {result.plan.timing_runs} runs each; "
        "p99 is at the mercy of the shared 2-core machine (other jobs run alongside).",
        "",
        "| router | kind | graph size | predict p50 | predict p99 | estimate p50 | target (p50) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result.routers:
        t = r.timing_us
        target = TARGET_US[r.kind]
        ok = "met" if t["predict_p50_us"] <= target else "MISSED"
        lines.append(
            f"| {r.name} | {r.kind} | {r.graph_bytes / 1e6:.2f} MB | {t['predict_p50_us']:.0f} µs "
            f"| {t['predict_p99_us']:.0f} µs | {t['estimate_p50_us']:.0f} µs | ≤ {target:.0f} µs ({ok}) |"
        )
    return lines


def plot(result: EvalResult, folder: Path, link_base: Path) -> dict[str, str]:
    """PNG files; returns {label: path relative to link_base} for the Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    links: dict[str, str] = {}
    for strong, weak in result.plan.pairs:
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=90)
        for name, curve in pair_curves(result, strong, weak).items():
            style = "--" if name in ("random", "oracle") else "-"
            ax.plot(curve.shares * 100, curve.pgr, style, label=f"{name} ({curve.apgr:.3f})", linewidth=1.3)
        ax.set_xlabel("strong-model calls (%)")
        ax.set_ylabel("performance gap recovered")
        ax.set_title(f"{strong} vs {weak}", fontsize=9)
        ax.axhline(0.5, color="grey", linewidth=0.5)
        ax.axhline(0.8, color="grey", linewidth=0.5)
        ax.legend(fontsize=7, title="APGR", title_fontsize=7)
        ax.grid(alpha=0.3)
        path = folder / f"pair-{strong}-vs-{weak}.png"
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        links[f"pair {strong} vs {weak}"] = os.path.relpath(path, link_base)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=90)
    for router in result.routers:
        points = threshold_curve(result, router)
        ax.plot(
            [p["cost"] for p in points], [p["quality"] for p in points], "-", label=router.name, linewidth=1.3
        )
    ax.scatter(result.costs, result.actual.mean(axis=0), color="black", s=12, label="single models")
    ax.set_xlabel("mean $ per Mtok")
    ax.set_ylabel("mean quality")
    ax.set_title("cost vs quality: cheapest model over a threshold, thresholds 0..1", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path = folder / "cost-quality.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    links["cost-quality"] = os.path.relpath(path, link_base)
    return links


def write_section(results_md: Path, section: str, heading: str = SECTION) -> None:
    """Replace this section of RESULTS.md (up to the next `## ` heading) or append it."""
    text = results_md.read_text(encoding="utf-8") if results_md.exists() else "# Results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results_md.parent.mkdir(parents=True, exist_ok=True)
    results_md.write_text(text, encoding="utf-8")


def to_json(result: EvalResult) -> dict[str, Any]:
    out: dict[str, Any] = {"info": result.info, "models": result.models, "pairs": {}, "routers": {}}
    for strong, weak in result.plan.pairs:
        out["pairs"][f"{strong} vs {weak}"] = {
            name: {"apgr": round(c.apgr, 4), "cpt50": round(c.cpt(0.5), 4), "cpt80": round(c.cpt(0.8), 4)}
            for name, c in pair_curves(result, strong, weak).items()
        }
    for router in result.routers:
        out["routers"][router.name] = {
            "kind": router.kind,
            "summary": {k: round(v, 4) for k, v in routing_summary(result, router).items()},
            "per_model_auc": {k: round(v, 4) for k, v in per_model_auc(result, router).items()},
            "timing_us": {k: round(v, 1) for k, v in router.timing_us.items()},
            "graph_bytes": router.graph_bytes,
            "verified_split": router.verified_split,
        }
    return out


def write_json(result: EvalResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(result), indent=2, default=float) + "\n", encoding="utf-8")
