"""Training, evaluating and calibrating trained routers (`routeiq train / eval / calibrate`).

Needs the `train` extra (onnx to build graphs, matplotlib for plots); the trainers themselves
are small numpy programs. Nothing here is imported by the service at run time.
"""
