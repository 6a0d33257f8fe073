"""Leave-one-source-out evaluation: a fold never sees its held-out source; fits stay monotone."""

from __future__ import annotations

import numpy as np

from routeiq.decision.classify import FEATURES
from routeiq.training import crossval


def _data(n_per: int = 60) -> crossval.CrossData:
    rng = np.random.default_rng(0)
    sources = [s for s in ("gsm8k", "mbpp", "trivia_qa") for _ in range(n_per)]
    n = len(sources)
    feats = rng.random((n, len(FEATURES)))
    length = feats[:, FEATURES.index("length")]
    # Longer prompts are harder inside every source: weak fails them, strong does not.
    weak = (rng.random(n) > length).astype(float)
    strong = np.ones(n)
    models = ["strong", "weak"]
    return crossval.CrossData(
        sources,
        np.stack([strong, weak], axis=1),
        models,
        rng.standard_normal((n, 4)).astype(np.float32),
        feats,
        ["conversation"] * n,
        ["conversation"],
        np.ones((n, 1)),
        rng.random(n),
        length * 100,
    )


def test_fit_nonneg_keeps_weights_non_negative() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((200, 3))
    y = x[:, 0] - 2 * x[:, 1]
    w = crossval.fit_nonneg(x, y)
    assert (w >= 0).all() and w[0] > 0 and w[1] == 0


def test_cross_source_table_has_baselines_and_scores_each_source_held_out() -> None:
    data = _data()
    seen: list[set[str]] = []
    original = crossval.fit_two_level

    def spy(d, y, rows, *args):  # type: ignore[no-untyped-def]
        seen.append(set(np.array(d.sources)[rows].tolist()))
        return original(d, y, rows, *args)

    crossval.fit_two_level = spy  # type: ignore[assignment]
    try:
        result = crossval.run(data, [("strong", "weak")], routers=(), within_sets={"len": ("length",)})
    finally:
        crossval.fit_two_level = original
    assert {"length", "shipped", "two-level:len"} <= set(result.apgr)
    # 3 held-out folds (each fitted on the other two sources) + 1 in-distribution fit
    folds = [s for s in seen if len(s) == 2]
    assert len(folds) >= 3 and all(len(s) == 2 for s in folds)
    # length decides difficulty here, so the fitted length score beats random on every source
    assert all(v > 0.55 for v in result.apgr["two-level:len"].values())
    text = crossval.markdown(result, "cmd", "machine", "date", "two-level:len", "why")
    assert "| length | 0.500 |" in text and "random" in text
    # every scorer is also scored on all held-out sources pooled (mixed traffic)
    assert "mixed: every source pooled" in text and set(result.pooled) == set(result.apgr)


def test_fitted_scores_carry_their_bias_so_folds_pool_as_one_model() -> None:
    data = _data()
    y = crossval.target(data.scores, data.models, [("strong", "weak")])
    rows = np.ones(len(data.sources), dtype=bool)
    fit = crossval.fit_two_level(data, y, rows, ("length",), (), 0.0)
    predicted = fit.score(data, rows)
    # the prediction is the need itself (its mean is the target's), not a centred order
    assert abs(predicted.mean() - y.mean()) < 0.02


def test_pairwise_bradley_terry_learns_the_preference_direction() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 3)).astype(np.float32)
    strong_wins = (x[:, 0] > 0).astype(float)
    scores = np.stack([strong_wins, 1 - strong_wins], axis=1)
    for hinge in (False, True):
        w = crossval.fit_pairwise(x, scores, ["s", "w"], [("s", "w")], hinge=hinge)
        assert w[0] > 0 and abs(w[0]) > abs(w[1]) and abs(w[0]) > abs(w[2])


def _with_chat(data: crossval.CrossData, n: int = 80) -> crossval.CrossData:
    """Append chat rows: the stronger model wins the long ones and loses most short ones (a pair
    inside the scored band); they have no model scores. A second pair, won everywhere, is out of
    the band and not scored."""
    rng = np.random.default_rng(3)
    feats = rng.random((n, len(FEATURES)))
    length = feats[:, FEATURES.index("length")]
    share = np.where(length > 0.5, 1.0, 0.3)
    m = len(data.sources)
    data.sources += [crossval.CHAT_SOURCE] * n
    data.scores = np.vstack([data.scores, np.full((n, len(data.models)), np.nan)])
    data.vectors = np.vstack(
        [data.vectors, rng.standard_normal((n, data.vectors.shape[1])).astype(np.float32)]
    )
    data.features = np.vstack([data.features, feats])
    data.categories += ["conversation"] * n
    data.category_probs = np.vstack([data.category_probs, np.ones((n, 1))])
    data.shipped = np.concatenate([data.shipped, rng.random(n)])
    data.length = np.concatenate([data.length, length * 100])
    data.chat_share = {
        "strong>weak": np.concatenate([np.full(m, np.nan), share]),
        "strong>weakest": np.concatenate([np.full(m, np.nan), np.ones(n)]),
    }
    return data


def test_chat_rows_are_scored_as_their_own_kind_and_never_fitted_on() -> None:
    data = _with_chat(_data())
    seen: list[set[str]] = []
    original = crossval.fit_two_level

    def spy(d, y, rows, *args):  # type: ignore[no-untyped-def]
        seen.append(set(np.array(d.sources)[rows].tolist()))
        return original(d, y, rows, *args)

    crossval.fit_two_level = spy  # type: ignore[assignment]
    try:
        result = crossval.run(data, [("strong", "weak")], routers=("knn",), within_sets={"len": ("length",)})
    finally:
        crossval.fit_two_level = original
    assert seen and all(crossval.CHAT_SOURCE not in s for s in seen)
    # scored on the judged shares: length decides them here, so length and its fit rank them
    assert result.apgr["length"][crossval.CHAT_SOURCE] > 0.7
    assert result.apgr["two-level:len"][crossval.CHAT_SOURCE] > 0.7
    assert result.by_kind("length")["chat"] == result.apgr["length"][crossval.CHAT_SOURCE]
    # pooled and in-distribution columns are over the scored (non-chat) rows only: finite
    assert all(np.isfinite(v) for v in result.pooled.values())
    assert "| chat |" in crossval.markdown(result, "cmd", "machine", "date", "two-level:len", "why")


def test_a_measured_prior_is_scaled_not_refitted() -> None:
    data = _data()
    data.extra["+wb"] = np.where(np.arange(len(data.sources)) % 2 == 0, 0.04, -0.04)
    y = crossval.target(data.scores, data.models, [("strong", "weak")])
    rows = np.ones(len(data.sources), dtype=bool)
    plain = crossval.fit_two_level(data, y, rows, ("length",), (), 0.0)
    for alpha in (0.5, 2.0):
        fit = crossval.fit_two_level(data, y, rows, ("length",), ("+wb",), alpha)
        assert fit.w_between.tolist() == [alpha]
        shift = fit.score(data, rows) - plain.score(data, rows)
        assert np.allclose(shift - shift.mean(), alpha * (data.extra["+wb"] - data.extra["+wb"].mean()))


def test_the_measured_category_prior_covers_every_category_and_is_centred() -> None:
    """bench/data/category_need_wildbench.json (tools/wildbench_prior.py): an offset per bundled
    category, averaging to zero, with the input's pinned sha256."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    prior = json.loads(crossval.PRIOR_FILE.read_text())
    labels = json.loads((root / "models" / "category_head.json").read_text())["labels"]
    assert set(prior["offsets"]) == set(labels)
    assert abs(sum(prior["offsets"].values())) < 1e-3
    assert len(prior["sha256"]) == 64 and prior["models"] > 20
    # WildBench's own finding, kept visible: coding and reasoning need a stronger model more
    assert prior["offsets"]["code_generation"] > prior["offsets"]["creative_writing"]
    assert prior["offsets"]["reasoning"] > prior["offsets"]["conversation"]
