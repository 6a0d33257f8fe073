"""The real routeiq-client against a real `routeiq serve` with tokens on: its configured token
gets decisions; a wrong or missing one is refused with the service's 403/401."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from routeiq_client import ClientConfig, RouteIQClient
from routeiq_client.errors import SidecarHTTPError
from tests._harness import ServeProcess

pytestmark = pytest.mark.slow
TOKEN = "litellm-cluster-a-0123456789"


def route(url: str, token: str) -> dict[str, object]:
    client = RouteIQClient(ClientConfig(url=url, deadline_ms=5000, token=token))

    async def go() -> dict[str, object]:
        try:
            return await client.route({"prompt": "Write a haiku about routing"})
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_client_token_from_config_against_a_secured_service(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, log_level="info", auth_tokens=f"cluster-a:{TOKEN}") as server:
        assert route(server.url, TOKEN)["deployment_id"]
        with pytest.raises(SidecarHTTPError) as wrong:
            route(server.url, "not-the-token-0123456789")
        assert wrong.value.status == 403
        with pytest.raises(SidecarHTTPError) as missing:
            route(server.url, "")
        assert missing.value.status == 401
        log = server.log()
    assert '"client":"cluster-a"' in log.replace(" ", "") and TOKEN not in log
