"""A fake OpenAI HTTP server on 127.0.0.1, for running the real Pipecat services and `openai` SDK offline.

Tests and the benchmark cannot reach OpenAI, and patching Pipecat's services would leave their
request building and stream parsing untested. So `FakeOpenAI` meets them at the wire: a FastAPI
app, served by uvicorn on its own thread and event loop (`ServedApp`, so the pipeline's loop never
shares time with it), answers the three endpoints the phone pipeline uses, in OpenAI's shapes:

- `POST /v1/chat/completions`: plays planned assistant turns (the `agent.llm.PlannedTurn` type that
  `ScriptedLLM` uses, so a script is written once) in order, as an SSE stream (text as
  `delta.content`, tool calls as `delta.tool_calls` pieces, then `finish_reason`, then a usage
  chunk when `stream_options.include_usage` is set) or as one JSON completion. Like OpenAI it
  answers 400 when a `tool` message has no matching `tool_calls` or a tool call has no answer.
- `POST /v1/audio/transcriptions`: cannot hear, so returns the transcripts the test queued, in order;
  an upload that extends audio it already answered (the same speech, recorded for longer: an
  early transcript the caller talked past) gets that answer's words again, not the next ones.
- `POST /v1/audio/speech`: streams 24 kHz 16-bit mono PCM, a tone as long as the text would take
  to say, so a listener downstream can tell speech from silence.

Each service has a fixed latency (`Delays`) slept inside the server, the fake service's own
latency, and fault knobs (`fail_next`, `hang_next`) per service. Every request is recorded, faulted
ones too. Planned turns that are functions run on the server's thread.
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import json
import math
import re
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from agent.llm import AssistantTurn, PlannedTurn
from agent.loopback.serving import ServedApp

__all__ = [
    "NO_DELAYS",
    "Delays",
    "FakeOpenAI",
    "Service",
    "TranscriptionUpload",
    "completion",
    "stream_chunks",
    "tone_pcm",
]

Service = Literal["llm", "stt", "tts"]

SPEECH_SAMPLE_RATE = 24_000
SPEECH_CHUNK_BYTES = 4_800  # 100 ms of 24 kHz 16-bit mono
SPEECH_TONE_HZ = 440.0
SPEECH_AMPLITUDE = 0.3
ARGUMENT_PIECE_CHARS = 8
# Uploads remembered to recognise speech heard before, and the least audio that counts as speech.
HEARD_UPLOADS = 256
MIN_HEARD_BYTES = 1_600  # 0.1 s of 8 kHz 16-bit audio
# What the fake says when the plan has run out: a short answer, not a crash mid-call.
DEFAULT_TURN = AssistantTurn(text="Okay.")


@dataclass
class Delays:
    """Fixed service latencies in seconds; change them on a running fake, they apply to the next request."""

    stt: float = 0.15
    llm_first_token: float = 0.25
    tts_first_byte: float = 0.12


NO_DELAYS = Delays(stt=0.0, llm_first_token=0.0, tts_first_byte=0.0)


@dataclass(frozen=True, slots=True)
class TranscriptionUpload:
    """One audio upload to `/v1/audio/transcriptions`, as the fake received it."""

    model: str
    audio_bytes: int
    duration_seconds: float | None
    sample_rate: int | None
    fields: dict[str, str]
    transcript: str | None  # None when a fault answered instead


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int | None  # None: hold the request open without answering
    retry_after_ms: int | None = None


class FakeOpenAI:
    """An OpenAI-compatible server on a free 127.0.0.1 port; use as a (async) context manager.

    `base_url` (`http://127.0.0.1:PORT/v1`) goes to `OpenAILLMService(base_url=...)`,
    `AsyncOpenAI(base_url=...)` or `OPENAI_BASE_URL`. Any `Authorization: Bearer` key is accepted
    unless `api_key` is set. Requests are recorded in `chat_requests` (JSON bodies),
    `transcriptions` and `speech_requests`; `unplanned_chat_requests` counts answers that fell back
    to `default_turn` because the plan had run out.
    """

    def __init__(
        self,
        turns: Iterable[PlannedTurn] = (),
        transcripts: Iterable[str] = (),
        *,
        delays: Delays | None = None,
        default_turn: AssistantTurn = DEFAULT_TURN,
        default_transcript: str = "",
        api_key: str | None = None,
        speech_seconds_per_char: float = 0.06,
        max_speech_seconds: float = 10.0,
        hang_seconds: float = 60.0,
        strict_tool_messages: bool = True,
    ) -> None:
        self.delays = delays or Delays()
        self.default_turn = default_turn
        self.default_transcript = default_transcript
        self.api_key = api_key
        self.speech_seconds_per_char = speech_seconds_per_char
        self.max_speech_seconds = max_speech_seconds
        self.hang_seconds = hang_seconds
        self.strict_tool_messages = strict_tool_messages
        self.chat_requests: list[dict[str, Any]] = []
        self.transcriptions: list[TranscriptionUpload] = []
        self.speech_requests: list[dict[str, Any]] = []
        self.unplanned_chat_requests = 0
        self._turns: deque[PlannedTurn] = deque(turns)
        self._transcripts: deque[str] = deque(transcripts)
        self._heard: deque[tuple[bytes, str]] = deque(maxlen=HEARD_UPLOADS)
        self._faults: dict[Service, deque[_Fault]] = {"llm": deque(), "stt": deque(), "tts": deque()}
        self._ids = itertools.count(1)
        self._served: ServedApp | None = None
        self._released: asyncio.Event | None = None  # set at stop: held requests give up

    # -- scripting ---------------------------------------------------------------------------

    def add_turns(self, *turns: PlannedTurn) -> None:
        """Queue more assistant turns after the ones already planned."""
        self._turns.extend(turns)

    def add_transcripts(self, *texts: str) -> None:
        """Queue what the caller says next, one text per utterance uploaded."""
        self._transcripts.extend(texts)

    @property
    def pending_turns(self) -> int:
        return len(self._turns)

    @property
    def pending_transcripts(self) -> int:
        return len(self._transcripts)

    @property
    def spoken_texts(self) -> list[str]:
        """The texts the TTS was asked to say, in order."""
        return [str(body.get("input", "")) for body in self.speech_requests]

    def fail_next(
        self,
        times: int = 1,
        *,
        status: int = 500,
        service: Service = "llm",
        retry_after_ms: int | None = None,
    ) -> None:
        """Answer the next `times` requests to `service` with an OpenAI error of `status` (500, 429, ...).

        The SDK retries 429 and 5xx itself (pipecat's clients: twice, with backoff); `retry_after_ms`
        sends OpenAI's `retry-after-ms` header, which the SDK honours, to make those retries quick.
        """
        self._faults[service].extend(_Fault(status, retry_after_ms) for _ in range(times))

    def hang_next(self, times: int = 1, *, service: Service = "llm") -> None:
        """Hold the next `times` requests open without an answer (for `hang_seconds`, or until stop)."""
        self._faults[service].extend(_Fault(None) for _ in range(times))

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._served is None:
            raise RuntimeError("FakeOpenAI is not running.")
        return self._served.url("/v1")

    def start(self) -> None:
        """Serve on a free 127.0.0.1 port from a background thread; returns once it accepts requests."""
        if self._served is not None:
            raise RuntimeError("FakeOpenAI is already running.")
        self._served = ServedApp(self._app())
        self._served.start()

    def stop(self) -> None:
        """Release held requests, shut the server down and join its thread."""
        served, self._served = self._served, None
        if served is None:
            return
        released = self._released
        if released is not None:
            served.loop.call_soon_threadsafe(released.set)
        served.stop()
        self._released = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- the app -----------------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Response:
            return await self._answer(request, self._chat)

        @app.post("/v1/audio/transcriptions")
        async def transcriptions(request: Request) -> Response:
            return await self._answer(request, self._transcribe)

        @app.post("/v1/audio/speech")
        async def speech(request: Request) -> Response:
            return await self._answer(request, self._speak)

        return app

    async def _answer(self, request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            return await handler(request)
        except ClientDisconnect:  # the client gave up mid-upload (an early transcript dropped)
            return Response(status_code=499)

    def _take_fault(self, service: Service) -> _Fault | None:
        faults = self._faults[service]
        return faults.popleft() if faults else None

    async def _fail(self, fault: _Fault) -> Response:
        if fault.status is None:
            await self._hold()
            return _error(504, "The fake held this request until it gave up.", "server_error")
        headers = {"retry-after-ms": str(fault.retry_after_ms)} if fault.retry_after_ms is not None else {}
        if fault.status == 429:
            return _error(
                429, "Rate limit reached (fake).", "requests", "rate_limit_exceeded", headers=headers
            )
        return _error(fault.status, "The server had an error (fake).", "server_error", headers=headers)

    async def _hold(self) -> None:
        """Keep a request open for `hang_seconds`, or until the fake stops."""
        if self._released is None:
            self._released = asyncio.Event()
        try:
            await asyncio.wait_for(self._released.wait(), self.hang_seconds)
        except TimeoutError:
            return

    def _authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(key) and self.api_key in (None, key)

    async def _chat(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        self.chat_requests.append(body)
        if fault := self._take_fault("llm"):
            return await self._fail(fault)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array.", "invalid_request_error")
        problem = _tool_message_problem(messages) if self.strict_tool_messages else None
        if problem:
            return _error(400, problem, "invalid_request_error")
        turn = self._next_turn(messages)
        model = str(body.get("model", "gpt-fake"))
        completion_id = f"chatcmpl-fake{next(self._ids)}"
        usage = _usage(messages, turn)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = stream_chunks(turn, model=model, completion_id=completion_id, usage=usage)
            if not include_usage:
                chunks = chunks[:-1]
            return StreamingResponse(self._sse(chunks), media_type="text/event-stream")
        await asyncio.sleep(self.delays.llm_first_token)
        return JSONResponse(completion(turn, model=model, completion_id=completion_id, usage=usage))

    def _next_turn(self, messages: Sequence[dict[str, Any]]) -> AssistantTurn:
        if not self._turns:
            self.unplanned_chat_requests += 1
            return self.default_turn
        planned = self._turns.popleft()
        return planned if isinstance(planned, AssistantTurn) else planned(messages)

    async def _sse(self, chunks: list[dict[str, Any]]) -> AsyncIterator[str]:
        await asyncio.sleep(self.delays.llm_first_token)
        for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    async def _transcribe(self, request: Request) -> Response:
        fields, audio = await _multipart(request)
        if audio is None or "model" not in fields:
            return _error(400, "A 'file' and a 'model' are required.", "invalid_request_error")
        sample_rate, duration, data = _wav_parts(audio)
        upload = functools.partial(
            TranscriptionUpload, fields["model"], len(audio), duration, sample_rate, fields
        )
        if fault := self._take_fault("stt"):
            self.transcriptions.append(upload(None))
            return await self._fail(fault)
        text = self._words_for(data)
        self.transcriptions.append(upload(text))
        await asyncio.sleep(self.delays.stt)
        response_format = fields.get("response_format", "json")
        if response_format in ("text", "srt", "vtt"):
            return PlainTextResponse(text)
        answer: dict[str, Any] = {"text": text}
        if response_format == "verbose_json":
            answer |= {
                "task": "transcribe",
                "language": "english",
                "duration": duration or 0.0,
                "segments": [],
            }
        if fields.get("include[]") == "logprobs":
            answer["logprobs"] = []
        return JSONResponse(answer)

    def _words_for(self, data: bytes) -> str:
        """The queued transcript for new speech; the earlier answer for speech heard before."""
        speech = data.rstrip(b"\x00")  # without the silence a segment is padded with
        if len(speech) >= MIN_HEARD_BYTES:
            for heard, text in self._heard:
                if speech.startswith(heard):
                    return text
        text = self._transcripts.popleft() if self._transcripts else self.default_transcript
        if len(speech) >= MIN_HEARD_BYTES:
            self._heard.append((speech, text))
        return text

    async def _speak(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        self.speech_requests.append(body)
        if fault := self._take_fault("tts"):
            return await self._fail(fault)
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "'input' must be a non-empty string.", "invalid_request_error")
        response_format = body.get("response_format", "mp3")
        if response_format not in ("pcm", "wav"):
            return _error(
                400, f"The fake only speaks pcm and wav, not {response_format!r}.", "invalid_request_error"
            )
        seconds = min(self.max_speech_seconds, max(0.2, len(text) * self.speech_seconds_per_char))
        audio = tone_pcm(seconds)
        if response_format == "wav":
            audio = _wav_header(len(audio)) + audio
        return StreamingResponse(self._audio_chunks(audio), media_type=f"audio/{response_format}")

    async def _audio_chunks(self, audio: bytes) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.delays.tts_first_byte)
        for start in range(0, len(audio), SPEECH_CHUNK_BYTES):
            yield audio[start : start + SPEECH_CHUNK_BYTES]


# -- wire shapes -------------------------------------------------------------------------------


def stream_chunks(
    turn: AssistantTurn, *, model: str, completion_id: str, usage: dict[str, Any]
) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects OpenAI streams for `turn`; the last one carries only usage."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            "usage": None,
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in re.findall(r"\s*\S+", turn.text or "")]
    for index, call in enumerate(turn.tool_calls):
        arguments = json.dumps(call.arguments)
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in _pieces(arguments, ARGUMENT_PIECE_CHARS)
        ]
    chunks.append(chunk({}, "tool_calls" if turn.tool_calls else "stop"))
    chunks.append(chunk({}) | {"choices": [], "usage": usage})
    return chunks


def completion(
    turn: AssistantTurn, *, model: str, completion_id: str, usage: dict[str, Any]
) -> dict[str, Any]:
    """The non-streaming `chat.completion` object for `turn`."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.text, "refusal": None, "annotations": []}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in turn.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if turn.tool_calls else "stop",
            }
        ],
        "usage": usage,
    }


def tone_pcm(seconds: float, sample_rate: int = SPEECH_SAMPLE_RATE) -> bytes:
    """A 440 Hz tone as 16-bit little-endian mono PCM: clearly not silence to any listener."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    wave = SPEECH_AMPLITUDE * 32767 * np.sin(2 * math.pi * SPEECH_TONE_HZ * t)
    return wave.astype("<i2").tobytes()


def _pieces(text: str, size: int) -> Iterator[str]:
    return (text[start : start + size] for start in range(0, len(text), size))


def _usage(messages: Sequence[dict[str, Any]], turn: AssistantTurn) -> dict[str, Any]:
    """Roughly four characters a token, in OpenAI's usage shape."""
    prompt = math.ceil(len(json.dumps(messages)) / 4)
    answer = (turn.text or "") + "".join(c.name + json.dumps(c.arguments) for c in turn.tool_calls)
    completion_tokens = math.ceil(len(answer) / 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _tool_message_problem(messages: Sequence[dict[str, Any]]) -> str | None:
    """OpenAI's own 400s for tool messages that do not pair up with an assistant's `tool_calls`."""
    open_calls: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'."
                )
            open_calls.remove(message["tool_call_id"])
            continue
        if open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(open_calls)}"
            )
        if role == "assistant":
            open_calls = [call["id"] for call in message.get("tool_calls") or []]
    return None


def _error(
    status: int, message: str, kind: str, code: str | None = None, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _multipart(request: Request) -> tuple[dict[str, str], bytes | None]:
    """Form fields and the `file` part of a multipart/form-data upload, read as FastAPI reads forms.

    (python-multipart: ~0.2 ms for a 3 s WAV, where the stdlib's email parser took ~3 ms of the
    fake's thread, which shares the bench's cores with the calls.)
    """
    try:
        form = await request.form()
    except HTTPException:  # a malformed body: no fields and no file, answered as OpenAI would
        return {}, None
    try:
        file = form.get("file")
        audio = await file.read() if isinstance(file, UploadFile) else None
        return {name: value for name, value in form.items() if isinstance(value, str)}, audio
    finally:
        await form.close()


def _wav_parts(audio: bytes) -> tuple[int | None, float | None, bytes]:
    """Sample rate, seconds and samples of a PCM/μ-law WAV upload, from its fmt and data chunks."""
    if audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return None, None, b""
    stream = io.BytesIO(audio[12:])
    rate = block_align = None
    while header := stream.read(8):
        if len(header) < 8:
            break
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        data = stream.read(size + size % 2)
        if chunk_id == b"fmt ":
            _, _, rate, _, block_align = struct.unpack("<HHIIH", data[:14])
        elif chunk_id == b"data" and rate and block_align:
            return rate, min(size, len(data)) / block_align / rate, data[:size]
    return rate, None, b""


def _wav_header(data_bytes: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, SPEECH_SAMPLE_RATE, SPEECH_SAMPLE_RATE * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )
