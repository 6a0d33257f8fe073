"""The one place an onnxruntime session is made, for the embedder and the trained routers alike.

Sessions are built from bytes the caller has already verified against a manifest (so a file
swapped between the check and the load cannot slip through), on the CPU provider, with the
caller's thread count and one inter-op thread. onnxruntime raises untyped errors: they become
ArtifactError here, naming what was being loaded.
"""

from __future__ import annotations

from typing import Any

from routeiq.errors import ArtifactError

GRAPH_OPTIMIZATION = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def onnx_session(
    graph: bytes, *, what: str, intra_op_threads: int = 1, graph_optimization: str = "all"
) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[graph_optimization]
    )
    try:
        return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ArtifactError(f"{what} cannot be loaded: {exc}") from exc
