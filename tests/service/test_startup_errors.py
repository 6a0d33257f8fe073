"""Every start-up failure is one line on stderr and exit 2, naming the variable or file and what
would be valid; nothing says "ready" first. Each case runs the real `routeiq serve`."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests._harness import clean_env, free_port


def serve(env: dict[str, str], *, port: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "routeiq.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port or free_port())]
    return subprocess.run(
        command, env=clean_env(**env), capture_output=True, text=True, timeout=60, check=False
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "routeiq ready" not in result.stderr
    assert lines[0].startswith("routeiq: ")
    return lines[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # an unknown profile: named, with the closest one and the list
        (
            {"ROUTEIQ_DEFAULT_PROFILE": "ecoo"},
            ["ROUTEIQ_DEFAULT_PROFILE='ecoo'", "did you mean eco?", "known: "],
        ),
        # an unknown trained router: named, with the valid strategies
        ({"ROUTEIQ_STRATEGY": "ml:nope"}, ["ROUTEIQ_STRATEGY='ml:nope'", "valid: centroid"]),
        # a strategy that is no strategy name at all
        ({"ROUTEIQ_STRATEGY": "magic"}, ["ROUTEIQ_STRATEGY='magic'", "centroid"]),
        # missing files and folders
        ({"ROUTEIQ_CATALOG_FILE": "/nonexistent/catalog.yaml"}, ["ROUTEIQ_CATALOG_FILE=", "no such file"]),
        ({"ROUTEIQ_PROFILES_FILE": "/nonexistent/p.yaml"}, ["ROUTEIQ_PROFILES_FILE=", "no such file"]),
        ({"ROUTEIQ_MODELS_PATH": "/nonexistent"}, ["ROUTEIQ_MODELS_PATH=", "no such folder"]),
        ({"ROUTEIQ_CONFIG_FILE": "/nonexistent/routeiq.yaml"}, ["ROUTEIQ_CONFIG_FILE=", "no such file"]),
        # bad values: the variable, not pydantic's field name, and what is valid
        (
            {"ROUTEIQ_LOG_LEVEL": "verbose"},
            ["ROUTEIQ_LOG_LEVEL='verbose'", "'debug', 'info', 'warning' or 'error'"],
        ),
        ({"ROUTEIQ_TOKEN_BUDGET": "4"}, ["ROUTEIQ_TOKEN_BUDGET='4'", "greater than or equal to 8"]),
        ({"ROUTEIQ_WORKERS": "two"}, ["ROUTEIQ_WORKERS='two'", "valid integer"]),
        # a rows folder that cannot be made (its parent is a file)
        (
            {"ROUTEIQ_TRAINING_ROWS_DIR": "/etc/hostname/rows"},
            ["ROUTEIQ_TRAINING_ROWS_DIR='/etc/hostname/rows'", "not a writable folder"],
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(env: dict[str, str], expected: list[str]) -> None:
    line = one_line(serve(env))
    for part in expected:
        assert part in line, line


def test_a_bad_flag_names_the_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "routeiq.cli", "serve", "--workers", "0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "--workers=0" in one_line(result)


def test_yaml_problems_name_the_file_and_the_key(tmp_path: Path) -> None:
    config = tmp_path / "routeiq.yaml"
    config.write_text("defualt_profile: eco\n")
    line = one_line(serve({"ROUTEIQ_CONFIG_FILE": str(config)}))
    assert str(config) in line and "unknown key 'defualt_profile' (did you mean default_profile?)" in line
    config.write_text("token_budget: [unclosed\n")
    assert "cannot be read" in one_line(serve({"ROUTEIQ_CONFIG_FILE": str(config)}))
    config.write_text("token_budget: many\n")
    line = one_line(serve({"ROUTEIQ_CONFIG_FILE": str(config)}))
    assert f"ROUTEIQ_CONFIG_FILE='{config}': token_budget='many'" in line


def test_a_port_in_use_fails_before_ready() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(serve({"ROUTEIQ_LOG_LEVEL": "info"}, port=port))
    assert f"ROUTEIQ_PORT={port}: 127.0.0.1:{port} is already in use" in line
