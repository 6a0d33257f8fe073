"""The dashboard in a real headless Chromium against a real `routeiq serve` with live traffic:
pages render with data, an experiment started from the page appears in /admin/experiments, a
strategy switch made from the page is what the next /route decides with, and a decision's
explain view opens from the explorer.

Needs Debian's `chromium` and `chromium-driver`; .ci/run installs them and runs `-m browser`.
Screenshots go to $DASHBOARD_SCREENSHOTS (`make screenshots` writes docs/images/), else to
the test's temporary directory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests._harness import REPO, ServeProcess
from tests.browser.pages import tab, text, wait_for

pytestmark = pytest.mark.browser

KEY = "browser-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
PROMPTS = [
    ("hi, what's up?", "auto"),
    ("Write a Python function that merges two sorted lists and explain its complexity", "auto"),
    ("Prove that the square root of 2 is irrational, step by step", "premium"),
    ("Translate 'good morning' into French", "eco"),
    ("Summarise the causes of the French revolution in three bullet points", "auto"),
    ("Design a sharded rate limiter for a multi-region API gateway; discuss failure modes", "reasoning"),
]
# Models the bundled trained routers were trained on: an ml strategy predicts for these.
TRAINED_ON = [
    {k: m[k] for k in ("deployment_id", "model", "tier", "input_cost_per_mtok", "output_cost_per_mtok")}
    for m in yaml.safe_load((REPO / "bench/data/dcrouter_catalog.yaml").read_text())["models"]
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("serve"), admin_key=KEY, premium_share_target=0.3) as server:
        yield server


@pytest.fixture(scope="module")
def traffic(service: ServeProcess) -> Iterator[None]:
    """Real decisions for the whole module, a few per second, plus failures that open one breaker."""
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=service.url, trust_env=False, timeout=5) as client:
            i = 0
            while not stop.is_set():
                prompt, profile = PROMPTS[i % len(PROMPTS)]
                client.post("/route", json={"prompt": f"{prompt} ({i})", "profile": profile})
                i += 1
                stop.wait(0.05)

    with httpx.Client(base_url=service.url, trust_env=False, timeout=5) as client:
        failures = [{"deployment_id": "deepseek-chat", "success": False} for _ in range(10)]
        assert client.post("/feedback", json={"outcomes": failures}).status_code == 200
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("DASHBOARD_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def dashboard(service: ServeProcess, traffic: None, browser):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(f"{service.url}/ui/?interval_ms=1000")
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_for(
        lambda: int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-polls") or 0) >= 4,
        30,
        "polls",
    )
    return browser


def test_live_page_draws_rates_shares_and_latency(dashboard, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    tab(dashboard, "live")
    wait_for(lambda: float(text(dashboard, "rate")) > 0, what="decisions/s > 0")
    assert " / " in text(dashboard, "latency") and "–" not in text(dashboard, "latency")
    legend = dashboard.find_elements(By.CSS_SELECTOR, "#share-legend .key")
    assert len(legend) >= 2  # several models share the traffic
    assert dashboard.find_elements(By.CSS_SELECTOR, "#share-chart rect")
    stages = [r.text.split()[0] for r in dashboard.find_elements(By.CSS_SELECTOR, "#stages tbody tr")]
    assert {"total", "embed", "classify"} <= set(stages)
    dashboard.save_screenshot(str(shots / "dashboard.png"))


def test_money_and_health_pages_show_spend_and_the_open_breaker(dashboard, shots: Path) -> None:  # type: ignore[no-untyped-def]
    tab(dashboard, "money")
    wait_for(lambda: text(dashboard, "spend").startswith("$"), what="spend/hour")
    assert text(dashboard, "premium-spend").startswith("$")
    assert "/ 30.0%" in text(dashboard, "premium-share")
    dashboard.save_screenshot(str(shots / "money.png"))
    tab(dashboard, "health")
    wait_for(lambda: text(dashboard, "open-breakers") == "1", what="one open breaker")
    assert "deepseek-chat" in text(dashboard, "breakers") and "ok" in text(dashboard, "state")
    dashboard.save_screenshot(str(shots / "health.png"))


@pytest.fixture
def experiment_stopped_after(service: ServeProcess) -> Iterator[str]:
    """The experiment's name; it is stopped afterwards even when the test fails half-way, so the
    tests after it see the tenant's own strategy rather than an experiment's variants."""
    name = "mlp-vs-centroid"
    yield name
    httpx.post(f"{service.url}/admin/experiments/{name}/stop", headers=ADMIN, trust_env=False)


def test_an_experiment_started_from_the_page_is_running(
    dashboard, service: ServeProcess, shots: Path, experiment_stopped_after: str
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    tab(dashboard, "experiments")
    dashboard.find_element(By.ID, "exp-name").send_keys("mlp-vs-centroid")
    Select(dashboard.find_element(By.ID, "exp-a-strategy")).select_by_value("centroid")
    Select(dashboard.find_element(By.ID, "exp-b-strategy")).select_by_value("ml:dcrouter-mlp")
    dashboard.find_element(By.CSS_SELECTOR, "#experiment-form button").click()
    wait_for(lambda: text(dashboard, "experiment-message").startswith("started"), what="started")
    listed = httpx.get(f"{service.url}/admin/experiments", headers=ADMIN, trust_env=False).json()
    assert [e["name"] for e in listed["experiments"]] == ["mlp-vs-centroid"]
    wait_for(
        lambda: dashboard.find_elements(
            By.CSS_SELECTOR, 'table.experiment[data-name="mlp-vs-centroid"] tbody tr'
        ),
        what="variant rows",
    )
    readout = httpx.get(f"{service.url}/admin/experiments/mlp-vs-centroid", headers=ADMIN, trust_env=False)
    wait_for(
        lambda: httpx.get(readout.url, headers=ADMIN, trust_env=False).json()["decisions"] > 0,
        what="assigned",
    )
    dashboard.save_screenshot(str(shots / "experiments.png"))
    # Ramp: the treatment's weight from 50 to 150 (25% -> 75%), in place. The panel is redrawn
    # on every poll, so an element found just before a redraw goes stale: type until it holds.
    weight = 'form.ramp[data-name="mlp-vs-centroid"] input[data-variant="treatment"]'

    def typed() -> bool:
        field = dashboard.find_element(By.CSS_SELECTOR, weight)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("150")
        return str(field.get_attribute("value")) == "150"

    wait_for(typed, what="ramp weight typed")
    # A weight typed and left for a moment (focus elsewhere) survives the redraws that follow.
    dashboard.find_element(By.ID, "status").click()
    polls = int(dashboard.find_element(By.TAG_NAME, "body").get_attribute("data-polls") or 0)
    wait_for(
        lambda: (
            int(dashboard.find_element(By.TAG_NAME, "body").get_attribute("data-polls") or 0) >= polls + 2
        ),
        what="two redraws",
    )
    assert dashboard.find_element(By.CSS_SELECTOR, weight).get_attribute("value") == "150"
    ramp = 'form.ramp[data-name="mlp-vs-centroid"] button'
    wait_for(lambda: dashboard.find_element(By.CSS_SELECTOR, ramp).click() or True, what="ramp clicked")
    wait_for(
        lambda: httpx.get(readout.url, headers=ADMIN, trust_env=False).json()["experiment"]["weight_changes"],
        what="ramped",
    )
    ramped = httpx.get(readout.url, headers=ADMIN, trust_env=False).json()
    assert {v["variant"]: v["target_share"] for v in ramped["variants"]} == {
        "control": 0.25,
        "treatment": 0.75,
    }
    wait_for(lambda: "2 phases" in text(dashboard, "experiments"), what="phases shown")
    per_phase = 'table.experiment-phases[data-name="mlp-vs-centroid"] tbody tr'
    rows = wait_for(lambda: dashboard.find_elements(By.CSS_SELECTOR, per_phase), what="per-phase rows")
    assert len(rows) == 4  # two phases x two variants
    # The panel is redrawn on every poll: a button found just before a redraw goes stale, so
    # find and click again until the click lands.
    stop = 'button.stop[data-name="mlp-vs-centroid"]'
    wait_for(lambda: dashboard.find_element(By.CSS_SELECTOR, stop).click() or True, what="stop clicked")
    dashboard.switch_to.alert.accept()
    wait_for(
        lambda: not dashboard.find_elements(By.CSS_SELECTOR, 'button.stop[data-name="mlp-vs-centroid"]'),
        what="stopped",
    )
    after = httpx.get(f"{service.url}/admin/experiments", headers=ADMIN, trust_env=False).json()[
        "experiments"
    ]
    assert after[0]["name"] == "mlp-vs-centroid" and after[0] != listed["experiments"][0]


def test_a_strategy_switch_from_the_page_takes_effect(dashboard, service: ServeProcess, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    tab(dashboard, "config")
    wait_for(lambda: text(dashboard, "active-strategy") == "centroid", what="centroid active")
    Select(dashboard.find_element(By.ID, "config-strategy")).select_by_value("ml:dcrouter-mlp")
    dashboard.find_element(By.CSS_SELECTOR, "#config-form button").click()
    wait_for(lambda: text(dashboard, "config-message").startswith("applied"), what="applied")
    wait_for(lambda: text(dashboard, "active-strategy") == "ml:dcrouter-mlp", what="page shows the switch")
    config = httpx.get(f"{service.url}/admin/config", headers=ADMIN, trust_env=False).json()
    assert config["strategy"] == "ml:dcrouter-mlp"
    decision = httpx.post(
        f"{service.url}/route",
        json={"prompt": "Explain quicksort", "candidates": TRAINED_ON},
        trust_env=False,
    ).json()
    assert decision["strategy"] == "ml:dcrouter-mlp"
    dashboard.save_screenshot(str(shots / "config.png"))


def test_the_explorer_opens_a_decisions_explain_view(dashboard, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    tab(dashboard, "explorer")
    dashboard.find_element(By.ID, "f-profile").send_keys("premium")
    dashboard.find_element(By.CSS_SELECTOR, "#explorer-form button").click()

    def filtered() -> list:  # type: ignore[type-arg]
        rows = dashboard.find_elements(By.CSS_SELECTOR, "#decisions tbody tr.decision")
        return rows if rows and all("premium" in r.text for r in rows) else []

    wait_for(filtered, what="only premium rows")
    filtered()[0].click()
    wait_for(lambda: dashboard.find_element(By.ID, "explain").is_displayed(), what="explain view")
    candidates = wait_for(
        lambda: dashboard.find_elements(By.CSS_SELECTOR, "#explain-candidates tbody tr"), what="candidates"
    )
    assert len(candidates) >= 5  # every catalog candidate, ranked or excluded with why
    dashboard.execute_script("document.getElementById('explain').scrollIntoView()")
    dashboard.save_screenshot(str(shots / "explorer.png"))
