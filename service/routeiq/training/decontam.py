"""Decontamination: keep the test sets that routers are judged on out of every fit.

A benchmark item is stored only as a *signature* (no text): the hashes of its k smallest word
8-gram shingles (bottom-k min-hash), plus the hash of its whole normalised text. A candidate
prompt matches an item when

- its whole normalised text hashes to an item's whole-text hash (exact duplicate, also for items
  too short to have shingles), or
- at least `need` of the item's bottom-k shingle hashes occur among the candidate's shingles
  (near duplicate: the item's text is contained in the prompt up to small edits, e.g. wrapped in
  an instruction or a few-shot template, re-spaced, re-cased or re-punctuated).

Bottom-k is a uniform sample of the item's shingles, so a prompt holding most of an item's text
hits most of its k hashes, and a prompt sharing a stray 8-word phrase with it hits few.
Normalisation is case-folding and keeping only letters and digits, so punctuation, LaTeX
spacing and markup do not hide a duplicate.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SHINGLE = 8
BOTTOM_K = 4
NEED = 2  # of BOTTOM_K hashes; items with fewer shingles need all of theirs
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _h(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little")


def whole_hash(text: str) -> int:
    return _h(" ".join(words(text)))


def shingles(text: str) -> set[int]:
    w = words(text)
    return {_h(" ".join(w[i : i + SHINGLE])) for i in range(len(w) - SHINGLE + 1)}


@dataclass(frozen=True)
class Signatures:
    """Per benchmark item: bottom-k shingle hashes (0 = none), whole-text hash, benchmark id."""

    bottom: npt.NDArray[np.uint32]  # (items, BOTTOM_K)
    whole: npt.NDArray[np.uint32]  # (items,)
    benchmark: npt.NDArray[np.int16]  # (items,) index into names
    names: tuple[str, ...]

    @classmethod
    def build(cls, items: dict[str, list[str]]) -> Signatures:
        names = tuple(sorted(items))
        bottom, whole, bench = [], [], []
        for b, name in enumerate(names):
            for text in items[name]:
                sh = sorted(shingles(text))[:BOTTOM_K]
                bottom.append(sh + [0] * (BOTTOM_K - len(sh)))
                whole.append(whole_hash(text))
                bench.append(b)
        return cls(
            np.array(bottom, dtype=np.uint32).reshape(-1, BOTTOM_K),
            np.array(whole, dtype=np.uint32),
            np.array(bench, dtype=np.int16),
            names,
        )

    def save(self, path: Path) -> None:
        with path.open("wb") as f:
            np.savez_compressed(
                f, bottom=self.bottom, whole=self.whole, benchmark=self.benchmark, names=np.array(self.names)
            )

    @classmethod
    def load(cls, path: Path) -> Signatures:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["bottom"], z["whole"], z["benchmark"], tuple(str(n) for n in z["names"]))

    def _index(self) -> dict[int, list[int]]:
        index: dict[int, list[int]] | None = self.__dict__.get("_by_hash")
        if index is None:
            index = {}
            for item, row in enumerate(self.bottom.tolist()):
                for h in row:
                    if h:
                        index.setdefault(h, []).append(item)
            object.__setattr__(self, "_by_hash", index)
            object.__setattr__(self, "_whole", {h: i for i, h in enumerate(self.whole.tolist())})
            object.__setattr__(self, "_have", (self.bottom != 0).sum(axis=1).tolist())
        return index

    def counts(self) -> dict[str, int]:
        return {n: int((self.benchmark == i).sum()) for i, n in enumerate(self.names)}

    def match(self, text: str) -> str | None:
        """The benchmark this prompt duplicates (exactly or nearly), or None."""
        index = self._index()
        whole: dict[int, int] = self.__dict__["_whole"]
        have: list[int] = self.__dict__["_have"]
        exact = whole.get(whole_hash(text))
        if exact is not None:
            return self.names[int(self.benchmark[exact])]
        hits: dict[int, int] = {}
        for h in shingles(text):
            for item in index.get(h, ()):
                hits[item] = hits.get(item, 0) + 1
        for item, n in hits.items():
            if n >= min(NEED, have[item]):
                return self.names[int(self.benchmark[item])]
        return None
