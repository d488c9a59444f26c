"""The agent's voice is kept a little ahead at Twilio, so a short stall of the server is not heard."""

from __future__ import annotations

import pytest

from agent.playout import AHEAD_SECS, pace

CHUNK = 0.04


def _send(chunks: int, stall_after: int | None = None, stall: float = 0.0) -> list[float]:
    """When each chunk is written, pacing as the output does; optionally one stall of the loop."""
    now, played_until, written = 100.0, 0.0, []
    for index in range(chunks):
        written.append(now)
        played_until, wait = pace(played_until, now, CHUNK)
        now += wait
        if index == stall_after:
            now += stall
    return written


def _gaps(written: list[float]) -> list[float]:
    """Silences a caller hears when each chunk plays after the one before, or on arrival."""
    gaps, playing_until = [], 0.0
    for at in written:
        if playing_until and at > playing_until:
            gaps.append(at - playing_until)
        playing_until = max(playing_until, at) + CHUNK
    return gaps


def test_the_first_fifth_of_a_second_goes_at_once_then_real_time() -> None:
    written = _send(20)
    ahead = round(AHEAD_SECS / CHUNK)
    assert written[: ahead + 1] == pytest.approx([written[0]] * (ahead + 1))
    assert written[-1] - written[ahead] == pytest.approx((20 - 1 - ahead) * CHUNK)


def test_a_stall_shorter_than_the_lead_is_not_heard() -> None:
    assert _gaps(_send(30, stall_after=10, stall=AHEAD_SECS * 0.9)) == []


def test_a_longer_stall_is_one_gap_and_the_lead_is_rebuilt() -> None:
    gaps = _gaps(_send(30, stall_after=10, stall=AHEAD_SECS + 0.1))
    assert gaps == [pytest.approx(0.1)]


def test_after_a_barge_in_playback_starts_from_now() -> None:
    played_until, wait = pace(0.0, 50.0, CHUNK)  # Pipecat resets the clock to 0 on an interruption
    assert played_until == pytest.approx(50.04) and wait == 0.0
