"""The real ONNX embedder: golden vectors, budgeting, cache, artifact verification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from routeiq.engine import Engine
from routeiq.errors import ArtifactError
from routeiq.inference.cache import EmbeddingCache, cache_key
from routeiq.inference.embedder import OnnxEmbedder, fit_budget

GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "golden_embeddings.json").read_text())


@pytest.mark.parametrize("item", GOLDEN["texts"], ids=lambda t: t["text"][:24])
def test_golden_vectors(engine: Engine, item: dict) -> None:
    vector = engine.embedder.embed([[item["text"]]], 512)[0]
    assert engine.embedder.fingerprint == GOLDEN["model_sha256"]
    assert vector.shape == (384,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(vector[:8], item["int8_first8"], atol=2e-4)
    assert float(vector @ np.asarray(item["int8_full"], dtype=np.float32)) > 0.9999
    # The int8 model stays close to the fp32 original it was quantised from.
    fp32 = np.asarray(item["fp32_first8"])
    assert np.abs(vector[:8] - fp32).max() < 0.02


def test_batch_equals_single(engine: Engine) -> None:
    texts = [["short"], ["a much longer sentence about merging two sorted lists in python"]]
    batch = engine.embedder.embed(texts, 128)
    for i, t in enumerate(texts):
        single = engine.embedder.embed([t], 128)[0]
        assert float(batch[i] @ single) > 0.999


def test_token_budget_is_respected(engine: Engine) -> None:
    long_text = "word " * 2000
    ids = engine.embedder.token_ids([long_text, "system prompt"], 64)
    assert len(ids) == 64
    ids_short = engine.embedder.token_ids(["hello"], 64)
    assert len(ids_short) == 3  # [CLS] hello [SEP]: no padding to 128


def test_fit_budget_priority_and_head_tail() -> None:
    assert fit_budget([[1, 2, 3], [4, 5, 6]], 4) == [1, 2, 3, 4]
    assert fit_budget([list(range(10))], 4) == [0, 1, 2, 9]
    assert fit_budget([[1], [2]], 0) == []


def test_cache_is_lru_and_counts() -> None:
    cache = EmbeddingCache(2)
    a, b, c = (cache_key([t], 128) for t in "abc")
    vec = np.zeros(3, dtype=np.float32)
    cache.put(a, vec)
    cache.put(b, vec)
    assert cache.get(a) is vec  # a is now most recent
    cache.put(c, vec)
    assert cache.get(b) is None
    assert cache.get(a) is vec and cache.get(c) is vec
    assert (cache.hits, cache.misses) == (3, 1)
    assert cache_key(["x"], 128) != cache_key(["x"], 64)
    assert cache_key(["ab", "c"], 128) != cache_key(["a", "bc"], 128)


def _copy_embedder(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "embedder"
    shutil.copytree(settings.embedder_dir, target)
    return target


def test_altered_model_is_refused_naming_the_file(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _copy_embedder(settings, tmp_path)
    with (folder / "model.onnx").open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ArtifactError, match=r"embedder model does not match its manifest: .*model\.onnx"):
        OnnxEmbedder(folder)


def test_missing_tokenizer_is_refused(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _copy_embedder(settings, tmp_path)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match=r"embedder tokenizer is missing: .*tokenizer\.json"):
        OnnxEmbedder(folder)


def _with_renamed_special_tokens(folder: Path, names: dict[str, str], special_tokens: object) -> None:
    """Rename the tokenizer's special tokens (same ids) and name them, or not, in the manifest:
    the shape of an MPNet / RoBERTa tokenizer, whose <s>, </s>, <pad> are BERT's [CLS], [SEP], [PAD]."""
    from routeiq.artifacts.integrity import sha256_file

    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    for added in tokenizer["added_tokens"]:
        added["content"] = names.get(added["content"], added["content"])
    vocab = tokenizer["model"]["vocab"]
    for old, new in names.items():
        vocab[new] = vocab.pop(old)
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["tokenizer.json"]["sha256"] = sha256_file(folder / "tokenizer.json")
    if special_tokens is not None:
        manifest["special_tokens"] = special_tokens
    (folder / "manifest.json").write_text(json.dumps(manifest))


MPNET_STYLE = {"[CLS]": "<s>", "[SEP]": "</s>", "[PAD]": "<pad>"}


def test_special_tokens_come_from_the_manifest(engine: Engine, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _copy_embedder(settings, tmp_path)
    _with_renamed_special_tokens(folder, MPNET_STYLE, {"cls": "<s>", "sep": "</s>", "pad": "<pad>"})
    renamed = OnnxEmbedder(folder)
    text = [["Write a Python function that merges two sorted lists"]]
    assert renamed.token_ids(text[0], 64) == engine.embedder.token_ids(text[0], 64)
    np.testing.assert_allclose(renamed.embed(text, 64), engine.embedder.embed(text, 64), atol=1e-6)


def test_a_tokenizer_without_the_named_special_tokens_is_refused(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _copy_embedder(settings, tmp_path)
    _with_renamed_special_tokens(folder, MPNET_STYLE, None)
    with pytest.raises(
        ArtifactError, match=r"no \[CLS\] token: name the model's own in the manifest's special_tokens"
    ):
        OnnxEmbedder(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["special_tokens"] = {"cls": "<s>", "bos": "</s>"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="special_tokens must map cls/sep/pad"):
        OnnxEmbedder(folder)
