"""The client tokens in force, re-read when the tokens file changes: rotation without a restart.

Every request asks `current()`. At most every `CHECK_SECONDS` that stats the tokens file (one
`os.stat`, no read) and, when its size, mtime or inode moved, parses it again. Each worker and
replica watches its own view of the file, so a revocation written to the file is in force
everywhere within about `CHECK_SECONDS` — no shared channel, nothing to lose across a Redis
outage. `reload()` (POST /admin/tokens/reload) re-reads at once.

A file that no longer parses, or that would leave no client token while auth is on, is refused
and the tokens in force stay: a typo during a rotation must neither lock every cluster out nor
turn authentication off.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from routeiq.errors import ConfigError
from routeiq.http.auth import TokenSet
from routeiq.settings import Settings

log = logging.getLogger("routeiq.auth")

CHECK_SECONDS = 0.25

Signature = tuple[int, int, int] | None  # (inode, size, mtime_ns); None = absent


def _signature(settings: Settings) -> Signature:
    if settings.auth_tokens_file is None:
        return None
    try:
        st = os.stat(settings.auth_tokens_file)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class TokenSource:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenSet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._signature = _signature(settings)
        self._tokens = tokens if tokens is not None else TokenSet.from_settings(settings)
        self._next_check = clock() + CHECK_SECONDS
        self.on_change: list[Callable[[TokenSet], None]] = []

    @property
    def watches_file(self) -> bool:
        return self._settings.auth_tokens_file is not None

    def current(self) -> TokenSet:
        if self.watches_file and self._clock() >= self._next_check:
            self._next_check = self._clock() + CHECK_SECONDS
            signature = _signature(self._settings)
            if signature != self._signature:
                self._signature = signature
                try:
                    self.reload()
                except ConfigError as exc:
                    log.error("tokens file change refused, the previous tokens stay in force: %s", exc)
        return self._tokens

    def reload(self) -> TokenSet:
        """Parse the tokens again and put them in force; ConfigError (nothing changes) when the
        result is unusable."""
        tokens = TokenSet.from_settings(self._settings)
        if self._tokens.enabled and not tokens.enabled:
            raise ConfigError(
                "the tokens would leave no client token: authentication stays on with the previous "
                "tokens (remove a tenant by deleting its line, not the whole file)"
            )
        if tokens != self._tokens:
            log.warning("client tokens reloaded: clients %s", ", ".join(sorted(tokens.digests)) or "none")
        self._tokens = tokens
        for callback in self.on_change:
            callback(tokens)
        return tokens
