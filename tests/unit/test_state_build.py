"""How the settings pick a Redis topology and pass credentials and TLS (no connection made)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import SentinelManagedSSLConnection

from routeiq.settings import Settings
from routeiq.state.build import connect_redis


def test_sentinel_takes_credentials_and_tls_from_the_url_but_not_its_host() -> None:
    settings = Settings(
        redis_sentinels="127.0.0.1:26379, [::1]:26380",
        redis_sentinel_service="cache",
        redis_url="rediss://routeiq:p%40ss@ignored:6379/2",
    )
    assert settings.sentinel_addresses == [("127.0.0.1", 26379), ("::1", 26380)]
    client = connect_redis(settings)
    assert isinstance(client, Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("routeiq", "p@ss", 2)
    assert client.connection_pool.connection_class is SentinelManagedSSLConnection
    assert "ignored" not in repr(kwargs)


def test_settings_override_url_credentials_and_cluster_needs_a_url() -> None:
    settings = Settings(
        redis_url="redis://a:b@127.0.0.1:7000", redis_cluster=True, redis_username="u", redis_password="p"
    )
    assert isinstance(connect_redis(settings), RedisCluster)
    with pytest.raises(ValidationError):
        Settings(redis_cluster=True)
    with pytest.raises(ValidationError):
        Settings(redis_sentinels="host-without-port")
