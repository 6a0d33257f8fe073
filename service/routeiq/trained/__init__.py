"""Trained routers: ONNX graphs that predict, per model, the quality of its answer to a prompt.

Each router is `<name>.onnx` + `<name>.json` (manifest: kind, embedder sha256, model names in
output order, training-data hash, metrics, created_at, sha256 of the graph). The service serves
them with onnxruntime alone, as `ml:<name>` estimators; `routeiq train` (the `train` extra)
builds them.
"""
