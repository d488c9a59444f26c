"""A whole phone call through the real server: Twilio Media Streams in, speech out, a booking made.

The caller is a fake Twilio streaming real speech (espeak-ng WAVs); OpenAI is a local fake server
reached through OPENAI_BASE_URL; Twilio's REST API is a local fake reached through
TWILIO_API_BASE_URL. Everything else — signature checks, Pipecat, VAD, turn detection, the tools,
the embedded calendar, the call record — is the production code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from agent.llm import AssistantTurn, PlannedTurn, ToolCall
from agent.loopback.line import CALLER_NUMBER, loopback_line
from agent.loopback.twilio_caller import FakeTwilioCaller
from agent.phone import TurnSettings
from agent.simulate_audio import AGENT_SECONDS_PER_CHAR
from booking.clock import SystemClock
from booking.models import Window
from tests.conftest import REPO_ROOT

AUDIO = REPO_ROOT / "fixtures" / "audio"
TRANSFER_NUMBER = "+15550100199"


def last_result(messages: Sequence[dict[str, Any]], key: str) -> Any:
    for message in reversed(messages):
        if message.get("role") == "tool":
            payload = json.loads(message["content"])
            if key in payload:
                return payload[key]
    raise AssertionError(f"no tool result with {key!r}")


def call(tool: str, **arguments: Any) -> AssistantTurn:
    return AssistantTurn(tool_calls=(ToolCall(f"call_{tool}", tool, arguments),))


def with_offer(tool: str, **arguments: Any) -> PlannedTurn:
    return lambda m: call(tool, slot_id=last_result(m, "slots")[0]["slot_id"], **arguments)


def confirm_last() -> PlannedTurn:
    return lambda m: call("confirm_proposal", proposal_id=last_result(m, "proposal_id"))


def repeat_spoken() -> PlannedTurn:
    return lambda m: AssistantTurn(text=last_result(m, "spoken"))


BOOKING_TURNS: list[PlannedTurn] = [
    call("check_availability", when="next Tuesday morning", service="cleaning"),
    repeat_spoken(),
    with_offer("propose_booking", name="Jane Doe", email="jane@example.com"),
    confirm_last(),
    repeat_spoken(),
    call("end_call"),
]
BOOKING_TRANSCRIPTS = [
    "Hi, I'd like to book a cleaning next Tuesday morning.",
    "My name is Jane Doe, that's jane at example dot com.",
    "Yes, please.",
    "That's all, thank you. Goodbye.",
]


async def test_a_caller_books_by_phone_and_the_call_hangs_up(tmp_path: Path) -> None:
    """Speech in, the tools run, audio comes back, the booking exists, the call is recorded and hung up."""
    async with loopback_line(tmp_path, list(BOOKING_TURNS), list(BOOKING_TRANSCRIPTS)) as line:
        line.openai.speech_seconds_per_char = AGENT_SECONDS_PER_CHAR  # the words count, not the tone's length
        call_sid = "CA" + "a" * 32
        stream = await line.ring(call_sid)
        async with line.caller(stream, call_sid) as caller:
            await caller.wait_until_silent(timeout_seconds=20)
            for wav in ("book_cleaning.wav", "name_email.wav", "yes.wav", "goodbye.wav"):
                await caller.say(AUDIO / wav)
                await caller.wait_until_silent(timeout_seconds=20)
            await caller.wait_for_hangup(timeout_seconds=20)
        await line.calls_finished()

        spoken = line.openai.spoken_texts
        assert spoken[0].startswith("Thanks for calling Bright Smile Dental")
        assert any(text.startswith("Just to confirm: teeth cleaning") for text in spoken)
        assert any(text.startswith("You're booked: teeth cleaning") for text in spoken)
        assert call_sid in line.twilio.ended_calls
        # The voice went out in 100 ms messages (800 μ-law bytes), not 40 ms ones: 2.5 times fewer
        # messages to send and play; the last of each reply may be shorter.
        sizes = [len(m.audio) for m in caller.received("media") if m.voiced]
        assert max(sizes) == 800 and sizes.count(800) > len(sizes) / 2

        calendar_now = SystemClock().now()
        from agent.wiring import calendar_for

        business = line.runtime.directory.default
        calendar = calendar_for(line.runtime, business, SystemClock())
        booked = await calendar.find(
            email="jane@example.com", window=Window(calendar_now, calendar_now + timedelta(days=30))
        )
        assert [b.status for b in booked] == ["accepted"]
        assert booked[0].start.astimezone(business.zone).weekday() == 1
        assert booked[0].attendee.phone == CALLER_NUMBER

        [record] = await line.runtime.calls.recent_calls()
        full = await line.runtime.calls.get_call(record.id)
        assert full.outcome == "booked"
        kinds = [e.kind for e in full.events]
        assert "caller" in kinds and "agent" in kinds and "tool_call" in kinds
        # Answered turns' latencies are taken apart down to the voice's first audio.
        answered = [
            {c["key"] for c in e.data["breakdown"]["contributions"]}
            for e in full.events
            if e.kind == "turn_latency" and e.data["from"] == "user_silence"
        ]
        assert answered and any("speech_synthesis" in keys for keys in answered)


async def test_forged_replayed_garbage_and_dead_streams(tmp_path: Path) -> None:
    """A forged handshake and a replayed token are refused; garbage frames are survived; a dead line ends."""
    async with loopback_line(tmp_path, [], [], TurnSettings(idle_secs=30, dead_line_secs=2)) as line:
        line.openai.speech_seconds_per_char = AGENT_SECONDS_PER_CHAR
        call_sid = "CA" + "b" * 32
        stream = await line.ring(call_sid)

        forged = FakeTwilioCaller(
            stream, headers={"X-Twilio-Signature": "bm90IHR3aWxpbw=="}, call_sid=call_sid
        )
        with pytest.raises(InvalidStatus):
            await forged.connect()

        async with line.caller(stream, call_sid) as caller:
            await caller.send_raw("{not json")
            await caller.send_raw(json.dumps({"event": "media", "media": "not an object"}))
            await caller.send_raw(json.dumps({"event": "media", "media": {"payload": "%%%not-base64"}}))
            await caller.wait_until_silent(timeout_seconds=20)
            assert line.openai.spoken_texts[0].startswith("Thanks for calling")

            replay = line.caller(stream, call_sid)
            with pytest.raises(InvalidStatus):
                await replay.connect()

            await caller.stop()
            assert await caller.wait_for_hangup(timeout_seconds=15) is not None
        await line.calls_finished()
        [record] = await line.runtime.calls.recent_calls()
        assert record.ended_at is not None and record.outcome == "no_booking"


async def test_asking_for_a_person_moves_the_call_to_the_business(tmp_path: Path) -> None:
    """Barge-in stops the greeting; 'a real person' is answered, then Twilio dials the transfer number."""
    turns: list[PlannedTurn] = [call("transfer_to_human", reason="caller asked for a person")]
    async with loopback_line(tmp_path, turns, ["Can I talk to a real person?"]) as line:
        call_sid = "CA" + "c" * 32
        stream = await line.ring(call_sid)
        async with line.caller(stream, call_sid) as caller:
            await caller.wait_for_agent_audio(timeout_seconds=20)
            interrupting = asyncio.create_task(caller.say(AUDIO / "human.wav"))
            clear = await caller.wait_for_message(
                "clear", after=caller.first_agent_audio_at or 0.0, timeout_seconds=10
            )
            turn = await interrupting
            assert turn.speech_started_at is not None and clear.at >= turn.speech_started_at
            await caller.wait_until_silent(timeout_seconds=20)
        await line.calls_finished()
        [update] = line.twilio.call_updates
        assert update.call_sid == call_sid and update.twiml is not None
        assert f"<Dial><Number>{TRANSFER_NUMBER}</Number></Dial>" in update.twiml
        assert call_sid not in line.twilio.ended_calls
        assert any("put you through" in text for text in line.openai.spoken_texts)
        [record] = await line.runtime.calls.recent_calls()
        assert record.outcome == "transferred"


async def test_a_failing_model_hands_the_caller_to_a_person_not_to_silence(tmp_path: Path) -> None:
    """When OpenAI keeps failing mid-call, Twilio's own voice apologises and dials the business."""
    async with loopback_line(tmp_path, [], ["Hello?"]) as line:
        line.openai.fail_next(10, status=500, retry_after_ms=1)
        call_sid = "CA" + "d" * 32
        stream = await line.ring(call_sid)
        async with line.caller(stream, call_sid) as caller:
            await caller.wait_until_silent(timeout_seconds=20)
            await caller.say(AUDIO / "hello.wav")
            await caller.wait_for_hangup(timeout_seconds=30)
        await line.calls_finished()
        [update] = line.twilio.call_updates
        assert update.twiml is not None and "having trouble" in update.twiml
        assert f"<Number>{TRANSFER_NUMBER}</Number>" in update.twiml
        [record] = await line.runtime.calls.recent_calls()
        assert record.outcome == "transferred"
