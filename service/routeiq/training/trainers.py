"""Small numpy trainers for the four router kinds. Each returns plain float32 arrays (the ONNX
graph is built from exactly these, see export.py) and predicts in float32 the way the graph does,
so a round trip can be checked to 1e-5.

All kinds predict, per model, the expected quality in [0, 1] of its answer to a prompt, from the
prompt's embedding. Loss: masked binary cross-entropy on soft labels (a row may score only some
models). Hyper-parameters that matter are chosen on a validation slice of the training data
(never the evaluation set); the final model is refitted on all training rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def sigmoid(z: F32) -> F32:
    out: F32 = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    return out


def masked_bce(pred: F32, target: F32, mask: F32) -> float:
    p = np.clip(pred.astype(np.float64), 1e-6, 1 - 1e-6)
    loss = -(target * np.log(p) + (1 - target) * np.log(1 - p)) * mask
    return float(loss.sum() / max(mask.sum(), 1.0))


@dataclass
class Trained:
    """A trained router's parameters (names match the graph's initialisers) and settings."""

    kind: str
    params: dict[str, F32]
    settings: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: F32) -> F32:
        return PREDICTORS[self.kind](self, np.asarray(x, dtype=np.float32))


# ---------------------------------------------------------------- KNN


def _knn_predict(t: Trained, x: F32) -> F32:
    keys = t.params["keys"].astype(np.float32)  # stored float16: the graph casts the same way
    k = int(t.settings["k"])
    sims = x @ keys.T
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(sims, idx, axis=1) / np.float32(t.settings["temperature"])
    top = top - top.max(axis=1, keepdims=True)
    w = np.exp(top)
    w = (w / w.sum(axis=1, keepdims=True)).astype(np.float32)
    num = np.einsum("nk,nkm->nm", w, t.params["scores"][idx])
    den = np.einsum("nk,nkm->nm", w, t.params["mask"][idx])
    alpha = np.float32(t.settings["prior_weight"])
    out: F32 = ((num + alpha * t.params["prior"]) / (den + alpha)).astype(np.float32)
    return out


def train_knn(
    x: F32,
    y: F32,
    mask: F32,
    *,
    val: tuple[F32, F32, F32] | None = None,
    k: int = 20,
    temperature: float = 0.05,
) -> Trained:
    """Similarity-weighted mean of the k nearest training prompts' scores, shrunk towards each
    model's mean by `prior_weight` pseudo-neighbours. k is picked on the validation slice."""
    prior = ((y * mask).sum(0) / np.maximum(mask.sum(0), 1)).astype(np.float32)

    def build(xs: F32, ys: F32, ms: F32, k: int) -> Trained:
        return Trained(
            "knn",
            {"keys": xs.astype(np.float16), "scores": ys * ms, "mask": ms.copy(), "prior": prior},
            {"k": min(k, len(xs)), "temperature": temperature, "prior_weight": 0.1},
        )

    best_k = k
    if val is not None:
        vx, vy, vm = val
        losses = {k: masked_bce(build(x, y, mask, k).predict(vx), vy, vm) for k in (10, 20, 40, 80, 160)}
        best_k = min(losses, key=lambda k: losses[k])
    return build(x, y, mask, best_k)


# ---------------------------------------------------------------- gradient-trained kinds


class _Adam:
    def __init__(self, params: dict[str, F32], lr: float) -> None:
        self.lr = lr
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, F32], grads: dict[str, F32]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            params[k] -= (self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)


# forward(params, x) -> (pred, cache); backward(params, x, cache, dlogits) -> grads
Forward = Callable[[dict[str, F32], F32], tuple[F32, dict[str, F32]]]
Backward = Callable[[dict[str, F32], F32, dict[str, F32], F32], dict[str, F32]]


def _fit(
    params: dict[str, F32],
    forward: Forward,
    backward: Backward,
    x: F32,
    y: F32,
    mask: F32,
    *,
    epochs: int,
    lr: float,
    l2: float,
    batch: int,
    seed: int,
    val: tuple[F32, F32, F32] | None,
) -> tuple[dict[str, F32], int]:
    """Adam on masked BCE with L2; with a validation slice, keep the epoch with the lowest loss."""
    rng = np.random.default_rng(seed)
    opt = _Adam(params, lr)
    best = (np.inf, 0, {k: v.copy() for k, v in params.items()})
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            rows = order[start : start + batch]
            xb, yb, mb = x[rows], y[rows], mask[rows]
            pred, cache = forward(params, xb)
            # d(BCE)/d(logit) = pred - target, masked and averaged over known entries.
            dlogits = ((pred - yb) * mb / max(float(mb.sum()), 1.0)).astype(np.float32)
            grads = backward(params, xb, cache, dlogits)
            for k in grads:
                if not k.startswith("b"):
                    grads[k] = grads[k] + np.float32(2 * l2) * params[k]
            opt.step(params, grads)
        if val is not None:
            loss = masked_bce(forward(params, val[0])[0], val[1], val[2])
            if loss < best[0]:
                best = (loss, epoch, {k: v.copy() for k, v in params.items()})
    if val is None:
        return params, epochs
    return best[2], best[1]


def _train_gradient(
    kind: str,
    init: Callable[[np.random.Generator], dict[str, F32]],
    forward: Forward,
    backward: Backward,
    x: F32,
    y: F32,
    mask: F32,
    val: tuple[F32, F32, F32] | None,
    hyper: dict[str, Any],
) -> Trained:
    """With a validation slice: train up to `epochs` and keep the best epoch (the number chosen
    is returned in settings). Without: train exactly `epochs` (the refit on all rows)."""
    seed = int(hyper.get("seed", 0))
    params, epochs = _fit(
        init(np.random.default_rng(seed)),
        forward,
        backward,
        x,
        y,
        mask,
        epochs=int(hyper["epochs"]),
        lr=float(hyper["lr"]),
        l2=float(hyper["l2"]),
        batch=int(hyper["batch"]),
        seed=seed,
        val=val,
    )
    return Trained(kind, params, {**hyper, "epochs": epochs})


def _prior_logit(y: F32, mask: F32) -> F32:
    mean = (y * mask).sum(0) / np.maximum(mask.sum(0), 1)
    mean = np.clip(mean, 0.02, 0.98)
    out: F32 = np.log(mean / (1 - mean)).astype(np.float32)
    return out


# -- linear (logistic regression per model)


def _linear_forward(p: dict[str, F32], x: F32) -> tuple[F32, dict[str, F32]]:
    return sigmoid(x @ p["W"] + p["b"]), {}


def _linear_backward(p: dict[str, F32], x: F32, cache: dict[str, F32], d: F32) -> dict[str, F32]:
    return {"W": x.T @ d, "b": d.sum(0)}


def train_linear(
    x: F32, y: F32, mask: F32, *, val: tuple[F32, F32, F32] | None = None, epochs: int = 60
) -> Trained:
    dim, models = x.shape[1], y.shape[1]
    prior = _prior_logit(y, mask)

    def init(rng: np.random.Generator) -> dict[str, F32]:
        return {"W": np.zeros((dim, models), np.float32), "b": prior.copy()}

    hyper = {"epochs": epochs, "lr": 0.01, "l2": 1e-4, "batch": 256}
    return _train_gradient("linear", init, _linear_forward, _linear_backward, x, y, mask, val, hyper)


# -- MLP (one hidden ReLU layer, one sigmoid output per model)


def _mlp_forward(p: dict[str, F32], x: F32) -> tuple[F32, dict[str, F32]]:
    pre = x @ p["W1"] + p["b1"]
    h = np.maximum(pre, 0)
    return sigmoid(h @ p["W2"] + p["b2"]), {"pre": pre, "h": h}


def _mlp_backward(p: dict[str, F32], x: F32, cache: dict[str, F32], d: F32) -> dict[str, F32]:
    dh = (d @ p["W2"].T) * (cache["pre"] > 0)
    return {"W2": cache["h"].T @ d, "b2": d.sum(0), "W1": x.T @ dh, "b1": dh.sum(0)}


def train_mlp(
    x: F32,
    y: F32,
    mask: F32,
    *,
    val: tuple[F32, F32, F32] | None = None,
    epochs: int = 60,
    hidden: int = 128,
) -> Trained:
    dim, models = x.shape[1], y.shape[1]
    prior = _prior_logit(y, mask)

    def init(rng: np.random.Generator) -> dict[str, F32]:
        return {
            "W1": (rng.standard_normal((dim, hidden)) * np.sqrt(2 / dim)).astype(np.float32),
            "b1": np.zeros(hidden, np.float32),
            "W2": (rng.standard_normal((hidden, models)) * np.sqrt(1 / hidden)).astype(np.float32) * 0.1,
            "b2": prior.copy(),
        }

    hyper = {"epochs": epochs, "lr": 0.002, "l2": 1e-4, "batch": 128, "hidden": hidden}
    return _train_gradient("mlp", init, _mlp_forward, _mlp_backward, x, y, mask, val, hyper)


# -- matrix factorisation (RouteLLM-style: prompt x model in a shared latent space)


def _mf_forward(p: dict[str, F32], x: F32) -> tuple[F32, dict[str, F32]]:
    z = x @ p["proj"]  # prompt -> latent
    return sigmoid((z @ p["models"].T + p["b"]).astype(np.float32)), {"z": z}


def _mf_backward(p: dict[str, F32], x: F32, cache: dict[str, F32], d: F32) -> dict[str, F32]:
    return {"models": d.T @ cache["z"], "proj": x.T @ (d @ p["models"]), "b": d.sum(0)}


def train_mf(
    x: F32,
    y: F32,
    mask: F32,
    *,
    val: tuple[F32, F32, F32] | None = None,
    epochs: int = 60,
    rank: int = 16,
) -> Trained:
    """quality(prompt, model) = sigmoid(b_model + <P_model, W · embedding>): each model is a vector
    in a `rank`-d latent space and the prompt is projected into it (RouteLLM's MF router, trained
    pointwise on scores rather than on pairwise wins)."""
    dim, models = x.shape[1], y.shape[1]
    prior = _prior_logit(y, mask)

    def init(rng: np.random.Generator) -> dict[str, F32]:
        return {
            "proj": (rng.standard_normal((dim, rank)) * np.sqrt(1 / dim)).astype(np.float32),
            "models": (rng.standard_normal((models, rank)) * 0.1).astype(np.float32),
            "b": prior.copy(),
        }

    hyper = {"epochs": epochs, "lr": 0.005, "l2": 1e-4, "batch": 128, "rank": rank}
    return _train_gradient("mf", init, _mf_forward, _mf_backward, x, y, mask, val, hyper)


def _gradient_predict(forward: Forward) -> Callable[[Trained, F32], F32]:
    def predict(t: Trained, x: F32) -> F32:
        return forward(t.params, x)[0]

    return predict


PREDICTORS: dict[str, Callable[[Trained, F32], F32]] = {
    "knn": _knn_predict,
    "linear": _gradient_predict(_linear_forward),
    "mlp": _gradient_predict(_mlp_forward),
    "mf": _gradient_predict(_mf_forward),
}

# The setting chosen on the validation slice that the refit on all rows reuses.
CHOSEN: dict[str, str] = {"knn": "k", "linear": "epochs", "mlp": "epochs", "mf": "epochs"}

TRAINERS: dict[str, Callable[..., Trained]] = {
    "knn": train_knn,
    "linear": train_linear,
    "mlp": train_mlp,
    "mf": train_mf,
}
