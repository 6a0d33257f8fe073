"""Locust traffic for POST /route (FastHttpUser: plain HttpUser is slower than the server it measures).

Driven by bench/run_load.py through environment variables:
- BENCH_BODIES:    JSON file with the request bodies of one workload (bench/prompts.py makes them);
- BENCH_SESSIONS:  `unique` sends a fresh X-RouteIQ-Session per request, so no request rides on
                   session affinity and every one pays for its decision; `natural` sends none
                   (agent conversations then stick by their opening, as in production);
- BENCH_USER_RATE: requests/s per user, Poisson arrivals (offered load for the overload steps;
                   fixed pacing would fire all users in lock-step bursts);
                   0 = each user sends its next request as soon as the last one is answered,
                   except after a 503: a refused gateway falls back and makes its LLM call
                   without us, so that user comes back after BENCH_REFUSED_PAUSE_S (0.25 s)
                   instead of retrying at once (a retry storm measures the load generator).

A 503 `overloaded` is the service working as designed (fast refusal, the client falls back):
it is counted as its own row, `/route 503`, so its latency is reported apart from decisions.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path

from locust import FastHttpUser, poisson, task

BODIES = [
    json.dumps(b).encode() for b in json.loads(Path(os.environ["BENCH_BODIES"]).read_text(encoding="utf-8"))
]
UNIQUE_SESSIONS = os.environ.get("BENCH_SESSIONS", "natural") == "unique"
RATE = float(os.environ.get("BENCH_USER_RATE", "0"))
REFUSED_PAUSE_S = float(os.environ.get("BENCH_REFUSED_PAUSE_S", "0.25"))
_PACING = poisson(RATE) if RATE > 0 else None
_next = itertools.count()


class RouteUser(FastHttpUser):
    refused = False

    def wait_time(self) -> float:
        if _PACING is not None:
            return float(_PACING(self))
        return REFUSED_PAUSE_S if self.refused else 0.0

    connection_timeout = 10.0
    network_timeout = 10.0

    @task
    def route(self) -> None:
        body = BODIES[next(_next) % len(BODIES)]
        headers = {"content-type": "application/json"}
        if UNIQUE_SESSIONS:
            headers["x-routeiq-session"] = uuid.uuid4().hex
        with self.client.post("/route", data=body, headers=headers, catch_response=True) as response:
            self.refused = response.status_code == 503
            if response.status_code == 200:
                response.success()
            elif response.status_code == 503 and response.headers.get("retry-after"):
                response.request_meta["name"] = "/route 503"
                response.success()
            else:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
