"""Cross-source evaluation: fit on some sources, score on another (leave-one-source-out).

Numbers measured on the data a score was fitted on mislead (a score tuned on one benchmark's
quirks ranks its own held-out split well and other prompts at random). Here every row carries a
`source` (the task or benchmark it came from); for each source, every fitted scorer is refitted
on the *other* sources only and scored on it with RouteLLM's APGR, averaged over strong/weak
pairs. Random (0.5 by construction: ties are split evenly) and prompt length stand beside every
row. Sources are grouped into kinds (exam-style multiple choice, math word problems, open-ended
questions, code, logic) so a kind's number is the mean over sources the scorer never saw.

Scorers:
- `length`: task tokens (the baseline to beat);
- `shipped`: the service's `complexity` with the current models/complexity.json (not refitted);
- `mono:<features>`: logistic model over complexity features with non-negative weights on the
  structural ones (more length, steps, constraints, math, code, reasoning can only raise it),
  fitted on the other sources with the same target the shipped score is fitted with;
  `+cat` adds a per-category offset (unconstrained, shrunk);
- `router:<kind>`: a trained router (knn / linear / mf / mlp) fitted on the other sources;
  score = predicted quality(strong) - predicted quality(weak).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.decision.classify import FEATURES, ComplexityModel, classify
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import extract_signals
from routeiq.errors import InvalidRequest
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.snapshot import centroids_for
from routeiq.training import trainers
from routeiq.training.data import Example, load_examples, model_names, score_matrix
from routeiq.training.embeddings import embed_examples
from routeiq.training.scores import pair_curve

F64 = npt.NDArray[np.float64]

# The chat set (tools/build_chat_eval.py): scored, never fitted on. Its rows carry, per pair of
# models "stronger>weaker", the stronger one's judged win share instead of per-model scores.
CHAT_SOURCE = "oasst_chat"
# Pairs scored: the stronger model wins 60-90 % over the set. Closer pairs are ties; in wider ones
# (gpt-4 against the 7B and 13B models, 92-95 %) nearly every prompt needs the stronger model, so
# no ranking can recover much and every scorer reads ~0.5.
CHAT_SHARE_BAND = (0.6, 0.9)
CHAT_FILE = Path(__file__).resolve().parents[3] / "bench" / "data" / "chat_eval_oasst.jsonl"
# Category offsets measured on WildBench (tools/wildbench_prior.py): applied as they are, not fitted.
# The file is in the repository, not in an installed package, so `load` takes the offsets as an
# argument; `routeiq eval --cross-source` reads them from --category-prior, this path by default.
PRIOR_FILE = Path(__file__).resolve().parents[3] / "bench" / "data" / "category_need_wildbench.json"

# Which kind of prompt each LLMRouter task is (the kinds the service is judged on, plus two).
KINDS: dict[str, str] = {
    "mmlu": "exam",
    "arc_challenge": "exam",
    "openbook_qa": "exam",
    "commonsense_qa": "exam",
    "gpqa": "exam",
    "gsm8k": "math",
    "math": "math",
    "agentverse-mgsm": "math",
    "natural_qa": "open",
    "trivia_qa": "open",
    "commongen": "open",
    "mbpp": "code",
    "human_eval": "code",
    "agentverse-logicgrid": "logic",
    CHAT_SOURCE: "chat",
}

# The complexity model has two parts, fitted separately because they answer different questions:
# - within a source (one benchmark, one kind of task): which of these prompts is harder? Fitted
#   on the target minus its source mean, with non-negative weights (longer, more questions can
#   only raise it). Only features that vary inside a task belong here.
# - between kinds of task (math vs trivia vs code): which kind needs a stronger model more? A
#   per-category offset and the task-kind flags, fitted on what the first part leaves, scaled by
#   alpha. It shifts whole groups, so inside one benchmark it only helps where the benchmark
#   mixes kinds (open-ended chat) and adds noise where it does not.
WITHIN_SETS: dict[str, tuple[str, ...]] = {
    "len": ("length",),
    "len+q": ("length", "questions"),
    "len+q+steps+constraints": ("length", "questions", "steps", "constraints"),
    "len+q+tier": ("length", "questions", "tier"),
}
BETWEEN_SETS: dict[str, tuple[str, ...]] = {
    "cat": ("+cat",),
    # the expected offset under the category probabilities: no cliff at the confidence line,
    # and a prompt the classifier is unsure of gets a blend instead of one category's offset
    # (measured only: the service applies the decided category's offset)
    "catp": ("+catp",),
    "tier+cat": ("tier", "+cat"),
    "flags+tier+cat": ("math", "code", "reasoning", "tier", "+cat"),
    # WildBench's per-category need (chat traffic, not these sources), for the decided category
    # and under the category probabilities; scaled by alpha, never refitted here
    "wb": ("+wb",),
    "wbp": ("+wbp",),
}
FIXED_BETWEEN = frozenset({"+wb", "+wbp"})
BETWEEN_L2 = 1e-2


@dataclass
class CrossData:
    sources: list[str]
    scores: F64  # (n, models)
    models: list[str]
    vectors: npt.NDArray[np.float32]
    features: F64  # (n, len(FEATURES))
    categories: list[str | None]  # the decision's category; None below the confidence line
    labels: list[str]  # category labels of the centroids
    category_probs: F64  # (n, len(labels)): the decision's category probabilities
    shipped: F64
    length: F64
    # candidate features not (yet) in the service's FEATURES, by name (bench scripts add them)
    extra: dict[str, F64] = field(default_factory=dict)
    # chat rows (source CHAT_SOURCE): pair "stronger>weaker" -> the stronger one's win share per
    # row (NaN on other rows and where that pair was not judged)
    chat_share: dict[str, F64] = field(default_factory=dict)

    @property
    def fittable(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = np.array(self.sources) != CHAT_SOURCE
        return out


def read_prior(path: Path) -> dict[str, float]:
    """A category prior file's offsets (category -> need of a stronger model, centred on 0);
    InvalidRequest naming the file when it cannot be read or is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"category prior {path}: {exc.strerror or exc}", field="category_prior") from exc
    except ValueError as exc:
        raise InvalidRequest(f"category prior {path} is not JSON: {exc}", field="category_prior") from exc
    offsets = document.get("offsets") if isinstance(document, dict) else None
    if not isinstance(offsets, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in offsets.values()
    ):
        raise InvalidRequest(
            f'category prior {path} has no "offsets" object of category -> number '
            "(tools/wildbench_prior.py writes one)",
            field="category_prior",
        )
    return {str(k): float(v) for k, v in offsets.items()}


def load(
    path: Path,
    settings: Settings,
    embedder: OnnxEmbedder,
    chat: Path | None = None,
    prior: dict[str, float] | None = None,
) -> CrossData:
    """The rows of `path` (and the chat set) as the service classifies them. Without `prior` the
    scorers that need it (+wb, +wbp) have no column, so `run` leaves them out: zero offsets
    would pass for a measured prior that changes nothing."""
    raw = [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
    examples: list[Example] = load_examples(path, settings.token_budget)
    sources = [str(r.get("source", "unknown")) for r in raw]
    models = model_names(examples)
    y, _ = score_matrix(examples, models)
    text = chat.read_text(encoding="utf-8") if chat else ""
    chats = [json.loads(line) for line in text.split("\n") if line.strip()]
    for row in chats:
        request = RouteRequest.model_validate({"messages": row["messages"]})
        examples.append(Example(request, tuple(embed_segments(view_of(request), settings.token_budget)), {}))
        sources.append(CHAT_SOURCE)
    y = np.vstack([y, np.full((len(chats), len(models)), np.nan)])
    vectors = embed_examples(embedder, examples, settings.token_budget)
    # The centroids (and category head) the service itself would use.
    centroids = centroids_for(settings, embedder)
    model = ComplexityModel.load(settings.models_path / "complexity.json")
    labels = list(centroids.categories.labels)
    feats, cats, probs, shipped, length = [], [], [], [], []
    for example, vector in zip(examples, vectors, strict=True):
        view = view_of(example.request)
        sig = extract_signals(view, len(example.request.tools or []))
        c = classify(vector, sig, centroids, model, min_confidence=settings.min_category_confidence)
        feats.append([c.features[f] for f in FEATURES])
        cats.append(None if c.low_confidence else c.category)
        # all on the category a structural rule chose, else the classifier's probabilities
        mix = {c.category: 1.0} if c.heuristic else c.category_scores
        probs.append([mix.get(label, 0.0) for label in labels])
        shipped.append(c.complexity)
        length.append(sig.task_tokens)
    probs_arr = np.array(probs, dtype=np.float64)
    start = len(raw)
    pairs = sorted({pair for row in chats for pair in row["share"]})
    share = {pair: np.full(len(sources), np.nan) for pair in pairs}
    for i, row in enumerate(chats):
        for pair, v in row["share"].items():
            share[pair][start + i] = float(v)
    return CrossData(
        sources,
        y.astype(np.float64),
        models,
        vectors,
        np.array(feats, dtype=np.float64),
        cats,
        labels,
        probs_arr,
        np.array(shipped),
        np.array(length, dtype=np.float64),
        extra={} if prior is None else _prior_columns(prior, cats, labels, probs_arr),
        chat_share=share,
    )


def _prior_columns(
    prior: dict[str, float], categories: list[str | None], labels: list[str], probs: F64
) -> dict[str, F64]:
    """The prior's offset for the decided category (0 below the confidence line) and its
    expectation under the category probabilities."""
    offsets = np.array([prior.get(label, 0.0) for label in labels])
    return {
        "+wb": np.array([prior.get(c, 0.0) if c else 0.0 for c in categories]),
        "+wbp": probs @ offsets,
    }


def target(scores: F64, models: Sequence[str], pairs: Sequence[tuple[str, str]]) -> F64:
    """How much a stronger model is needed on each prompt: the mean of "strong beats weak"
    ((strong - weak + 1) / 2) and "weak fails" (1 - weak) over the pairs."""
    strong = np.mean([scores[:, models.index(s)] for s, _ in pairs], axis=0)
    weak = np.mean([scores[:, models.index(w)] for _, w in pairs], axis=0)
    gap = np.clip((strong - weak + 1) / 2, 0, 1)
    out: F64 = (gap + (1 - weak)) / 2
    return out


def columns(data: CrossData, names: Sequence[str]) -> F64:
    cols = []
    for name in names:
        if name == "+cat":
            cols += [np.array([1.0 if c == label else 0.0 for c in data.categories]) for label in data.labels]
        elif name == "+catp":
            cols += [data.category_probs[:, i] for i in range(len(data.labels))]
        elif name in data.extra:
            cols.append(data.extra[name])
        else:
            cols.append(data.features[:, FEATURES.index(name)])
    return np.stack(cols, axis=1)


def demean(y: F64, sources: npt.NDArray[np.str_]) -> F64:
    out = y.copy()
    for s in set(sources.tolist()):
        m = sources == s
        out[m] -= out[m].mean()
    return out


def fit_nonneg(x: F64, y: F64, *, l2: float = 1e-2, iters: int = 500) -> F64:
    """Least squares with weights >= 0 (projected gradient on standardised columns); returned
    weights apply to raw x. Intercept-free: y is centred per source."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    gram, rhs = z.T @ z / len(z), z.T @ (y - y.mean()) / len(z)
    w = np.zeros(x.shape[1])
    for _ in range(iters):
        w = np.maximum(w - 0.5 * (gram @ w - rhs + l2 * w), 0.0)
    out: F64 = w / sd
    return out


def fit_ridge(x: F64, y: F64, l2: float = BETWEEN_L2) -> tuple[float, F64]:
    mu = x.mean(0)
    z = x - mu
    w = np.linalg.solve(z.T @ z / len(z) + l2 * np.eye(x.shape[1]), z.T @ (y - y.mean()) / len(z))
    return float(y.mean() - mu @ w), w


@dataclass(frozen=True)
class TwoLevel:
    within: tuple[str, ...]
    between: tuple[str, ...]
    w_within: F64
    w_between: F64  # already scaled by alpha
    bias: float

    def score(self, data: CrossData, rows: npt.NDArray[np.bool_]) -> F64:
        out: F64 = columns(data, self.within)[rows] @ self.w_within + self.bias
        if len(self.w_between):
            out = out + columns(data, self.between)[rows] @ self.w_between
        # With its bias, a fold's model predicts the need itself, not only an order inside one
        # source: the pooled column ranks every held-out prompt by its own fold's prediction,
        # as one model would rank mixed traffic. (The bias drifts a little with the source left
        # out, against that source; per-source APGR, a ranking, does not see it.)
        return out


def fit_two_level(
    data: CrossData,
    y: F64,
    rows: npt.NDArray[np.bool_],
    within: tuple[str, ...],
    between: tuple[str, ...],
    alpha: float,
) -> TwoLevel:
    src = np.array(data.sources)[rows]
    xw = columns(data, within)[rows]
    ww = fit_nonneg(xw, demean(y[rows], src))
    # Scale the within part to the target's units (its within-source least-squares slope) so the
    # between part is fitted on a residual in the same units.
    part = xw @ ww
    yd = demean(y[rows], src)
    pd = demean(part, src)
    slope = float(pd @ yd) / max(float(pd @ pd), 1e-12)
    ww = ww * slope
    resid = y[rows] - xw @ ww
    if alpha <= 0:
        return TwoLevel(within, (), ww, np.zeros(0), float(resid.mean()))
    if set(between) <= FIXED_BETWEEN:  # measured elsewhere: scaled, not fitted
        fixed = columns(data, between)[rows]
        wf = np.full(len(between), alpha)
        return TwoLevel(within, between, ww, wf, float((resid - fixed @ wf).mean()))
    b, wb = fit_ridge(columns(data, between)[rows], resid)
    return TwoLevel(within, between, ww, alpha * wb, float(b * alpha + (1 - alpha) * resid.mean()))


RouterFit = Callable[
    [npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]], trainers.Trained
]
ROUTERS: dict[str, RouterFit] = {
    "knn": lambda x, y, m: trainers.train_knn(x, y, m, k=40),
    "linear": lambda x, y, m: trainers.train_linear(x, y, m, epochs=30),
    "mf": lambda x, y, m: trainers.train_mf(x, y, m, epochs=30),
    "mlp": lambda x, y, m: trainers.train_mlp(x, y, m, epochs=15),
}


def fit_pairwise(
    x: npt.NDArray[np.float32],
    scores: F64,
    models: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    *,
    hinge: bool = False,
    l2: float = 1e-3,
    iters: int = 300,
) -> F64:
    """Bradley-Terry over the strong/weak pairs: P(strong beats weak | prompt) = sigmoid(w.x),
    trained on the prompts where the two differ (ties carry no preference). `hinge` = a linear
    SVM (squared hinge) on the same pairs. Returns w (last entry: bias)."""
    a = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    rows, labels = [], []
    for strong, weak in pairs:
        diff = scores[:, models.index(strong)] - scores[:, models.index(weak)]
        keep = diff != 0
        rows.append(a[keep])
        labels.append((diff[keep] > 0).astype(np.float64))
    xa, y = np.vstack(rows), np.concatenate(labels)
    w: F64 = np.zeros(xa.shape[1])
    lr = 0.1 if hinge else 0.5
    for _ in range(iters):
        z = xa @ w
        if hinge:
            t = 2 * y - 1
            g = -(t * np.maximum(0.0, 1 - t * z)) @ xa * 2 / len(y)
        else:
            g = (1 / (1 + np.exp(-z)) - y) @ xa / len(y)
        w -= lr * (g + l2 * w)
    return w


@dataclass
class CrossResult:
    pairs: list[tuple[str, str]]
    sources: dict[str, int]
    # scorer -> source -> mean APGR over pairs
    apgr: dict[str, dict[str, float]] = field(default_factory=dict)
    # every source's held-out scores pooled into one ranking: does the score also order kinds of
    # task the way they need a stronger model (what a benchmark mixing kinds, like chat, sees)?
    pooled: dict[str, float] = field(default_factory=dict)
    # in-distribution (fitted on all sources, scored on the same rows), for contrast only
    in_distribution: dict[str, float] = field(default_factory=dict)

    def by_kind(self, scorer: str) -> dict[str, float]:
        kinds: dict[str, list[float]] = {}
        for source, value in self.apgr[scorer].items():
            kinds.setdefault(KINDS.get(source, "other"), []).append(value)
        return {k: float(np.mean(v)) for k, v in kinds.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "sources": self.sources,
            "apgr": self.apgr,
            "by_kind": {s: self.by_kind(s) for s in self.apgr},
            "pooled": self.pooled,
            "in_distribution": self.in_distribution,
        }


def _mean_apgr(score: F64, scores: F64, models: Sequence[str], pairs: Sequence[tuple[str, str]]) -> float:
    values = []
    for s, w in pairs:
        qs, qw = scores[:, models.index(s)], scores[:, models.index(w)]
        if qs.mean() - qw.mean() > 0.02:  # a pair with (almost) no gap on a source says nothing
            values.append(pair_curve(score, qs, qw).apgr)
    return float(np.mean(values)) if values else float("nan")


def run(
    data: CrossData,
    pairs: Sequence[tuple[str, str]],
    *,
    routers: Sequence[str] = ("knn", "linear", "mf"),
    pairwise: Sequence[str] = (),
    within_sets: dict[str, tuple[str, ...]] | None = None,
    alphas: Sequence[float] = (0.5, 1.0),
) -> CrossResult:
    sets = WITHIN_SETS if within_sets is None else within_sets
    src = np.array(data.sources)
    names = sorted(set(data.sources), key=lambda s: (KINDS.get(s, "~"), s))
    result = CrossResult(list(pairs), {s: int((src == s).sum()) for s in names})
    y = target(data.scores, data.models, pairs)
    scorers: dict[str, Callable[[npt.NDArray[np.bool_], npt.NDArray[np.bool_]], F64]] = {
        "length": lambda tr, te: data.length[te],
        "shipped": lambda tr, te: data.shipped[te],
    }
    # a measured prior is a row only where its values were loaded (crossval.load reads them)
    betweens = [b for b in BETWEEN_SETS if not set(BETWEEN_SETS[b]) & FIXED_BETWEEN - set(data.extra)]
    combos = [(w, "", 0.0) for w in sets] + [(w, b, a) for w in sets for b in betweens for a in alphas if a]
    for wname, bname, alpha in combos:
        label = f"two-level:{wname}" + (f" + {alpha:g}×{bname}" if alpha else "")

        def fitted(
            tr: npt.NDArray[np.bool_],
            te: npt.NDArray[np.bool_],
            within: Any = sets[wname],
            between: Any = BETWEEN_SETS[bname] if bname else (),
            alpha: float = alpha,
        ) -> F64:
            return fit_two_level(data, y, tr, within, between, alpha).score(data, te)

        scorers[label] = fitted
    yf = data.scores.astype(np.float32)
    mask = np.ones_like(yf)
    for kind in routers:

        def routed(tr: npt.NDArray[np.bool_], te: npt.NDArray[np.bool_], kind: str = kind) -> F64:
            t = ROUTERS[kind](data.vectors[tr], yf[tr], mask[tr])
            pred = t.predict(data.vectors[te]).astype(np.float64)
            strong = np.mean([pred[:, data.models.index(s)] for s, _ in pairs], axis=0)
            weak = np.mean([pred[:, data.models.index(w)] for _, w in pairs], axis=0)
            out: F64 = strong - weak
            return out

        scorers[f"router:{kind}"] = routed
    for kind in pairwise:

        def preferred(tr: npt.NDArray[np.bool_], te: npt.NDArray[np.bool_], kind: str = kind) -> F64:
            w = fit_pairwise(data.vectors[tr], data.scores[tr], data.models, pairs, hinge=kind == "svm")
            out: F64 = data.vectors[te].astype(np.float64) @ w[:-1] + w[-1]
            return out

        scorers[f"router:{kind}"] = preferred
    fittable = data.fittable
    for label, scorer in scorers.items():
        result.apgr[label] = {}
        pooled = np.zeros(len(src))
        for source in names:
            te = src == source
            # The chat rows are never fitted on: every fold leaves them out, and they are scored
            # by a scorer fitted on all the other sources.
            out = scorer(~te & fittable, te)
            pooled[te] = out
            if source == CHAT_SOURCE:
                result.apgr[label][source] = _chat_apgr(out, data, te)
            else:
                result.apgr[label][source] = _mean_apgr(out, data.scores[te], data.models, pairs)
        result.pooled[label] = _mean_apgr(pooled[fittable], data.scores[fittable], data.models, pairs)
        result.in_distribution[label] = _mean_apgr(
            scorer(fittable, fittable), data.scores[fittable], data.models, pairs
        )
    return result


def _chat_apgr(score: F64, data: CrossData, rows: npt.NDArray[np.bool_]) -> float:
    """Mean APGR over the chat set's pairs in CHAT_SHARE_BAND: the stronger model's quality on a
    prompt is its judged win share against the weaker one, the weaker model's is the rest."""
    low, high = CHAT_SHARE_BAND
    values = []
    for share in data.chat_share.values():
        s = share[rows]
        judged = ~np.isnan(s)
        if judged.sum() > 1 and low <= s[judged].mean() <= high:
            values.append(pair_curve(score[judged], s[judged], 1 - s[judged]).apgr)
    return float(np.mean(values)) if values else float("nan")


SECTION = "## Across sources: complexity and routers on prompts they were not fitted on"

# Strong/weak pairs from the nine LLMRouter models: the two ~50B models against four 7-9B ones.
PAIRS: tuple[tuple[str, str], ...] = (
    ("llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"),
    ("llama-3.3-nemotron-super-49b-v1", "qwen2.5-7b-instruct"),
    ("llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct"),
    ("llama-3.3-nemotron-super-49b-v1", "gemma-2-9b-it"),
)
# The complexity model shipped in models/complexity.json (tools/fit_complexity.py), chosen on
# this table: the best mean over kinds among scorers never more than 0.01 below length on a kind.
CHOSEN = "two-level:len"


def choose(result: CrossResult, tolerance: float = 0.01, margin: float = 0.005) -> str:
    """The fitted complexity score with the best mean over kinds among those never more than
    `tolerance` below length on a kind; a score with more features must beat a simpler one by
    `margin` (scorers are listed simplest first)."""
    length = result.by_kind("length")
    # Length fitted alone (same ranking as length, calibrated) is the score to beat.
    best = "two-level:len" if "two-level:len" in result.apgr else "length"
    best_mean = float(np.mean(list(length.values())))
    for scorer in result.apgr:
        if not scorer.startswith("two-level:"):
            continue
        k = result.by_kind(scorer)
        mean = float(np.mean(list(k.values())))
        if min(k[x] - length[x] for x in k) >= -tolerance and mean > best_mean + margin:
            best, best_mean = scorer, mean
    return best


def markdown(result: CrossResult, command: str, machine: str, date: str, chosen: str, why: str) -> str:
    kinds = [k for k in ("exam", "math", "open", "code", "logic", "chat") if k in result.by_kind("length")]
    scorers = list(result.apgr)
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Date: {date}",
        "",
        "Leave-one-source-out: each fitted scorer is refitted on all *other* sources and scored on "
        "the held-out one (mean APGR over the strong/weak pairs whose gap on that source is > 0.02; "
        "random = 0.500 exactly, ties split evenly). Kind = mean over its sources. "
        f"Pairs: {', '.join(f'{s} / {w}' for s, w in result.pairs)}.",
        "",
        "| scorer | random | "
        + " | ".join(kinds)
        + " | mean of kinds | worst kind − length | mixed: every source pooled"
        " | in-distribution (fit = test, for contrast) |",
        "|---|---|" + "---|" * len(kinds) + "---|---|---|---|",
    ]
    length_k = result.by_kind("length")
    for scorer in scorers:
        k = result.by_kind(scorer)
        vals = [k.get(x, float("nan")) for x in kinds]
        worst = min(k[x] - length_k[x] for x in kinds if x in k)
        name = f"**{scorer}**" if scorer == chosen else scorer
        lines.append(
            f"| {name} | 0.500 | "
            + " | ".join(f"{v:.3f}" for v in vals)
            + f" | {np.nanmean(vals):.3f} | {worst:+.3f} | {result.pooled[scorer]:.3f}"
            f" | {result.in_distribution[scorer]:.3f} |"
        )
    lines += ["", "Per source (n prompts):", ""]
    names = list(result.sources)
    lines.append("| scorer | " + " | ".join(f"{s} ({result.sources[s]})" for s in names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for scorer in scorers:
        lines.append(f"| {scorer} | " + " | ".join(f"{result.apgr[scorer][s]:.3f}" for s in names) + " |")
    lines += ["", f"Chosen default: **{chosen}** — {why}"]
    return "\n".join(lines)
