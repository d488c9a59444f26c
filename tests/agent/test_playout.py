"""The agent's voice is kept a little ahead at Twilio, so a short stall of the server is not heard;
the output sends it whole, in order, and passes the words on without the audio."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from starlette.websockets import WebSocket, WebSocketState

from agent.listening import Listening
from agent.phone_transport import PhoneTransport
from agent.playout import AHEAD_SECS, AheadOutput, pace
from agent.speech_gate import SpeechGate

CHUNK = 0.04


def _send(chunks: int, stall_after: int | None = None, stall: float = 0.0) -> list[float]:
    """When each chunk is written, pacing as the output does; optionally one stall of the loop."""
    now, played_until, written = 100.0, 0.0, []
    for index in range(chunks):
        written.append(now)
        played_until, wait = pace(played_until, now, CHUNK)
        now += wait
        if index == stall_after:
            now += stall
    return written


def _gaps(written: list[float]) -> list[float]:
    """Silences a caller hears when each chunk plays after the one before, or on arrival."""
    gaps, playing_until = [], 0.0
    for at in written:
        if playing_until and at > playing_until:
            gaps.append(at - playing_until)
        playing_until = max(playing_until, at) + CHUNK
    return gaps


def test_the_first_fifth_of_a_second_goes_at_once_then_real_time() -> None:
    written = _send(20)
    ahead = round(AHEAD_SECS / CHUNK)
    assert written[: ahead + 1] == pytest.approx([written[0]] * (ahead + 1))
    assert written[-1] - written[ahead] == pytest.approx((20 - 1 - ahead) * CHUNK)


def test_a_stall_shorter_than_the_lead_is_not_heard() -> None:
    assert _gaps(_send(30, stall_after=10, stall=AHEAD_SECS * 0.9)) == []


def test_a_longer_stall_is_one_gap_and_the_lead_is_rebuilt() -> None:
    gaps = _gaps(_send(30, stall_after=10, stall=AHEAD_SECS + 0.1))
    assert gaps == [pytest.approx(0.1)]


def test_after_a_barge_in_playback_starts_from_now() -> None:
    played_until, wait = pace(0.0, 50.0, CHUNK)  # Pipecat resets the clock to 0 on an interruption
    assert played_until == pytest.approx(50.04) and wait == 0.0


class TwilioSocket:
    """The call's websocket as the output sees it: open, recording what is sent."""

    client_state = WebSocketState.CONNECTED
    application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self) -> None:
        self.application_state = WebSocketState.DISCONNECTED


async def test_the_voice_is_sent_whole_and_only_the_words_go_on() -> None:
    socket = TwilioSocket()
    vad, _ = await Listening().for_call(vad_stop_secs=0.2, incomplete_wait_secs=1.2)
    params = FastAPIWebsocketParams(
        audio_out_enabled=True,
        add_wav_header=False,
        serializer=TwilioFrameSerializer("MZ1", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)),
    )
    gate = SpeechGate(vad, pass_quiet=True, pause_after_secs=None)
    output = PhoneTransport(cast(WebSocket, socket), params, gate).output()
    assert isinstance(output, AheadOutput)
    voice = bytes(range(256)) * 25  # 0.4 s at 8 kHz: ten 40 ms chunks
    down, up = await run_test(
        output,
        frames_to_send=[
            TTSAudioRawFrame(voice, sample_rate=8000, num_channels=1),
            TTSTextFrame("Thanks", text_type="word"),
            TTSStoppedFrame(),
            SleepFrame(0.6),  # the voice plays out
        ],
        pipeline_params=PipelineParams(audio_out_sample_rate=8000),
    )
    media = [message for message in socket.sent if message["event"] == "media"]
    assert len(media) >= 10  # the ten chunks of the voice, then the call's closing silence
    assert not any(isinstance(frame, OutputAudioRawFrame) for frame in down)
    assert [frame.text for frame in down if isinstance(frame, TTSTextFrame)] == ["Thanks"]
    speaking = (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)
    assert [type(frame) for frame in up if isinstance(frame, speaking)] == list(speaking)
