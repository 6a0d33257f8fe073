"""No pickle, no eval/exec, YAML only through safe_load — checked on the syntax tree of every
module we ship, so a comment saying "never pickle" does not trip it and an alias cannot hide."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [p for d in ("service", "client") for p in sorted((ROOT / d).rglob("*.py"))]

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
# yaml attributes that can construct arbitrary objects (safe_load / safe_dump are fine)
UNSAFE_YAML = {
    "load",
    "load_all",
    "full_load",
    "full_load_all",
    "unsafe_load",
    "unsafe_load_all",
    "Loader",
    "UnsafeLoader",
    "FullLoader",
}


def findings(source: str, name: str = "<src>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"from {node.module} import")
            if node.module == "yaml":
                found += [f"from yaml import {a.name}" for a in node.names if a.name in UNSAFE_YAML]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"{node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "yaml" and node.attr in UNSAFE_YAML:
                found.append(f"yaml.{node.attr}")
            if node.attr == "load" and node.value.id == "torch":
                found.append("torch.load")  # unpickles
        elif (
            isinstance(node, ast.keyword)
            and node.arg == "allow_pickle"
            # numpy's default is False; saying False explicitly is fine, anything else is not
            and not (isinstance(node.value, ast.Constant) and node.value.value is False)
        ):
            found.append("allow_pickle=")
    return [f"{name}:{f}" for f in found]


def test_shipped_code_loads_nothing_unsafely() -> None:
    assert SHIPPED, "no modules found"
    problems = [f for path in SHIPPED for f in findings(path.read_text(encoding="utf-8"), str(path))]
    assert problems == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "import joblib as jl",
        "from pickle import loads",
        "eval('1+1')",
        "exec('x = 1')",
        "yaml.load(text, Loader=yaml.Loader)",
        "yaml.unsafe_load(text)",
        "from yaml import load",
        "np.load(path, allow_pickle=True)",
        "np.load(path, allow_pickle=flag)",
        "torch.load(path)",
    ],
)
def test_the_scanner_catches_each_pattern(snippet: str) -> None:
    assert findings(snippet)


def test_the_scanner_allows_the_safe_forms() -> None:
    assert findings("# never pickle\nimport yaml\nyaml.safe_load(t)\nyaml.safe_dump(d)\nx = 'eval'") == []
    assert findings("np.load(p, allow_pickle=False)\nnp.save(p, a, allow_pickle=False)") == []
