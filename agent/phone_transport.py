"""The call's websocket transport: Pipecat's, with the caller's audio heard as it arrives and the
agent's voice sent ahead of playback (`agent.playout`).

Pipecat's input queues each audio frame for a task of its own, which waits on the queue through
`asyncio.wait_for` (a task and a timer per frame on Python 3.11, replaced by `wait_for2` but still a
task), applies the audio filter and pushes the frame on. The phone path has no audio filter, so
`DirectInput` hands each frame to the call's `SpeechGate` as the serializer hands it over and pushes
what the gate lets through: the VAD's verdicts and the audio a turn needs, in order with the other
frames the socket brings (DTMF). The quiet audio between turns goes no further than this.
"""

from __future__ import annotations

from typing import Any

from fastapi import WebSocket
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from agent.playout import AheadOutput
from agent.speech_gate import SpeechGate


class DirectInput(FastAPIWebsocketInputTransport):
    """Pipecat's websocket input, passing the caller's audio through the call's `SpeechGate` at once."""

    def __init__(self, *args: Any, gate: SpeechGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._params.audio_in_filter is not None:
            raise ValueError("DirectInput pushes audio unfiltered: the phone path sets no audio filter.")
        self._gate = gate

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as Pipecat's
        await super().setup(setup)
        self._gate.start(self.sample_rate)

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        if not (self._params.audio_in_enabled and self._params.audio_in_passthrough) or self._paused:
            return
        try:
            heard = await self._gate.hear(frame)
        except Exception as error:  # the VAD failed: the call's error handler hands the caller over
            await self.push_error(f"{self}: could not analyse the caller's audio: {error}", exception=error)
            return
        for passed in heard:
            await self.push_frame(passed)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if direction == FrameDirection.UPSTREAM:
            self._gate.note(frame)
        await super().process_frame(frame, direction)


class PhoneTransport(FastAPIWebsocketTransport):
    """The call's websocket transport, receiving through `DirectInput` and sending through `AheadOutput`.

    Pipecat builds its own input and output in the constructor; they are replaced before the
    pipeline is assembled (`input()` and `output()` hand out these), pinned by `pipecat-ai<1.15`.
    """

    def __init__(self, websocket: WebSocket, params: FastAPIWebsocketParams, gate: SpeechGate) -> None:
        super().__init__(websocket, params)
        self._input = DirectInput(self, self._client, self._params, gate=gate, name=self._input_name)
        self._output = AheadOutput(self, self._client, self._params, name=self._output_name)
