"""Transcription starts at the caller's pause, and a caller who goes on loses no words.

Real espeak speech is streamed at its own pace (20 ms frames) through the call's speech gate (its
VAD), the STT and the user aggregator, against the fake OpenAI server: what a phone call's front
half does.
"""

from __future__ import annotations

from pathlib import Path

import openai
from pipecat.frames.frames import Frame, InputAudioRawFrame, LLMContextFrame, VADUserStoppedSpeakingFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transcriptions.language import Language
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from agent.early_transcript import EarlyTranscriptSTT
from agent.listening import Listening
from agent.loopback.openai_api import Delays, FakeOpenAI
from agent.loopback.twilio_caller import load_ulaw, ulaw_to_pcm16
from agent.phone import CallerAudioStops, TranscriptFirstTurnStop, TurnSettings
from agent.speech_gate import SpeechGate

AUDIO = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
FRAME_BYTES = 320  # 20 ms of 16-bit audio at 8 kHz
FRAME_SECS = 0.02


class UploadsAtTurnEnd(FrameProcessor):
    """Notes how many uploads the STT server had received when the VAD ended each turn."""

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__()
        self._fake = fake
        self.uploads: list[int] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            self.uploads.append(len(self._fake.transcriptions))
        await self.push_frame(frame, direction)


class Gated(FrameProcessor):
    """What the phone input does with the gate (`DirectInput`), as a processor a test pipeline can start."""

    def __init__(self, gate: SpeechGate) -> None:
        super().__init__()
        self._gate = gate

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as Pipecat's
        await super().setup(setup)
        self._gate.start(setup.audio_in_sample_rate)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.UPSTREAM:
            self._gate.note(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InputAudioRawFrame):
            for passed in await self._gate.hear(frame):
                await self.push_frame(passed)
        else:
            await self.push_frame(frame, direction)


def _speech(name: str) -> bytes:
    return ulaw_to_pcm16(load_ulaw(AUDIO / name)).tobytes()


def _streamed(pcm: bytes) -> list[Frame]:
    """The audio as Twilio brings it: a 20 ms frame every 20 ms."""
    pcm += b"\0" * (-len(pcm) % FRAME_BYTES)
    frames: list[Frame] = []
    for start in range(0, len(pcm), FRAME_BYTES):
        frames.append(InputAudioRawFrame(pcm[start : start + FRAME_BYTES], 8000, 1))
        frames.append(SleepFrame(FRAME_SECS))
    return frames


async def _hear(pcm: bytes, line: str, failing_uploads: int = 0) -> tuple[FakeOpenAI, list[int], list[str]]:
    """Stream `pcm` then half a second of silence; the uploads at turn end and the turns heard."""
    async with (
        FakeOpenAI(transcripts=[line], delays=Delays(stt=0.15)) as fake,
        openai.DefaultAsyncHttpxClient() as http_client,
    ):
        if failing_uploads:
            fake.fail_next(failing_uploads, status=400, service="stt")  # 400: the SDK does not retry
        stt = EarlyTranscriptSTT(
            api_key="sk-test",
            base_url=fake.base_url,
            http_client=http_client,
            settings=EarlyTranscriptSTT.Settings(model="gpt-4o-transcribe", language=Language.EN),
        )
        vad, smart_turn = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
        gate = SpeechGate(vad, pass_quiet=False, pause_after_secs=TurnSettings().early_transcript_secs)
        aggregator = CallerAudioStops(
            LLMContext(),
            params=LLMUserAggregatorParams(
                user_turn_strategies=UserTurnStrategies(
                    stop=[TranscriptFirstTurnStop(turn_analyzer=smart_turn)]
                ),
            ),
        )
        probe = UploadsAtTurnEnd(fake)
        down, _ = await run_test(
            Pipeline([Gated(gate), stt, aggregator, probe]),
            frames_to_send=_streamed(pcm + bytes(8000)),
            pipeline_params=PipelineParams(audio_in_sample_rate=8000),
        )
    turns = [
        str(message["content"])
        for frame in down
        if isinstance(frame, LLMContextFrame)
        for message in frame.context.get_messages()
        if isinstance(message, dict) and message.get("role") == "user"
    ]
    return fake, probe.uploads, turns


async def test_the_words_are_asked_for_before_the_silence_wait_ends() -> None:
    line = "I'd like to book a cleaning for next Tuesday afternoon."
    fake, uploads_at_turn_end, turns = await _hear(_speech("tuesday_afternoon.wav"), line)
    assert uploads_at_turn_end == [1]  # already uploaded when the turn ended: no upload after it
    assert len(fake.transcriptions) == 1
    assert turns == [line]


async def test_a_caller_who_goes_on_after_a_pause_loses_no_words() -> None:
    line = "Yes. No, sorry."
    pause = bytes(2 * 1200)  # 0.15 s: a pause, shorter than the 0.2 s that ends a turn
    fake, uploads_at_turn_end, turns = await _hear(_speech("yes.wav") + pause + _speech("no.wav"), line)
    *early, whole = [upload.duration_seconds or 0.0 for upload in fake.transcriptions]
    assert early and all(whole > seconds + 0.3 for seconds in early)  # only the last carries "no"
    assert uploads_at_turn_end == [len(fake.transcriptions)]
    assert turns == [line]


async def test_a_failed_early_upload_is_tried_again_with_the_whole_segment() -> None:
    line = "I'd like to book a cleaning for next Tuesday afternoon."
    fake, _, turns = await _hear(_speech("tuesday_afternoon.wav"), line, failing_uploads=1)
    assert [upload.transcript for upload in fake.transcriptions] == [None, line]
    assert turns == [line]
