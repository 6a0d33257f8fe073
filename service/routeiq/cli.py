"""`routeiq` command line: serve, route (a decision without a server), centroids build, and the
trained-router tools train / eval / calibrate (those need the `train` extra; see docs/training.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from routeiq import __version__
from routeiq.errors import ConfigError, RouteIQError


def _settings(overrides: dict[str, Any]) -> Any:
    from routeiq.settings import load_settings

    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings({"host": args.host, "port": args.port, "workers": args.workers})
    if settings.workers > 1 or settings.prometheus_multiproc_dir is not None:
        # Workers are separate processes: each writes its metrics to files that /metrics (in any
        # worker) adds up. Set before prometheus_client is first imported (by the app).
        prepare_metrics_dir(settings.prometheus_multiproc_dir)
    from routeiq.http.server import run  # imports prometheus_client: after the line above

    try:
        return run(settings)
    finally:
        if settings.prometheus_multiproc_dir is None and "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            # The folder we made for this run: nothing in it outlives the workers.
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def prepare_metrics_dir(directory: Path | None) -> Path:
    """PROMETHEUS_MULTIPROC_DIR for the workers: the given one emptied of a previous run's files
    (stale files would add old totals), or a fresh temp dir."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="routeiq-metrics-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        probe = directory / f".routeiq-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        # Checked here, once: every worker would otherwise die on it and be restarted for ever.
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR {directory} is not a writable folder: {exc.strerror or exc}"
        ) from None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # read by the spawned workers
    return directory


def cmd_route(args: argparse.Namespace) -> int:
    from routeiq.decision.schemas import RouteRequest
    from routeiq.engine import Engine
    from routeiq.observability.metrics import Metrics
    from routeiq.pipeline import Context, decide

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
    from routeiq.decision import centroids
    from routeiq.inference.embedder import OnnxEmbedder

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
    if out.resolve() == (settings.models_path / "centroids.json").resolve():
        from routeiq.artifacts.integrity import write_manifest

        print(f"wrote {write_manifest(settings.models_path)} (the new centroids' sha256)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from routeiq.selfcheck import verify

    print(f"routeiq verify: {verify(_settings({})).summary()}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from routeiq.inference.embedder import OnnxEmbedder
    from routeiq.training.train import TrainPlan, run

    logging.basicConfig(level="INFO", format="%(message)s")
    settings = _settings({})
    plan = TrainPlan(
        data=Path(args.data),
        out=Path(args.out) if args.out else settings.trained_routers_dir,
        prefix=args.name,
        kinds=tuple(args.kinds.split(",")),
        holdout=Path(args.holdout) if args.holdout else None,
        val_share=args.val_share,
        seed=args.seed,
        token_budget=settings.token_budget,
    )
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    for manifest, _ in run(plan, embedder):
        print(f"wrote {plan.out / manifest.graph_file} ({manifest.kind}; {manifest.metrics})")
    return 0


def _pair(value: str) -> tuple[str, str]:
    strong, sep, weak = value.partition(":")
    if not sep or not strong or not weak:
        raise argparse.ArgumentTypeError("a pair is STRONG:WEAK")
    return strong, weak


def cmd_eval(args: argparse.Namespace) -> int:
    from routeiq.training import report
    from routeiq.training.evaluate import EvalPlan, run

    settings = _settings({})
    if args.cross_source:
        return _eval_cross_source(args, settings)
    if not args.catalog or not args.pair:
        raise SystemExit("routeiq eval: --catalog and --pair are required (unless --cross-source)")
    plan = EvalPlan(
        data=Path(args.data),
        routers=Path(args.routers) if args.routers else settings.trained_routers_dir,
        catalog=Path(args.catalog),
        pairs=tuple(args.pair),
        train_data=Path(args.train_data) if args.train_data else None,
        names=tuple(args.router or ()),
        timing_runs=args.timing_runs,
    )
    result = run(plan, settings)
    results_md = Path(args.results)
    plots = report.plot(result, Path(args.plots), results_md.parent)
    command = "routeiq " + " ".join(sys.argv[1:]) if args.command_line is None else args.command_line
    report.write_section(results_md, report.markdown(result, command, plots))
    if args.json:
        report.write_json(result, Path(args.json))
    print(f"wrote section '{report.SECTION}' to {results_md}, {len(plots)} plots to {args.plots}")
    return 0


def _eval_cross_source(args: argparse.Namespace, settings: Any) -> int:
    from datetime import UTC, datetime

    from routeiq.inference.embedder import OnnxEmbedder
    from routeiq.training import crossval, report

    chat = None if args.chat == "none" else Path(args.chat or crossval.CHAT_FILE)
    if chat is not None and not chat.is_file():
        raise SystemExit(f"routeiq eval: no chat set at {chat} (tools/build_chat_eval.py, or --chat none)")
    # Read before embedding: a bad file is an error now, not after minutes of work.
    prior_file = _category_prior_file(args.category_prior, crossval.PRIOR_FILE)
    prior = crossval.read_prior(prior_file) if prior_file else None
    embedder = OnnxEmbedder(settings.embedder_dir)
    data = crossval.load(Path(args.data), settings, embedder, chat=chat, prior=prior)
    pairs = tuple(args.pair) if args.pair else crossval.PAIRS
    kinds = [k for k in args.routers_kinds.split(",") if k]
    routers = tuple(k for k in kinds if k in crossval.ROUTERS)
    pairwise = tuple(k for k in kinds if k in ("bt", "svm"))
    result = crossval.run(data, pairs, routers=routers, pairwise=pairwise)
    chosen = crossval.choose(result)
    why = (
        "the best mean APGR over kinds among fitted complexity scores that stay within 0.01 of "
        "prompt length on every kind (chosen by `crossval.choose` on this table)"
    )
    command = "routeiq " + " ".join(sys.argv[1:]) if args.command_line is None else args.command_line
    date = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    section = crossval.markdown(result, command, report.machine(), date, chosen, why)
    results_md = Path(args.results)
    report.write_section(results_md, section, crossval.SECTION)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1) + "\n")
    print(section)
    if prior is None:
        # The numbers differ from a run with the prior (its rows are missing): never silently.
        print(
            f"\nNote: no category prior was used ({crossval.PRIOR_FILE} is not here, as in an "
            "installed package), so the rows that need one (wb, wbp) are left out. Give one with "
            "--category-prior FILE (bench/data/category_need_wildbench.json, tools/wildbench_prior.py)."
        )
    return 0


def _category_prior_file(given: str | None, default: Path) -> Path | None:
    """The file named on the command line (read, so an error if it is not there), else the
    repository's file where it exists, else none."""
    if given:
        return Path(given)
    return default if default.is_file() else None


def cmd_calibrate(args: argparse.Namespace) -> int:
    from routeiq.training.calibrate import calibrate, write_profile

    settings = _settings({})
    result = calibrate(
        settings,
        args.router,
        Path(args.sample),
        args.premium_share,
        args.profile,
        Path(args.catalog) if args.catalog else None,
    )
    for threshold, share in result.curve[::20]:
        print(f"  ml_threshold {threshold:.2f} -> premium share {share:.1%}")
    print(
        f"profile {result.profile.name!r}: ml_threshold {result.threshold:.3f} sends {result.share:.1%} "
        f"of the sample to premium models (target {result.target:.1%})"
    )
    if args.out:
        write_profile(result, Path(args.out))
        print(f"wrote {args.out}: use it with ROUTEIQ_PROFILES_FILE={args.out}")
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    from routeiq.selfcheck import verify
    from routeiq.training.refine import RefinePlan, run

    settings = _settings({})
    sources = [Path(p) for p in args.rows] if args.rows else []
    if not sources and settings.training_rows_dir is not None:
        sources = [settings.training_rows_dir]
    if not sources:
        raise ConfigError("routeiq refine: name the rows with --rows (or set ROUTEIQ_TRAINING_ROWS_DIR)")
    plan = RefinePlan(
        rows=tuple(sources),
        out=Path(args.out),
        name=args.name,
        kind=args.kind,
        holdout_share=args.holdout_share,
        min_rows=args.min_rows,
        pairs=tuple(args.pair or ()),
        seed=args.seed,
        tenant=args.tenant,
    )
    result = run(plan, settings)
    print(result.table())
    # The candidate folder must pass what the service and the image build check.
    candidate = settings.model_copy(
        update={"models_path": plan.out, "routers_path": None, "strategy": result.router}
    )
    print(f"wrote {plan.out}; routeiq verify with {result.router}: {verify(candidate).summary()}")
    if args.propose or args.admin_url:
        _propose(args, settings, result)
    return 0


def _propose(args: argparse.Namespace, settings: Any, result: Any) -> None:
    """Promotion only through an A/B experiment: print the admin calls, or make them."""
    from routeiq.training.refine import experiment_body

    body = experiment_body(result, args.experiment)
    name = result.router.removeprefix("ml:")
    url = (args.admin_url or "http://127.0.0.1:8400").rstrip("/")
    if args.admin_url:
        import httpx

        key = settings.admin_key.get_secret_value() if settings.admin_key else ""
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10, trust_env=False) as http:
            config = http.get("/admin/config")
            if config.status_code != 200:
                raise ConfigError(
                    f"GET {url}/admin/config answered {config.status_code}: {config.text[:300]}"
                )
            live = config.json()
            if result.router not in live.get("strategies", []):
                raise ConfigError(
                    f"the service at {url} has not loaded {result.router}: serve {args.out} "
                    "(ROUTEIQ_MODELS_PATH) or copy its router into the routers folder and "
                    "POST /admin/reload first"
                )
            body["variants"][0]["strategy"] = live["strategy"]  # what it runs now, overrides included
            created = http.post("/admin/experiments", json=body)
            if created.status_code != 201:
                raise ConfigError(
                    f"POST {url}/admin/experiments answered {created.status_code}: {created.text[:300]}"
                )
        print(f"started experiment {body['name']!r} on {url}: {json.dumps(created.json()['experiment'])}")
        return
    print(
        "\nTo try the candidate (the active strategy is unchanged until an experiment starts):\n"
        f"  1. serve the candidate folder, ROUTEIQ_MODELS_PATH={args.out} (the active folder plus "
        f"routers/{name}.onnx/.json), or copy those two files into the service's routers folder and "
        "POST /admin/reload\n"
        "  2. start the experiment (or run this command again with --admin-url):\n"
        f'     curl -sS -X POST {url}/admin/experiments -H "Authorization: Bearer $ROUTEIQ_ADMIN_KEY" '
        f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'\n"
        f"  3. read it out with GET {url}/admin/experiments/{body['name']}; stop it with "
        f"POST {url}/admin/experiments/{body['name']}/stop"
    )


def _add_training_commands(sub: Any) -> None:
    train = sub.add_parser("train", help="train routers (knn, mlp, linear, mf) into ONNX + manifests")
    train.add_argument("--data", required=True, help="JSONL or JSON array: prompt + per-model scores")
    train.add_argument("--holdout", help="evaluation file: its prompts are removed from the training rows")
    train.add_argument("--name", default="router", help="name prefix: routers are <name>-<kind>")
    train.add_argument("--kinds", default="knn,mlp,linear,mf", help="router kinds to train, comma-separated")
    train.add_argument("--out", help="output folder (default: ROUTEIQ_ROUTERS_PATH or models/routers)")
    train.add_argument("--val-share", type=float, default=0.1, help="validation slice for model selection")
    train.add_argument("--seed", type=int, default=0, help="random seed (splits, initialisation)")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate routers and baselines on held-out data; write RESULTS")
    ev.add_argument("--data", required=True, help="held-out file scoring every model")
    ev.add_argument("--catalog", help="catalog YAML with the models' prices and tiers")
    ev.add_argument("--pair", type=_pair, action="append", help="STRONG:WEAK (repeat)")
    ev.add_argument(
        "--cross-source",
        action="store_true",
        help="leave-one-source-out over the rows' `source` field (tools/decontaminate.py build)",
    )
    ev.add_argument(
        "--routers-kinds",
        default="knn,linear,mf,mlp",
        help="router kinds refitted per fold: knn, linear, mf, mlp, bt (Bradley-Terry), svm",
    )
    ev.add_argument(
        "--chat",
        help="with --cross-source: the chat set scored as its own kind, never fitted on "
        "(default: the repository's bench/data/chat_eval_oasst.jsonl from tools/build_chat_eval.py; "
        "'none' to leave it out)",
    )
    ev.add_argument(
        "--category-prior",
        metavar="FILE",
        help="with --cross-source: per-category offsets applied as measured, not fitted (the wb, wbp "
        "rows; default: the repository's bench/data/category_need_wildbench.json from "
        "tools/wildbench_prior.py when it is there, else those rows are left out and the output says so)",
    )
    ev.add_argument("--train-data", help="the training file, to verify no prompt is in both")
    ev.add_argument("--routers", help="routers folder (default: ROUTEIQ_ROUTERS_PATH or models/routers)")
    ev.add_argument("--router", action="append", help="only these routers (repeat)")
    ev.add_argument("--results", default="bench/RESULTS.md", help="markdown file whose section is rewritten")
    ev.add_argument("--plots", default="bench/plots", help="folder for the PNG plots")
    ev.add_argument("--json", help="also write every number as JSON here")
    ev.add_argument("--timing-runs", type=int, default=2000, help="decisions timed per router")
    ev.add_argument("--command-line", help=argparse.SUPPRESS)
    ev.set_defaults(func=cmd_eval)

    ref = sub.add_parser(
        "refine", help="learn a candidate router from production rows; compare; propose an A/B experiment"
    )
    ref.add_argument(
        "--rows", action="append", help="rows file or folder (repeat; default: ROUTEIQ_TRAINING_ROWS_DIR)"
    )
    ref.add_argument("--out", required=True, help="new folder for the candidate models folder")
    ref.add_argument("--name", default="refined", help="the candidate router's name (strategy ml:<name>)")
    ref.add_argument("--kind", default="knn", help="router kind: knn, mlp, linear, mf")
    ref.add_argument("--holdout-share", type=float, default=0.2, help="newest share of rows held back")
    ref.add_argument("--min-rows", type=int, default=200, help="refuse with fewer usable rows")
    ref.add_argument("--pair", type=_pair, action="append", help="STRONG:WEAK models to compare on (repeat)")
    ref.add_argument("--seed", type=int, default=0, help="seed of the random baseline and tie-breaking")
    ref.add_argument("--tenant", help="only this tenant's rows (default: every row)")
    ref.add_argument("--propose", action="store_true", help="print the admin calls that start the experiment")
    ref.add_argument(
        "--admin-url", help="start the experiment on this service (admin key: ROUTEIQ_ADMIN_KEY)"
    )
    ref.add_argument("--experiment", help="experiment name (default: refine-<name>)")
    ref.set_defaults(func=cmd_refine)

    cal = sub.add_parser("calibrate", help="set a profile's ml_threshold for a target premium share")
    cal.add_argument("--router", required=True, help="router name (without ml:)")
    cal.add_argument("--sample", required=True, help="JSONL/JSON of prompts from your traffic")
    cal.add_argument("--premium-share", type=float, required=True, help="target share, e.g. 0.2")
    cal.add_argument("--profile", default="auto", help="profile whose ml_threshold is set")
    cal.add_argument("--catalog", help="candidates catalog YAML (default: the service catalog)")
    cal.add_argument("--out", help="profiles YAML to write (use as ROUTEIQ_PROFILES_FILE)")
    cal.set_defaults(func=cmd_calibrate)


def cmd_artifacts(args: argparse.Namespace) -> int:
    from routeiq.artifacts.integrity import Bundle, write_manifest

    models = Path(args.models) if args.models else _settings({}).models_path
    if args.artifacts_command == "manifest":
        path = write_manifest(models)
        print(f"wrote {path}")
    else:
        bundle = Bundle.verify(models)
        print(f"ok: {len(bundle.files)} files in {models} match {models / 'manifest.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="routeiq",
        description="Routing decisions for LLM gateways.",
        epilog="Settings come from ROUTEIQ_* environment variables (docs/configuration.md); "
        "a bad one exits 2 with one line naming it.",
    )
    parser.add_argument("--version", action="version", version=f"routeiq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the HTTP service (settings from ROUTEIQ_* env vars)")
    serve.add_argument("--host", help="address to listen on (default: ROUTEIQ_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: ROUTEIQ_PORT or 8400)")
    serve.add_argument("--workers", type=int, help="worker processes (default: ROUTEIQ_WORKERS or 1)")
    serve.set_defaults(func=cmd_serve)

    route = sub.add_parser("route", help="print a routing decision for a prompt, without a server")
    route.add_argument("prompt", help="the prompt text to route")
    route.add_argument("--profile", help="profile to decide under (default: ROUTEIQ_DEFAULT_PROFILE or auto)")
    route.add_argument("--model", help="requested model group (default: choose among the catalog)")
    route.add_argument("--explain", action="store_true", help="include the reasoning in the output")
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
    _add_training_commands(sub)

    arts = sub.add_parser("artifacts", help="sha256 manifest of the models folder")
    arts_sub = arts.add_subparsers(dest="artifacts_command", required=True)
    for name, text in (
        ("manifest", "(re)write models/manifest.json after changing a file in models/"),
        ("verify", "check every file in models/ against models/manifest.json"),
    ):
        cmd = arts_sub.add_parser(name, help=text)
        cmd.add_argument("--models", help="models folder (default: ROUTEIQ_MODELS_PATH or the bundled one)")
        cmd.set_defaults(func=cmd_artifacts)
    return parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default when it has a real one (not None/False: the help says what then)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every `routeiq` parser, subcommands included, shows defaults in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except RouteIQError as exc:
        print(f"routeiq: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a model built from user input outside the settings
        print(f"routeiq: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
