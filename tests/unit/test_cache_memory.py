"""The embedding cache is bounded by memory: vectors plus bookkeeping stay under max_bytes."""

from __future__ import annotations

import numpy as np

from routeiq.inference.cache import ENTRY_OVERHEAD_BYTES, EmbeddingCache, cache_key
from routeiq.settings import Settings

DIM = 384
PER_ENTRY = DIM * 4 + ENTRY_OVERHEAD_BYTES


def _vec(seed: int) -> np.ndarray:
    return np.full(DIM, seed, dtype=np.float32)


def test_memory_bound_evicts_least_recent_first() -> None:
    cache = EmbeddingCache(None, max_bytes=3 * PER_ENTRY)
    keys = [cache_key([str(i)], 64) for i in range(5)]
    for i in range(3):
        cache.put(keys[i], _vec(i))
    assert cache.get(keys[0]) is not None  # 0 is now the most recent
    cache.put(keys[3], _vec(3))
    assert len(cache) == 3 and cache.bytes == 3 * PER_ENTRY
    assert cache.get(keys[1]) is None  # the least recent went
    assert cache.get(keys[0]) is not None and cache.get(keys[3]) is not None


def test_replacing_a_key_does_not_count_it_twice() -> None:
    cache = EmbeddingCache(None, max_bytes=10 * PER_ENTRY)
    key = cache_key(["same"], 64)
    for i in range(4):
        cache.put(key, _vec(i))
    assert len(cache) == 1 and cache.bytes == PER_ENTRY
    assert float(cache.get(key)[0]) == 3.0  # type: ignore[index]


def test_entry_cap_and_memory_cap_both_hold() -> None:
    cache = EmbeddingCache(2, max_bytes=100 * PER_ENTRY)
    for i in range(5):
        cache.put(cache_key([str(i)], 64), _vec(i))
    assert len(cache) == 2


def test_sized_from_settings_in_mib() -> None:
    settings = Settings(embedding_cache_mb=1)
    cache = EmbeddingCache.sized(settings.embedding_cache_mb, settings.embedding_cache_size)
    for i in range(5000):
        cache.put(cache_key([str(i)], 64), _vec(i))
    assert len(cache) == (1024 * 1024) // PER_ENTRY  # ~570 entries of all-MiniLM per MiB
    assert cache.bytes <= 1024 * 1024


def test_zero_means_off() -> None:
    for cache in (EmbeddingCache.sized(0, None), EmbeddingCache.sized(16, 0)):
        key = cache_key(["x"], 64)
        cache.put(key, _vec(1))
        assert cache.get(key) is None and len(cache) == 0
