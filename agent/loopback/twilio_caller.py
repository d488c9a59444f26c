"""A fake phone caller speaking Twilio Media Streams to our websocket, and measuring how fast we answer.

Twilio cannot call a test, so `FakeTwilioCaller` plays its part over a real websocket: `connected`,
then `start` (stream, call and account SIDs, custom parameters, 8 kHz μ-law), then a `media`
message every 20 ms in real time for as long as the call lasts, as Twilio does. Between
utterances it streams μ-law silence, because a server-side VAD (and smart-turn) only ends a turn
when it hears silence; a caller that goes quiet on the wire makes every reply look seconds slower.

Everything the server sends is recorded with its `time.monotonic()` arrival. A `media` payload
counts as agent speech when its RMS is above `voiced_rms` (the server's silence is μ-law 0xFF/0x7F).
Per utterance, `CallerTurn.latency` is the time from the last speech frame sent to the first voiced
`media` received afterwards. `mark`s are echoed back once the audio sent before them would have
finished playing, or at once when a `clear` drops that audio, like Twilio.

`load_ulaw` reads the raw μ-law frames out of the fixture WAVs (the stdlib `wave` module only reads
PCM, and `audioop` is deprecated).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
from websockets.exceptions import ConnectionClosed

from agent.loopback.websocket_client import ClientSocket

__all__ = [
    "FRAME_BYTES",
    "FRAME_SECONDS",
    "ULAW_SILENCE",
    "CallEnded",
    "CallerTurn",
    "FakeTwilioCaller",
    "ReceivedMessage",
    "load_ulaw",
    "ulaw_rms",
    "ulaw_to_pcm16",
]

SAMPLE_RATE = 8000
FRAME_SECONDS = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
ULAW_SILENCE = 0xFF
WAVE_FORMAT_MULAW = 7
TWILIO_USER_AGENT = "Twilio.TmeWs/1.0"


def _ulaw_table() -> np.ndarray[Any, np.dtype[np.int16]]:
    """G.711 μ-law byte -> 16-bit linear sample, for all 256 codes."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = (((codes & 0x0F) << 3) + 0x84) << exponent
    return np.where(codes & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


_ULAW_TO_PCM = _ulaw_table()
_ULAW_SQUARED = _ULAW_TO_PCM.astype(np.float64) ** 2


def ulaw_to_pcm16(data: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Decode μ-law bytes to 16-bit linear samples."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def ulaw_rms(data: bytes) -> float:
    """Root-mean-square level of μ-law audio on the 16-bit scale (0 for silence, ~10 000 for a loud tone)."""
    if not data:
        return 0.0
    return float(np.sqrt(_ULAW_SQUARED[np.frombuffer(data, dtype=np.uint8)].mean()))


def load_ulaw(path: Path | str) -> bytes:
    """The μ-law samples of an 8 kHz mono μ-law WAV (format tag 7), read from its `data` chunk."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path} is not a WAV file.")
    position, audio_format = 12, None
    while position + 8 <= len(raw):
        chunk_id, size = (
            raw[position : position + 4],
            struct.unpack("<I", raw[position + 4 : position + 8])[0],
        )
        body = raw[position + 8 : position + 8 + size]
        if chunk_id == b"fmt ":
            audio_format = struct.unpack("<HHIIHH", body[:16])
        elif chunk_id == b"data":
            if audio_format is None or audio_format[:3] != (WAVE_FORMAT_MULAW, 1, SAMPLE_RATE):
                raise ValueError(f"{path} is not 8 kHz mono μ-law (fmt {audio_format}).")
            return body
        position += 8 + size + size % 2
    raise ValueError(f"{path} has no data chunk.")


# `json.dumps` of `_send`'s media message (key order included); the payload is base64 (JSON-safe).
_MEDIA_MESSAGE = (
    '{{"event": "media", "sequenceNumber": "{sequence}", "media": {{"track": "inbound", '
    '"chunk": "{chunk}", "timestamp": "{timestamp}", "payload": "{payload}"}}, "streamSid": {stream_sid}}}'
)


def _payload(frame: bytes) -> str:
    return base64.b64encode(frame).decode()


class CallEnded(RuntimeError):
    """The websocket closed while the caller was waiting for the agent."""


@dataclass
class ReceivedMessage:
    """One websocket message from the server, with its `time.monotonic()` arrival time."""

    at: float
    raw: str | bytes
    data: dict[str, Any] | None
    audio: bytes = b""
    voiced: bool = False

    @property
    def event(self) -> str | None:
        event = None if self.data is None else self.data.get("event")
        return event if isinstance(event, str) else None


@dataclass
class CallerTurn:
    """One caller utterance and the agent's reaction to it (all times are `time.monotonic()`)."""

    audio_seconds: float
    speech_started_at: float | None = None
    speech_ended_at: float | None = None
    first_agent_audio_at: float | None = None

    @property
    def latency(self) -> float | None:
        """Seconds from the caller's last speech frame to the first voiced agent audio after it."""
        if self.speech_ended_at is None or self.first_agent_audio_at is None:
            return None
        return self.first_agent_audio_at - self.speech_ended_at


@dataclass
class _Utterance:
    turn: CallerTurn
    payloads: deque[str]  # each 20 ms frame, base64-encoded once, up front
    done: asyncio.Future[CallerTurn]


@dataclass
class _Mark:
    name: str
    due: float


class FakeTwilioCaller:
    """Calls a Twilio Media Streams websocket endpoint; use as `async with FakeTwilioCaller(url) as caller`.

    Entering connects (with `headers`, e.g. `X-Twilio-Signature`), sends `connected` and `start`,
    and begins streaming silence; leaving hangs up. With `send_start=False` nothing is sent until
    `await caller.start()`, for tests of what the server does with odd openings (`send_raw`).

    The first `lead_in_seconds` of the stream are always silence, even if `say` is called at
    once: Pipecat's VAD measures loudness over 400 ms windows and misses a short utterance that
    starts at the very first frame (seen with "Hello?" at t=0; 0.2 s of lead-in was enough).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        account_sid: str = "AC" + "0" * 32,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        send_start: bool = True,
        voiced_rms: float = 300.0,
        echo_marks: bool = True,
        lead_in_seconds: float = 0.5,
        open_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.custom_parameters = dict(custom_parameters or {})
        self.account_sid = account_sid
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.stream_sid = stream_sid or "MZ" + uuid.uuid4().hex
        self.send_start = send_start
        self.voiced_rms = voiced_rms
        self.echo_marks = echo_marks
        self.lead_in_frames = round(lead_in_seconds / FRAME_SECONDS)
        self.open_timeout = open_timeout

        self.messages: list[ReceivedMessage] = []
        self.sent: list[dict[str, Any] | str] = []
        self.turns: list[CallerTurn] = []
        self.protocol_errors: list[str] = []
        self.call_started_at: float | None = None
        self.first_agent_audio_at: float | None = None
        self.last_agent_audio_at: float | None = None
        self.close_code: int | None = None
        self.media_frames_sent = 0
        # Per media frame, seconds after its 20 ms tick that it was sent: a busy caller's own lag.
        self.send_lateness: list[float] = []

        self._ws: ClientSocket | None = None
        self._sequence = 0
        self._chunk = 0
        self._utterances: deque[_Utterance] = deque()
        self._marks: list[_Mark] = []
        self._playback_ends = 0.0
        self._streaming = False
        # Futures of `_wait_for` calls, woken (all at once) by each message and by the close.
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = asyncio.Event()
        self._media_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.hang_up()

    async def connect(self) -> None:
        """Open the websocket, record what the server sends, and `start()` unless told not to."""
        self._ws = await ClientSocket.open(
            self.url,
            on_message=self._on_message,
            on_close=self._on_close,
            headers={"User-Agent": TWILIO_USER_AGENT} | self.headers,
            open_timeout=self.open_timeout,
            close_timeout=self.open_timeout,
        )
        if self.send_start:
            await self.start()

    async def start(self) -> None:
        """Send `connected` and `start`, then stream a `media` frame every 20 ms until `stop` or hang-up."""
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, numbered=False)
        self._send(
            {
                "event": "start",
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.custom_parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
                },
            }
        )
        self.call_started_at = time.monotonic()
        self._streaming = True
        self._media_task = asyncio.create_task(self._stream_media(), name="twilio-caller-media")

    async def stop(self) -> None:
        """Send Twilio's `stop` (the call ended on the phone side) and stop streaming media."""
        self._stop_streaming()
        self._send({"event": "stop", "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})

    async def hang_up(self) -> None:
        """Close the websocket without `stop` (a dropped line); also what leaving the `async with` does."""
        self._stop_streaming()
        if self._ws is not None:
            await self._ws.close()
        if self._media_task is not None:
            self._media_task.cancel()
            await asyncio.gather(self._media_task, return_exceptions=True)
            self._media_task = None

    # -- talking -----------------------------------------------------------------------------

    async def say(self, audio: Path | str | bytes) -> CallerTurn:
        """Speak a fixture WAV (path) or raw 8 kHz μ-law bytes; returns once its last frame was sent.

        Silence keeps streaming afterwards. Utterances queue behind one another if called concurrently.
        """
        if self._closed.is_set():
            raise CallEnded(f"The call has ended (close code {self.close_code}).")
        if not self._streaming:
            raise RuntimeError("The caller is not streaming: call start() first.")
        ulaw = audio if isinstance(audio, bytes) else load_ulaw(audio)
        padded = ulaw + bytes([ULAW_SILENCE]) * (-len(ulaw) % FRAME_BYTES)
        payloads = deque(_payload(padded[i : i + FRAME_BYTES]) for i in range(0, len(padded), FRAME_BYTES))
        turn = CallerTurn(audio_seconds=len(ulaw) / SAMPLE_RATE)
        self.turns.append(turn)
        done: asyncio.Future[CallerTurn] = asyncio.get_running_loop().create_future()
        self._utterances.append(_Utterance(turn, payloads, done))
        return await done

    async def send_raw(self, message: str | bytes) -> None:
        """Send anything as one websocket message (garbage, truncated JSON, binary frames)."""
        self._require_ws().send(message)
        self.sent.append(message if isinstance(message, str) else repr(message))

    async def send_dtmf(self, digit: str) -> None:
        """Send a keypad press as Twilio's `dtmf` event."""
        self._send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}})

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for_agent_audio(self, timeout_seconds: float = 10.0) -> float:
        """Wait for voiced agent audio after the last utterance (or the call start); returns that latency.

        Raises `TimeoutError` when none comes in time and `CallEnded` when the socket closes first.
        """
        if self.turns:
            turn = self.turns[-1]
            await self._wait_for(lambda: turn.latency is not None, timeout_seconds)
            assert turn.latency is not None
            return turn.latency
        await self._wait_for(lambda: self.first_agent_audio_at is not None, timeout_seconds)
        assert self.first_agent_audio_at is not None and self.call_started_at is not None
        return self.first_agent_audio_at - self.call_started_at

    async def wait_until_silent(self, quiet_seconds: float = 0.6, timeout_seconds: float = 15.0) -> None:
        """Wait until the agent has answered the last utterance and then sent no voiced audio for a while.

        A server hang-up after the agent spoke counts as silence. While the agent talks this
        sleeps until its last audio would be `quiet_seconds` old and looks again, rather than
        waking for each of its messages.
        """
        deadline = time.monotonic() + timeout_seconds
        await self.wait_for_agent_audio(timeout_seconds)
        while not self._closed.is_set():
            assert self.last_agent_audio_at is not None
            quiet_until = self.last_agent_audio_at + quiet_seconds
            if time.monotonic() >= quiet_until:
                return
            if quiet_until > deadline:
                raise TimeoutError(f"The agent was still talking after {timeout_seconds} s.")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), quiet_until - time.monotonic())

    async def wait_for_message(
        self, event: str, *, after: float = 0.0, timeout_seconds: float = 10.0
    ) -> ReceivedMessage:
        """The first server message with this `event` received at or after `after` (a monotonic time).

        E.g. the `clear` of a barge-in: `wait_for_message("clear", after=turn.speech_started_at)`.
        """

        def found() -> ReceivedMessage | None:
            return next((m for m in self.messages if m.event == event and m.at >= after), None)

        await self._wait_for(lambda: found() is not None, timeout_seconds)
        message = found()
        assert message is not None
        return message

    async def wait_for_hangup(self, timeout_seconds: float = 10.0) -> int | None:
        """Wait for the server to close the websocket; returns the close code."""
        await asyncio.wait_for(self._closed.wait(), timeout_seconds)
        return self.close_code

    # -- what the server sent ----------------------------------------------------------------

    def received(self, event: str) -> list[ReceivedMessage]:
        """Messages from the server with this `event` (`media`, `clear`, `mark`, ...), in arrival order."""
        return [m for m in self.messages if m.event == event]

    @property
    def agent_audio(self) -> bytes:
        """All μ-law audio the server sent, concatenated."""
        return b"".join(m.audio for m in self.messages)

    @property
    def latencies(self) -> list[float]:
        """Per answered utterance: seconds from the caller's speech end to the agent's first voiced audio."""
        return [t.latency for t in self.turns if t.latency is not None]

    # -- internals ---------------------------------------------------------------------------

    def _require_ws(self) -> ClientSocket:
        if self._ws is None:
            raise RuntimeError("The caller is not connected.")
        return self._ws

    def _send(self, message: dict[str, Any], *, numbered: bool = True) -> None:
        if numbered:
            self._sequence += 1
            message = {"event": message["event"], "sequenceNumber": str(self._sequence)} | message
            message["streamSid"] = self.stream_sid
        self._require_ws().send(json.dumps(message))
        self.sent.append(message)

    def _stop_streaming(self) -> None:
        self._streaming = False
        for utterance in self._utterances:
            if not utterance.done.done():
                utterance.done.set_exception(CallEnded("The call ended before the caller finished speaking."))
        self._utterances.clear()

    async def _stream_media(self) -> None:
        """One 20 ms `media` frame per tick on an absolute schedule; speech when queued, else silence."""
        silence = _payload(bytes([ULAW_SILENCE]) * FRAME_BYTES)
        stream_sid = json.dumps(self.stream_sid)
        next_tick = time.monotonic()
        try:
            while self._streaming:
                self.send_lateness.append(max(0.0, time.monotonic() - next_tick))
                lead_in = self.media_frames_sent < self.lead_in_frames
                utterance = self._utterances[0] if self._utterances and not lead_in else None
                payload = utterance.payloads.popleft() if utterance else silence
                self._send_media(payload, stream_sid)
                now = time.monotonic()
                if utterance is not None:
                    self._mark_progress(utterance, now)
                self._echo_due_marks(now)
                next_tick += FRAME_SECONDS
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        except ConnectionClosed:
            self._stop_streaming()

    def _mark_progress(self, utterance: _Utterance, now: float) -> None:
        if utterance.turn.speech_started_at is None:
            utterance.turn.speech_started_at = now
        if not utterance.payloads:
            utterance.turn.speech_ended_at = now
            self._utterances.popleft()
            if not utterance.done.done():
                utterance.done.set_result(utterance.turn)

    def _send_media(self, payload: str, stream_sid: str) -> None:
        """Twilio's `media` message as `_send` would write it, from a template (50 a second a call).

        `stream_sid` comes JSON-encoded, once per stream. Counted in `media_frames_sent`, not kept
        in `sent`.
        """
        self._chunk += 1
        self._sequence += 1
        self._require_ws().send(
            _MEDIA_MESSAGE.format(
                sequence=self._sequence,
                chunk=self._chunk,
                timestamp=(self._chunk - 1) * 20,
                payload=payload,
                stream_sid=stream_sid,
            )
        )
        self.media_frames_sent += 1

    def _echo_due_marks(self, now: float) -> None:
        while self._marks and self._marks[0].due <= now:
            mark = self._marks.pop(0)
            self._send({"event": "mark", "mark": {"name": mark.name}})

    def _on_message(self, raw: str | bytes) -> None:
        self._record(raw)
        self._wake_waiters()

    def _on_close(self, close_code: int | None) -> None:
        self.close_code = close_code
        self._closed.set()
        self._stop_streaming()
        self._wake_waiters()

    def _record(self, raw: str | bytes) -> None:
        now = time.monotonic()
        message = ReceivedMessage(at=now, raw=raw, data=None)
        self.messages.append(message)
        if isinstance(raw, bytes):
            self.protocol_errors.append("binary websocket frame (Twilio accepts JSON text only)")
            return
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            self.protocol_errors.append(f"not JSON: {raw[:80]!r}")
            return
        if not isinstance(data, dict):
            self.protocol_errors.append(f"not a JSON object: {raw[:80]!r}")
            return
        message.data = data
        event = data.get("event")
        if event not in ("media", "mark", "clear"):
            self.protocol_errors.append(f"unknown event {event!r}")
            return
        if data.get("streamSid") != self.stream_sid:
            self.protocol_errors.append(f"{event} for streamSid {data.get('streamSid')!r}")
        if event == "media":
            self._on_media(message, data, now)
        elif event == "mark":
            name = (data.get("mark") or {}).get("name")
            if self.echo_marks and isinstance(name, str):
                self._marks.append(_Mark(name, max(now, self._playback_ends)))
        else:
            self._playback_ends = now
            for mark in self._marks:
                mark.due = now

    def _on_media(self, message: ReceivedMessage, data: dict[str, Any], now: float) -> None:
        try:
            message.audio = base64.b64decode((data.get("media") or {}).get("payload", ""), validate=True)
        except (binascii.Error, TypeError):
            self.protocol_errors.append("media payload is not base64")
            return
        self._playback_ends = max(self._playback_ends, now) + len(message.audio) / SAMPLE_RATE
        message.voiced = ulaw_rms(message.audio) > self.voiced_rms
        if not message.voiced:
            return
        self.last_agent_audio_at = now
        if self.first_agent_audio_at is None:
            self.first_agent_audio_at = now
        for turn in self.turns:
            if turn.speech_ended_at is not None and turn.first_agent_audio_at is None:
                turn.first_agent_audio_at = now

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_for(self, condition: Callable[[], bool], timeout_seconds: float) -> None:
        """Until `condition()` holds, looking again after each message the server sends."""

        async def until() -> None:
            while not condition():
                if self._closed.is_set():
                    raise CallEnded(f"The call ended (close code {self.close_code}) while waiting.")
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

        await asyncio.wait_for(until(), timeout_seconds)
