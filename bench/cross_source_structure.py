"""More structural features for complexity, leave-one-source-out (same folds, pairs and APGR as
`routeiq eval --cross-source`).

Each candidate is a cheap count over the task text that readability and difficulty studies tie
to harder questions, fitted beside length with a non-negative weight inside sources (so it can
only raise the score): how many numbers the task holds (quantities a word problem must combine),
its mean word length and its long words (technical vocabulary), how many word pieces the
embedder's own tokenizer cuts a word into (rare words split more), formula symbols, and
capitalised words past the first (names and terms). With the `wordfreq` package importable (not a
dependency of this project: `pip install wordfreq` to run these rows) word rarity joins them:
words below Zipf 3 / 4, and the mean Zipf frequency. A candidate ships only if the cross-source rule
(`crossval.choose`: never more than 0.01 below length on a kind, ≥ 0.005 better on the mean)
picks it; then it joins the service's features.

Usage: python bench/cross_source_structure.py --data ROWS.jsonl
(ROWS from `python tools/decontaminate.py build`). Prints a markdown table by kind of task.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from routeiq.decision.prompt import view_of
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.training import crossval as cv
from routeiq.training.data import load_examples

F64 = npt.NDArray[np.float64]
KINDS = ("exam", "math", "open", "code", "logic")
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
WORD = re.compile(r"[A-Za-z]+")
SYMBOLS = frozenset("=+*/^<>()[]{}\\_%$")


try:
    from wordfreq import zipf_frequency  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # optional: only its rows need it
    zipf_frequency = None


def features(task: str, tokenizer: Tokenizer) -> dict[str, float]:
    words = WORD.findall(task)
    unique = list(dict.fromkeys(w.lower() for w in words))[:200]
    pieces = [len(e.ids) for e in tokenizer.encode_batch(unique, add_special_tokens=False)] or [1]
    out = {
        "numbers": math.log1p(min(len(NUMBER.findall(task)), 30)),
        "word_length": float(np.mean([len(w) for w in words])) if words else 0.0,
        "long_words": math.log1p(sum(len(w) >= 9 for w in words)),
        "symbols": math.log1p(sum(c in SYMBOLS for c in task)),
        "capitalised": math.log1p(sum(w[0].isupper() for w in words[1:])),
        "word_pieces": float(np.mean(pieces)),
        "split_words": float(np.mean([n > 1 for n in pieces])),
    }
    if zipf_frequency is not None:
        zipf = [zipf_frequency(w.lower(), "en") for w in words] or [7.0]
        out["rare_words_z3"] = math.log1p(sum(z < 3.0 for z in zipf))
        out["rare_words_z4"] = math.log1p(sum(z < 4.0 for z in zipf))
        out["rarity"] = 7.0 - float(np.mean(zipf))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings()
    data = cv.load(args.data, settings, OnnxEmbedder(settings.embedder_dir))
    tokenizer = Tokenizer.from_file(str(settings.embedder_dir / "tokenizer.json"))
    examples = load_examples(args.data, settings.token_budget)
    rows = [features(view_of(e.request).last_user, tokenizer) for e in examples]
    names = list(rows[0])
    data.extra = {n: np.array([r[n] for r in rows]) for n in names}
    sets: dict[str, tuple[str, ...]] = {"len": ("length",)}
    for n in names:
        sets[n] = (n,)
        sets[f"len+{n}"] = ("length", n)
    sets["len+q+word_length"] = ("length", "questions", "word_length")
    sets["len+numbers+word_length"] = ("length", "numbers", "word_length")
    cv.BETWEEN_SETS = {}
    result = cv.run(data, cv.PAIRS, routers=(), within_sets=sets, alphas=())
    length = result.by_kind("length")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {len(data.sources)} rows\n")
    print("| scorer | " + " | ".join(KINDS) + " | mean of kinds | worst kind − length |")
    print("|---|" + "---|" * (len(KINDS) + 2))
    for scorer in result.apgr:
        if scorer == "shipped":
            continue
        k = result.by_kind(scorer)
        worst = min(k[x] - length[x] for x in KINDS)
        cells = " | ".join(f"{k[x]:.3f}" for x in KINDS)
        print(f"| {scorer} | {cells} | {np.mean([k[x] for x in KINDS]):.4f} | {worst:+.3f} |")
    print(f"\nchosen by crossval.choose: {cv.choose(result)}")


if __name__ == "__main__":
    main()
