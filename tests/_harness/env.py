"""What a test or a service subprocess sees of the environment: never the developer's RouteIQ
settings. A `ROUTEIQ_REDIS_URL` left in a shell would otherwise point the suite at a real Redis,
and a `PROMETHEUS_MULTIPROC_DIR` would switch metrics to multiprocess mode."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

PREFIXES = ("ROUTEIQ_",)  # the service's settings and the client's (ROUTEIQ_CLIENT_*)
NAMES = frozenset({"PROMETHEUS_MULTIPROC_DIR"})  # read by Settings and by prometheus_client


def is_developer_setting(name: str) -> bool:
    return name in NAMES or name.startswith(PREFIXES)


def strip_developer_settings(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove every setting from `environ` in place; return what was removed."""
    removed = {k: v for k, v in environ.items() if is_developer_setting(k)}
    for name in removed:
        del environ[name]
    return removed


def clean_env(base: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """`base` (default: this process's environment) without any setting, plus `overrides`."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not is_developer_setting(k)}
    env.update(overrides)
    return env
