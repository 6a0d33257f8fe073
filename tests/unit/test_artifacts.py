"""Supply chain: models/manifest.json pins every shipped file; altered files stop start-up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from routeiq.artifacts.integrity import MANIFEST, Bundle, build_manifest, bundle_files, write_manifest
from routeiq.engine import Engine
from routeiq.errors import ArtifactError
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings, default_models_path
from routeiq.snapshot import BUNDLED_FILES

MODELS = default_models_path()


def test_manifest_is_current() -> None:
    """Fails when a file in models/ changed without the manifest: run `routeiq artifacts manifest`
    (then commit models/manifest.json with the change)."""
    committed = json.loads((MODELS / MANIFEST).read_text(encoding="utf-8"))
    fresh = build_manifest(MODELS)
    stale = sorted(
        set(committed["files"]).symmetric_difference(fresh["files"])
        | {k for k in fresh["files"] if committed["files"].get(k) != fresh["files"][k]}
    )
    assert not stale, f"models/manifest.json is stale for {stale}: run `routeiq artifacts manifest`"


def test_manifest_covers_what_the_engine_loads() -> None:
    files = set(bundle_files(MODELS))
    assert set(BUNDLED_FILES) | {"embedder/manifest.json"} <= files
    # the embedder's big files are pinned through its own manifest, not listed twice
    assert "embedder/model.onnx" not in files


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(MODELS, copy)
    return copy


@pytest.mark.parametrize("name", [*BUNDLED_FILES, "embedder/manifest.json"])
def test_tampered_file_is_refused_by_name(models_copy: Path, name: str) -> None:
    target = models_copy / name
    target.write_bytes(target.read_bytes() + b"\n# tampered\n")
    with pytest.raises(ArtifactError, match="does not match its manifest") as caught:
        Bundle.verify(models_copy)
    assert str(target) in str(caught.value)


def test_tampered_embedder_model_is_refused(models_copy: Path) -> None:
    model = models_copy / "embedder" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    model.write_bytes(bytes(data))
    Bundle.verify(models_copy)  # the bundle pins the embedder's manifest, which pins the model
    with pytest.raises(ArtifactError, match=r"embedder model does not match.*model\.onnx"):
        Engine.load(Settings(models_path=models_copy), Metrics.create())


def test_engine_refuses_a_tampered_catalog(models_copy: Path) -> None:
    catalog = models_copy / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace("premium", "budget", 1), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"catalog\.yaml"):
        Engine.load(Settings(models_path=models_copy), Metrics.create())


def test_missing_manifest_says_how_to_make_one(models_copy: Path) -> None:
    (models_copy / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="routeiq artifacts manifest --models"):
        Bundle.verify(models_copy)
    write_manifest(models_copy)
    assert set(Bundle.verify(models_copy).files) == set(bundle_files(models_copy))


def test_loaded_file_must_be_pinned(models_copy: Path) -> None:
    manifest = json.loads((models_copy / MANIFEST).read_text(encoding="utf-8"))
    del manifest["files"]["complexity.json"]
    (models_copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    bundle = Bundle.verify(models_copy)
    with pytest.raises(ArtifactError, match="not pinned"):
        bundle.require("complexity.json")


@pytest.mark.parametrize("entry", ["../outside.txt", "/etc/hostname"])
def test_manifest_entries_cannot_escape_the_folder(models_copy: Path, entry: str) -> None:
    manifest = json.loads((models_copy / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"][entry] = {"sha256": "0" * 64}
    (models_copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArtifactError, match="outside"):
        Bundle.verify(models_copy)


def test_removed_file_is_refused(models_copy: Path) -> None:
    (models_copy / "profiles.yaml").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        Bundle.verify(models_copy)
