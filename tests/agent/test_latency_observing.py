"""The call's latency observer is told of the frames it reads and of no audio it ignores."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    TextFrame,
    TTSAudioRawFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FrameProcessed, FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.utils.asyncio.task_manager import TaskManager

from agent.latency_observing import LatencyObserving, read_by_latency_observer

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


class Told(UserBotLatencyObserver):
    """The latency observer, noting each frame it is told of; `done` once it is told of `last`."""

    def __init__(self, last: Frame) -> None:
        super().__init__()
        self.told: list[Frame] = []
        self.last = last
        self.done = asyncio.Event()

    async def on_push_frame(self, data: FramePushed) -> None:
        self.told.append(data.frame)
        await super().on_push_frame(data)
        if data.frame is self.last:
            self.done.set()


async def test_the_observer_is_told_only_of_what_it_reads() -> None:
    tts, output = FrameProcessor(), BaseOutputTransport(TransportParams())
    voice, stopped, last = (
        TTSAudioRawFrame(AUDIO, 8000, 1),
        VADUserStoppedSpeakingFrame(0.2, 1.0),
        TextFrame("end"),
    )
    told = Told(last)
    observing = LatencyObserving(told)
    await observing.setup(TaskManager(loop=asyncio.get_running_loop()))
    await observing.on_push_frame(pushed(InputAudioRawFrame(AUDIO, 8000, 1), tts))
    await observing.on_process_frame(FrameProcessed(tts, voice, FrameDirection.DOWNSTREAM, 0))
    for frame, source in ((stopped, tts), (voice, tts), (voice, output), (last, tts)):
        await observing.on_push_frame(pushed(frame, source))
    await asyncio.wait_for(told.done.wait(), timeout=5)
    await observing.cleanup()  # type: ignore[no-untyped-call]
    assert told.told == [stopped, voice, last]
