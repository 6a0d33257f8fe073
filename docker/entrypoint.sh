#!/bin/sh
# Container entrypoint: `serve` (the default) prepares what several workers need, then execs the
# CLI so the server is PID 1's direct replacement and gets SIGTERM itself. Any other arguments are
# handed to `routeiq` unchanged (`docker run IMAGE route "hello"`, `docker run IMAGE verify`).
set -eu

if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
  [ "$#" -gt 0 ] && shift
  if [ "${ROUTEIQ_WORKERS:-1}" -gt 1 ]; then
    # Each worker is its own process: prometheus_client must share counters through files in
    # one directory, which must start empty (stale files from a previous run add up wrongly).
    # /tmp is the one writable place when the root filesystem is read-only.
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/routeiq-prometheus}"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
  fi
  exec routeiq serve "$@"
fi
exec routeiq "$@"
