"""`routeiq serve`: pre-flight checks, structured logs, uvicorn with a graceful drain.

Lifecycle:
- start-up fails fast: settings, token file and every pinned artifact are checked before uvicorn
  binds the port, so a bad config or a tampered file exits 2 with one line naming it;
- on SIGTERM readiness goes false at once (`/readyz` -> 503 "draining"); the service keeps
  serving for ROUTEIQ_DRAIN_DELAY_SECONDS (load balancers and Kubernetes endpoints take a moment
  to notice, and closing the listener earlier resets connections still arriving); then uvicorn
  stops accepting connections, requests already received get up to
  ROUTEIQ_DRAIN_TIMEOUT_SECONDS to finish, the lifespan closes the engine, and the process exits
  0 (uvicorn re-raises the signal after its shutdown; we make that a clean exit). A second
  SIGTERM, or SIGINT, skips the delay. The drain itself is http/drain.py; with `--workers N`
  every worker runs it (http/supervisor.py).
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
from typing import Any

import uvicorn

from routeiq.artifacts.integrity import Bundle, verify_file
from routeiq.decision.catalog import Catalog
from routeiq.decision.names import CENTROID, TRAINED_PREFIX
from routeiq.decision.profiles import Profiles
from routeiq.http.auth import TokenSet
from routeiq.http.connections import GuardedHttpToolsProtocol, raise_file_limit
from routeiq.http.drain import DrainingServer, exit_cleanly
from routeiq.http.supervisor import Supervisor
from routeiq.inference.embedder import EmbedderManifest
from routeiq.observability.logs import configure_logging, logging_config
from routeiq.observability.training_rows import check_folder
from routeiq.settings import Settings, SettingsError, closest, unknown_variables

log = logging.getLogger("routeiq")


def preflight(settings: Settings) -> None:
    """Cheap checks of everything start-up would load (hashes and YAML, not ONNX sessions) and of
    the port: raises RouteIQError naming the file or setting, before anything says "ready". The
    lifespan verifies again when it really loads."""
    TokenSet.from_settings(settings)
    Bundle.verify(settings.models_path)
    embedder = settings.embedder_dir
    manifest = EmbedderManifest.load(embedder)
    verify_file(embedder / "model.onnx", manifest.model_sha256, what="embedder model")
    verify_file(embedder / "tokenizer.json", manifest.tokenizer_sha256, what="embedder tokenizer")
    Catalog.load(settings.models_path / "catalog.yaml", settings.catalog_file)
    profiles = Profiles.load(settings.models_path / "profiles.yaml", settings.profiles_file)
    if settings.default_profile not in profiles.profiles:
        known = sorted(profiles.profiles)
        raise SettingsError(
            f"ROUTEIQ_DEFAULT_PROFILE={settings.default_profile!r} is not a profile"
            f"{closest(settings.default_profile, known)}; known: {', '.join(known)}"
        )
    if settings.strategy.startswith(TRAINED_PREFIX):
        routers = sorted(p.stem for p in settings.trained_routers_dir.glob("*.json"))
        name = settings.strategy.removeprefix(TRAINED_PREFIX)
        if name not in routers:
            raise SettingsError(
                f"ROUTEIQ_STRATEGY={settings.strategy!r}: no router {name!r} in "
                f"{settings.trained_routers_dir}{closest(name, routers)}; valid: "
                + ", ".join([CENTROID, *(TRAINED_PREFIX + r for r in routers)])
            )
    check_folder(settings)
    check_port(settings.host, settings.port)


def check_port(host: str, port: int) -> None:
    """Fail before the model loads (and before "ready" is logged) when the address is taken.
    SO_REUSEADDR as uvicorn sets it, so a port in TIME_WAIT is not mistaken for one in use."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingsError(f"ROUTEIQ_HOST={host!r} is not an address of this machine: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            what = "is already in use" if in_use else f"cannot be bound: {exc.strerror}"
            raise SettingsError(
                f"ROUTEIQ_PORT={port}: {host}:{port} {what}; choose another port (ROUTEIQ_PORT or --port)"
            ) from None


def run(settings: Settings) -> int:
    configure_logging(settings)
    for warning in unknown_variables():
        log.warning(warning)
    preflight(settings)
    raise_file_limit(settings)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": logging_config(settings),  # JSON lines for uvicorn's messages too
        "access_log": False,  # RequestIdMiddleware writes the access log, with request ids
        "timeout_graceful_shutdown": settings.drain_timeout_seconds,
        "proxy_headers": False,  # clients are gateways, not browsers behind a proxy chain
        # httptools with header, timeout and connection limits (http/connections.py)
        "http": GuardedHttpToolsProtocol,
    }
    # uvicorn re-raises SIGTERM after a graceful shutdown; with the default handler that kills
    # the process (exit 143). Ours turns it, and a SIGTERM before uvicorn starts, into exit 0.
    signal.signal(signal.SIGTERM, exit_cleanly)
    if settings.workers > 1:
        # Workers are separate processes: each builds its app from the environment and drains
        # as one worker does when the supervisor passes SIGTERM on (supervisor.WorkerProcess).
        # Each worker's lifespan logs the start-up warnings.
        config = uvicorn.Config(
            "routeiq.http.app:create_app", factory=True, workers=settings.workers, **common
        )
        supervisor = Supervisor(config, [config.bind_socket()], settings.drain_delay_seconds)
        supervisor.run()
        return 3 if supervisor.failed else 0  # 3: a worker could not start (logged above)
    from routeiq.http.app import create_app

    app = create_app(settings)
    server = DrainingServer(uvicorn.Config(app, **common), app, settings.drain_delay_seconds)
    server.run()
    if not server.started:
        return 3  # the lifespan failed; uvicorn has logged why
    return 0
