"""One phone call: Twilio Media Streams audio through a Pipecat pipeline, with the booking tools.

    caller ─ Twilio ─▶ input ─▶ STT ─▶ user turns ─▶ CallerTurns ─▶ LLM ─▶ TTS ─▶ output ─▶ SpeechTracker
                       (VAD, gate)                     (session)    (tools)              (what was heard)

The model runs through Pipecat's OpenAI service; the tools are the same `ReceptionistTools` and
`CallSession` the text conversation uses. What the phone adds is timing: a caller's turn reaches the
session before the model can act on it (`CallerTurns`); a read-back counts as spoken only once its
words have been played without interruption (`SpeechTracker`); a transfer or hang-up waits for the
last sentence to be heard; a short filler is said only while a tool is really running.

When a service fails mid-call the caller is not left in silence: Twilio itself says a sentence and
dials the business (or promises a call back), since our own voice may be what failed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.utils import ulaw_to_pcm
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    FunctionCallResultProperties,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.user_bot_latency_observer import LatencyBreakdown, UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner
from starlette.websockets import WebSocket

from agent.businesses import BusinessProfile
from agent.calls import CallStore, EventKind, Outcome
from agent.early_transcript import EarlyTranscriptSTT
from agent.latency_observing import observe_latency
from agent.listening import BatchedSileroVAD, Listening, SharedSmartTurn
from agent.phone_transport import PhoneTransport
from agent.playout import AHEAD_SECS, VOICE_CHUNK_10MS
from agent.prompting import Prompts
from agent.services import Services
from agent.speech_gate import SpeechGate
from agent.tools import TOOLS, ReceptionistTools, ToolResult, tool_schemas
from agent.twilio_rest import TwilioCallError, TwilioCalls
from agent.twiml import say_then_dial, say_then_hang_up
from booking.clock import Clock
from booking.session import CallSession

# Tools that wait on the calendar: only these may earn a filler.
SLOW_TOOLS = frozenset(TOOLS) - {"transfer_to_human", "end_call"}


@dataclass(frozen=True)
class TurnSettings:
    """How the call listens. The numbers are chosen in the phone issue's closing note.

    VAD declares silence after `vad_stop_secs`; Smart-Turn then judges the sentence: complete
    means answer now, incomplete means wait up to `incomplete_wait_secs` for the caller to go on.
    After `early_transcript_secs` of that silence the words so far go to the STT, so the
    transcript is back about when the silence wait ends (shorter: more uploads the caller talks
    past at pauses between words; longer: the transcript comes after the wait).
    """

    vad_stop_secs: float = 0.2
    early_transcript_secs: float = 0.064
    incomplete_wait_secs: float = 1.2
    filler_after_secs: float = 0.8
    idle_secs: float = 8.0
    max_call_secs: float = 15 * 60
    dead_line_secs: float = 5.0


@dataclass
class CallRecorder:
    """Writes the call's transcript, tool calls and latencies, off the path of the call's frames.

    Each event is stamped when it happens and written, in order, by one task of the call: a slow
    write (SQLite shared by several `serve` workers waits for its lock) never holds a caller's
    turn back on its way to the model. A failure to record never ends a call. `close()` writes
    what is still queued; the call's record is complete once it returns.
    """

    store: CallStore
    call_id: int
    clock: Clock

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[tuple[EventKind, dict[str, Any], datetime] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, kind: EventKind, data: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        self._queue.put_nowait((kind, data, self.clock.now()))

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer

    async def _write(self) -> None:
        """Each write takes every event queued by then: under load, one commit for several."""
        while True:
            queued = [await self._queue.get()]
            while not self._queue.empty():
                queued.append(self._queue.get_nowait())
            events = [event for event in queued if event is not None]
            if events:
                try:
                    await self.store.add_events(self.call_id, events)
                except Exception:
                    logger.exception("could not record {} event(s): {}", len(events), [e[0] for e in events])
            if queued[-1] is None:
                return


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass
class _ReadBack:
    proposal_id: str
    text: str
    heard: str = ""


class SpeechTracker(FrameProcessor):
    """Sits after the output transport and learns what the caller actually heard.

    Text frames pass here as their audio is played. A read-back counts as spoken once all its words
    have passed with no interruption in between; an interruption (the caller barging in) cancels
    it, and the runtime reads it again when the model next tries to confirm. Actions waiting for
    silence (transfer, hang-up) run when the bot stops speaking, and the audio sent ahead of
    playback (`agent.playout`) has been heard.
    """

    def __init__(self, session: CallSession, record: CallRecorder) -> None:
        super().__init__()
        self._session = session
        self._record = record
        self._read_back: _ReadBack | None = None
        self._after_speech: list[Callable[[], Awaitable[None]]] = []
        self._spoken: list[str] = []

    def expect_read_back(self, proposal_id: str, text: str) -> None:
        self._read_back = _ReadBack(proposal_id, _words(text))

    def after_speech(self, action: Callable[[], Awaitable[None]]) -> None:
        self._after_speech.append(action)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, TTSTextFrame):
                self._heard(frame.text)
            elif isinstance(frame, InterruptionFrame):
                self._interrupted()
            elif isinstance(frame, BotStoppedSpeakingFrame):
                await self._stopped()
        await self.push_frame(frame, direction)

    def _heard(self, text: str) -> None:
        self._spoken.append(text)
        read_back = self._read_back
        if read_back is None:
            return
        read_back.heard = f"{read_back.heard} {_words(text)}".strip()
        if read_back.text and read_back.text in read_back.heard:
            self._session.read_back_spoken(read_back.proposal_id)
            self._read_back = None

    def _interrupted(self) -> None:
        if self._read_back is not None:
            self._read_back.heard = ""

    async def _stopped(self) -> None:
        if self._spoken:
            await self._record("agent", {"text": " ".join(self._spoken)})
            self._spoken = []
        actions, self._after_speech = self._after_speech, []
        if actions:
            await asyncio.sleep(AHEAD_SECS)
        for action in actions:
            await action()


class CallerTurns(FrameProcessor):
    """Hands each finished caller turn to the session before the model can act on it."""

    def __init__(self, session: CallSession, record: CallRecorder) -> None:
        super().__init__()
        self._session = session
        self._record = record
        self._seen = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            messages: list[Any] = list(frame.context.get_messages())
            for message in messages[self._seen :]:
                content = message.get("content") if isinstance(message, dict) else None
                if message.get("role") == "user" and isinstance(content, str):
                    await self._session.caller_said(content)
                    await self._record("caller", {"text": content})
            self._seen = len(messages)
        await self.push_frame(frame, direction)


# Words a sentence does not end on: the caller is still going.
_CONTINUES = frozenset(
    {"and", "but", "so", "or", "um", "uh", "er", "because", "like", "the", "a", "an", "to", "at"}
    | {"with", "for", "of", "my", "your", "is", "was", "if", "then"}
)


def sounds_finished(text: str) -> bool:
    """The transcript reads as a finished sentence: terminal punctuation, no dangling word."""
    stripped = text.strip()
    if not stripped or stripped.endswith(("...", "…", ",")) or stripped[-1] not in ".?!":
        return False
    words = re.findall(r"[a-z']+", stripped.lower())
    return bool(words) and words[-1] not in _CONTINUES


class TranscriptFirstTurnStop(TurnAnalyzerUserTurnStopStrategy):
    """The transcript first; Smart-Turn only when the words leave the turn open.

    Pipecat runs Smart-Turn the moment the VAD hears silence: ~85 ms of CPU per pause, which at
    tens of calls queues up, and whose verdict the transcript overrules anyway once it reads as a
    finished sentence ("Yes, please."). So when the caller falls silent this waits for the
    transcript: a finished sentence ends the turn at once with no model run; anything else
    ("...and", "um.", no final punctuation) asks Smart-Turn, whose "incomplete" keeps the turn
    open for `incomplete_wait_secs`. A caller who starts again first keeps the turn, as before.
    (Overrides the 1.14 strategy's VAD-stop handling; pinned by the 1.14.x bound.)
    """

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._vad_user_speaking = False
        self._stop_secs = frame.stop_secs
        self._vad_stopped = True
        if self._text:  # a streaming STT may have the words already
            await self._judge()
        # Pipecat's safety net: a transcript that is not marked final is taken once the STT's
        # p99 latency has passed since the caller stopped.
        timeout = max(0.0, frame.timestamp - frame.stop_secs + self._stt_timeout - time.time())
        self._timeout_task = self.task_manager.create_task(
            self._timeout_handler(timeout), f"{self}::_timeout_handler"
        )
        await self._maybe_trigger_user_turn_stopped()  # type: ignore[no-untyped-call]

    async def _handle_transcription(self, frame: TranscriptionFrame) -> None:
        await super()._handle_transcription(frame)
        if self._vad_stopped and not self._vad_user_speaking and not self._turn_complete:
            await self._judge()
            await self._maybe_trigger_user_turn_stopped()  # type: ignore[no-untyped-call]

    async def _judge(self) -> None:
        if sounds_finished(self._text):
            self._turn_complete = True
            return
        state, prediction = await self._turn_analyzer.analyze_end_of_turn()
        await self._handle_prediction_result(prediction)
        self._turn_complete = state == EndOfTurnState.COMPLETE


class CallerAudioStops(LLMUserAggregator):
    """Pipecat's user aggregator, keeping the caller's audio to itself.

    The aggregator is the last processor that listens to the caller's audio (Smart-Turn), yet
    Pipecat passes every frame on through the model, the voice, the output and the trackers,
    which ignore it. Ending it here took a quarter of the server's CPU per call (bench, 10 calls).
    """

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, InputAudioRawFrame):
            return
        await super().push_frame(frame, direction)


# Twilio sends 20 ms of audio a message; the pipeline takes it this many messages to a frame.
MESSAGES_PER_AUDIO_FRAME = 2


class PhoneSerializer(TwilioFrameSerializer):
    """Twilio's serializer that survives garbage frames and does not hang up a transferred call.

    It also hands the caller's audio on in 40 ms frames: every frame costs as much at each step
    (the VAD's call, the gate, each hop after it) for 20 ms of audio as for 40 ms, and the input
    runs all call long. A pair of media messages is decoded as one (Pipecat's μ-law conversion,
    one frame); other events are Pipecat's. The VAD hears each pair up to 20 ms later.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.malformed = 0
        self.handed_over = False
        self.last_message_at = time.monotonic()
        self._held: list[bytes] = []

    async def deserialize(self, data: str | bytes) -> Frame | None:
        self.last_message_at = time.monotonic()
        try:
            message = json.loads(data)
            if message.get("event") != "media":
                return await super().deserialize(data)
            self._held.append(base64.b64decode(message["media"]["payload"], validate=True))
            if len(self._held) < MESSAGES_PER_AUDIO_FRAME:
                return None
            ulaw, self._held = b"".join(self._held), []
            pcm = await ulaw_to_pcm(ulaw, self._twilio_sample_rate, self._sample_rate, self._input_resampler)
        except Exception:
            self.malformed += 1
            logger.warning("skipped a malformed media stream message ({} so far)", self.malformed)
            return None
        if not pcm:
            return None
        return InputAudioRawFrame(audio=pcm, sample_rate=self._sample_rate, num_channels=1)

    async def _hang_up_call(self) -> None:
        if not self.handed_over:
            await super()._hang_up_call()  # type: ignore[no-untyped-call]


def pipecat_tools() -> ToolsSchema:
    """The booking tools in Pipecat's form, for a call's LLM context."""
    return ToolsSchema(
        standard_tools=[
            FunctionSchema(
                name=s["function"]["name"],
                description=s["function"]["description"],
                properties=s["function"]["parameters"].get("properties", {}),
                required=s["function"]["parameters"].get("required", []),
            )
            for s in tool_schemas()
        ]
    )


@dataclass
class PhoneCall:
    """Everything one call needs; `run()` returns when the call is over, with its outcome."""

    websocket: WebSocket
    call_sid: str
    stream_sid: str
    business: BusinessProfile
    session: CallSession
    tools: ReceptionistTools
    prompts: Prompts
    services: Services
    twilio: TwilioCalls
    serializer: PhoneSerializer
    record: CallRecorder
    listening: Listening
    greeting: str
    turn: TurnSettings = field(default_factory=TurnSettings)
    outcome: Outcome = "no_booking"

    def __post_init__(self) -> None:
        self._tracker = SpeechTracker(self.session, self.record)
        self._worker: PipelineWorker | None = None
        self._idle_prompts = 0
        self._failed_over = False

    async def run(self) -> Outcome:
        """Run the call to its end. If it cannot even start, the caller is handed to a person."""
        try:
            vad, smart_turn = await self.listening.for_call(
                self.turn.vad_stop_secs, self.turn.incomplete_wait_secs
            )
            worker = self._build(vad, smart_turn)
        except Exception:
            logger.exception("the call pipeline could not be built")
            await self._fail_over()
            return self.outcome
        runner = WorkerRunner(handle_sigint=False, force_gc=False)
        await runner.add_workers(worker)
        watchdog = asyncio.create_task(self._watch_line(worker))
        try:
            await runner.run()
        finally:
            watchdog.cancel()
            await self.session.close()
            await self.record.close()
        return self.outcome

    async def _watch_line(self, worker: PipelineWorker) -> None:
        """Twilio streams every 20 ms, silence included: a quiet socket is a dead line."""
        while True:
            await asyncio.sleep(1.0)
            if time.monotonic() - self.serializer.last_message_at > self.turn.dead_line_secs:
                logger.info("no media for {} s; ending the call", self.turn.dead_line_secs)
                await worker.cancel()
                return

    # -- assembly --------------------------------------------------------------------------------

    def _build(self, vad: BatchedSileroVAD, turn_analyzer: SharedSmartTurn) -> PipelineWorker:
        stt = self.services.stt
        early = isinstance(stt, EarlyTranscriptSTT)
        gate = SpeechGate(
            vad,
            pass_quiet=not isinstance(stt, SegmentedSTTService),
            pause_after_secs=self.turn.early_transcript_secs if early else None,
        )
        transport = PhoneTransport(
            self.websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=self.serializer,
                session_timeout=self.turn.max_call_secs,
                audio_out_end_silence_secs=1,
                audio_out_10ms_chunks=VOICE_CHUNK_10MS,
            ),
            gate,
        )
        context = LLMContext(tools=pipecat_tools())
        user_aggregator = CallerAudioStops(
            context,
            params=LLMUserAggregatorParams(
                user_turn_strategies=UserTurnStrategies(
                    stop=[TranscriptFirstTurnStop(turn_analyzer=turn_analyzer)]
                ),
                user_idle_timeout=self.turn.idle_secs,
            ),
        )
        assistant_aggregator = LLMAssistantAggregator(context)
        llm = self.services.llm
        for name in TOOLS:
            llm.register_function(name, self._handle_tool)
        pipeline = Pipeline(
            [
                transport.input(),
                stt,
                user_aggregator,
                CallerTurns(self.session, self.record),
                llm,
                self.services.tts,
                transport.output(),
                self._tracker,
                assistant_aggregator,
            ]
        )
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000, enable_metrics=True),
            # Pipecat's observers see every frame at every hop; the call's own watchdogs (dead
            # line, caller idle, length cap) already end a stuck call, so its idle and turn
            # trackers would only add to the per-frame cost.
            idle_timeout_secs=None,
            enable_turn_tracking=False,
            enable_rtvi=False,
        )
        latency = UserBotLatencyObserver()
        observe_latency(worker, latency)
        self._worker = worker

        async def _latency(_: Any, breakdown: LatencyBreakdown) -> None:
            # The whole breakdown (turn detection, each service's first byte, function calls):
            # what a slow turn is looked into with, and what `bench` reads from any process.
            await self.record(
                "turn_latency",
                {
                    "ms": round(breakdown.total_secs * 1000, 1),
                    "from": breakdown.measured_from,
                    "breakdown": breakdown.model_dump(mode="json"),
                },
            )

        latency.add_event_handler("on_latency_breakdown", _latency)

        async def _connected(_: Any, __: Any) -> None:
            await worker.queue_frames([TTSSpeakFrame(self.greeting)])

        transport.add_event_handler("on_client_connected", _connected)

        async def _disconnected(_: Any, __: Any) -> None:
            await worker.cancel()

        transport.add_event_handler("on_client_disconnected", _disconnected)

        async def _too_long(_: Any, __: Any) -> None:
            await self._say_and_end(
                self.prompts.phrases.say("call.too_long", business_name=self.business.name)
            )

        transport.add_event_handler("on_session_timeout", _too_long)

        async def _idle(_: Any) -> None:
            self._idle_prompts += 1
            if self._idle_prompts == 1:
                await worker.queue_frames([TTSSpeakFrame(self.prompts.phrases.say("call.still_there"))])
            else:
                await self._say_and_end(
                    self.prompts.phrases.say("call.silence_goodbye", business_name=self.business.name)
                )

        user_aggregator.add_event_handler("on_user_turn_idle", _idle)

        async def _speaking(_: Any, __: Any) -> None:
            self._idle_prompts = 0

        user_aggregator.add_event_handler("on_user_turn_started", _speaking)

        async def _error(_: Any, frame: ErrorFrame) -> None:
            logger.warning("a service failed mid-call: {}", frame.error)
            await self._fail_over()

        worker.add_event_handler("on_pipeline_error", _error)

        return worker

    # -- tools -----------------------------------------------------------------------------------

    async def _handle_tool(self, params: FunctionCallParams) -> None:
        name = params.function_name
        arguments = dict(params.arguments)
        filler = asyncio.create_task(self._filler()) if name in SLOW_TOOLS else None
        try:
            result = await self.tools.call(name, arguments)
        finally:
            if filler is not None:
                filler.cancel()
        await self.record("tool_call", {"name": name, "arguments": arguments})
        await self.record("tool_result", {"name": name, "result": result.payload})
        self._note_outcome(name, result)
        if result.speak is None:
            await params.result_callback(result.payload)
            return
        if result.proposal_id is not None:
            self._tracker.expect_read_back(result.proposal_id, result.speak)
        if result.action == "hang_up":
            self._tracker.after_speech(self._hang_up)
        elif result.action == "transfer":
            self._tracker.after_speech(self._transfer)
        await params.llm.push_frame(TTSSpeakFrame(result.speak))
        await params.result_callback(result.payload, properties=FunctionCallResultProperties(run_llm=False))

    async def _filler(self) -> None:
        await asyncio.sleep(self.turn.filler_after_secs)
        if self._worker is not None:
            await self._worker.queue_frames(
                [TTSSpeakFrame(self.prompts.phrases.say("call.filler"), append_to_context=False)]
            )

    def _note_outcome(self, name: str, result: ToolResult) -> None:
        status = result.payload.get("status")
        if name == "confirm_proposal" and status in ("booked", "pending", "rescheduled", "cancelled"):
            self.outcome = status
        elif name == "transfer_to_human" and status == "transferring":
            self.outcome = "transferred"

    # -- ending ----------------------------------------------------------------------------------

    async def _say_and_end(self, sentence: str) -> None:
        self._tracker.after_speech(self._hang_up)
        if self._worker is not None:
            await self._worker.queue_frames([TTSSpeakFrame(sentence, append_to_context=False)])

    async def _hang_up(self) -> None:
        if self._worker is not None:
            await self._worker.queue_frame(EndFrame())

    async def _transfer(self) -> None:
        number = self.business.transfer_number
        if number is None:
            return
        self.serializer.handed_over = True
        try:
            await self.twilio.redirect(self.call_sid, say_then_dial(None, number))
        except TwilioCallError:
            self.serializer.handed_over = False
            logger.warning("transfer failed; ending the call politely")
            await self._say_and_end(
                self.prompts.phrases.say("call.no_transfer", business_name=self.business.name)
            )

    async def _fail_over(self) -> None:
        """Our services failed: Twilio says a sentence in its own voice and dials the office."""
        if self._failed_over:
            return
        self._failed_over = True
        phrases = self.prompts.phrases
        number = self.business.transfer_number
        if number is not None:
            twiml = say_then_dial(
                phrases.say("call.service_trouble", business_name=self.business.name), number
            )
            self.outcome = "transferred"
        else:
            twiml = say_then_hang_up(
                phrases.say("call.service_trouble_callback", business_name=self.business.name)
            )
            self.outcome = "failed"
        self.serializer.handed_over = True
        try:
            await self.twilio.redirect(self.call_sid, twiml)
        except TwilioCallError:
            self.serializer.handed_over = False
            self.outcome = "failed"
        if self._worker is not None:
            await self._worker.cancel()
        else:
            await self.websocket.close()
