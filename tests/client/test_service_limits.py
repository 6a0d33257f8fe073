"""The client trims what it sends to the service's limits; its copies of those limits must be
the service's own (the client package cannot import the service), or requests near a limit
would be refused with 413/422 and fall back instead of being routed."""

from __future__ import annotations

from routeiq.decision import schemas
from routeiq.settings import Settings
from routeiq_client import config, request


def test_the_client_trims_to_the_service_limits() -> None:
    assert request.SHORT == schemas._SHORT
    assert Settings.model_fields["max_messages"].default == request.MAX_MESSAGES
    assert config.MAX_FEEDBACK_BATCH == schemas.MAX_OUTCOMES


def test_a_request_the_client_trims_is_accepted_by_the_service() -> None:
    messages = [{"role": "user", "content": f"turn {i}"} for i in range(request.MAX_MESSAGES + 50)]
    long = "x" * 10_000
    kwargs = {"user": long, "metadata": {"session_id": long, "user_api_key_team_id": long}}
    body = request.route_payload(long, messages, None, kwargs, [])
    assert body is not None
    assert len(body["messages"]) == request.MAX_MESSAGES
    assert body["messages"][:2] == messages[:2] and body["messages"][-1] == messages[-1]
    routed = schemas.RouteRequest.model_validate(body)  # raises on anything over a limit
    assert routed.model == long[: request.SHORT]
