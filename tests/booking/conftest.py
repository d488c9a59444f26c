"""Fixtures for the booking tests: retries run without backoff (stamina's test mode)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina


@pytest.fixture(autouse=True)
def _no_retry_backoff() -> Iterator[None]:
    """Retries still happen, as many as the code asks for (at most 3), but never wait."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield
