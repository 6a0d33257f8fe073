"""Generated-request counts, shared by the fuzz tests and printed at the end of the session."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
# The full run (-m fuzz) must generate at least this many requests in total.
FULL_RUN_MINIMUM = 10_000
# The fuzz server runs with auth on; the fuzzers send this client's token.
TOKEN = "fuzz-token-0123456789abcdef"
# ... and the admin key, so /admin/* bodies are fuzzed past the key check too.
ADMIN_KEY = "fuzz-admin-key-0123456789abcdef"


def full_run(config) -> bool:  # type: ignore[no-untyped-def]
    return "fuzz" in (config.getoption("markexpr") or "") and "not fuzz" not in config.getoption("markexpr")
