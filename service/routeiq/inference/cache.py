"""The in-process embedding cache: an LRU keyed by a hash of exactly the text that was embedded
and the token budget, bounded by memory (and optionally by entries)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from threading import Lock

from routeiq.inference.embedder import Vector


def cache_key(segments: Sequence[str], budget: int, scope: str = "") -> bytes:
    """`scope` (a tenant) keeps tenants' entries apart: otherwise a hit, visible in the
    response's timings, would tell one tenant which prompts another has sent."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(budget.to_bytes(4, "little"))
    if scope:
        digest.update(b"\x1e" + scope.encode("utf-8"))
    for segment in segments:
        digest.update(b"\x1f")
        digest.update(segment.encode("utf-8", "surrogatepass"))
    return digest.digest()


# Bytes an entry costs beyond its vector: the 16-byte key object, the ndarray header and the
# OrderedDict node (measured with tracemalloc: ~250 B on CPython 3.11; rounded up).
ENTRY_OVERHEAD_BYTES = 300


class EmbeddingCache:
    """Thread-safe LRU of embeddings keyed by a hash of exactly what was embedded, bounded by
    memory (`max_bytes`, vector + bookkeeping) and optionally by entry count."""

    def __init__(self, capacity: int | None = None, *, max_bytes: int | None = None) -> None:
        if capacity is None and max_bytes is None:
            raise ValueError("an embedding cache needs a capacity or max_bytes")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[bytes, Vector] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    @classmethod
    def sized(cls, mb: float, entries: int | None) -> EmbeddingCache:
        return cls(entries, max_bytes=int(mb * 1024 * 1024))

    @property
    def enabled(self) -> bool:
        return self.capacity != 0 and self.max_bytes != 0

    def get(self, key: bytes) -> Vector | None:
        if not self.enabled:
            return None
        with self._lock:
            vector = self._data.get(key)
            if vector is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return vector

    def put(self, key: bytes, vector: Vector) -> None:
        if not self.enabled:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes + ENTRY_OVERHEAD_BYTES
            self._data[key] = vector
            self.bytes += vector.nbytes + ENTRY_OVERHEAD_BYTES
            while self._data and self._over():
                _, evicted = self._data.popitem(last=False)
                self.bytes -= evicted.nbytes + ENTRY_OVERHEAD_BYTES

    def _over(self) -> bool:
        if self.capacity is not None and len(self._data) > self.capacity:
            return True
        return self.max_bytes is not None and self.bytes > self.max_bytes

    def __len__(self) -> int:
        return len(self._data)
