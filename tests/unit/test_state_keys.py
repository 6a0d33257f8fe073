"""Every key of one namespace hashes to one Redis Cluster slot, and the Lua scripts only touch
keys passed in KEYS (a cluster routes a script by its KEYS)."""

from __future__ import annotations

import re

from redis.crc import key_slot

from routeiq.state import lua
from routeiq.state.keys import StateKeys, embedding_prefix


def test_every_state_key_of_a_namespace_lands_on_one_slot() -> None:
    k = StateKeys("tenant-a")
    names = [
        k.stats_ids,
        k.legacy_stats_ids,
        k.breaker_open,
        k.breaker_ok,
        k.breaker_probes,
        k.config,
        k.experiments,
        k.version,
        k.session("conv-1"),
        k.stats("dep{with}braces"),
        k.breaker_window("claude"),
        k.exp_decisions("exp:1"),
        k.exp_outcomes("{x}"),
        k.budget(300, 12345),
    ]
    slots = {key_slot(n.encode()) for n in names}
    assert len(slots) == 1
    assert key_slot(StateKeys("tenant-b").version.encode()) != slots.pop()  # tenants apart
    assert all(n.startswith("routeiq:{tenant-a}:") for n in names)


def test_embeddings_spread_over_the_cluster() -> None:
    prefix = embedding_prefix("default")
    assert b"{" not in prefix
    assert len({key_slot(prefix + str(i).encode()) for i in range(50)}) > 40


def test_scripts_name_no_keys_themselves() -> None:
    for name in (
        "RECORD_OUTCOMES",
        "CIRCUIT_VIEW",
        "CLAIM_PROBE",
        "BUMP_VERSION",
        "CHANGE_EXPERIMENT",
        "LOAD_CONFIG",
    ):
        script = getattr(lua, name)
        for call in re.findall(r"redis\.call\('\w+', ([^,)]+)", script):
            assert "ARGV" not in call and ".." not in call, f"{name}: key {call!r} not from KEYS"
