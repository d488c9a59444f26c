"""Fixtures for the agent's tests."""

from __future__ import annotations

import pytest

import agent.listening


@pytest.fixture
def lone_caller_silero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Silero scores a window at once instead of waiting for other calls' windows to batch with.

    A test that feeds one call's audio window by window would otherwise wait out every batch's
    6-24 ms for company that never comes (~8 s for 10 s of audio); what the VAD hears does not
    depend on it. The batching itself is tested with its real waits.
    """
    monkeypatch.setattr(agent.listening, "BATCH_WAIT_SECS", 0.0)
    monkeypatch.setattr(agent.listening, "QUIET_BATCH_WAIT_SECS", 0.0)
