"""Artifact integrity: every file the service loads is checked against a sha256 in a manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from .errors import ArtifactError


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str, *, what: str) -> None:
    """Refuse a missing or altered file, naming it and saying how to fix it."""
    if not path.is_file():
        raise ArtifactError(
            f"{what} is missing: {path}. Restore it from the repository or the image "
            "(models/ is shipped with RouteIQ), or point the setting at a folder that has it."
        )
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ArtifactError(
            f"{what} does not match its manifest: {path} has sha256 {actual}, manifest says "
            f"{expected_sha256}. The file was altered or replaced; restore the original or "
            "rebuild it with its build script and update the manifest."
        )


def load_json(path: Path, *, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{what} is missing: {path}") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{what} is not valid JSON: {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{what} must hold a JSON object: {path}")
    return data


def load_yaml(path: Path, *, what: str) -> dict[str, Any]:
    """YAML is always loaded with safe_load: config files never construct objects."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{what} is missing: {path}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ArtifactError(f"{what} is not valid YAML: {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{what} must hold a mapping: {path}")
    return data
