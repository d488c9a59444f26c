"""The baseline the benchmark compares our phone path with: a bare Pipecat pipeline, built from Pipecat alone.

"Is the runtime's own share close to zero?" needs something to compare with that differs only in
what the runtime adds. So this is the same shape as `agent.phone.PhoneCall` — the same FastAPI
websocket transport and Twilio serializer, Silero VAD (stop 0.2 s) and Smart-Turn v3 (1.2 s when
incomplete) in the user aggregator, Pipecat's OpenAI STT/LLM/TTS on one shared HTTP client against
the same `FakeOpenAI`, 8 kHz in and out, metrics on — with no tools, no call session, no call
record, no signature checks and no speech tracker. The greeting is queued on connect, as ours does.

`bare_line()` serves it in the current event loop (like `loopback_line`), so callers, server and
pipeline share one loop exactly as in the measurement of our own path.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import openai
import uvicorn
from fastapi import FastAPI, WebSocket
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.observers.user_bot_latency_observer import LatencyBreakdown, UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.transcriptions.language import Language
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from agent.llm import PlannedTurn
from agent.loopback.line import ReadyServer
from agent.loopback.openai_api import Delays, FakeOpenAI
from agent.loopback.twilio_caller import FakeTwilioCaller
from agent.media_socket import MediaStreamProtocol
from agent.phone import TurnSettings
from agent.server import MAX_MESSAGE_BYTES
from agent.services import SERVICE_TIMEOUT, TTS_SAMPLE_RATE

GREETING = "Bench Dental, how can I help?"

BreakdownSink = Callable[[str, LatencyBreakdown], None]


def bare_pipeline(
    websocket: WebSocket,
    stream_sid: str,
    base_url: str,
    http_client: Any,
    turn: TurnSettings,
    on_breakdown: Callable[[LatencyBreakdown], None],
) -> PipelineWorker:
    """One call's bare pipeline: transport, STT, user aggregator, LLM, TTS, output, assistant aggregator."""
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=TwilioFrameSerializer(
                stream_sid, params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
            ),
            audio_out_end_silence_secs=1,
        ),
    )
    stt = OpenAISTTService(
        api_key="sk-test",
        base_url=base_url,
        http_client=http_client,
        settings=OpenAISTTService.Settings(model="gpt-4o-transcribe", language=Language.EN),
    )
    llm = OpenAILLMService(
        api_key="sk-test",
        base_url=base_url,
        settings=OpenAILLMService.Settings(model="gpt-4.1-mini", system_instruction="Be brief."),
    )
    tts = OpenAITTSService(
        api_key="sk-test",
        base_url=base_url,
        http_client=http_client,
        sample_rate=TTS_SAMPLE_RATE,
        settings=OpenAITTSService.Settings(model="gpt-4o-mini-tts", voice="alloy"),
    )
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=turn.vad_stop_secs)),
            user_turn_strategies=UserTurnStrategies(
                stop=[
                    TurnAnalyzerUserTurnStopStrategy(
                        turn_analyzer=LocalSmartTurnAnalyzerV3(
                            params=SmartTurnParams(stop_secs=turn.incomplete_wait_secs)
                        )
                    )
                ]
            ),
        ),
    )
    pipeline = Pipeline(
        [transport.input(), stt, user_aggregator, llm, tts, transport.output(), assistant_aggregator]
    )
    latency = UserBotLatencyObserver()
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000, enable_metrics=True),
        observers=[latency],
        enable_rtvi=False,
    )

    async def _breakdown(_: Any, breakdown: LatencyBreakdown) -> None:
        on_breakdown(breakdown)

    latency.add_event_handler("on_latency_breakdown", _breakdown)

    async def _connected(_: Any, __: Any) -> None:
        await worker.queue_frames([TTSSpeakFrame(GREETING)])

    async def _disconnected(_: Any, __: Any) -> None:
        await worker.cancel()

    transport.add_event_handler("on_client_connected", _connected)
    transport.add_event_handler("on_client_disconnected", _disconnected)
    return worker


async def _read_stream_sid(websocket: WebSocket) -> tuple[str, str]:
    """Twilio's `start` message: (streamSid, callSid)."""
    while True:
        message = json.loads(await websocket.receive_text())
        if message.get("event") == "start":
            start = message.get("start") or {}
            return str(start.get("streamSid") or message["streamSid"]), str(start.get("callSid", ""))


def create_bare_app(base_url: str, turn: TurnSettings, on_breakdown: BreakdownSink) -> FastAPI:
    """`WS /media`: one bare pipeline per stream; `on_breakdown(call_sid, breakdown)` per answered turn."""
    app = FastAPI()
    http_client = openai.DefaultAsyncHttpxClient(timeout=SERVICE_TIMEOUT)

    @app.websocket("/media")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        stream_sid, call_sid = await _read_stream_sid(websocket)
        worker = bare_pipeline(
            websocket, stream_sid, base_url, http_client, turn, lambda b: on_breakdown(call_sid, b)
        )
        runner = WorkerRunner(handle_sigint=False, force_gc=False)
        await runner.add_workers(worker)
        await runner.run()

    return app


@dataclass
class BareLine:
    """The bare server on 127.0.0.1 with its fake OpenAI; `caller()` opens a media stream to it."""

    port: int
    openai: FakeOpenAI
    breakdowns: dict[str, list[LatencyBreakdown]] = field(default_factory=dict)

    def caller(self, call_sid: str, **kwargs: Any) -> FakeTwilioCaller:
        return FakeTwilioCaller(f"ws://127.0.0.1:{self.port}/media", call_sid=call_sid, **kwargs)


@asynccontextmanager
async def bare_line(
    turns: list[PlannedTurn], transcripts: list[str], turn: TurnSettings, delays: Delays
) -> AsyncIterator[BareLine]:
    """Serve the bare app in the current loop, beside a `FakeOpenAI` on its own thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    async with FakeOpenAI(turns, transcripts, delays=delays) as fake:
        line = BareLine(sock.getsockname()[1], fake)

        def sink(call_sid: str, breakdown: LatencyBreakdown) -> None:
            line.breakdowns.setdefault(call_sid, []).append(breakdown)

        app = create_bare_app(fake.base_url, turn, sink)
        config = uvicorn.Config(
            app, lifespan="off", ws=MediaStreamProtocol, log_config=None, ws_max_size=MAX_MESSAGE_BYTES
        )
        server = ReadyServer(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await asyncio.wait_for(server.ready.wait(), timeout=10)
            yield line
        finally:
            server.should_exit = True
            await serving
