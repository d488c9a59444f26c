"""The caller's audio reaches the pipeline in 40 ms frames, with nothing lost or reordered."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any, cast

from pipecat.frames.frames import InputAudioRawFrame, InputDTMFFrame
from pipecat.processors.frame_processor import FrameProcessorSetup

from agent.loopback.twilio_caller import ulaw_to_pcm16
from agent.phone import MESSAGES_PER_AUDIO_FRAME, PhoneSerializer


def _media(payload: bytes) -> str:
    return json.dumps({"event": "media", "media": {"payload": base64.b64encode(payload).decode()}})


async def test_twilio_messages_are_paired_into_frames_in_order() -> None:
    serializer = PhoneSerializer("MZ1", "CA1", "AC1", "token")
    await serializer.setup(cast(FrameProcessorSetup, SimpleNamespace(audio_in_sample_rate=8000)))
    messages = [bytes([value]) * 160 for value in (0x10, 0x20, 0x30, 0x40)]  # 20 ms of μ-law each
    dtmf = json.dumps({"event": "dtmf", "dtmf": {"digit": "5"}})
    out: list[Any] = [await serializer.deserialize(_media(m)) for m in messages[:3]]
    out.append(await serializer.deserialize(dtmf))
    out.append(await serializer.deserialize(_media(messages[3])))

    assert MESSAGES_PER_AUDIO_FRAME == 2
    assert out[0] is None and out[2] is None  # held until its pair arrives
    assert isinstance(out[3], InputDTMFFrame)  # other events are not held back
    first, second = out[1], out[4]
    assert isinstance(first, InputAudioRawFrame) and isinstance(second, InputAudioRawFrame)
    assert first.sample_rate == 8000
    assert first.audio == ulaw_to_pcm16(messages[0] + messages[1]).tobytes()
    assert second.audio == ulaw_to_pcm16(messages[2] + messages[3]).tobytes()


async def test_garbage_on_the_stream_is_skipped_and_counted_and_the_audio_goes_on() -> None:
    serializer = PhoneSerializer("MZ1", "CA1", "AC1", "token")
    await serializer.setup(cast(FrameProcessorSetup, SimpleNamespace(audio_in_sample_rate=8000)))
    garbage = ["{not json", json.dumps({"event": "media", "media": {}}), _media(b"").replace('""', '"%%"')]
    skipped = [await serializer.deserialize(message) for message in garbage]
    pair = [bytes([0x10]) * 160, bytes([0x20]) * 160]
    frames = [await serializer.deserialize(_media(m)) for m in pair]
    assert skipped == [None, None, None] and serializer.malformed == 3
    assert frames[0] is None and isinstance(frames[1], InputAudioRawFrame)
    assert frames[1].audio == ulaw_to_pcm16(pair[0] + pair[1]).tobytes()
