#!/usr/bin/env bash
# CI: lint the Dockerfile, build the image, run it, ask it for a real decision, stop everything.
#
# No registry is reachable here, so this starts its own dockerd (no bridge: containers use the
# host network and the service binds 127.0.0.1 on a free port) and makes the base image locally
# (.ci/base-image.sh) the first time. The daemon's data root is kept between runs so later runs
# reuse the base image and the dependency layers instead of rebuilding gigabytes.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_ROOT="${ROUTEIQ_CI_DOCKER_ROOT:-/var/lib/routeiq-ci-docker}"
RUN_DIR=/run/routeiq-ci-docker
export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
BASE_IMAGE="$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)"
IMAGE=routeiq-ci:latest
CONTAINER="routeiq-ci-smoke-$$"
GATEWAY="routeiq-ci-gateway-$$"

step() { printf '\n== docker: %s\n' "$*"; }
fail() {
  printf 'docker: FAILED: %s\n' "$*" >&2
  exit 1
}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  step "installing docker.io and debootstrap"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
fi

# --- daemon -------------------------------------------------------------------------------------
started_dockerd=""
tmp_context=""
cleanup() {
  docker rm -f "$CONTAINER" "$GATEWAY" >/dev/null 2>&1 || true
  [ -n "$tmp_context" ] && rm -rf "$tmp_context"
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
}
trap cleanup EXIT

if docker info >/dev/null 2>&1; then
  step "reusing the dockerd already listening on $DOCKER_HOST"
else
  step "starting dockerd (data root $DATA_ROOT, kept between runs)"
  mkdir -p "$DATA_ROOT" "$RUN_DIR"
  dockerd --data-root "$DATA_ROOT" --exec-root "$RUN_DIR" --pidfile "$RUN_DIR/dockerd.pid" \
    -H "$DOCKER_HOST" --bridge=none --iptables=false --ip-masq=false \
    >"$RUN_DIR/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2>/dev/null || break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    tail -n 20 "$RUN_DIR/dockerd.log" >&2 || true
    started_dockerd=""
    fail "dockerd did not start on this machine (log above); the image was NOT built or tested"
  fi
fi

# --- lint + base image + build ------------------------------------------------------------------
# shellcheck source=.ci/deploy-tools.sh
source .ci/deploy-tools.sh
step "hadolint --failure-threshold warning Dockerfile"
hadolint --failure-threshold warning Dockerfile
step "docker-compose config (tier 1, and tier 2 with --profile scale)"
docker-compose -f compose.yaml config -q
docker-compose -f compose.yaml --profile scale config -q
echo "compose.yaml: valid; services with --profile scale: $(docker-compose -f compose.yaml --profile scale config --services | sort | tr '\n' ' ')"

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  step "base image $BASE_IMAGE is missing: making it with debootstrap (first run only)"
  bash .ci/base-image.sh "$BASE_IMAGE"
fi

# The base image trusts the host's CA bundle; point pip at it. An http(s) index set on the host
# is passed on (file:// indexes are not visible inside the build).
build_args=(--network host --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
case "${PIP_INDEX_URL:-}" in http://* | https://*) build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL") ;; esac

step "docker build"
start=$(date +%s)
# The builder stage gets a tag so pruning dangling images below never drops the dependency cache.
docker build -q "${build_args[@]}" --target builder -t routeiq-ci:builder . >/dev/null 2>&1 ||
  docker build "${build_args[@]}" --target builder -t routeiq-ci:builder . # again, loud, for the log
docker build "${build_args[@]}" -t "$IMAGE" . 2>&1 | grep -E '^(Step [0-9]+/[0-9]+ : RUN|routeiq verify|Successfully)' ||
  fail "docker build"
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "docker build produced no $IMAGE"
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $(($(date +%s) - start)) s: $((size / 1000000)) MB"

step "a tampered artifact must fail the build"
tmp_context="$(mktemp -d)"
mkdir -p "$tmp_context/requirements" && cp requirements/service.lock "$tmp_context/requirements/"
cp -r Dockerfile .dockerignore pyproject.toml README.md LICENSE service models docker "$tmp_context/"
python3 - "$tmp_context/models/centroids.json" <<'PY'
import json, sys
path = sys.argv[1]
data = json.load(open(path))
label = next(iter(data["categories"]))
data["categories"][label]["vector"][0] += 0.01
json.dump(data, open(path, "w"))
PY
if docker build -q --force-rm "${build_args[@]}" -t routeiq-ci:tampered "$tmp_context" >"$tmp_context/build.log" 2>&1; then
  docker rmi routeiq-ci:tampered >/dev/null 2>&1 || true
  fail "an image with an edited centroids.json was built"
fi
# models/manifest.json refuses the edited file first; `routeiq verify`'s rebuild check is the second line
grep -oE "(does not match its manifest|differ from a rebuild)[^;]*" "$tmp_context/build.log" | head -n 1 | sed 's/^/refused as expected: centroids.json /'

# --- run + ask ----------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "docker run (read-only root fs, tmpfs /tmp, non-root) on 127.0.0.1:$port"
docker run -d --name "$CONTAINER" --network host --read-only --tmpfs /tmp \
  -e ROUTEIQ_HOST=127.0.0.1 -e "ROUTEIQ_PORT=$port" "$IMAGE" >/dev/null
start=$(date +%s%N)
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  [ "$(docker inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] || break
  sleep 0.25
done
ready=$(curl -fsS "http://127.0.0.1:$port/readyz") || {
  docker logs "$CONTAINER" >&2 || true
  fail "the container never became ready"
}
echo "readyz after $((($(date +%s%N) - start) / 1000000)) ms: $ready"

decision=$(curl -fsS "http://127.0.0.1:$port/route" -H 'content-type: application/json' \
  -d '{"messages":[{"role":"user","content":"Write a Python function that merges two sorted lists"}]}') ||
  fail "POST /route"
echo "$decision" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["model"] and d["deployment_id"] and d["category"], d
print("decision:", d["model"], "deployment", d["deployment_id"], "|", d["category"], d["tier"],
      "| total", d["timings_ms"]["total"], "ms | reason", d["reason"])'
docker exec "$CONTAINER" python3 /app/docker/healthcheck.py || fail "HEALTHCHECK command"
echo "healthcheck: ok; runs as $(docker exec "$CONTAINER" id -u):$(docker exec "$CONTAINER" id -g); memory $(docker stats --no-stream --format '{{.MemUsage}}' "$CONTAINER")"

# --- the LiteLLM + routeiq-client image the sidecar chart runs ----------------------------------
step "docker build -f docker/gateway.Dockerfile (LiteLLM proxy + routeiq-client)"
hadolint --failure-threshold warning docker/gateway.Dockerfile
start=$(date +%s)
docker build -q "${build_args[@]}" -f docker/gateway.Dockerfile -t routeiq-ci:gateway . >/dev/null 2>&1 ||
  docker build "${build_args[@]}" -f docker/gateway.Dockerfile -t routeiq-ci:gateway . || fail "gateway image build"
size=$(docker image inspect --format '{{.Size}}' routeiq-ci:gateway)
echo "built routeiq-ci:gateway in $(($(date +%s) - start)) s: $((size / 1000000)) MB"
gw_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A deadline that holds on a loaded CI machine: past it the client fails open (no decision).
docker run -d --name "$GATEWAY" --network host -e LITELLM_MASTER_KEY=sk-ci-smoke \
  -e ROUTEIQ_CLIENT_DEADLINE_MS=2000 -e "ROUTEIQ_CLIENT_URL=http://127.0.0.1:$port" -v "$PWD/examples/litellm/config.yaml:/etc/litellm/config.yaml:ro" \
  routeiq-ci:gateway --config /etc/litellm/config.yaml --host 127.0.0.1 --port "$gw_port" >/dev/null
for _ in $(seq 1 240); do
  curl -fsS "http://127.0.0.1:$gw_port/health/readiness" >/dev/null 2>&1 && break
  [ "$(docker inspect --format '{{.State.Running}}' "$GATEWAY")" = true ] || break
  sleep 0.5
done
before=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^routeiq_decisions_total/ {n += $2} END {print n + 0}')
model_id=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:$gw_port/v1/chat/completions" \
  -H 'authorization: Bearer sk-ci-smoke' -H 'content-type: application/json' -H 'x-routeiq-profile: eco' \
  -d '{"model":"auto","messages":[{"role":"user","content":"Write a Python function that merges two sorted lists"}]}' |
  tr -d '\r' | sed -n 's/^x-litellm-model-id: //Ip') || { docker logs "$GATEWAY" 2>&1 | tail -n 30 >&2; docker rm -f "$GATEWAY" >/dev/null; fail "POST /v1/chat/completions through the gateway image"; }
after=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^routeiq_decisions_total/ {n += $2} END {print n + 0}')
[ -n "$model_id" ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$before" "$after" ||
  docker logs "$GATEWAY" 2>&1 | tail -n 20 >&2
docker rm -f "$GATEWAY" >/dev/null
[ -n "$model_id" ] || fail "the gateway answered without x-litellm-model-id"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$before" "$after" ||
  fail "the gateway answered, but RouteIQ made no decision for it (decisions $before -> $after)"
echo "gateway: served by deployment $model_id; RouteIQ decisions $before -> $after"

step "stop (SIGTERM) and clean up"
docker stop -t 20 "$CONTAINER" >/dev/null
echo "exit code $(docker inspect --format '{{.State.ExitCode}}' "$CONTAINER")"
docker rm "$CONTAINER" >/dev/null
docker image prune -f >/dev/null # superseded layers from earlier runs; tagged caches stay
echo "docker: OK"
