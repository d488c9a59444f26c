"""The call's latency observer is told of the frames it reads and of no audio it ignores."""

from __future__ import annotations

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from agent.latency_observing import read_by_latency_observer

AUDIO = b"\x00\x01" * 160


def pushed(frame: Frame, source: FrameProcessor) -> FramePushed:
    return FramePushed(
        source=source,
        destination=FrameProcessor(),
        frame=frame,
        direction=FrameDirection.DOWNSTREAM,
        timestamp=0,
    )


def test_the_voice_is_read_where_the_tts_service_first_pushes_it_and_not_after_the_output() -> None:
    tts, output = FrameProcessor(), BaseOutputTransport(TransportParams())
    voice = TTSAudioRawFrame(AUDIO, sample_rate=8000, num_channels=1)
    assert read_by_latency_observer(pushed(voice, tts))
    assert not read_by_latency_observer(pushed(voice, output))
    assert not read_by_latency_observer(pushed(OutputAudioRawFrame(AUDIO, 8000, 1), tts))


def test_caller_audio_is_not_read_and_turn_events_are() -> None:
    source = FrameProcessor()
    assert not read_by_latency_observer(pushed(InputAudioRawFrame(AUDIO, 8000, 1), source))
    assert read_by_latency_observer(pushed(VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=1.0), source))
    assert read_by_latency_observer(pushed(BotStartedSpeakingFrame(), source))
