"""Reproducible builds: the image, `make` and CI install exact versions with hashes from
requirements/*.lock, and the locks satisfy the ranges pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^ ;\\]+)")


def pins(lock: str) -> dict[str, str]:
    text = (REPO / "requirements" / lock).read_text()
    found = {canonicalize_name(m[1]): m[2] for line in text.splitlines() if (m := PIN.match(line))}
    # every pinned file is hash-checked: a pin without --hash would make pip refuse the whole lock
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1])
    unhashed = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
    assert not unhashed, f"{lock}: pins without hashes: {unhashed}"
    return found


def requirements(pyproject: str, *extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO / pyproject).read_text())["project"]
    listed = project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]
    wanted = [Requirement(r) for r in listed]
    env = default_environment() | {"sys_platform": "linux", "platform_system": "Linux"}
    return [r for r in wanted if r.marker is None or r.marker.evaluate(env)]


def unsatisfied(reqs: list[Requirement], locked: dict[str, str]) -> list[str]:
    return [
        str(r)
        for r in reqs
        if canonicalize_name(r.name) not in locked
        or not r.specifier.contains(locked[canonicalize_name(r.name)], prereleases=True)
    ]


def test_the_service_lock_satisfies_pyproject_and_matches_the_dev_lock() -> None:
    service, dev = pins("service.lock"), pins("dev.lock")
    assert not unsatisfied(requirements("pyproject.toml"), service), "run `make lock`"
    # the image runs the versions the tests ran
    differ = {name: (v, dev.get(name)) for name, v in service.items() if dev.get(name) != v}
    assert not differ, f"service.lock and dev.lock disagree (run `make lock`): {differ}"


def test_the_dev_lock_holds_everything_make_test_installs() -> None:
    dev = pins("dev.lock")
    wanted = requirements("pyproject.toml", "dev", "train") + requirements(
        "client/pyproject.toml", "litellm", "dev"
    )
    assert not unsatisfied(wanted, dev), "run `make lock`"


def test_the_image_make_and_ci_install_from_the_locks() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--require-hashes --no-deps --requirement /tmp/service.lock" in dockerfile
    assert "COPY requirements/service.lock" in dockerfile
    # no other install in the image may resolve dependencies on its own
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert installs and all("--no-deps" in i for i in installs), installs
    assert "!requirements/service.lock" in (REPO / ".dockerignore").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r $(LOCK_DEV)" in makefile
    assert "--no-deps -e . -e ./client" in makefile


def test_litellm_version_is_written_in_one_place() -> None:
    (pin,) = [r for r in requirements("client/pyproject.toml", "litellm") if r.name == "litellm"]
    version = next(iter(pin.specifier)).version
    assert pins("dev.lock")["litellm"] == version
    assert pins("gateway.lock")["litellm"] == version  # the LiteLLM + client image
    gateway = (REPO / "docker" / "gateway.Dockerfile").read_text()
    assert "--require-hashes --no-deps --requirement /tmp/gateway.lock" in gateway
    assert "!requirements/gateway.lock" in (REPO / ".dockerignore").read_text()
    for path in (".ci/run", ".ci/docker.sh", "Makefile", "pyproject.toml", "docker/gateway.Dockerfile"):
        assert version not in (REPO / path).read_text(), f"{path} repeats litellm's version"
