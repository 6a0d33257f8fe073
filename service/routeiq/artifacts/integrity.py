"""Artifact integrity: every file the service loads is checked against a sha256 in a manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from routeiq.artifacts.files import load_json
from routeiq.errors import ArtifactError


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str, *, what: str) -> None:
    """Refuse a missing or altered file, naming it and saying how to fix it."""
    verified_bytes(path, expected_sha256, what=what)


def verified_bytes(path: Path, expected_sha256: str, *, what: str) -> bytes:
    """The file's bytes, once their sha256 matched: hand these (not the path) to a loader, so a
    file swapped between the check and the load cannot slip through."""
    if not path.is_file():
        raise ArtifactError(
            f"{what} is missing: {path}. Restore it from the repository or the image "
            "(models/ is shipped with RouteIQ), or point the setting at a folder that has it."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{what} cannot be read: {path}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ArtifactError(
            f"{what} does not match its manifest: {path} has sha256 {actual}, manifest says "
            f"{expected_sha256}. The file was altered or replaced; restore the original or "
            "rebuild it with its build script and update the manifest."
        )
    return data


# -- the bundle manifest: models/manifest.json pins every file of the shipped models folder.
# A sub-folder with its own manifest.json (the embedder, trained routers) is pinned through that
# manifest, which pins its own files: one chain from models/manifest.json to every byte loaded.

MANIFEST = "manifest.json"
# `models/__init__.py` makes the folder the package `routeiq.models`; nothing loads it as a model.
PACKAGE_MARKER = "__init__.py"
MANIFEST_FORMAT = 1
REGENERATE = "routeiq artifacts manifest"


def bundle_files(models: Path) -> list[str]:
    """Relative paths (posix) the bundle manifest covers, sorted."""
    covered: list[str] = []

    def walk(folder: Path, top: bool) -> None:
        if not top and (folder / MANIFEST).is_file():
            covered.append((folder / MANIFEST).relative_to(models).as_posix())
            return
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir():
                walk(entry, top=False)
            elif entry.is_file() and not (top and entry.name in (MANIFEST, PACKAGE_MARKER)):
                covered.append(entry.relative_to(models).as_posix())

    walk(models, top=True)
    return covered


def build_manifest(models: Path) -> dict[str, Any]:
    files = {
        rel: {"sha256": sha256_file(models / rel), "bytes": (models / rel).stat().st_size}
        for rel in bundle_files(models)
    }
    return {
        "format": MANIFEST_FORMAT,
        "about": f"sha256 of every file RouteIQ loads from this folder; regenerate with `{REGENERATE}`",
        "files": files,
    }


def write_manifest(models: Path) -> Path:
    path = models / MANIFEST
    text = json.dumps(build_manifest(models), indent=2, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


class Bundle:
    """A models folder whose manifest has been read and every listed file verified."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self.files = files  # relative path -> sha256

    @classmethod
    def verify(cls, root: Path) -> Bundle:
        path = root / MANIFEST
        if not path.is_file():
            raise ArtifactError(
                f"models manifest is missing: {path}. Every file RouteIQ loads is pinned by sha256; "
                f"create it for this folder with `{REGENERATE} --models {root}`."
            )
        data = load_json(path, what="models manifest")
        entries = data.get("files")
        if data.get("format") != MANIFEST_FORMAT or not isinstance(entries, dict):
            raise ArtifactError(f"models manifest {path} is not format {MANIFEST_FORMAT} with a 'files' map")
        files: dict[str, str] = {}
        for rel, entry in entries.items():
            target = (root / rel).resolve()
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                raise ArtifactError(f"models manifest {path}: entry {rel!r} has no sha256")
            if not target.is_relative_to(root.resolve()):
                raise ArtifactError(f"models manifest {path}: entry {rel!r} points outside {root}")
            verify_file(root / rel, entry["sha256"], what=f"model file {rel!r} (pinned in {path})")
            files[rel] = entry["sha256"]
        return cls(root, files)

    def require(self, rel: str) -> Path:
        """The path of `rel`, which must be pinned by the manifest (verified in `verify`)."""
        if rel not in self.files:
            raise ArtifactError(
                f"{self.root / rel} is loaded but not pinned in {self.root / MANIFEST}; "
                f"regenerate the manifest with `{REGENERATE} --models {self.root}`."
            )
        return self.root / rel
