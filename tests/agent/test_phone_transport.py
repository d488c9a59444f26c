"""The call's transport hands the caller's audio on as it arrives, and refuses an audio filter."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from starlette.websockets import WebSocket

from agent.phone_transport import DirectInput, PhoneTransport

SOCKET = cast(WebSocket, object())  # never touched: no frame is sent or received here


class Downstream(FrameProcessor):
    """The STT's place in the pipeline: records what reaches its queue."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[Frame] = []

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM, *args: Any, **kwargs: Any
    ) -> None:
        self.queued.append(frame)


async def test_the_callers_audio_reaches_the_next_processor_as_it_is_handed_over() -> None:
    transport = PhoneTransport(SOCKET, FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True))
    direct = transport.input()
    assert isinstance(direct, DirectInput)
    nxt = Downstream()
    direct.link(nxt)
    frames = [InputAudioRawFrame(audio=bytes([i]) * 640, sample_rate=8000, num_channels=1) for i in range(3)]
    for frame in frames:
        await direct.push_audio_frame(frame)
    assert nxt.queued == frames  # no queue and task between the socket and the STT: there at once, in order


class Louder(BaseAudioFilter):
    async def start(self, sample_rate: int) -> None: ...
    async def stop(self) -> None: ...
    async def process_frame(self, frame: Any) -> None: ...
    async def filter(self, audio: bytes) -> bytes:
        return audio


def test_an_audio_filter_is_refused_rather_than_skipped() -> None:
    with pytest.raises(ValueError, match="unfiltered"):
        PhoneTransport(SOCKET, FastAPIWebsocketParams(audio_in_enabled=True, audio_in_filter=Louder()))
