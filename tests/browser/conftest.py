"""The headless Chromium every browser test module drives (one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.pages import chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    yield from chromium(tmp_path_factory)
