"""Reading the training rows the service wrote (observability/training_rows.py) into arrays.

Rows from another embedder, of another dimension or that do not parse are skipped and counted:
a folder may hold files from before an embedder change, and one bad line must not make the rest
unreadable.

Workers append to these files while they run, so a file read now may end in a line with no
newline yet. If it does not parse it is a row still being written (or left by a process killed
mid-write), counted `incomplete`, not `unreadable`: that key is kept for complete lines that do
not parse, which is damage. A last line with no newline that does parse is used (its writer
stopped before the newline). Files are read as bytes and split on b"\n" alone, the one line end
the writer writes: a tear inside a multi-byte character then stays one torn line, and the Unicode
line breaks JSON allows unescaped in a string do not split a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.errors import InvalidRequest
from routeiq.observability.training_rows import ROW_FORMAT, decode_vector


@dataclass
class ProductionRows:
    """One entry per row, in time order (decision time)."""

    at: npt.NDArray[np.float64]
    x: npt.NDArray[np.float32]
    model: list[str]
    deployment_id: list[str]
    label: npt.NDArray[np.float32]  # 0 for a failure, else the reported quality (1 when none)
    success: npt.NDArray[np.bool_]
    tokens: npt.NDArray[np.float64]
    complexity: npt.NDArray[np.float64]
    category: list[str]
    tier: list[str]
    low_confidence: list[bool]
    skipped: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def __len__(self) -> int:
        return len(self.model)

    def take(self, rows: npt.NDArray[np.int64]) -> ProductionRows:
        pick = [int(i) for i in rows]
        return ProductionRows(
            at=self.at[rows],
            x=self.x[rows],
            model=[self.model[i] for i in pick],
            deployment_id=[self.deployment_id[i] for i in pick],
            label=self.label[rows],
            success=self.success[rows],
            tokens=self.tokens[rows],
            complexity=self.complexity[rows],
            category=[self.category[i] for i in pick],
            tier=[self.tier[i] for i in pick],
            low_confidence=[self.low_confidence[i] for i in pick],
            files=self.files,
        )


def row_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidRequest(f"{path}: no such file or folder of training rows", field="rows")
    return files


def load(
    paths: list[Path], embedder_sha256: str, dimension: int, tenant: str | None = None
) -> ProductionRows:
    """Every usable row of the files (folders: their *.jsonl), in decision-time order; with
    `tenant`, that tenant's rows only."""
    skipped = {"unreadable": 0, "incomplete": 0, "other_embedder": 0, "other_tenant": 0}
    parsed: list[dict[str, Any]] = []
    files = row_files(paths)
    for path in files:
        with path.open("rb") as handle:
            for line in handle:  # binary: split on b"\n" only, each line keeps its end
                row = _parse(line)
                if row is None:
                    # Only a file's last line can lack its newline: one being appended right now.
                    skipped["unreadable" if line.endswith(b"\n") else "incomplete"] += 1
                elif row["embedder_sha256"] != embedder_sha256 or row["dimension"] != dimension:
                    skipped["other_embedder"] += 1
                elif tenant is not None and row.get("tenant") != tenant:
                    skipped["other_tenant"] += 1
                else:
                    parsed.append(row)
    parsed.sort(key=lambda r: r["at"])
    x = (
        np.stack([decode_vector(r["embedding"]) for r in parsed])
        if parsed
        else np.zeros((0, dimension), np.float32)
    )
    success = np.array([bool(r["success"]) for r in parsed], dtype=bool)
    quality = [r.get("quality") for r in parsed]
    label = np.array(
        [0.0 if not ok else (1.0 if q is None else float(q)) for ok, q in zip(success, quality, strict=True)],
        dtype=np.float32,
    )
    return ProductionRows(
        at=np.array([float(r["at"]) for r in parsed], dtype=np.float64),
        x=x.astype(np.float32),
        model=[str(r["model"]) for r in parsed],
        deployment_id=[str(r["deployment_id"]) for r in parsed],
        label=label,
        success=success,
        tokens=np.array([float(r.get("tokens") or 0) for r in parsed], dtype=np.float64),
        complexity=np.array([float(r.get("complexity") or 0.0) for r in parsed], dtype=np.float64),
        category=[str(r.get("category") or "") for r in parsed],
        tier=[str(r.get("tier") or "moderate") for r in parsed],
        low_confidence=[bool(r.get("low_confidence")) for r in parsed],
        skipped=skipped,
        files=len(files),
    )


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(line)  # bytes: UTF-8, a torn or invalid sequence is a ValueError
    except ValueError:
        return None
    needed = ("at", "embedding", "embedder_sha256", "dimension", "model", "deployment_id", "success")
    if not isinstance(row, dict) or row.get("format") != ROW_FORMAT or any(k not in row for k in needed):
        return None
    try:
        if len(decode_vector(str(row["embedding"]))) != int(row["dimension"]):
            return None
    except ValueError:
        return None
    return row
