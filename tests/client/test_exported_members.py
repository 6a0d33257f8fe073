"""The public surface is exactly __all__, and importing the package does not import litellm."""

from __future__ import annotations

import subprocess
import sys

import routeiq_client


def test_all_names_resolve() -> None:
    for name in routeiq_client.__all__:
        assert getattr(routeiq_client, name) is not None, name


def test_public_names_are_exactly_all() -> None:
    public = {n for n in dir(routeiq_client) if not n.startswith("_")} | routeiq_client._LAZY
    modules = {
        "breaker",
        "config",
        "decide",
        "errors",
        "feedback",
        "http",
        "metrics",
        "request",
        "narrow",
        "litellm_strategy",
    }
    assert public - modules - {"TYPE_CHECKING", "Any", "annotations"} == set(routeiq_client.__all__) - {
        "__version__"
    }


def test_import_does_not_pull_in_litellm() -> None:
    code = "import sys, routeiq_client; sys.exit('litellm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
