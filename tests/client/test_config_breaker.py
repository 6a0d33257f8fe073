from __future__ import annotations

import re

import pytest

from routeiq_client import CircuitBreaker, ClientConfig, ConfigError


def test_config_from_env_parses_and_validates() -> None:
    env = {
        "ROUTEIQ_CLIENT_URL": "http://10.0.0.1:9",
        "ROUTEIQ_CLIENT_DEADLINE_MS": "25",
        "ROUTEIQ_CLIENT_FEEDBACK": "off",
    }
    config = ClientConfig.from_env(env)
    assert (config.url, config.deadline_ms, config.feedback, config.failure_threshold) == (
        "http://10.0.0.1:9",
        25.0,
        False,
        5,
    )
    with pytest.raises(ConfigError, match="DEADLINE_MS"):
        ClientConfig.from_env({"ROUTEIQ_CLIENT_DEADLINE_MS": "fast"})
    with pytest.raises(ConfigError, match=r"ROUTEIQ_CLIENT_DEADLINE_MS=0.0 is out of range \(0 < ms"):
        ClientConfig.from_env({"ROUTEIQ_CLIENT_DEADLINE_MS": "0"})
    with pytest.raises(
        ConfigError, match=re.escape("ROUTEIQ_CLIENT_URL='127.0.0.1:8400' must start with http://")
    ):
        ClientConfig(url="127.0.0.1:8400")
    with pytest.raises(ConfigError, match="ROUTEIQ_CLIENT_ON_REJECT='open'"):
        ClientConfig.from_env({"ROUTEIQ_CLIENT_ON_REJECT": "open"})
    with pytest.raises(ConfigError, match="ROUTEIQ_CLIENT_TOKEN has surrounding whitespace"):
        ClientConfig(token="abc\n")  # from a file or a secret pasted with its newline
    assert ClientConfig.from_env({"ROUTEIQ_CLIENT_GROUPS": " auto, chat ,"}).groups == ("auto", "chat")


def test_old_budget_ms_spellings_still_set_the_deadline() -> None:
    with pytest.warns(DeprecationWarning, match="ROUTEIQ_CLIENT_DEADLINE_MS"):
        config = ClientConfig.from_env({"ROUTEIQ_CLIENT_BUDGET_MS": "25"})
    assert config.deadline_ms == 25.0
    with pytest.warns(DeprecationWarning, match="deadline_ms"):
        config = ClientConfig(budget_ms=80)
    assert config.deadline_ms == 80.0
    assert config.budget_ms == 80.0  # the old name still reads the deadline
    # the new variable wins over the old one; a bad old value is reported under its own name
    assert (
        ClientConfig.from_env(
            {"ROUTEIQ_CLIENT_DEADLINE_MS": "30", "ROUTEIQ_CLIENT_BUDGET_MS": "25"}
        ).deadline_ms
        == 30.0
    )
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="BUDGET_MS"):
        ClientConfig.from_env({"ROUTEIQ_CLIENT_BUDGET_MS": "fast"})
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="disagree"):
        ClientConfig(deadline_ms=30, budget_ms=80)


def test_runtime_is_a_deprecated_name_for_client_resources() -> None:
    pytest.importorskip("litellm")
    from routeiq_client import litellm_strategy

    with pytest.warns(DeprecationWarning, match="ClientResources"):
        assert litellm_strategy.Runtime is litellm_strategy.ClientResources


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_failures_then_lets_one_probe_through() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(3, 10.0, clock, on_change=lambda old, new: changes.append(new))
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success resets the consecutive count
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.record_failure()  # the probe failed: open again for another T
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert changes == ["open", "half_open", "open", "half_open", "closed"]


def test_a_lost_probe_does_not_wedge_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.allow()  # probe taken, never reported (request cancelled)
    clock.now = 9.0
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()
