"""The dashboard at /ui/: a static page and script shipped in the package (http/ui/), and the
two admin endpoints it reads besides the existing /admin/* ones.

The page and its assets hold no data; every number on it comes from /admin/* with the admin
key the operator enters (kept in the tab's sessionStorage), so the dashboard is exactly as
protected as the admin API and follows its scoping. Nothing runs on /route: the page polls
`/admin/overview`, a JSON view of the same registry /metrics exports, and computes rates
between polls in the browser.

Tenants: the overview is one tenant's (its config, breakers, experiments, catalog). A tenant
admin token sees its own tenant and, of the process-wide metrics, only the series labelled with
it; the global key sees every series and picks the tenant with X-RouteIQ-Tenant (the first one
when it names none), and is told which tenants there are.
"""

from __future__ import annotations

import math
import time
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.decision.experiments import readout
from routeiq.errors import Forbidden, NotFound
from routeiq.http.admin import config_view, tenant_in_scope, visible_tenants
from routeiq.http.auth import AdminScope, require_admin
from routeiq.http.errors import send_error
from routeiq.http.handlers import scrape_registry
from routeiq.observability.metrics import label

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
Caller = Annotated[AdminScope, Depends(require_admin)]

# Families the page reads, by the name prometheus_client reports (counters without `_total`).
_LABELLED = {
    "routeiq_decisions": "decisions",
    "routeiq_embedding_cache": "cache",
    "routeiq_requests_rejected": "rejected",
    "routeiq_errors": "errors",
    "routeiq_estimated_spend_usd": "spend",
    "routeiq_circuit_breaker_state": "breaker_state",
    "routeiq_state_fallbacks": "state_fallbacks",
    "routeiq_experiment_decisions": "experiment_decisions",
}
_SINGLE = {
    "routeiq_premium_alternative_spend_usd": "premium_spend",
    "routeiq_premium_share_ratio": "premium_share",
    "routeiq_state_degraded": "state_degraded",
    "routeiq_premium_budget_downgrades": "budget_downgrades",
    "routeiq_decisions_in_flight": "in_flight",
}


def ui_dir() -> Path:
    return Path(str(files("routeiq.http") / "ui"))


def install_ui(app: FastAPI) -> None:
    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=308)

    app.mount("/ui", _AdminOnly(StaticFiles(directory=ui_dir(), html=True)), name="ui")
    app.include_router(router)


class _AdminOnly:
    """Without an admin key there is no admin API, hence no dashboard: a 403 that says so
    rather than a page whose every request fails. Wraps only the /ui mount (no cost elsewhere)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = scope["app"].state.settings
        if scope["type"] == "http" and settings.admin_key is None:
            error = Forbidden("the dashboard needs the admin API: set ROUTEIQ_ADMIN_KEY to enable it")
            await send_error(scope, send, error)
            return
        await self.app(scope, receive, send)


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def metrics_view(request: Request) -> dict[str, Any]:
    """Counters and gauges as label dicts + values, histograms as cumulative buckets."""
    out: dict[str, Any] = {v: [] for v in _LABELLED.values()}
    out.update(dict.fromkeys(_SINGLE.values(), 0.0))
    stages: dict[str, dict[str, Any]] = {}
    for family in scrape_registry(request).collect():
        if family.name in _LABELLED:
            key = _LABELLED[family.name]
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue
                out[key].append({**s.labels, "value": s.value})
        elif family.name in _SINGLE:
            for s in family.samples:
                if not s.name.endswith("_created"):
                    out[_SINGLE[family.name]] = _number(s.value)
        elif family.name == "routeiq_decision_duration_seconds":
            for s in family.samples:
                stage = stages.setdefault(s.labels.get("stage", "?"), {"buckets": [], "count": 0.0})
                if s.name.endswith("_bucket"):
                    stage["buckets"].append([float(s.labels["le"]), s.value])
                elif s.name.endswith("_count"):
                    stage["count"] = s.value
    for stage in stages.values():
        stage["buckets"] = [[le if math.isfinite(le) else None, n] for le, n in sorted(stage["buckets"])]
    out["stages"] = stages
    return out


def tenant_metrics_view(request: Request, label: str | None) -> dict[str, Any]:
    """A tenant admin's share of the metrics: the per-tenant series with its label, shaped like
    `metrics_view` (what has no tenant label is every tenant's traffic and stays out). None: the
    tenant has no label of its own (past the label bound it shares "other"), so nothing."""
    out: dict[str, Any] = {v: [] for v in _LABELLED.values()}
    out.update(dict.fromkeys(_SINGLE.values(), None))
    total: dict[str, Any] = {"buckets": [], "count": 0.0}
    for family in scrape_registry(request).collect() if label is not None else ():
        for s in family.samples:
            if s.labels.get("tenant") != label or s.name.endswith("_created"):
                continue
            if family.name == "routeiq_tenant_decisions":
                out["decisions"].append({"tenant": label, "value": s.value})
            elif family.name == "routeiq_tenant_refusals":
                out["rejected"].append({"reason": s.labels.get("reason"), "value": s.value})
            elif family.name == "routeiq_tenant_decision_duration_seconds":
                if s.name.endswith("_bucket"):
                    total["buckets"].append([float(s.labels["le"]), s.value])
                elif s.name.endswith("_count"):
                    total["count"] = s.value
    total["buckets"] = [[le if math.isfinite(le) else None, n] for le, n in sorted(total["buckets"])]
    out["stages"] = {"total": total} if total["count"] else {}
    return out


def _own_label(bounded: str, name: str) -> str | None:
    return bounded if bounded == label(name) else None


@router.get("/overview")
async def overview(request: Request, scope: Caller) -> dict[str, Any]:
    """Everything the dashboard's live, money and health panels draw, in one poll."""
    tenant = await tenant_in_scope(request, scope, first_if_unnamed=True)
    engine = tenant.engine
    snap = engine.snapshot
    experiments = []
    for spec in snap.config.experiments:
        experiments.append(readout(spec, await engine.state.experiment_counts(spec.name)))
    breakers = await engine.state.breakers()
    own_only = scope.tenant is not None
    return {
        "at": time.time(),
        "tenants": visible_tenants(request, scope),
        "metrics_scope": "tenant" if own_only else "service",
        "metrics": (
            tenant_metrics_view(request, _own_label(engine.metrics.tenant_label(tenant.name), tenant.name))
            if own_only
            else metrics_view(request)
        ),
        "config": config_view(engine),
        "premium_share_target": engine.settings.premium_share_target,
        "breakers": {k: v.as_dict() for k, v in sorted(breakers.items())},
        "experiments": experiments,
        "catalog": [
            {
                "deployment_id": e.deployment_id,
                "model": e.model,
                "tier": e.tier,
                "blended_cost_per_mtok": e.blended_cost,
            }
            for e in snap.catalog.entries
        ],
    }


@router.get("/decisions/{request_id}/explain")
async def explain_decision(
    request_id: Annotated[str, PathParam(max_length=128)], request: Request, scope: Caller
) -> dict[str, Any]:
    """A recent decision with its explain view (signals, scores, every candidate and why), from
    the tenant in scope's own buffer."""
    found = (await tenant_in_scope(request, scope)).engine.recent.explain(request_id)
    if found is None:
        raise NotFound(f"no recent decision {request_id!r} in this worker's buffer", field="request_id")
    return found
