"""Trained routers: ONNX graphs that predict, per model, the quality of its answer to a prompt.

Each router is `<name>.onnx` + `<name>.json` (manifest: kind, embedder sha256, model names in
output order, training-data hash, metrics, created_at, sha256 of the graph). The service serves
them with onnxruntime alone; `routeiq train` (the `train` extra) builds them.
"""

from .manifest import RouterManifest
from .runtime import MLStrategy, OnnxRouter, load_routers, reload_routers

__all__ = ["MLStrategy", "OnnxRouter", "RouterManifest", "load_routers", "reload_routers"]
