"""The dashboard on a shared service (several tenants, auth on) in a real headless Chromium: the
global key picks the tenant on screen and every change from the page lands on that tenant; a
tenant admin token sees its own tenant only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests._harness import ServeProcess
from tests.browser.pages import tab, text, wait_for

pytestmark = pytest.mark.browser

KEY = "browser-global-admin-0123456789"
A_TOKEN, B_TOKEN = "cluster-a-client-0123456789", "cluster-b-client-0123456789"
A_ADMIN = "cluster-a-admin-0123456789"
GLOBAL = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("tenants")
    tokens = folder / "tokens.yaml"
    tokens.write_text(
        f"clients:\n  cluster-a: {A_TOKEN}\n  cluster-b: {B_TOKEN}\nadmins:\n  cluster-a: {A_ADMIN}\n",
        encoding="utf-8",
    )
    tenants = folder / "tenants.yaml"
    tenants.write_text(
        "tenants:\n  cluster-b:\n    weight: 2\n    max_decisions_per_second: 50\n"
        "    max_feedback_outcomes_per_second: 400\n",
        encoding="utf-8",
    )
    with ServeProcess(folder, admin_key=KEY, auth_tokens_file=tokens, tenants_file=tenants) as server:
        experiment = {
            "name": "b-only",
            "variants": [
                {"name": "control", "weight": 1, "strategy": "centroid"},
                {"name": "treatment", "weight": 1, "profile": "eco"},
            ],
        }
        started = httpx.post(
            f"{server.url}/admin/experiments",
            json=experiment,
            headers=GLOBAL | {"X-RouteIQ-Tenant": "cluster-b"},
            trust_env=False,
        )
        assert started.status_code == 201, started.text
        for token in (A_TOKEN, B_TOKEN, B_TOKEN):
            routed = httpx.post(
                f"{server.url}/route",
                json={"prompt": "hello there"},
                headers={"Authorization": f"Bearer {token}"},
                trust_env=False,
            )
            assert routed.status_code == 200
        yield server


def open_with(browser, service: ServeProcess, key: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(f"{service.url}/ui/?interval_ms=1000")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{service.url}/ui/?interval_ms=1000")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_for(lambda: "tenant" in text(browser, "status"), what="first poll")


def test_the_global_key_picks_the_tenant_and_changes_land_on_it(browser, service: ServeProcess) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_with(browser, service, KEY)
    assert "tenant cluster-a" in text(browser, "status") and "all tenants" in text(browser, "status")
    assert browser.find_element(By.ID, "tenant-pick").is_displayed()
    tab(browser, "experiments")
    wait_for(lambda: "No experiments yet." in text(browser, "experiments"), what="cluster-a has none")

    Select(browser.find_element(By.ID, "tenant")).select_by_value("cluster-b")
    wait_for(lambda: "tenant cluster-b" in text(browser, "status"), what="switched")
    wait_for(lambda: "b-only" in text(browser, "experiments"), what="cluster-b's experiment")

    # A strategy switch made now is cluster-b's, not cluster-a's.
    tab(browser, "config")
    Select(browser.find_element(By.ID, "config-profile")).select_by_value("eco")
    browser.find_element(By.CSS_SELECTOR, "#config-form button").click()
    wait_for(lambda: text(browser, "config-message").startswith("applied"), what="applied")
    config = {
        name: httpx.get(
            f"{service.url}/admin/config", headers=GLOBAL | {"X-RouteIQ-Tenant": name}, trust_env=False
        ).json()
        for name in ("cluster-a", "cluster-b")
    }
    assert config["cluster-b"]["default_profile"] == "eco"
    assert config["cluster-a"]["default_profile"] != "eco"


def test_the_global_key_sees_every_tenants_weight_and_quotas(browser, service: ServeProcess) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    open_with(browser, service, KEY)
    tab(browser, "health")
    wait_for(lambda: "cluster-b" in text(browser, "tenants-table"), what="the tenants table")
    rows = {
        cells[0].text: [c.text for c in cells]
        for cells in (
            tr.find_elements(By.TAG_NAME, "td")
            for tr in browser.find_elements(By.CSS_SELECTOR, "#tenants-table tbody tr")
        )
    }
    # name, weight, decisions/s (available of limit), feedback outcomes/s, in flight, status
    assert rows["cluster-b"][1] == "2"
    assert rows["cluster-b"][2].endswith("of 50") and rows["cluster-b"][3].endswith("of 400")
    assert rows["cluster-a"][1:4] == ["1", "none", "none"]
    assert rows["cluster-a"][5] == rows["cluster-b"][5] == "ok"


def test_a_tenant_admin_sees_its_own_tenant_only(browser, service: ServeProcess) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    open_with(browser, service, A_ADMIN)
    status = text(browser, "status")
    assert "tenant cluster-a" in status and "this tenant's metrics" in status
    assert not browser.find_element(By.ID, "tenant-pick").is_displayed()
    tab(browser, "experiments")
    wait_for(lambda: "No experiments yet." in text(browser, "experiments"), what="no cluster-b experiment")
    assert "b-only" not in text(browser, "experiments")
    tab(browser, "health")  # the tenants table is the global key's: it names every tenant
    assert not browser.find_element(By.ID, "tenants").is_displayed()
