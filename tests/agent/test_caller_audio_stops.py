"""The caller's audio goes no further down a call's pipeline than the user aggregator.

Pipecat's user aggregator is the last processor that listens to the caller (VAD, Smart-Turn), yet it
passes every 20 ms audio frame on through the model, the voice, the output and the trackers, which
ignore it. At tens of concurrent calls that per-frame cost was a quarter of the server's CPU per
call, so `CallerAudioStops` ends the audio there while every other frame still flows both ways.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame, TextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import run_test

from agent.phone import CallerAudioStops


def _audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=b"\0\0" * 160, sample_rate=8000, num_channels=1)


def _heard(frames: Sequence[Frame]) -> tuple[int, list[str]]:
    """How many audio frames, and which texts, arrived (audio is a system frame: it may overtake)."""
    texts = [frame.text for frame in frames if isinstance(frame, TextFrame)]
    return sum(isinstance(frame, InputAudioRawFrame) for frame in frames), texts


@pytest.mark.parametrize(
    ("aggregator_class", "audio_passed_down"),
    [(LLMUserAggregator, 2), (CallerAudioStops, 0)],
    ids=["pipecat", "caller-audio-stops"],
)
async def test_caller_audio_goes_no_further_down_than_the_aggregator(
    aggregator_class: type[LLMUserAggregator], audio_passed_down: int
) -> None:
    """Pipecat's own aggregator passes the audio on; ours keeps it and passes the rest."""
    down, up = await run_test(
        aggregator_class(LLMContext()), frames_to_send=[_audio(), TextFrame("hello"), _audio()]
    )
    assert _heard(down) == (audio_passed_down, ["hello"])
    assert _heard(up) == (0, [])


async def test_frames_going_up_still_pass() -> None:
    """Only the caller's audio on its way down is kept; frames travelling up are untouched."""
    down, up = await run_test(
        CallerAudioStops(LLMContext()),
        frames_to_send=[_audio(), TextFrame("hello")],
        frames_to_send_direction=FrameDirection.UPSTREAM,
    )
    assert _heard(up) == (1, ["hello"])
    assert _heard(down) == (0, [])
