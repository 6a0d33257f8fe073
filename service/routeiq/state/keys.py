"""Every Redis key RouteIQ uses, built in one place (layout in docs/state.md).

All state keys of one namespace share the hash tag `{<namespace>}`: Redis Cluster hashes only
the tagged part, so every key of a namespace lives on one slot and every multi-key operation
(pipelines in a transaction, Lua scripts) stays on one node. A second `State` with another
namespace (another tenant, another deployment) gets its own slot and never touches these keys.

Shared embeddings are the exception: single-key GET/SET, many and large, so they carry no hash
tag and spread over the whole cluster.
"""

from __future__ import annotations

import hashlib


def state_prefix(namespace: str) -> str:
    """`routeiq:{<namespace>}:`: the braces are the Redis Cluster hash tag."""
    return "routeiq:{" + namespace + "}:"


def tenant_namespace(namespace: str, tenant: str | None) -> str:
    """The namespace of one tenant's state. No tenant (auth off: the default tenant) is the
    namespace itself, so its keys are exactly those of a single-tenant service. ':' cannot occur
    in a namespace setting, so a tenant's keys never collide with another namespace's; and the
    whole of it is the hash tag, so each tenant's keys share one slot of their own."""
    return namespace if tenant is None else f"{namespace}:tenant:{tenant}"


def embedding_prefix(namespace: str) -> bytes:
    return f"routeiq:emb:{namespace}:".encode()


class StateKeys:
    """The key names of one namespace. Deployment, experiment and variant names go into key
    names as they are; the first `{...}` of a key is the hash tag, so braces in them are harmless."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = p = state_prefix(namespace)
        # Sorted set: deployment id -> unix time it last reported (ids that stop reporting are
        # pruned). Older versions kept a plain set with no expiry under `stats:deployments`;
        # the outcome script takes it over (state/lua.py).
        self.stats_ids = p + "stats:reported"
        self.legacy_stats_ids = p + "stats:deployments"
        self.breaker_open = p + "breaker:open"
        self.breaker_ok = p + "breaker:ok"
        self.breaker_probes = p + "breaker:probes"
        self.config = p + "config"
        self.experiments = p + "experiments"
        self.experiments_log = p + "experiments:log"
        self.version = p + "version"

    def session(self, key: str) -> str:
        # Hashed: bounded length whatever the caller's ids, and no user text in key names.
        return self.prefix + "session:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def stats(self, deployment_id: str) -> str:
        return self.prefix + "stats:" + deployment_id

    def breaker_window(self, deployment_id: str) -> str:
        return self.prefix + "breaker:window:" + deployment_id

    def exp_decisions(self, experiment: str) -> str:
        return f"{self.prefix}exp:{experiment}:decisions"

    def exp_outcomes(self, experiment: str) -> str:
        return f"{self.prefix}exp:{experiment}:outcomes"

    def quota(self, bucket: str) -> str:
        return f"{self.prefix}quota:{bucket}"

    def budget(self, window_seconds: int, bucket: int) -> str:
        return f"{self.prefix}budget:{window_seconds}:{bucket}"
