"""Integration fixtures: a real redis-server per module with a fresh namespace per test; a real
routeiq service subprocess and real litellm.Router instances built from the same deployments as
examples/litellm/config.yaml."""

from __future__ import annotations

import os

# Offline: LiteLLM must read its bundled cost map instead of fetching one (set before import).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.redis_server import RedisServer

from .procs import REPO, ServiceProcess

EXAMPLE_CONFIG = REPO / "examples" / "litellm" / "config.yaml"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.kill()


@pytest.fixture
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def example_model_list(group: str = "auto") -> list[dict[str, Any]]:
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return [d for d in config["model_list"] if d["model_name"] == group]


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    proc = ServiceProcess().start()
    yield proc
    proc.kill()


# Warnings raised inside LiteLLM and the libraries it drives, not by our code: the suite runs
# with filterwarnings=error, which should keep catching ours.
THIRD_PARTY_WARNINGS = ("ignore::UserWarning:pydantic._internal._generate_schema",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            for spec in THIRD_PARTY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))
