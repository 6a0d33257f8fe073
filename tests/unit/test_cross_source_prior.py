"""`routeiq eval --cross-source --category-prior FILE`: the WildBench category prior is an input
named on the command line. Without it (the repository's file absent, as in an installed package)
the output says so and the rows that need it are left out; a named file that is missing or not a
prior is exit 2 naming the file. Real command, real embedder, a small rows file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routeiq.cli import main
from routeiq.training import crossval

SOURCES = ("gsm8k", "mbpp", "trivia_qa")
WORDS = "please explain carefully with every step and each constraint named".split()


def _rows_file(folder: Path) -> Path:
    """Longer prompts are harder in every source: the weak model fails them, the strong never."""
    lines = []
    for source in SOURCES:
        for n in range(10):
            prompt = f"{source} question {n}: " + " ".join(WORDS[: 1 + n])
            weak = 1.0 if n < 5 else 0.0
            lines.append(json.dumps({"prompt": prompt, "source": source, "scores": {"s": 1.0, "w": weak}}))
    path = folder / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _eval(tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "eval",
            "--cross-source",
            "--data",
            str(_rows_file(tmp_path)),
            "--chat",
            "none",
            "--routers-kinds",
            "",
            "--pair",
            "s:w",
            "--results",
            str(tmp_path / "RESULTS.md"),
            "--json",
            str(tmp_path / "cross.json"),
            *extra,
        ]
    )


def test_without_a_prior_the_output_says_so_and_leaves_its_rows_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in an installed package: the repository's bench/data file is not there.
    monkeypatch.setattr(crossval, "PRIOR_FILE", tmp_path / "absent" / "category_need_wildbench.json")
    assert _eval(tmp_path) == 0
    out = capsys.readouterr().out
    assert "no category prior was used" in out
    assert "--category-prior FILE" in out
    scorers = json.loads((tmp_path / "cross.json").read_text())["apgr"]
    assert "two-level:len" in scorers
    # rows of zero offsets would read as a measured prior that changes nothing
    assert not [s for s in scorers if "wb" in s]


def test_the_repository_prior_is_the_default_and_gives_the_same_numbers_when_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crossval.PRIOR_FILE.is_file()
    assert _eval(tmp_path) == 0
    default = json.loads((tmp_path / "cross.json").read_text())
    assert _eval(tmp_path, "--category-prior", str(crossval.PRIOR_FILE)) == 0
    named = json.loads((tmp_path / "cross.json").read_text())
    assert "no category prior" not in capsys.readouterr().out
    assert "two-level:len + 0.5×wb" in default["apgr"]
    assert default == named


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("missing.json", None),
        ("not-json.json", "{offsets: "),
        ("no-offsets.json", '{"sha256": "x"}'),
        ("not-numbers.json", '{"offsets": {"reasoning": "high"}}'),
    ],
)
def test_a_named_prior_that_is_missing_or_not_a_prior_is_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None
) -> None:
    prior = tmp_path / name
    if content is not None:
        prior.write_text(content, encoding="utf-8")
    assert _eval(tmp_path, "--category-prior", str(prior)) == 2
    err = capsys.readouterr().err
    assert str(prior) in err and "category prior" in err
    assert "Traceback" not in err
