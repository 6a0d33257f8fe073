"""Reading JSON and YAML artifacts: one error type (ArtifactError) naming the file, and YAML
only through safe_load, so a config file can never construct objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from routeiq.errors import ArtifactError


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
