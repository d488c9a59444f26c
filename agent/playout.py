"""The agent's voice goes to Twilio a little ahead of playback, so a busy moment is not a gap.

Pipecat's websocket output paces audio at exactly real time: each chunk is written, then it sleeps
for the chunk's length, and after a late write it restarts its clock from now. Any stall of the
server's loop (or of the network) longer than a chunk is a gap the caller hears, and the stream
never makes it up. Twilio plays the media it is sent from a buffer, in order, and empties that
buffer on `clear` (which Pipecat's serializer sends when the caller barges in). So this output
keeps up to `AHEAD_SECS` of audio in Twilio's buffer: a stall shorter than that is not heard, and a
barge-in still silences the agent at once.

What moves: frames that follow the audio out of the output (the words, bot-stopped-speaking) pass
up to `AHEAD_SECS` before that audio is heard; `SpeechTracker` waits that long before it hangs up
or transfers, so the last words are not cut.

Pipecat's output passes each chunk of the voice on once it is sent; nothing after it (the speech
tracker, the assistant aggregator) reads the agent's audio, so here the chunks go no further.
"""

from __future__ import annotations

import asyncio
import time

from pipecat.frames.frames import Frame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.websocket.fastapi import FastAPIWebsocketOutputTransport

AHEAD_SECS = 0.2
# The voice goes out in 100 ms `media` messages, not Pipecat's default 40 ms. Every message costs the
# same to send whatever its length (a frame, the pacing, the serializer's JSON and base64, a
# websocket write, and the same again at Twilio), and while the agent talks that was 25 a second a
# call. The first message of a reply waits for nothing more: Pipecat's OpenAI TTS pushes its audio
# in 0.5 s frames. Twilio plays the messages back to back, whatever their length.
VOICE_CHUNK_10MS = 10


def pace(
    played_until: float, now: float, chunk_secs: float, ahead_secs: float = AHEAD_SECS
) -> tuple[float, float]:
    """After writing a chunk: when the audio written so far ends playing, and how long to wait.

    `played_until` is where the previous chunks end (0 after a barge-in). If it is already past,
    the caller's buffer ran dry and playback starts again now; otherwise the chunk plays after
    them. The writer waits only while more than `ahead_secs` is queued at the caller.
    """
    played_until = max(played_until, now) + chunk_secs
    return played_until, max(0.0, played_until - now - ahead_secs)


class AheadOutput(FastAPIWebsocketOutputTransport):
    """Pipecat's websocket output with `pace` in place of its real-time clock; sent audio stops here."""

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, OutputAudioRawFrame):
            return
        await super().push_frame(frame, direction)

    async def _write_audio_sleep(self) -> None:
        # Pipecat's `_next_send_time` (reset to 0 on an interruption; declared int) holds `played_until`.
        played_until, wait = pace(self._next_send_time, time.monotonic(), self._send_interval)
        self._next_send_time = played_until  # type: ignore[assignment]
        if wait > 0:
            await asyncio.sleep(wait)
