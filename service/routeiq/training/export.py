"""Trained parameters -> an ONNX graph + manifest (onnx.helper; opset 17, CPU-friendly ops).

Every graph takes `embedding` [N, dim] float32 and gives `quality` [N, models] float32 in [0, 1].
The KNN keys are stored float16 (half the file; cast once when onnxruntime folds constants at
load) and the trainer predicts from the same rounded keys, so ONNX and numpy agree.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from routeiq.trained.manifest import INPUT_NAME, OUTPUT_NAME, RouterManifest
from routeiq.training.trainers import Trained

OPSET = 17


def _graph(t: Trained, dim: int, models: int) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray[Any, Any]) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    x = INPUT_NAME
    p = t.params
    if t.kind == "linear":
        logits = node("Gemm", [x, const("W", p["W"]), const("b", p["b"])], "logits")
        node("Sigmoid", [logits], OUTPUT_NAME)
    elif t.kind == "mlp":
        pre = node("Gemm", [x, const("W1", p["W1"]), const("b1", p["b1"])], "pre")
        h = node("Relu", [pre], "hidden")
        logits = node("Gemm", [h, const("W2", p["W2"]), const("b2", p["b2"])], "logits")
        node("Sigmoid", [logits], OUTPUT_NAME)
    elif t.kind == "mf":
        z = node("MatMul", [x, const("proj", p["proj"])], "latent")
        s = node("Gemm", [z, const("models", p["models"]), const("b", p["b"])], "logits", transB=1)
        node("Sigmoid", [s], OUTPUT_NAME)
    elif t.kind == "knn":
        # sims = x @ keys^T; top-k; softmax(sims / T) weights; weighted mean of the neighbours'
        # scores over known entries, shrunk towards each model's mean by `prior_weight`.
        keys = node("Cast", [const("keys_f16", p["keys"])], "keys", to=TensorProto.FLOAT)
        sims = node("Gemm", [x, keys], "sims", transB=1)
        nodes.append(
            helper.make_node(
                "TopK", [sims, const("k", np.array([t.settings["k"]], np.int64))], ["top", "idx"], name="topk"
            )
        )
        scaled = node(
            "Div", ["top", const("temperature", np.array(t.settings["temperature"], np.float32))], "scaled"
        )
        w = node("Softmax", [scaled], "w", axis=-1)
        w3 = node("Unsqueeze", [w, const("axis2", np.array([2], np.int64))], "w3")
        axis1 = const("axis1", np.array([1], np.int64))
        ys = node("Gather", [const("scores", p["scores"]), "idx"], "ys", axis=0)
        ms = node("Gather", [const("mask", p["mask"]), "idx"], "ms", axis=0)
        num = node("ReduceSum", [node("Mul", [ys, w3], "wys"), axis1], "num", keepdims=0)
        den = node("ReduceSum", [node("Mul", [ms, w3], "wms"), axis1], "den", keepdims=0)
        alpha = const("prior_weight", np.array(t.settings["prior_weight"], np.float32))
        prior = node("Mul", [const("prior", p["prior"]), alpha], "alpha_prior")
        top = node("Add", [num, prior], "num_prior")
        bottom = node("Add", [den, alpha], "den_prior")
        node("Div", [top, bottom], OUTPUT_NAME)
    else:
        raise ValueError(f"unknown router kind {t.kind!r}")
    graph = helper.make_graph(
        nodes,
        f"routeiq-{t.kind}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", models])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="routeiq")
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    return model


def to_onnx_bytes(t: Trained, dim: int, models: int) -> bytes:
    import onnx

    model = _graph(t, dim, models)
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data


def write_router(
    folder: Path,
    name: str,
    trained: Trained,
    *,
    models: list[str],
    embedder_name: str,
    embedder_sha256: str,
    dimension: int,
    token_budget: int,
    training: dict[str, Any],
    metrics: dict[str, Any],
) -> RouterManifest:
    """Write `<name>.onnx` and `<name>.json` (graph first: a manifest never points at nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = to_onnx_bytes(trained, dimension, len(models))
    (folder / f"{name}.onnx").write_bytes(graph)
    manifest = RouterManifest(
        name=name,
        kind=trained.kind,
        graph_sha256=hashlib.sha256(graph).hexdigest(),
        embedder_name=embedder_name,
        embedder_sha256=embedder_sha256,
        dimension=dimension,
        token_budget=token_budget,
        models=tuple(models),
        training={**training, "settings": trained.settings},
        metrics=metrics,
        created_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    manifest.save(folder)
    return manifest
