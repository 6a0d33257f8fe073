"""Packaging: one version, the bundled models found as package data, every room in the wheel."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from setuptools import find_packages

import routeiq
import routeiq_client
from routeiq.cli import main
from routeiq.settings import default_models_path

ROOT = Path(__file__).resolve().parents[2]


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"routeiq {routeiq.__version__}"


@pytest.mark.parametrize(
    ("distribution", "module_version"),
    [("routeiq", routeiq.__version__), ("routeiq-client", routeiq_client.__version__)],
)
def test_installed_metadata_reads_the_version_from_the_module(distribution: str, module_version: str) -> None:
    assert metadata.version(distribution) == module_version


@pytest.mark.parametrize("pyproject", ["pyproject.toml", "client/pyproject.toml"])
def test_version_is_written_once(pyproject: str) -> None:
    project = tomllib.loads((ROOT / pyproject).read_text(encoding="utf-8"))["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]


def test_default_models_path_is_the_bundled_folder() -> None:
    # An editable install maps the package `routeiq.models` onto the repository's models/.
    assert default_models_path().resolve() == (ROOT / "models").resolve()
    assert (default_models_path() / "manifest.json").is_file()


def test_every_package_under_service_is_listed_for_the_wheel() -> None:
    """The packages are listed by hand (routeiq.models lives outside service/): a new room left
    out of the list would be missing from the wheel."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    )
    found = set(find_packages(str(ROOT / "service"), include=["routeiq*"]))
    assert found == {p for p in listed if not p.startswith("routeiq.models")}
    assert {"routeiq.models", "routeiq.models.embedder", "routeiq.models.routers"} <= listed


def test_client_license_is_the_repository_license() -> None:
    # client/ is built on its own (e.g. docker/gateway.Dockerfile), so it carries a copy.
    assert (ROOT / "client" / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
