"""Naming rules, one copy each: how a model is recognised, what a strategy may be called.

A model is recognised by name the same way by the catalog and the trained routers.

A model is known by its full name and by every name left after dropping leading provider
prefixes, lower-cased: "nvidia_nim/meta/llama-3.1-8b-instruct" answers to itself,
"meta/llama-3.1-8b-instruct" and "llama-3.1-8b-instruct". LiteLLM names carry one provider
prefix, some hosting providers add an organisation: both must reach the same catalog entry and
the same trained-router column.
"""

from __future__ import annotations


def model_names(*values: str | None) -> list[str]:
    names: list[str] = []
    for value in values:
        if not value:
            continue
        name = value.strip().lower()
        while name:
            if name not in names:
                names.append(name)
            _, slash, rest = name.partition("/")
            name = rest if slash else ""
    return names


CENTROID = "centroid"
TRAINED_PREFIX = "ml:"
STRATEGY_NAME_RULE = "must be 'centroid' or 'ml:<router name>'"


def is_strategy_name(value: str) -> bool:
    """`centroid` or `ml:<router name>`: settings, the admin API and experiments all use this."""
    return value == CENTROID or (value.startswith(TRAINED_PREFIX) and len(value) > len(TRAINED_PREFIX))
