"""The fakes speak the real wire formats: the `openai` SDK and Pipecat's own services and Twilio
serializer work against them unmodified, and the fixture audio is real 8 kHz μ-law speech."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from fastapi import FastAPI, WebSocket
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.utils import pcm_to_wav
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    LLMMessagesAppendFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from agent.llm import AssistantTurn, ToolCall
from agent.loopback.make_audio import AUDIO_DIR, LINES
from agent.loopback.openai_api import NO_DELAYS, Delays, FakeOpenAI
from agent.loopback.serving import ServedApp
from agent.loopback.twilio_caller import (
    FRAME_BYTES,
    ULAW_SILENCE,
    CallEnded,
    FakeTwilioCaller,
    load_ulaw,
    ulaw_rms,
    ulaw_to_pcm16,
)

BOOK = ToolCall(id="call_book_1", name="book_appointment", arguments={"name": "Jane Doe", "slot": "T09:00"})
BOOK_TOOL = FunctionSchema(
    "book_appointment",
    "Book a slot for the caller.",
    {"name": {"type": "string"}, "slot": {"type": "string"}},
    ["name", "slot"],
)
TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "book_appointment", "parameters": {"type": "object"}}}
]
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Book me in, please."}]


def _client(fake: FakeOpenAI, **options: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, **options)


async def test_sdk_streams_text_and_a_tool_call_in_openai_chunks():
    """The SDK's stream parser rebuilds the planned text and tool call, finish reason and usage."""
    turn = AssistantTurn(text="One moment.", tool_calls=(BOOK,))
    async with FakeOpenAI([turn], delays=NO_DELAYS) as fake, _client(fake) as client:
        stream = await client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=USER,
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, arguments, finish, usage, heads = "", "", None, None, []
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or []:
                    arguments += (call.function and call.function.arguments) or ""
                    if call.id:
                        heads.append((call.index, call.id, call.type, call.function and call.function.name))
    assert text == "One moment."
    assert heads == [(0, "call_book_1", "function", "book_appointment")]
    assert json.loads(arguments) == BOOK.arguments
    assert finish == "tool_calls"
    assert usage is not None and usage.total_tokens > 0
    assert fake.chat_requests[0]["model"] == "gpt-4.1-mini"
    assert fake.chat_requests[0]["tools"] == TOOLS


async def test_sdk_plain_completion_plays_functions_then_the_default():
    """Non-streaming answers come from planned turns (a function sees the messages), then the default."""
    seen: list[list[dict[str, Any]]] = []

    def echo(messages):
        seen.append(list(messages))
        return AssistantTurn(text=f"You said: {messages[-1]['content']}")

    async with FakeOpenAI([echo], delays=NO_DELAYS) as fake, _client(fake) as client:
        first = await client.chat.completions.create(model="m", messages=USER)
        second = await client.chat.completions.create(model="m", messages=USER)
    assert first.choices[0].message.content == "You said: Book me in, please."
    assert first.choices[0].finish_reason == "stop"
    assert seen == [USER]
    assert second.choices[0].message.content == "Okay."
    assert fake.unplanned_chat_requests == 1


async def test_orphan_tool_messages_get_openais_400():
    """A tool result without its assistant `tool_calls` (or the reverse) is rejected as OpenAI does."""
    orphan: list[Any] = [*USER, {"role": "tool", "tool_call_id": "call_x", "content": "{}"}]
    unanswered: list[Any] = [*USER, {"role": "assistant", "tool_calls": [{"id": "call_y"}]}, *USER]
    async with FakeOpenAI(delays=NO_DELAYS) as fake, _client(fake) as client:
        for messages in (orphan, unanswered):
            with pytest.raises(openai.BadRequestError, match="tool"):
                await client.chat.completions.create(model="m", messages=messages)
    assert fake.unplanned_chat_requests == 0


async def test_fault_knobs_fail_then_recover():
    """`fail_next` answers 500 and 429, `hang_next` holds the request past the client's timeout."""
    async with FakeOpenAI(delays=NO_DELAYS) as fake, _client(fake, timeout=0.3) as client:
        fake.fail_next(status=500)
        fake.fail_next(status=429)
        fake.hang_next()
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=USER)
        answer = await client.chat.completions.create(model="m", messages=USER)
    assert answer.choices[0].message.content == "Okay."
    assert len(fake.chat_requests) == 4


async def test_sdk_retries_honour_retry_after_ms():
    """The SDK's own retries get through once the faults are used up."""
    async with FakeOpenAI(delays=NO_DELAYS) as fake:
        fake.fail_next(2, status=429, retry_after_ms=1)
        async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=2) as client:
            answer = await client.chat.completions.create(model="m", messages=USER)
    assert answer.choices[0].message.content == "Okay."


async def test_sdk_transcription_and_speech():
    """Transcripts come back in order with the upload measured; speech is a streamed 24 kHz tone."""
    wav = (AUDIO_DIR / "yes.wav").read_bytes()
    other = (AUDIO_DIR / "no.wav").read_bytes()
    async with FakeOpenAI(transcripts=["Yes, please."], delays=NO_DELAYS) as fake, _client(fake) as client:
        first = await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", wav))
        second = await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", other))
        async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="Hello there.", response_format="pcm"
        ) as response:
            pcm = b"".join([chunk async for chunk in response.iter_bytes()])
        with pytest.raises(openai.BadRequestError):
            await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="mp3")
    assert (first.text, second.text) == ("Yes, please.", "")
    upload = fake.transcriptions[0]
    assert upload.audio_bytes == len(wav) and upload.sample_rate == 8000
    assert upload.duration_seconds == pytest.approx(len(load_ulaw(AUDIO_DIR / "yes.wav")) / 8000)
    assert len(pcm) == round(len("Hello there.") * 0.06 * 24_000) * 2
    assert ulaw_rms(b"") == 0 and _pcm_rms(pcm) > 5_000
    assert fake.spoken_texts == ["Hello there.", "Hi."]


async def test_an_upload_without_a_file_or_with_a_broken_body_gets_openais_400():
    """What a client sends wrong is answered in OpenAI's error shape, and nothing is transcribed."""
    async with FakeOpenAI(transcripts=["Yes, please."], delays=NO_DELAYS) as fake:
        url = f"{fake.base_url}/audio/transcriptions"
        auth = {"Authorization": "Bearer sk-test"}
        async with httpx.AsyncClient() as client:
            no_file = await client.post(url, headers=auth, data={"model": "gpt-4o-transcribe"})
            broken = await client.post(
                url,
                headers=auth | {"Content-Type": "multipart/form-data; boundary=x"},
                content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno name and no end",
            )
    for response in (no_file, broken):
        assert response.status_code == 400
        assert response.json()["error"]["message"] == "A 'file' and a 'model' are required."
    assert fake.pending_transcripts == 1 and fake.transcriptions == []


async def test_longer_recording_of_heard_speech_gets_the_same_words():
    """An early upload the caller talked past, then the whole utterance: one transcript, not two."""
    speech = ulaw_to_pcm16(load_ulaw(AUDIO_DIR / "book_cleaning.wav")).tobytes()
    pause = len(speech) // 3 * 2  # at an even byte: whole samples
    early = pcm_to_wav(speech[:pause] + bytes(8_000), 8000)  # what was said so far, padded silence
    whole = pcm_to_wav(speech + bytes(8_000), 8000)
    yes = pcm_to_wav(ulaw_to_pcm16(load_ulaw(AUDIO_DIR / "yes.wav")).tobytes(), 8000)
    lines = ["I'd like to book a cleaning.", "Yes."]
    async with FakeOpenAI(transcripts=lines, delays=NO_DELAYS) as fake, _client(fake) as client:
        heard = [
            (await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", wav))).text
            for wav in (early, whole, yes)
        ]
    assert heard == [*lines[:1], *lines]
    assert fake.pending_transcripts == 0


async def test_delays_are_the_fake_services_latency():
    """Each service answers no sooner than its configured delay."""
    delays = Delays(stt=0.1, llm_first_token=0.2, tts_first_byte=0.15)
    wav = (AUDIO_DIR / "hello.wav").read_bytes()
    async with FakeOpenAI(delays=delays) as fake, _client(fake) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        await anext(aiter(stream))
        first_token = time.monotonic() - started
        await stream.close()
        started = time.monotonic()
        await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", wav))
        transcribed = time.monotonic() - started
        started = time.monotonic()
        async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="Hi.", response_format="pcm"
        ) as response:
            await anext(aiter(response.iter_bytes()))
            first_byte = time.monotonic() - started
    assert first_token >= 0.2
    assert transcribed >= 0.1
    assert first_byte >= 0.15


async def test_pipecat_llm_service_runs_a_tool_call_against_the_fake():
    """Pipecat's real OpenAILLMService streams a tool call, runs the handler and re-asks with its result."""
    booked: list[dict[str, Any]] = []

    async def book_appointment(params: FunctionCallParams) -> None:
        booked.append(dict(params.arguments))
        await params.result_callback({"status": "booked"})

    turns = [AssistantTurn(tool_calls=(BOOK,)), AssistantTurn(text="You're booked for nine.")]
    context = LLMContext(tools=ToolsSchema(standard_tools=[BOOK_TOOL]))
    user, assistant = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()])
        ),
    )
    async with FakeOpenAI(turns, delays=NO_DELAYS) as fake:
        llm = OpenAILLMService(
            api_key="sk-test",
            base_url=fake.base_url,
            settings=OpenAILLMService.Settings(model="gpt-4.1-mini"),
        )
        llm.register_function("book_appointment", book_appointment)
        ask = LLMMessagesAppendFrame(messages=[{"role": "user", "content": "Book me in."}], run_llm=True)
        await run_test(Pipeline([user, llm, assistant]), frames_to_send=[ask, SleepFrame(sleep=0.3)])
        await llm._client.close()  # Pipecat never closes its OpenAI clients.
    assert booked == [BOOK.arguments]
    first, second = fake.chat_requests
    assert first["model"] == "gpt-4.1-mini"
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert first["tools"][0]["function"]["name"] == "book_appointment"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_book_1",
        "content": '{"status": "booked"}',
    }
    messages: list[Any] = context.get_messages()
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[-1]["content"] == "You're booked for nine."


async def test_pipecat_stt_and_tts_services_against_the_fake():
    """Pipecat's real OpenAI STT uploads a WAV segment and reads the transcript; its TTS gets 24 kHz audio."""
    speech = ulaw_to_pcm16(load_ulaw(AUDIO_DIR / "hello.wav")).tobytes()
    async with FakeOpenAI(transcripts=["Hello?"], delays=NO_DELAYS) as fake:
        stt = OpenAISTTService(api_key="sk-test", base_url=fake.base_url)
        heard, _ = await run_test(
            stt,
            frames_to_send=[
                VADUserStartedSpeakingFrame(),
                InputAudioRawFrame(audio=speech, sample_rate=8000, num_channels=1),
                VADUserStoppedSpeakingFrame(),
                SleepFrame(sleep=0.2),
            ],
            pipeline_params=PipelineParams(audio_in_sample_rate=8000),
        )
        tts = OpenAITTSService(api_key="sk-test", base_url=fake.base_url, sample_rate=24_000)
        said, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame("Hello, this is the dentist.")])
        await stt._client.close()  # Pipecat never closes its OpenAI clients.
        await tts._client.close()
    assert [f.text for f in heard if isinstance(f, TranscriptionFrame)] == ["Hello?"]
    upload = fake.transcriptions[0]
    assert upload.sample_rate == 8000 and upload.duration_seconds is not None
    assert upload.duration_seconds > len(speech) / 2 / 8000
    assert fake.speech_requests[0]["response_format"] == "pcm"
    audio = b"".join(f.audio for f in said if isinstance(f, TTSAudioRawFrame))
    assert len(audio) == round(len("Hello, this is the dentist.") * 0.06 * 24_000) * 2


def _pcm_rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples * samples)))


# -- the fake caller against a tiny Twilio endpoint built on Pipecat's parsing ----------------------

REPLY = bytes([0x10, 0x90]) * (FRAME_BYTES // 2) * 20  # 0.4 s of a loud square wave, μ-law


def _twilio_echo_app(log: dict[str, Any]) -> FastAPI:
    """Parses the handshake with Pipecat, decodes every frame with its serializer, replies after speech."""
    app = FastAPI()

    @app.websocket("/ws")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        log["signature"] = websocket.headers.get("x-twilio-signature")
        transport, call = await parse_telephony_websocket(websocket)
        log["transport"], log["call"] = transport, call
        serializer = TwilioFrameSerializer(
            call.stream_id, params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
        )
        await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))  # type: ignore[arg-type]
        voiced = quiet = 0
        async for raw in websocket.iter_text():
            message: dict[str, Any] = json.loads(raw) if raw.startswith("{") else {"event": "garbage"}
            log.setdefault("events", []).append(message["event"])
            if message["event"] == "media":
                log.setdefault("media", []).append(message)
            frame = await serializer.deserialize(raw)
            if isinstance(frame, InputDTMFFrame):
                log["dtmf"] = frame.button.value
            elif isinstance(frame, InputAudioRawFrame):
                loud = ulaw_rms(base64.b64decode(message["media"]["payload"])) > 300
                voiced, quiet = (voiced + 1, 0) if loud else (voiced, quiet + 1)
                if voiced >= 10 and quiet == 5:
                    voiced = 0
                    payload = base64.b64encode(REPLY).decode()
                    await websocket.send_text(json.dumps(_out("media", call.stream_id, payload=payload)))
                    await websocket.send_text(json.dumps(_out("mark", call.stream_id, name="reply")))
            elif message["event"] == "mark":
                log["mark"] = message["mark"]["name"]
                await websocket.send_text(json.dumps({"event": "clear", "streamSid": call.stream_id}))
            elif message["event"] == "stop":
                await websocket.close()
                return

    return app


def _out(event: str, stream_sid: str, **body: str) -> dict[str, Any]:
    key = "media" if event == "media" else "mark"
    return {"event": event, "streamSid": stream_sid, key: body}


async def test_caller_speaks_twilio_media_streams_and_measures_latency():
    """Pipecat parses the caller's handshake and frames; replies, marks, clear and hang-up are seen."""
    log: dict[str, Any] = {}
    async with (
        ServedApp(_twilio_echo_app(log), ws="websockets-sansio") as served,
        FakeTwilioCaller(
            served.url("/ws", scheme="ws"),
            headers={"X-Twilio-Signature": "c2lnbmF0dXJl"},
            custom_parameters={"from_number": "+14155550101", "business": "dental"},
        ) as caller,
    ):
        turn = await caller.say(AUDIO_DIR / "hello.wav")
        latency = await caller.wait_for_agent_audio(5)
        clear = await caller.wait_for_message("clear", timeout_seconds=5)
        await caller.send_dtmf("5")
        await caller.send_raw("not json")
        await caller.stop()
        assert await caller.wait_for_hangup(5) == 1000
    assert log["signature"] == "c2lnbmF0dXJl" and log["transport"] == "twilio"
    assert log["call"].call_id == caller.call_sid and log["call"].stream_id == caller.stream_sid
    assert log["call"].from_number == "+14155550101" and log["call"].body["business"] == "dental"
    assert log["dtmf"] == "5" and log["mark"] == "reply"
    assert log["events"][-3:] == ["dtmf", "garbage", "stop"]
    assert log["events"].count("media") >= caller.media_frames_sent - 5
    silence = base64.b64encode(bytes([ULAW_SILENCE]) * FRAME_BYTES).decode()
    first, second = log["media"][:2]  # after `start`, numbered 1; the lead-in is silence
    assert first == {
        "event": "media",
        "sequenceNumber": "2",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": silence},
        "streamSid": caller.stream_sid,
    }
    assert second["sequenceNumber"] == "3"
    assert (second["media"]["chunk"], second["media"]["timestamp"]) == ("2", "20")
    assert turn.latency == latency and 0 < latency < 1.0
    assert clear.at - caller.received("mark")[0].at >= 0.35  # the mark came back once 0.4 s had played
    assert caller.protocol_errors == []
    assert caller.agent_audio == REPLY


async def test_caller_says_how_late_its_frames_left_when_held_up():
    """A busy load generator shows: frames sent after a hold-up of the caller's loop count as late."""
    async with (
        ServedApp(_twilio_echo_app({}), ws="websockets-sansio") as served,
        FakeTwilioCaller(served.url("/ws", scheme="ws")) as caller,
    ):
        await caller.say(AUDIO_DIR / "hello.wav")
        time.sleep(0.1)  # noqa: ASYNC251 - the caller's loop held up, as by a collection or no free core
        await caller.say(AUDIO_DIR / "hello.wav")
    assert len(caller.send_lateness) >= caller.media_frames_sent
    assert max(caller.send_lateness) >= 0.1 - 0.02  # the hold-up, less the part of a tick it overlapped


async def test_caller_raises_call_ended_once_the_server_hangs_up():
    """`say` and the waits raise `CallEnded` after the server closes, rather than waiting forever."""
    app = FastAPI()

    @app.websocket("/ws")
    async def hang_up_at_once(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        await websocket.close(code=1000)

    served = ServedApp(app, ws="websockets-sansio")
    async with served, FakeTwilioCaller(served.url("/ws", scheme="ws")) as caller:
        assert await caller.wait_for_hangup(5) == 1000
        with pytest.raises(CallEnded):
            await asyncio.wait_for(caller.say(AUDIO_DIR / "yes.wav"), 5)
        with pytest.raises(CallEnded):
            await caller.wait_for_agent_audio(5)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LINES))
def test_fixture_wav_is_8khz_mulaw_speech(name: str):
    """Every listed line is committed as 8 kHz mono μ-law speech, trimmed at both ends."""
    ulaw = load_ulaw(AUDIO_DIR / name)
    seconds = len(ulaw) / 8000
    assert 0.3 < seconds < 5
    assert ulaw_rms(ulaw) > 1_000
    assert ulaw_rms(ulaw[:FRAME_BYTES]) > 100 and ulaw_rms(ulaw[-FRAME_BYTES:]) > 30


@pytest.mark.parametrize("name", sorted(LINES))
async def test_fixture_wav_is_one_utterance_to_pipecats_vad(name: str):
    """Pipecat's Silero VAD (stop_secs 0.2) hears each line as exactly one utterance: one STT upload."""
    vad = SileroVADAnalyzer(sample_rate=8000, params=VADParams(stop_secs=0.2))
    vad.set_sample_rate(8000)
    pcm = bytes(8000) + ulaw_to_pcm16(load_ulaw(AUDIO_DIR / name)).tobytes() + bytes(16000)
    states = [await vad.analyze_audio(pcm[i : i + 320]) for i in range(0, len(pcm), 320)]
    ends = sum(1 for a, b in itertools.pairwise(states) if (a, b) == (VADState.STOPPING, VADState.QUIET))
    assert VADState.SPEAKING in states and ends == 1


def test_fixture_directory_holds_exactly_the_listed_lines():
    """No stray or missing WAVs: `make_audio.LINES` is the list of what is committed."""
    assert sorted(p.name for p in AUDIO_DIR.glob("*.wav")) == sorted(LINES)
