"""`routeiq` command line: serve, route (a decision without a server), centroids build."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import RouteIQError


def _settings(overrides: dict[str, Any]) -> Any:
    from .settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings({"host": args.host, "port": args.port, "workers": args.workers})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if settings.workers > 1 or settings.prometheus_multiproc_dir is not None:
        # Workers are separate processes: each writes its metrics to files that /metrics (in any
        # worker) adds up. Set before prometheus_client is first imported (by the app).
        prepare_metrics_dir(settings.prometheus_multiproc_dir)
    if settings.workers > 1:
        # Each worker builds its app from the environment.
        uvicorn.run(
            "routeiq.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,
        )
        return 0
    from .app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def prepare_metrics_dir(directory: Path | None) -> Path:
    """PROMETHEUS_MULTIPROC_DIR for the workers: the given one emptied of a previous run's files
    (stale files would add old totals), or a fresh temp dir."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="routeiq-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # read by the spawned workers
    return directory


def cmd_route(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .metrics import Metrics
    from .pipeline import Context, decide
    from .schemas import RouteRequest

    engine = Engine.load(_settings({}), Metrics.create())
    engine.ready = True
    request = RouteRequest(prompt=args.prompt, profile=args.profile, explain=args.explain, model=args.model)
    try:
        response = asyncio.run(decide(engine, request, Context(request_id="cli")))
    finally:
        engine.executor.shutdown()
    print(json.dumps(response.model_dump(exclude_none=True), indent=2, ensure_ascii=False))
    return 0


def cmd_centroids_build(args: argparse.Namespace) -> int:
    from . import centroids
    from .embed import OnnxEmbedder

    settings = _settings({})
    embedder = OnnxEmbedder(settings.embedder_dir)
    source = Path(args.prototypes) if args.prototypes else settings.models_path / "prototypes.yaml"
    prototypes = centroids.load_prototypes(source)
    if args.extra:
        prototypes = centroids.merge_prototypes(prototypes, centroids.load_prototypes(Path(args.extra)))
    built = centroids.build(embedder, prototypes)
    out = Path(args.out) if args.out else settings.models_path / "centroids.json"
    centroids.save(built, out)
    counts = dict(zip(built.categories.labels, built.categories.counts, strict=True))
    tiers = dict(zip(built.tiers.labels, built.tiers.counts, strict=True))
    print(f"wrote {out}: categories {counts}, tiers {tiers}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    print(f"routeiq verify: {verify(_settings({})).summary()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routeiq", description="Routing decisions for LLM gateways.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (settings from ROUTEIQ_* env vars)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    route = sub.add_parser("route", help="print a routing decision for a prompt, without a server")
    route.add_argument("prompt")
    route.add_argument("--profile")
    route.add_argument("--model", help="requested model group (default: choose among the catalog)")
    route.add_argument("--explain", action="store_true")
    route.set_defaults(func=cmd_route)

    cents = sub.add_parser("centroids", help="centroid tools")
    cents_sub = cents.add_subparsers(dest="centroids_command", required=True)
    build = cents_sub.add_parser("build", help="embed prototype prompts and write centroids JSON")
    build.add_argument("--prototypes", help="prototypes YAML (default: models/prototypes.yaml)")
    build.add_argument("--extra", help="extra prototypes YAML merged over the base")
    build.add_argument("--out", help="output JSON (default: models/centroids.json)")
    build.set_defaults(func=cmd_centroids_build)

    check = sub.add_parser(
        "verify", help="check the models folder (hashes, centroids vs prototypes) and decide once"
    )
    check.set_defaults(func=cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (RouteIQError, ValidationError) as exc:
        print(f"routeiq: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
