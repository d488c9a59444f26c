"""The agent's voice goes no further down a call's pipeline than the speech tracker.

Pipecat's output passes each chunk of the voice on after sending it; nothing after the tracker (the
assistant aggregator, the pipeline's end) reads it, while the words the tracker learns from still
flow on.
"""

from __future__ import annotations

from typing import Any, cast

from pipecat.frames.frames import TTSAudioRawFrame, TTSTextFrame
from pipecat.tests.utils import run_test

from agent.phone import SpeechTracker

# Neither is reached: no read-back is expected and the bot never stops speaking in this test.
NO_SESSION, NO_RECORD = cast(Any, None), cast(Any, None)


def _voice() -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=b"\0\1" * 320, sample_rate=8000, num_channels=1)


async def test_the_voice_stops_at_the_tracker_and_its_words_go_on() -> None:
    down, up = await run_test(
        SpeechTracker(NO_SESSION, NO_RECORD),
        frames_to_send=[_voice(), TTSTextFrame("Thanks", text_type="word"), _voice()],
    )
    assert [type(frame) for frame in down] == [TTSTextFrame]
    assert [frame.text for frame in down if isinstance(frame, TTSTextFrame)] == ["Thanks"]
    assert up == []
