"""When the transcript says the caller has finished, the agent neither waits out nor even asks Smart-Turn."""

from __future__ import annotations

import asyncio

import pytest
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, BaseTurnParams, EndOfTurnState
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import (
    Frame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import MetricsData
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager

from agent.phone import TranscriptFirstTurnStop, sounds_finished


@pytest.mark.parametrize(
    "text",
    [
        "Yes, please.",
        "My name is Jane Doe, that's jane at example dot com.",
        "Can I talk to a real person?",
        "That's all, thank you. Goodbye!",
        "Tuesday.",
    ],
)
def test_finished_sentences(text: str) -> None:
    """A transcript ending a sentence ends the caller's turn."""
    assert sounds_finished(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a cleaning and",
        "My email is...",
        "So I was thinking, um.",
        "Next Tuesday at",
        "",
        "Could you book me for the",
        "I need it for my…",
        "well, I guess,",
    ],
)
def test_unfinished_thoughts_keep_the_turn_open(text: str) -> None:
    """A dangling word, a trailing ellipsis or no final punctuation means the caller is still going."""
    assert not sounds_finished(text)


class CountingAnalyzer(BaseTurnAnalyzer):
    """A turn model that answers `verdict` and counts how often it was asked."""

    def __init__(self, verdict: EndOfTurnState) -> None:
        super().__init__(sample_rate=8000)
        self.verdict = verdict
        self.asked = 0

    @property
    def speech_triggered(self) -> bool:
        return True

    @property
    def params(self) -> BaseTurnParams:
        return BaseTurnParams()

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        return EndOfTurnState.INCOMPLETE

    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        self.asked += 1
        return self.verdict, None

    def clear(self) -> None:
        pass


async def _turn(verdict: EndOfTurnState, *frames: Frame) -> tuple[bool, int]:
    """Feed the strategy one caller turn; whether it ended the turn, and how often Smart-Turn ran."""
    analyzer = CountingAnalyzer(verdict)
    strategy = TranscriptFirstTurnStop(turn_analyzer=analyzer)
    task_manager = TaskManager(loop=asyncio.get_running_loop())
    # A strategy needs no pipeline worker; the setup's dataclass types it as required.
    setup = FrameProcessorSetup(clock=SystemClock(), task_manager=task_manager, pipeline_worker=None)  # type: ignore[arg-type,no-untyped-call]
    await strategy.setup(setup)
    stopped: list[bool] = []

    async def on_stopped(*_: object, **__: object) -> None:
        stopped.append(True)

    strategy.add_event_handler("on_user_turn_stopped", on_stopped)
    for frame in (VADUserStartedSpeakingFrame(start_secs=0.2), *frames):
        await strategy.process_frame(frame)
    await strategy.cleanup()  # type: ignore[no-untyped-call]
    return bool(stopped), analyzer.asked


def _said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "caller", "2026-11-23T09:00:00Z", finalized=True)


def _silent() -> VADUserStoppedSpeakingFrame:
    return VADUserStoppedSpeakingFrame(stop_secs=0.2)


async def test_a_finished_sentence_ends_the_turn_without_running_smart_turn() -> None:
    assert await _turn(EndOfTurnState.INCOMPLETE, _silent(), _said("Yes, please.")) == (True, 0)


async def test_an_open_sentence_asks_smart_turn_which_may_keep_the_turn_open() -> None:
    assert await _turn(EndOfTurnState.INCOMPLETE, _silent(), _said("Next Tuesday at")) == (False, 1)
    assert await _turn(EndOfTurnState.COMPLETE, _silent(), _said("Next Tuesday at")) == (True, 1)


async def test_a_caller_who_starts_again_before_the_transcript_keeps_the_turn() -> None:
    again = VADUserStartedSpeakingFrame(start_secs=0.2)
    assert await _turn(EndOfTurnState.COMPLETE, _silent(), again, _said("I'd like a cleaning.")) == (False, 0)
