"""The call's transport hands what the speech gate passes on as it arrives, and refuses an audio filter."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import ErrorFrame, Frame, InputAudioRawFrame, UserStartedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from starlette.websockets import WebSocket

from agent.listening import Listening
from agent.phone_transport import DirectInput, PhoneTransport
from agent.speech_gate import SpeechGate

SOCKET = cast(WebSocket, object())  # never touched: no frame is sent or received here
PARAMS = FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True)


class Neighbour(FrameProcessor):
    """A processor next to the input: records what reaches its queue."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[Frame] = []

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM, *args: Any, **kwargs: Any
    ) -> None:
        self.queued.append(frame)


async def _input(*, pass_quiet: bool) -> tuple[DirectInput, Neighbour]:
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    gate = SpeechGate(vad, pass_quiet=pass_quiet, pause_after_secs=None)
    gate.start(8000)
    direct = PhoneTransport(SOCKET, PARAMS, gate).input()
    assert isinstance(direct, DirectInput)
    stt = Neighbour()
    direct.link(stt)
    return direct, stt


def _quiet(count: int) -> list[InputAudioRawFrame]:
    return [InputAudioRawFrame(bytes([i % 2]) * 640, sample_rate=8000, num_channels=1) for i in range(count)]


async def test_what_the_gate_passes_reaches_the_next_processor_as_it_is_handed_over() -> None:
    direct, stt = await _input(pass_quiet=True)
    frames = _quiet(3)
    for frame in frames:
        await direct.push_audio_frame(frame)
    assert stt.queued == frames  # no queue and task between the socket and the STT: there at once, in order


async def test_the_quiet_line_passes_once_the_aggregator_opens_a_turn_upstream() -> None:
    direct, stt = await _input(pass_quiet=False)
    held, after = _quiet(3), _quiet(2)
    for frame in held:
        await direct.push_audio_frame(frame)
    assert stt.queued == []
    await direct.process_frame(UserStartedSpeakingFrame(), FrameDirection.UPSTREAM)
    for frame in after:
        await direct.push_audio_frame(frame)
    passed = [frame for frame in stt.queued if isinstance(frame, InputAudioRawFrame)]
    assert len(passed) == 1 + len(after)  # what was held comes as one frame, then each new one
    assert b"".join(frame.audio for frame in passed) == b"".join(frame.audio for frame in held + after)


class BrokenGate(SpeechGate):
    async def hear(self, frame: InputAudioRawFrame) -> list[Frame]:
        raise RuntimeError("the VAD model failed")


async def test_a_failing_vad_reaches_the_pipeline_as_an_error_not_as_silence() -> None:
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    direct = PhoneTransport(SOCKET, PARAMS, BrokenGate(vad, pass_quiet=True, pause_after_secs=None)).input()
    upstream = Neighbour()
    upstream.link(direct)
    await direct.push_audio_frame(_quiet(1)[0])
    errors = [frame for frame in upstream.queued if isinstance(frame, ErrorFrame)]
    assert errors and "the VAD model failed" in errors[0].error


class Louder(BaseAudioFilter):
    async def start(self, sample_rate: int) -> None: ...
    async def stop(self) -> None: ...
    async def process_frame(self, frame: Any) -> None: ...
    async def filter(self, audio: bytes) -> bytes:
        return audio


async def test_an_audio_filter_is_refused_rather_than_skipped() -> None:
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    gate = SpeechGate(vad, pass_quiet=True, pause_after_secs=None)
    with pytest.raises(ValueError, match="unfiltered"):
        PhoneTransport(SOCKET, FastAPIWebsocketParams(audio_in_enabled=True, audio_in_filter=Louder()), gate)
