"""Narrowing LiteLLM's healthy deployments to the model RouteIQ chose. Pure functions over plain
dicts (`model_list` elements): no litellm import, so this is tested without LiteLLM.

RouteIQ decides *which model*, and in which order to try models; LiteLLM's own routing strategy
(weights, rpm/tpm, latency, ...) still picks *which deployment* of that model serves. Deployments
of one model are one choice: same `litellm_params.model`, unless the operator declares the
equivalence with `model_info.routeiq_model`.

What one call has been through lives in the call's own metadata (`CallState`), which LiteLLM
hands unchanged to every retry and fallback of that call: so a retry needs no second `/route`
and never gets back a deployment that already failed for it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

Deployment = dict[str, Any]
# Key of the call's state inside the request's metadata bucket. Never sent to a provider:
# LiteLLM keeps its proxy-internal bucket (`litellm_metadata` when present) for such keys.
STATE_KEY = "_routeiq"


def deployment_id(deployment: Mapping[str, Any]) -> str | None:
    found = (deployment.get("model_info") or {}).get("id")
    return found if isinstance(found, str) and found else None


def model_key(deployment: Mapping[str, Any]) -> str:
    """What makes deployments interchangeable for RouteIQ."""
    info = deployment.get("model_info") or {}
    declared = info.get("routeiq_model")
    if isinstance(declared, str) and declared:
        return declared
    return str((deployment.get("litellm_params") or {}).get("model"))


def distinct_models(healthy: Sequence[Mapping[str, Any]]) -> int:
    return len({model_key(d) for d in healthy})


def ranked_models(answer: Mapping[str, Any], healthy: Sequence[Mapping[str, Any]]) -> list[str]:
    """The models of the answer's deployment and its ranked fallbacks, best first, each once.
    Models the answer does not name are left out: the profile may have excluded them."""
    key_of = {i: model_key(d) for d in healthy if (i := deployment_id(d)) is not None}
    named = [answer.get("deployment_id"), *(answer.get("fallbacks") or ())]
    ranked: list[str] = []
    for item in named:
        key = key_of.get(item) if isinstance(item, str) else None
        if key is not None and key not in ranked:
            ranked.append(key)
    return ranked


class CallState:
    """One call's routing memory, kept as plain JSON-able data in the call's metadata (logging
    code copies and serialises metadata): per model group the decision; for the whole call
    the deployments that already failed (fallbacks cross groups)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.groups: dict[str, dict[str, Any]] = data.setdefault("groups", {})
        self.failed: list[str] = data.setdefault("failed", [])

    @classmethod
    def of(cls, bucket: MutableMapping[str, Any], call: object) -> CallState:
        """The state of `call` (LiteLLM's trace id, the same for every retry and fallback of a
        call). An SDK caller may pass one metadata dict to many calls: another call's state
        found there is replaced, never reused."""
        found = bucket.get(STATE_KEY)
        if not isinstance(found, dict) or found.get("call") != call:
            found = bucket[STATE_KEY] = {"call": call}
        return cls(found)

    def note_previous_attempt(self, bucket: Mapping[str, Any]) -> None:
        """LiteLLM writes the deployment it used into the metadata before each attempt; seeing
        it when the call is routed again means that attempt failed."""
        if not self.groups:
            return
        previous = deployment_id(bucket)
        if previous is not None and previous not in self.failed:
            self.failed.append(previous)


def narrow(
    healthy: Sequence[Deployment], ranked: Sequence[str], failed: Sequence[str]
) -> tuple[list[Deployment], str | None]:
    """The healthy deployments of the best ranked model that still has one not failed for this
    call, and that model. When every ranked model is used up, every healthy deployment that has
    not failed (the safety net: better another model than a repeated failure), model None."""
    spent = set(failed)
    usable = [d for d in healthy if deployment_id(d) not in spent]
    for key in ranked:
        chosen = [d for d in usable if model_key(d) == key]
        if chosen:
            return chosen, key
    return (usable or list(healthy)), None


def decision_record(group: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The decision in the shape of LiteLLM's routing-decision field of the standard logging
    payload (as its own pre-routing routers fill it), plus RouteIQ's own fields."""
    record: dict[str, Any] = {
        "router_model_name": group,
        "routed_model": answer.get("model"),
        "tier": answer.get("tier"),
        "request_type": answer.get("category"),
        "score": answer.get("complexity"),
        "routeiq_profile": answer.get("profile"),
        "routeiq_strategy": answer.get("strategy"),
        "routeiq_reason": answer.get("reason"),
        "routeiq_request_id": answer.get("request_id"),
        "routeiq_experiment": answer.get("experiment"),
        "routeiq_variant": answer.get("variant"),
        "routeiq_experiment_phase": answer.get("experiment_phase"),
    }
    return {k: v for k, v in record.items() if v is not None}


# outcome field -> decision record field
_ECHOED = {
    "request_id": "routeiq_request_id",
    "experiment": "routeiq_experiment",
    "variant": "routeiq_variant",
    "experiment_phase": "routeiq_experiment_phase",
}


def _echoable(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def decision_of_call(kwargs: Mapping[str, Any]) -> dict[str, str | int]:
    """What an outcome must echo of the decision that routed this call (its request id, and its
    experiment and variant when it took part in one), found in the call's metadata as LiteLLM
    hands it to logging callbacks: the last group routed is the one whose deployment ran."""
    params = kwargs.get("litellm_params")
    places = [kwargs, params if isinstance(params, Mapping) else {}]
    for place in places:
        for key in ("litellm_metadata", "metadata"):
            bucket = place.get(key)
            state = bucket.get(STATE_KEY) if isinstance(bucket, Mapping) else None
            if not isinstance(state, Mapping):
                continue
            groups = state.get("groups")
            entry = groups.get(state.get("last")) if isinstance(groups, Mapping) else None
            record = entry.get("record") if isinstance(entry, Mapping) else None
            if not isinstance(record, Mapping):
                return {}
            return {k: record[f] for k, f in _ECHOED.items() if _echoable(record.get(f))}
    return {}


def response_headers(record: Mapping[str, Any]) -> dict[str, str]:
    """`x-routeiq-*` headers for the proxy's caller, from a decision record."""
    names = {
        "routed_model": "x-routeiq-model",
        "tier": "x-routeiq-tier",
        "request_type": "x-routeiq-category",
        "routeiq_profile": "x-routeiq-profile",
        "routeiq_strategy": "x-routeiq-strategy",
        "routeiq_request_id": "x-routeiq-request-id",
        "routeiq_variant": "x-routeiq-variant",
        "routeiq_fallback": "x-routeiq-fallback",
    }
    return {header: str(record[key]) for key, header in names.items() if record.get(key) is not None}
