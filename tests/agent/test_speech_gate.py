"""The gate passes on what a caller's turn needs, in order, and keeps the quiet line to itself.

Real espeak speech between stretches of silence goes through the call's VAD (the shared batched
Silero) as Twilio's 40 ms frames would; the turn's opening and release are the user aggregator's
upstream frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from agent.listening import Listening
from agent.loopback.twilio_caller import load_ulaw, ulaw_to_pcm16
from agent.speech_gate import PRE_ROLL_SECS, CallerPausedFrame, CallerResumedFrame, SpeechGate

pytestmark = pytest.mark.usefixtures("lone_caller_silero")

AUDIO = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
RATE = 8000
FRAME_BYTES = 640  # 40 ms of 16-bit audio: two of Twilio's messages, as the serializer hands them over


def _silence(secs: float) -> bytes:
    return bytes(int(secs * RATE) * 2)


def _speech(name: str) -> bytes:
    pcm = ulaw_to_pcm16(load_ulaw(AUDIO / name)).tobytes()
    return pcm + bytes(-len(pcm) % FRAME_BYTES)


async def _gate(*, pass_quiet: bool = False, pause_after_secs: float | None = None) -> SpeechGate:
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    gate = SpeechGate(vad, pass_quiet=pass_quiet, pause_after_secs=pause_after_secs)
    gate.start(RATE)
    return gate


async def _hear(gate: SpeechGate, pcm: bytes) -> list[Frame]:
    """Stream `pcm`, opening the turn when the VAD starts, as the user aggregator would answer it."""
    passed: list[Frame] = []
    for start in range(0, len(pcm), FRAME_BYTES):
        heard = await gate.hear(InputAudioRawFrame(pcm[start : start + FRAME_BYTES], RATE, 1))
        if any(isinstance(frame, VADUserStartedSpeakingFrame) for frame in heard):
            gate.note(UserStartedSpeakingFrame())
        passed.extend(heard)
    return passed


def _audio(frames: list[Frame]) -> bytes:
    return b"".join(frame.audio for frame in frames if isinstance(frame, InputAudioRawFrame))


def _kinds(frames: list[Frame]) -> list[str]:
    return [type(frame).__name__ for frame in frames if not isinstance(frame, InputAudioRawFrame)]


async def test_a_quiet_line_sends_nothing_down_the_pipeline() -> None:
    gate = await _gate()
    assert await _hear(gate, _silence(3.0)) == []


async def test_a_turn_arrives_whole_with_the_second_before_it_and_the_verdicts_after_their_audio() -> None:
    gate = await _gate()
    speech, after = _speech("book_cleaning.wav"), _silence(0.6)
    line = _silence(3.0) + speech + after
    passed = await _hear(gate, line)
    audio = _audio(passed)
    assert audio == line[-len(audio) :]  # contiguous to the end of the turn: no gap, no repeat
    assert _kinds(passed) == ["VADUserStartedSpeakingFrame", "VADUserStoppedSpeakingFrame"]
    started = next(i for i, frame in enumerate(passed) if isinstance(frame, VADUserStartedSpeakingFrame))
    # The frame the VAD started on, after the second before it: the STT's pre-roll for the VAD's lag.
    assert len(_audio(passed[:started])) == int(PRE_ROLL_SECS * RATE) * 2 + FRAME_BYTES
    assert len(audio) > len(speech) + len(after) + RATE  # speech onset is well inside the pre-roll


async def test_the_quiet_after_a_turn_passes_until_the_turn_is_released_then_stops() -> None:
    gate = await _gate()
    passed = await _hear(gate, _speech("yes.wav") + _silence(1.0))
    stopped = next(i for i, frame in enumerate(passed) if isinstance(frame, VADUserStoppedSpeakingFrame))
    assert len(_audio(passed[stopped:])) > 0  # Smart-Turn still counts the silence of an open turn
    gate.note(UserStoppedSpeakingFrame())
    assert await _hear(gate, _silence(2.0)) == []


async def test_speech_again_after_a_released_turn_brings_only_the_audio_not_yet_sent() -> None:
    gate = await _gate()
    first = _speech("yes.wav") + _silence(0.6)
    await _hear(gate, first)
    gate.note(UserStoppedSpeakingFrame())
    gap, again = _silence(0.4), _speech("no.wav") + _silence(0.4)
    passed = await _hear(gate, gap + again)
    assert _audio(passed) == gap + again  # under a second since the last frame sent: nothing lost or doubled


async def test_a_streaming_stt_hears_the_whole_line() -> None:
    gate = await _gate(pass_quiet=True)
    line = _silence(2.0) + _speech("yes.wav") + _silence(2.0)
    passed = await _hear(gate, line)
    assert _audio(passed) == line
    assert _kinds(passed) == ["VADUserStartedSpeakingFrame", "VADUserStoppedSpeakingFrame"]


async def test_a_pause_is_marked_after_the_audio_before_it_and_a_resumption_after_that() -> None:
    gate = await _gate(pause_after_secs=0.064)
    pause = _silence(0.16)  # a pause, shorter than the 0.2 s that ends a turn
    passed = await _hear(gate, _speech("yes.wav") + pause + _speech("no.wav") + _silence(0.6))
    kinds = _kinds(passed)
    assert kinds[:3] == ["VADUserStartedSpeakingFrame", "CallerPausedFrame", "CallerResumedFrame"]
    assert kinds[-2:] == ["CallerPausedFrame", "VADUserStoppedSpeakingFrame"]
    paused = next(i for i, frame in enumerate(passed) if isinstance(frame, CallerPausedFrame))
    resumed = next(i for i, frame in enumerate(passed) if isinstance(frame, CallerResumedFrame))
    assert all(isinstance(frame, InputAudioRawFrame) for frame in passed[paused + 1 : resumed])
