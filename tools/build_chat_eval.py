"""Build the chat evaluation set: real multi-turn user requests with GPT-4-judged outcomes.

Source: the QLoRA paper's OpenAssistant benchmark (github.com/artidoro/qlora @ 7f4e95a, MIT;
prompts from the OASST1 validation split, Apache-2.0): 953 conversations, each answered by seven
models (gpt-4, gpt-3.5, guanaco-7b/13b/30b/65b, vicuna-13b) and every pair of answers judged by
GPT-4 in both orders ("1", "2", or "3" = tie; "-1" = no verdict parsed, skipped here).

What is kept per conversation: its turns (the last user turn is the request), its language, and
for each pair of models "stronger>weaker" the stronger one's win share (win 1, tie 0.5, averaged
over the judgments that parsed; a pair is oriented by which model wins more over the whole set).
That share is what a router is scored on: APGR with the stronger model's quality = share and the
weaker one's = 1 - share. The cross-source table scores the pairs whose stronger model wins
60-90 % over the set (crossval.CHAT_SHARE_BAND): gpt-4 wins 92-95 % against the smallest models,
which leaves almost nothing to route.

Decontamination: a conversation is dropped when any of its user turns matches a judged test set
(bench/data/decontam_signatures.npz: exact or near duplicate). AlpacaEval's `oasst` subset comes
from the same OASST1 split, so this removes a few hundred; none of the rest is fitted on: the set
is evaluation only (`routeiq eval --cross-source --chat`).

Usage:
  python tools/build_chat_eval.py --from QLORA_CHECKOUT      # -> bench/data/chat_eval_oasst.jsonl
(QLORA_CHECKOUT: a checkout of artidoro/qlora; reads eval/prompts/oa_questions.jsonl and
eval/ratings-gpt4/oa/*-gpt-4-reviewer-threeclass.jsonl.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

from routeiq.training.decontam import Signatures

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "data" / "chat_eval_oasst.jsonl"
MANIFEST = ROOT / "bench" / "data" / "chat_eval_manifest.json"
SIGNATURES = ROOT / "bench" / "data" / "decontam_signatures.npz"
TURN = re.compile(r"### (Human|Assistant):")
# File names carry generation settings; the model is the part before them.
MODEL = re.compile(r"^(gpt-4|gpt-3\.5|\d+b-guanaco|13b-vicuna|vicuna-13b)")


def model_of(stem: str) -> str:
    found = MODEL.match(stem)
    if not found:
        raise SystemExit(f"cannot name the model in {stem!r}")
    name = found.group(1)
    if name.endswith("-guanaco"):
        name = "guanaco-" + name.removesuffix("-guanaco")
    return "vicuna-13b" if "vicuna" in name else name


def turns(text: str) -> list[dict[str, str]]:
    parts = TURN.split(text)
    out = []
    for role, raw in zip(parts[1::2], parts[2::2], strict=True):
        content = raw.strip()
        if content:
            out.append({"role": "user" if role == "Human" else "assistant", "content": content})
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--from", dest="src", type=Path, required=True)
    args = parser.parse_args()
    questions = args.src / "eval" / "prompts" / "oa_questions.jsonl"
    ratings = sorted((args.src / "eval" / "ratings-gpt4" / "oa").glob("*-gpt-4-reviewer-threeclass.jsonl"))
    if not questions.exists() or not ratings:
        raise SystemExit(f"{args.src} does not hold the qlora eval files")
    sig = Signatures.load(SIGNATURES)
    # message id -> (model a, model b), a < b -> [a's points per judgment]
    points: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in ratings:
        first, _, second = path.name.removesuffix("-gpt-4-reviewer-threeclass.jsonl").partition("-vs-")
        a, b = model_of(first), model_of(second)
        pair = (min(a, b), max(a, b))
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            row = json.loads(line)
            verdict = int(row["score"])
            if verdict not in (1, 2, 3):
                continue
            first_wins = 0.5 if verdict == 3 else float(verdict == 1)
            points[row["message_id"]][pair].append(first_wins if a == pair[0] else 1 - first_wins)
    kept, dropped = [], defaultdict(int)
    for line in questions.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        q = json.loads(line)
        messages = turns(q["input"])
        if not messages or messages[-1]["role"] != "user":
            dropped["no final user turn"] += 1
            continue
        hit = next((m for m in (sig.match(t["content"]) for t in messages if t["role"] == "user") if m), None)
        if hit:
            dropped[f"matches {hit}"] += 1
            continue
        share = {pair: sum(p) / len(p) for pair, p in points[q["message_id"]].items() if p}
        if not share:
            dropped["no parsed judgment"] += 1
            continue
        kept.append({"id": q["message_id"], "lang": q["lang"], "messages": messages, "share": share})
    # orient every pair by who wins more over the kept set
    means: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in kept:
        for pair, v in row["share"].items():
            means[pair].append(v)
    flip = {pair: sum(v) / len(v) < 0.5 for pair, v in means.items()}
    pairs = {}
    for pair, v in sorted(means.items()):
        strong, weak = (pair[1], pair[0]) if flip[pair] else pair
        mean = sum(v) / len(v)
        pairs[f"{strong}>{weak}"] = {"mean_share": round(1 - mean if flip[pair] else mean, 4), "rows": len(v)}
    for row in kept:
        row["share"] = {
            (f"{p[1]}>{p[0]}" if flip[p] else f"{p[0]}>{p[1]}"): round(1 - v if flip[p] else v, 4)
            for p, v in sorted(row["share"].items())
        }
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    manifest = {
        "source": "github.com/artidoro/qlora @ 7f4e95a68dc076bea9b3a413d2b512eca6d004e5: "
        "eval/prompts/oa_questions.jsonl, eval/ratings-gpt4/oa/*-gpt-4-reviewer-threeclass.jsonl",
        "licence": "MIT (qlora repository); prompts from OpenAssistant OASST1 validation split, Apache-2.0",
        "how_scored": "GPT-4 pairwise judgments of two models' answers, both orders; share = the "
        "stronger model's wins + half its ties over parsed judgments (pair 'a>b': a wins more overall)",
        "inputs_sha256": {p.name: sha(p) for p in [questions, *ratings]},
        "rows": len(kept),
        "pairs": pairs,
        "dropped": dict(dropped),
        "languages": {
            lang: sum(r["lang"] == lang for r in kept) for lang in sorted({r["lang"] for r in kept})
        },
        "output_sha256": sha(OUT),
        "use": "evaluation only (never fitted on): the chat column of the cross-source table",
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: manifest[k] for k in ("rows", "dropped", "languages")}, indent=2))


if __name__ == "__main__":
    main()
