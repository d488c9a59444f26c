"""The shared, batched listening models hear calls exactly as Pipecat's per-call models would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipecat.audio.utils import calculate_audio_volume
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from agent.listening import QUIET_BATCH_WAIT_SECS, Listening, SileroBatch, SileroStream, _session
from agent.loopback.twilio_caller import load_ulaw, ulaw_to_pcm16

AUDIO = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
FRAME_BYTES = 320  # 20 ms of 16-bit audio at 8 kHz, as Twilio's media messages bring it


def _call_audio(*names: str) -> bytes:
    """Speech, a second of silence, more speech, silence: what one caller sends, as 16-bit PCM."""
    silence = b"\0\0" * 8000
    pcm = b""
    for name in names:
        pcm += ulaw_to_pcm16(load_ulaw(AUDIO / name)).tobytes() + silence
    return pcm + b"\0" * (-len(pcm) % FRAME_BYTES)


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


async def _pipecat_states(pcm: bytes) -> list[VADState]:
    vad = SileroVADAnalyzer(params=VADParams(stop_secs=0.2))
    vad.set_sample_rate(8000)
    return [await vad.analyze_audio(frame) for frame in _frames(pcm)]


@pytest.mark.usefixtures("lone_caller_silero")
async def test_batched_vad_marks_the_same_speech_as_pipecats_own() -> None:
    pcm = _call_audio("book_cleaning.wav", "yes.wav")
    expected = await _pipecat_states(pcm)
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    vad.set_sample_rate(8000)
    states = [await vad.analyze_audio(frame) for frame in _frames(pcm)]
    assert states == expected
    assert VADState.SPEAKING in states and states[-1] == VADState.QUIET


@pytest.mark.usefixtures("lone_caller_silero")
async def test_after_long_quiet_the_speech_is_heard_when_pipecats_vad_hears_it() -> None:
    # Quiet windows are not scored; the model must still meet the speech as if it had heard them.
    quiet = b"\0\0" * 8000 * 3
    pcm = quiet + _call_audio("book_cleaning.wav") + quiet + _call_audio("yes.wav")
    expected = await _pipecat_states(pcm)
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    vad.set_sample_rate(8000)
    assert [await vad.analyze_audio(frame) for frame in _frames(pcm)] == expected


@pytest.mark.usefixtures("lone_caller_silero")
async def test_speech_after_a_noisy_line_starts_when_pipecats_vad_says_it_does() -> None:
    # A hissing line is loud enough but not speech: its loudness is measured only once speech
    # begins, three seconds (more than the catch-up) later, and must come out as Pipecat's.
    hiss = np.random.default_rng(7).normal(0, 200, 8000 * 3).astype(np.int16).tobytes()
    pcm = hiss + _call_audio("book_cleaning.wav") + hiss + _call_audio("yes.wav")
    expected = await _pipecat_states(pcm)
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    vad.set_sample_rate(8000)
    assert [await vad.analyze_audio(frame) for frame in _frames(pcm)] == expected
    assert calculate_audio_volume(hiss[-6400:], 8000) > 0.6  # loud enough: only Silero says "quiet"


async def test_calls_scored_in_one_batch_do_not_hear_each_other() -> None:
    listening = Listening()
    audio = {"booking": _call_audio("book_cleaning.wav"), "goodbye": _call_audio("goodbye.wav", "no.wav")}
    expected = {name: await _pipecat_states(pcm) for name, pcm in audio.items()}
    vads = {}
    for name in audio:
        vad, _ = await listening.for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
        vad.set_sample_rate(8000)
        vads[name] = vad

    async def listen(name: str) -> list[VADState]:
        return [await vads[name].analyze_audio(frame) for frame in _frames(audio[name])]

    heard = dict(zip(audio, await asyncio.gather(*(listen(name) for name in audio)), strict=True))
    assert heard == expected


class CountingSession:
    """Silero's session, counting the windows of each run."""

    def __init__(self) -> None:
        self.session = _session("pipecat.audio.vad.data", "silero_vad.onnx")
        self.batches: list[int] = []

    def run(self, outputs: Any, feeds: dict[str, Any]) -> Any:
        self.batches.append(len(feeds["input"]))
        return self.session.run(outputs, feeds)


async def test_quiet_lines_wait_for_company_and_a_speaking_caller_takes_them_along() -> None:
    session = CountingSession()
    batch = SileroBatch(session)
    streams = [SileroStream() for _ in range(3)]
    window = b"\0\0" * 256
    loop = asyncio.get_running_loop()

    waited_from = loop.time()
    await batch.score(streams[0], window, quiet=True)
    assert loop.time() - waited_from >= QUIET_BATCH_WAIT_SECS - 0.001  # alone, it waited for company

    quiet = [asyncio.create_task(batch.score(s, window, quiet=True)) for s in streams[:2]]
    await asyncio.sleep(0)
    waited_from = loop.time()
    await batch.score(streams[2], window)  # a caller mid-turn: scored soon, the quiet ones with it
    assert loop.time() - waited_from < QUIET_BATCH_WAIT_SECS  # not held for the quiet lines
    assert all(task.done() for task in quiet) and session.batches == [1, 3]
