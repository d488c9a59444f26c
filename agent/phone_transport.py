"""The call's websocket transport: Pipecat's, with the caller's audio pushed at once and the agent's
voice sent ahead of playback (`agent.playout`).

Pipecat's input queues each audio frame for a task of its own, which waits on the queue through
`asyncio.wait_for` (a task and a timer per frame on Python 3.11, replaced by `wait_for2` but still a
task), applies the audio filter and pushes the frame on. The phone path has no audio filter, so
`DirectInput` pushes each frame as the serializer hands it over: one queue, one task switch and one
timed wait less per 40 ms of every call, and the caller's audio keeps its order with the other
frames the socket brings (DTMF).
"""

from __future__ import annotations

from typing import Any

from fastapi import WebSocket
from pipecat.frames.frames import InputAudioRawFrame
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from agent.playout import AheadOutput


class DirectInput(FastAPIWebsocketInputTransport):
    """Pipecat's websocket input, pushing the caller's audio downstream as it arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._params.audio_in_filter is not None:
            raise ValueError("DirectInput pushes audio unfiltered: the phone path sets no audio filter.")

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        if self._params.audio_in_enabled and self._params.audio_in_passthrough and not self._paused:
            await self.push_frame(frame)


class PhoneTransport(FastAPIWebsocketTransport):
    """The call's websocket transport, receiving through `DirectInput` and sending through `AheadOutput`.

    Pipecat builds its own input and output in the constructor; they are replaced before the
    pipeline is assembled (`input()` and `output()` hand out these), pinned by `pipecat-ai<1.15`.
    """

    def __init__(self, websocket: WebSocket, params: FastAPIWebsocketParams) -> None:
        super().__init__(websocket, params)
        self._input = DirectInput(self, self._client, self._params, name=self._input_name)
        self._output = AheadOutput(self, self._client, self._params, name=self._output_name)
