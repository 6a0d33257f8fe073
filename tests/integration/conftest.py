"""Integration fixtures: a real routeiq service subprocess and real litellm.Router instances built
from the same deployments as examples/litellm/config.yaml (redis-server: tests/conftest.py)."""

from __future__ import annotations

import os

# Offline: LiteLLM must read its bundled cost map instead of fetching one (set before import).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests._harness import REPO, ServeProcess

EXAMPLE_CONFIG = REPO / "examples" / "litellm" / "config.yaml"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def example_model_list(group: str = "auto") -> list[dict[str, Any]]:
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return [d for d in config["model_list"] if d["model_name"] == group]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("service")) as proc:
        yield proc


# Warnings raised inside LiteLLM and the libraries it drives, not by our code: the suite runs
# with filterwarnings=error, which should keep catching ours.
THIRD_PARTY_WARNINGS = ("ignore::UserWarning:pydantic._internal._generate_schema",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            for spec in THIRD_PARTY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))
