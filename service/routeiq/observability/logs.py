"""Structured logs: one JSON object per line on stderr, stdlib `logging` only.

Fields: `ts`, `level`, `logger`, `msg`, plus whatever a caller put in `extra={"fields": {...}}`
(the access log puts request id, status, timings, client name and the decision summary there).
Prompt text never appears unless ROUTEIQ_LOG_PROMPTS is on: `decision_summary` is the only
place that reads it, and only then.
"""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any

import orjson

from routeiq.decision.schemas import RouteRequest, RouteResponse
from routeiq.settings import Settings

# How much prompt text a decision log line may carry when ROUTEIQ_LOG_PROMPTS is on.
PROMPT_LOG_CHARS = 500


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # default=str: a stray object must not cost the log line; lone surrogates would make
        # orjson refuse the whole line, so fall back to the stdlib encoder, which escapes them.
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:
            import json

            return json.dumps(entry, default=str)


def logging_config(settings: Settings) -> dict[str, Any]:
    """dictConfig for the root logger on stderr in the configured format. Handed to uvicorn too,
    which applies it in every worker process; uvicorn's own loggers propagate to the root."""
    formatter: dict[str, Any] = (
        {"()": "routeiq.observability.logs.JsonFormatter"}
        if settings.log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    quiet = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"routeiq": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "routeiq", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": settings.log_level.upper()},
        "loggers": {name: dict(quiet) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))


def decision_summary(
    response: RouteResponse, request: RouteRequest | None = None, *, include_prompt: bool = False
) -> dict[str, Any]:
    """What the access log says about a decision: enough to explain it, no prompt text unless
    the operator asked for it."""
    summary: dict[str, Any] = {
        "model": response.model,
        "deployment_id": response.deployment_id,
        "profile": response.profile,
        "tier": response.tier,
        "category": response.category,
        "complexity": response.complexity,
        "confidence": response.confidence,
        "strategy": response.strategy,
        "reason": response.reason,
        "timings_ms": response.timings_ms,
    }
    if response.experiment:
        summary["experiment"] = response.experiment
        summary["variant"] = response.variant
    if include_prompt and request is not None:
        summary["prompt"] = _prompt_text(request)[:PROMPT_LOG_CHARS]
    return summary


def _prompt_text(request: RouteRequest) -> str:
    if request.messages:
        for message in reversed(request.messages):
            if message.role == "user" and message.content is not None:
                if isinstance(message.content, str):
                    return message.content
                return "\n".join(p.text for p in message.content if p.text)
        return ""
    source = request.prompt if request.prompt is not None else request.input
    if isinstance(source, list):
        return source[-1] if source else ""
    return source or ""
