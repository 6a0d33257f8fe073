"""Measure embedder candidates: p50 latency of tokenize + run + mean-pool (batch 1) at fixed token
counts, ORT thread counts and optimisation levels; cosine to an fp32 reference over prompts.

Build-time/measurement tool only (onnxruntime, tokenizers, numpy). Example:
    python tools/bench_embedder.py --tokenizer models/embedder/tokenizer.json \
        --model final=models/embedder/model.onnx --model fp32=/tmp/.../fp32.onnx \
        --reference fp32 --prompts "$LLMROUTER_DATA"/default_query_test.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}


def make_session(path: str, threads: int, level: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = LEVELS[level]
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def embed(sess: ort.InferenceSession, tok: Tokenizer, text: str) -> np.ndarray:
    """The service's hot path: tokenize, feed the three inputs, mean-pool, L2-normalise."""
    enc = tok.encode(text)
    ids = np.array([enc.ids], dtype=np.int64)
    mask = np.array([enc.attention_mask], dtype=np.int64)
    feed = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
    }
    hidden = sess.run(None, feed)[0]
    m = mask[..., None].astype(np.float32)
    vec = (hidden * m).sum(1) / m.sum(1)
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def text_with_tokens(tok: Tokenizer, corpus: str, n: int) -> str:
    """A prefix of real prompt text that tokenises to exactly n tokens ([CLS] + [SEP] included)."""
    enc = tok.encode(corpus)
    end = enc.offsets[n - 2][1]  # offsets of word pieces; index 0 is [CLS]
    text = corpus[:end]
    while len(tok.encode(text).ids) > n:
        text = text[:-1]
    got = len(tok.encode(text).ids)
    if got != n:
        raise SystemExit(f"could not cut corpus to {n} tokens (got {got})")
    return text


def p50_ms(sess: ort.InferenceSession, tok: Tokenizer, text: str, budget_s: float, max_iter: int) -> float:
    for _ in range(5):  # warm-up: first runs allocate arenas and pick kernels
        embed(sess, tok, text)
    start = time.perf_counter()
    embed(sess, tok, text)
    one = time.perf_counter() - start
    iters = int(min(max_iter, max(20, budget_s / max(one, 1e-4))))
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        embed(sess, tok, text)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def load_prompts(path: Path, count: int, seed: int) -> list[str]:
    with path.open() as fh:
        queries = [json.loads(line)["query"] for line in fh if line.strip()]
    unique = sorted(set(queries))
    return random.Random(seed).sample(unique, min(count, len(unique)))


def rss_mb(path: str) -> float:
    """RSS after loading the model and one 64-token run, in a fresh process."""
    code = (
        "import numpy as np, onnxruntime as ort, sys\n"
        "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
        "x = np.ones((1, 64), dtype=np.int64)\n"
        "s.run(None, {'input_ids': x * 2000, 'attention_mask': x, 'token_type_ids': x * 0})\n"
        "print(int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--model", action="append", required=True, help="label=path.onnx")
    ap.add_argument("--reference", help="label of the fp32 reference for cosine figures")
    ap.add_argument("--prompts", type=Path, required=True, help="JSONL with a 'query' field")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", default="10,32,64,128,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--levels", default="all,extended")
    ap.add_argument("--budget-s", type=float, default=1.0, help="time per cell, roughly")
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    models = dict(item.split("=", 1) for item in args.model)
    tok = Tokenizer.from_file(args.tokenizer)
    tok.no_padding()
    tok.no_truncation()
    prompts = load_prompts(args.prompts, args.count, args.seed)
    corpus = " ".join(sorted(prompts, key=len, reverse=True))
    sizes = [int(t) for t in args.tokens.split(",")]
    texts = {n: text_with_tokens(tok, corpus, n) for n in sizes}
    results: dict[str, Any] = {"latency_ms_p50": [], "cosine": {}, "rss_mb": {}}

    print(f"onnxruntime {ort.__version__}; batch 1; p50 ms of tokenize+run+mean-pool")
    print("| model | level | threads | " + " | ".join(f"{n} tok" for n in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for label, path in models.items():
        for level in args.levels.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                sess = make_session(path, threads, level)
                row = [p50_ms(sess, tok, texts[n], args.budget_s, args.max_iter) for n in sizes]
                results["latency_ms_p50"].append(
                    {
                        "model": label,
                        "level": level,
                        "threads": threads,
                        **{str(n): round(v, 3) for n, v in zip(sizes, row, strict=True)},
                    }
                )
                print(
                    f"| {label} | {level} | {threads} | " + " | ".join(f"{v:.2f}" for v in row) + " |",
                    flush=True,
                )

    if args.reference:
        tok.enable_truncation(512)  # model limit; a few prompts are longer
        lengths = [len(tok.encode(p).ids) for p in prompts]
        print(
            f"\ncosine to {args.reference} over {len(prompts)} prompts "
            f"(tokens min {min(lengths)} / median {int(np.median(lengths))} / max "
            f"{max(lengths)})"
        )
        sessions = {k: make_session(p, 2, "all") for k, p in models.items()}
        ref = np.vstack([embed(sessions[args.reference], tok, p) for p in prompts])
        for label, sess in sessions.items():
            if label == args.reference:
                continue
            got = np.vstack([embed(sess, tok, p) for p in prompts])
            cos = (ref * got).sum(1)
            results["cosine"][label] = {
                "mean": round(float(cos.mean()), 5),
                "min": round(float(cos.min()), 5),
                "p5": round(float(np.percentile(cos, 5)), 5),
            }
            print(f"  {label}: mean {cos.mean():.5f}  p5 {np.percentile(cos, 5):.5f}  min {cos.min():.5f}")

    print("\nRSS after load + one 64-token run (fresh process, default session options):")
    for label, path in models.items():
        results["rss_mb"][label] = round(rss_mb(path), 1)
        print(f"  {label}: {results['rss_mb'][label]} MB")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
