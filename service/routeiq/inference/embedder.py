"""Sentence embeddings: tokenizer -> ONNX session -> mean pooling -> L2 normalisation.

The `Embedder` protocol is the seam: any ONNX sentence-embedding model with a manifest.json,
a tokenizer.json and a model.onnx can be configured by path (ROUTEIQ_EMBEDDER_PATH). The
manifest pins every file by sha256; a missing or altered file stops start-up.

Speed is decided by how many tokens are embedded (cost grows ~linearly with tokens), so the
caller hands over prioritised text segments and a token budget; `fit_budget` spends the budget
on the first segment first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.files import load_json
from routeiq.artifacts.integrity import verified_bytes, verify_file
from routeiq.errors import ArtifactError
from routeiq.inference.onnx import onnx_session

Vector = npt.NDArray[np.float32]


class Embedder(Protocol):
    name: str
    dimension: int
    fingerprint: str  # sha256 of the model graph: centroids and routers are bound to it

    def embed(self, segments: Sequence[Sequence[str]], budget: int) -> npt.NDArray[np.float32]:
        """One L2-normalised row per item; each item is its text segments, most important first."""
        ...


@dataclass(frozen=True)
class SpecialTokens:
    cls: str = "[CLS]"
    sep: str = "[SEP]"
    pad: str = "[PAD]"

    @classmethod
    def from_manifest(cls, data: object) -> SpecialTokens:
        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"cls", "sep", "pad"}:
            raise ValueError(f"special_tokens must map cls/sep/pad to tokens, got {data!r}")
        return cls(**{k: str(v) for k, v in data.items()})


@dataclass(frozen=True)
class EmbedderManifest:
    name: str
    dimension: int
    model_sha256: str
    tokenizer_sha256: str
    inputs: tuple[str, ...]
    output: str
    max_position: int
    # The tokens that open, close and pad an item. BERT's by default; an MPNet or RoBERTa
    # tokenizer names them <s>, </s>, <pad>, and the wrong ones give vectors that look fine
    # and are not what the model was trained on.
    special_tokens: SpecialTokens

    @classmethod
    def load(cls, folder: Path) -> EmbedderManifest:
        data = load_json(folder / "manifest.json", what="embedder manifest")
        try:
            files = data["files"]
            return cls(
                name=str(data["name"]),
                dimension=int(data["dimension"]),
                model_sha256=str(files["model.onnx"]["sha256"]),
                tokenizer_sha256=str(files["tokenizer.json"]["sha256"]),
                inputs=tuple(str(x) for x in data.get("inputs", ["input_ids", "attention_mask"])),
                output=str(data.get("output", "last_hidden_state")),
                max_position=int(data.get("max_position", 512)),
                special_tokens=SpecialTokens.from_manifest(data.get("special_tokens")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"embedder manifest {folder / 'manifest.json'} is incomplete: {exc!r}"
            ) from exc


def fit_budget(pieces: Sequence[Sequence[int]], budget: int) -> list[int]:
    """Spend `budget` token ids on the pieces in priority order.

    A piece longer than what is left keeps its head and its tail (3:1): instructions sit at
    the start or at the end of long pasted text ("Summarise this: ..." / "... Summarise the above").
    """
    out: list[int] = []
    left = budget
    for ids in pieces:
        if left <= 0:
            break
        if len(ids) <= left:
            out.extend(ids)
            left -= len(ids)
            continue
        head = (left * 3 + 3) // 4
        tail = left - head
        out.extend(ids[:head])
        if tail:
            out.extend(ids[-tail:])
        left = 0
    return out


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (or any mean-pooled sentence model: BERT, MPNet, ...) on onnxruntime."""

    def __init__(self, folder: Path, *, intra_op_threads: int = 1, graph_optimization: str = "all") -> None:
        from tokenizers import Tokenizer

        manifest = EmbedderManifest.load(folder)
        model_path, tokenizer_path = folder / "model.onnx", folder / "tokenizer.json"
        graph = verified_bytes(model_path, manifest.model_sha256, what="embedder model")
        verify_file(tokenizer_path, manifest.tokenizer_sha256, what="embedder tokenizer")

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The shipped tokenizer.json may pad every input to 128 and truncate: undo both, we
        # budget tokens ourselves and pad only to the longest item of a batch.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        special = manifest.special_tokens
        self._cls = self._special_id(special.cls)
        self._sep = self._special_id(special.sep)
        self._pad = self._special_id(special.pad)

        self._session = onnx_session(
            graph,
            what=f"embedder model {model_path}",
            intra_op_threads=intra_op_threads,
            graph_optimization=graph_optimization,
        )
        declared = {i.name for i in self._session.get_inputs()}
        self._inputs = tuple(name for name in manifest.inputs if name in declared)
        self._max_tokens = manifest.max_position - 2
        self.name = manifest.name
        self.dimension = manifest.dimension
        self.fingerprint = manifest.model_sha256

    def _special_id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ArtifactError(
                f"embedder tokenizer has no {token} token: name the model's own in the manifest's"
                " special_tokens (cls, sep, pad)"
            )
        return int(token_id)

    def token_ids(self, segments: Sequence[str], budget: int) -> list[int]:
        """cls + budgeted segment tokens + sep."""
        encodings = self._tokenizer.encode_batch(list(segments), add_special_tokens=False)
        body = fit_budget([e.ids for e in encodings], min(budget, self._max_tokens) - 2)
        return [self._cls, *body, self._sep]

    def embed(self, segments: Sequence[Sequence[str]], budget: int) -> npt.NDArray[np.float32]:
        # One item per run, on purpose: dynamic int8 quantisation picks its activation scale
        # over the whole input tensor, so a batch (padding included) shifts every row's vector
        # (cosine ~0.98 to the same text alone). Batch-1 keeps centroids, routers and live
        # decisions on identical vectors, and measured no slower per item on this CPU.
        rows = [self.embed_ids([self.token_ids(item, budget)])[0] for item in segments]
        return np.stack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)

    def embed_ids(self, rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        hidden = self._session.run(None, feeds)[0]
        return mean_pool(hidden, mask)


def mean_pool(hidden: npt.NDArray[Any], mask: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Masked mean over tokens, then L2 normalisation (sentence-transformers' recipe)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalised: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised
