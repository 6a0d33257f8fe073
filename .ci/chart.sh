#!/usr/bin/env bash
# CI: lint, render and schema-validate the Helm chart in every ci/*-values.yaml set, and the
# example chart that includes the sidecar template. No cluster runs here, so "works" means: helm
# lint --strict is clean, and every rendered object validates (strict: unknown fields are errors)
# against the oldest Kubernetes the chart supports and the newest the validator knows.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=.ci/deploy-tools.sh
source .ci/deploy-tools.sh
chart=charts/routeiq
floor=1.29.0 # Chart.yaml kubeVersion: native sidecars need it
newest=$(kubernetes-validate --version)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

validate() { # file label
  for version in "$floor" "$newest"; do
    if ! kubernetes-validate --strict --quiet -k "$version" "$1" >"$out/kv.log" 2>&1; then
      cat "$out/kv.log" >&2
      echo "chart: FAILED: $2 does not validate against Kubernetes $version" >&2
      exit 1
    fi
    # The expected warnings: no schema for the Prometheus Operator CRDs (checked below instead).
    grep -Ev "Couldn't find schema for kind (ServiceMonitor|PodMonitor|PrometheusRule)" "$out/kv.log" || true
  done
  kinds=$(python3 -c 'import sys, yaml; print(" ".join(sorted(d["kind"] for d in yaml.safe_load_all(open(sys.argv[1])) if d)))' "$1")
  echo "  $2: valid against $floor and $newest: $kinds"
}

echo "== chart: helm $(helm version --short), kubernetes-validate $newest"
for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  helm lint --strict --quiet "$chart" -f "$values" >/dev/null || {
    helm lint --strict "$chart" -f "$values"
    exit 1
  }
  helm template "ci-$name" "$chart" -f "$values" >"$out/$name.yaml"
  validate "$out/$name.yaml" "$name (lint --strict clean)"
done

# ServiceMonitor is a CRD the validator has no schema for: check it scrapes a real Service port.
python3 - "$out/shared-redis.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
service = next(d for d in docs if d["kind"] == "Service")
ports = {p["name"] for p in service["spec"]["ports"]}
assert all(e["port"] in ports for e in monitor["spec"]["endpoints"]), (monitor, ports)
labels = service["metadata"]["labels"]
assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
print("  ServiceMonitor: selects the Service and scrapes its named port /metrics")
PY

# Monitoring: the PrometheusRule is the promtool-tested rule file, the dashboard ConfigMap holds
# the validated JSON, the NetworkPolicy admits the scraper, the PodMonitor scrapes a real port.
python3 - "$out/monitoring.yaml" "$out/sidecar-monitoring.yaml" "$chart" <<'PY'
import json, sys, yaml
shared = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sidecar = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
files = sys.argv[3] + "/files/"
kind = lambda docs, k: next(d for d in docs if d["kind"] == k)
rule = kind(shared, "PrometheusRule")
assert rule["spec"]["groups"] == yaml.safe_load(open(files + "prometheus-rules.yaml"))["groups"]
dashboard = next(d for d in shared if d["kind"] == "ConfigMap" and "routeiq.json" in d.get("data", {}))
assert json.loads(dashboard["data"]["routeiq.json"]) == json.load(open(files + "grafana-dashboard.json"))
assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
policy = kind(shared, "NetworkPolicy")
peers = [p for r in policy["spec"]["ingress"] for p in r.get("from", [])]
assert any(p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring" for p in peers)
monitor = kind(sidecar, "PodMonitor")
pod = kind(sidecar, "Deployment")["spec"]["template"]["spec"]
containers = pod["containers"] + pod.get("initContainers", [])
ports = {p["name"] for c in containers for p in c.get("ports", [])}
assert all(e["port"] in ports for e in monitor["spec"]["podMetricsEndpoints"]), (monitor, ports)
routeiq = next(c for c in containers if c["name"] == "routeiq")
env = {e["name"]: e.get("value") for e in routeiq["env"]}
assert env["ROUTEIQ_HOST"] == "127.0.0.1" and env["ROUTEIQ_METRICS_PORT"] == "9464"
print("  monitoring: PrometheusRule = rule file, dashboard JSON, scraper admitted, PodMonitor on a real port")
PY

# A strict validator must reject an unknown field; prove this one does before trusting its passes.
sed 's/^  revisionHistoryLimit: 5$/  revisionHistoryLimit: 5\n  replicasTypo: 3/' "$out/minimal.yaml" >"$out/broken.yaml"
if kubernetes-validate --strict --quiet -k "$newest" "$out/broken.yaml" >/dev/null 2>&1; then
  echo "chart: FAILED: kubernetes-validate accepted an unknown field" >&2
  exit 1
fi
echo "  (a render with an unknown field is rejected, as it should be)"

# Another chart that includes routeiq.sidecarContainer in its own pod.
example="$out/umbrella"
cp -r "$chart/examples/umbrella" "$example"
rm -rf "$example/charts" "$example/Chart.lock"
sed -i "s|file://../..|file://$PWD/$chart|" "$example/Chart.yaml"
helm dependency build "$example" >/dev/null
helm lint --strict --quiet "$example" >/dev/null
helm template ex "$example" >"$out/umbrella.yaml"
validate "$out/umbrella.yaml" "examples/umbrella (include \"routeiq.sidecarContainer\")"

# What the rendered chart must hold (schema rejections, drain timings, HPA, DNS, helm test, NOTES):
# pytest with the helm binary above on PATH.
echo "== chart: pytest -m chart (helm on PATH)"
.venv/bin/python -m pytest -m chart tests/chart -q -p no:cacheprovider
echo "chart: OK"
