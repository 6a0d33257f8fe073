"""Rules that used to exist in two copies, and disagreed. Each now has one copy; these tests
pin the cases where the old copies gave different answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from routeiq.decision.catalog import Catalog, CatalogEntry
from routeiq.decision.experiments import VariantSpec
from routeiq.decision.names import model_names
from routeiq.settings import Settings
from tests.conftest import make_client

TWO_PREFIXES = "nvidia_nim/meta/llama-3.1-8b-instruct"


def test_a_name_with_two_provider_prefixes_reaches_the_bare_model() -> None:
    # The catalog used to drop only the first prefix, the trained routers every prefix.
    assert model_names(TWO_PREFIXES) == [TWO_PREFIXES, "meta/llama-3.1-8b-instruct", "llama-3.1-8b-instruct"]
    catalog = Catalog((CatalogEntry(deployment_id="llama", model="llama-3.1-8b-instruct", tier="budget"),))
    found = catalog.lookup(TWO_PREFIXES)
    assert found is not None and found.deployment_id == "llama"


@pytest.mark.parametrize("name", ["centroid", "ml:dcrouter-knn", "ml:", "ml", "knn", "Centroid", ""])
def test_settings_and_experiments_accept_the_same_strategy_names(name: str) -> None:
    def accepted(build: object) -> bool:
        try:
            build()  # type: ignore[operator]
        except ValidationError:
            return False
        return True

    by_settings = accepted(lambda: Settings(strategy=name))
    by_variant = accepted(lambda: VariantSpec(name="v", weight=1, strategy=name))
    assert by_settings == by_variant == (name == "centroid" or (name.startswith("ml:") and len(name) > 3))


def test_a_malformed_bearer_header_is_401_for_admin_and_client_alike() -> None:
    # The admin key check used to accept 'Bearer a b' as the key 'a b' (then 403); client auth
    # refused it as malformed (401). One parser now: 401 for both.
    key = "k" * 24
    with make_client(admin_key=key, auth_tokens=f"gw:{'t' * 24}") as client:
        headers = {"Authorization": f"Bearer {key} extra"}
        admin = client.get("/admin/config", headers=headers)
        route = client.post("/route", json={"prompt": "hi"}, headers=headers)
    assert admin.status_code == route.status_code == 401
    assert admin.json()["error"]["type"] == route.json()["error"]["type"] == "unauthorized"
