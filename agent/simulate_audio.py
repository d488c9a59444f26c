"""`simulate --audio`: a scripted call through the real phone server, the caller's lines as speech.

Replay proves the conversation core; this proves the phone path around it (the Twilio webhook and
media stream, Pipecat's VAD and turn taking, STT, the tools, TTS, hang-up and transfer) with the
same scripts. Each run serves the app on 127.0.0.1 with the loopback fakes (`agent.loopback`):
the fake Twilio caller streams each caller line as espeak-ng speech (or the turn's own `audio:`
file), the fake OpenAI transcribes it back to the script's words and answers with the script's
replayed assistant steps, and the same expectations judge the call.

Everything is read from the server's side of the line, as a caller and a developer would see it:
the words are what the TTS was asked to say, the tool calls are the call record's, the texts are
what reached Twilio, the transfer is Twilio's redirect and the hang-up is the closed stream. The
calendar is the server's own database, so the judge reads what the server booked. The booking
clock stays pinned at the script's "now", as in replay, while the audio runs in real time: a clock
running from "now" puts a call's first offer some seconds later, and a script written at the edge
of a service's notice (`emergency-today`: 9:30 asked at 9:00 with 30 minutes' notice) then hears
another time offered.

Not every script can be staged this way: the server's calendar cannot be made to fail from
outside, and the loopback webhook carries neither a withheld number nor a STIR/SHAKEN attestation.
Such scripts are skipped with the reason (`audio_unsupported`) rather than failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import select

from agent.conversation import Reply, ToolEvent
from agent.expectations import Text
from agent.loopback.line import BUSINESS_NUMBER, Line, loopback_line
from agent.loopback.make_audio import VOICE, WORDS_PER_MINUTE, make_line
from agent.loopback.twilio_caller import FakeTwilioCaller
from agent.prompting import Prompts
from agent.scripts import SHIPPED_SCRIPTS, Script, Turn
from agent.simulate import Call, ScriptMismatch, Stage, planned_step, set_stage
from agent.sms import load_sms_templates
from agent.tools import Action
from agent.wiring import calendar_for
from booking.calendars._local_schema import bookings
from booking.clock import FixedClock

SPEECH_CACHE = SHIPPED_SCRIPTS.parents[1] / "var" / "simulate-speech"
"""Where synthesized caller lines are kept between runs (`var/` is the project's work folder)."""

WAIT_SECONDS = 30.0
"""The longest the caller waits for the agent to answer, finish speaking, hang up or transfer."""

AGENT_SECONDS_PER_CHAR = 0.02
"""How long the fake TTS speaks per character: three times a person's pace, so runs stay short.
Only the words are judged, never the length of the tone standing in for them."""

_ENDS_WITH: dict[str, Action] = {"transferring": "transfer", "ending": "hang_up"}
"""The tool statuses that ask the phone line to transfer or hang up (`agent.tools`)."""

_CODE_MARK = "\x00code\x00"


def audio_unsupported(script: Script) -> str | None:
    """Why the phone path cannot run this script as written, or None when it can."""
    if script.document.caller.number is None:
        return "a withheld caller number cannot be rung through the loopback line"
    if script.document.caller.attestation is not None:
        return "a caller attestation (StirVerstat) cannot be rung through the loopback line"
    if any(turn.before is not None and turn.before.calendar_fails for turn in script.document.turns):
        return "calendar_fails: the server's calendar cannot be made to fail from outside"
    return None


@dataclass(frozen=True)
class Voice:
    """The caller's speech: a turn's own `audio:` file, or its line spoken by espeak-ng (cached)."""

    cache: Path

    def speech(self, script: Script, turn: Turn, line: str) -> Path:
        if turn.audio is not None:
            return script.path.parent / turn.audio
        key = hashlib.sha256(f"{VOICE}|{WORDS_PER_MINUTE}|{line}".encode()).hexdigest()[:24]
        wav = self.cache / f"{key}.wav"
        if not wav.is_file():
            self.cache.mkdir(parents=True, exist_ok=True)
            partial = wav.with_name(f"{key}-{uuid.uuid4().hex}.partial.wav")
            make_line(line, partial)
            partial.replace(wav)
        return wav


@dataclass
class AudioDriver:
    """The script's assistant steps, answered through the real phone server as speech."""

    cache: Path = SPEECH_CACHE
    name: str = "audio"
    scripted: bool = True

    @asynccontextmanager
    async def open(self, script: Script, prompts: Prompts) -> AsyncIterator[Call]:
        with tempfile.TemporaryDirectory(prefix="simulate-audio-") as folder:
            workdir = Path(folder)
            businesses = workdir / "businesses.yaml"
            profile = script.business.model_dump(mode="json", exclude_defaults=True)
            businesses.write_text(yaml.safe_dump({"businesses": [profile]}), encoding="utf-8")
            clock = FixedClock(script.at(script.document.now))
            async with loopback_line(workdir, [], [], businesses_file=businesses, clock=clock) as line:
                line.openai.speech_seconds_per_char = AGENT_SECONDS_PER_CHAR
                calendar = calendar_for(line.runtime, script.business, clock)
                stage = await set_stage(script, calendar, clock, prompts)
                call = AudioCall(line, stage, Voice(self.cache))
                try:
                    yield call
                finally:
                    await call.hang_up()


@dataclass
class AudioCall:
    """One call on the loopback line; each turn speaks a line and reads back what the server did."""

    line: Line
    stage: Stage
    voice: Voice
    latency: float | None = None
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    _caller: FakeTwilioCaller | None = None
    _hung_up: bool = False
    _spoken: int = 0
    _tools: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def caller(self) -> FakeTwilioCaller:
        if self._caller is None:
            raise RuntimeError("the call has not been rung yet")
        return self._caller

    async def greet(self) -> str:
        script = self.stage.script
        number = script.document.caller.number
        assert number is not None, "audio_unsupported() keeps out withheld numbers"
        dialled = (script.business.phone_numbers or [BUSINESS_NUMBER])[0]
        stream = await self.line.ring(self.call_sid, caller=number, to=dialled)
        self._caller = self.line.caller(stream, self.call_sid)
        await self._caller.connect()
        await self._caller.wait_until_silent(timeout_seconds=WAIT_SECONDS)
        return " ".join(self._new_speech())

    async def hear(self, turn: Turn, line: str) -> Reply:
        openai = self.line.openai
        unplanned = openai.unplanned_chat_requests
        openai.add_transcripts(line)
        openai.add_turns(*(planned_step(step, self.stage, self._ids) for step in turn.agent))
        speech = await asyncio.to_thread(self.voice.speech, self.stage.script, turn, line)
        said = await self.caller.say(speech)
        await self.caller.wait_until_silent(timeout_seconds=WAIT_SECONDS)
        events = await self._new_tools()
        action = next(
            (_ENDS_WITH[e.result["status"]] for e in events if e.result.get("status") in _ENDS_WITH), None
        )
        if action is not None:
            await self._carried_out(action)
        await self._note_world()
        self.latency = said.latency
        if openai.pending_turns:
            raise ScriptMismatch(
                f"{openai.pending_turns} assistant step(s) were left unused: the agent's turn ended first"
            )
        if openai.unplanned_chat_requests > unplanned:
            raise ScriptMismatch("the agent needed another step, and the script has no more for this turn")
        return Reply(tuple(self._new_speech()), tuple(events), action)

    async def end(self) -> None:
        await self.hang_up()
        await self._note_world()

    async def hang_up(self) -> None:
        """The caller hangs up (Twilio's `stop`, then the socket closes) and the server finishes."""
        if self._caller is None or self._hung_up:
            return
        self._hung_up = True
        if self._caller.close_code is None:
            await self._caller.stop()
        await self._caller.hang_up()
        await self.line.calls_finished()

    def _new_speech(self) -> list[str]:
        spoken = self.line.openai.spoken_texts
        new, self._spoken = spoken[self._spoken :], len(spoken)
        return new

    async def _new_tools(self) -> list[ToolEvent]:
        """The tool calls the server recorded for this call since the last turn, with their results."""
        calls = self.line.runtime.calls
        record = next((r for r in await calls.recent_calls() if r.call_sid == self.call_sid), None)
        if record is None:
            return []
        events = (await calls.get_call(record.id)).events
        made = [e.data for e in events if e.kind == "tool_call"]
        results = [e.data for e in events if e.kind == "tool_result"]
        tools = [
            ToolEvent(c["name"], c["arguments"], r["result"]) for c, r in zip(made, results, strict=False)
        ]
        new, self._tools = tools[self._tools :], len(tools)
        return new

    async def _carried_out(self, action: Action) -> None:
        """Wait until the line did what the agent asked: Twilio redirected the call, or the server hung up."""
        if action == "hang_up":
            await self.caller.wait_for_hangup(timeout_seconds=WAIT_SECONDS)
            return
        deadline = time.monotonic() + WAIT_SECONDS
        while not any(update.call_sid == self.call_sid for update in self.line.twilio.call_updates):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the agent transferred, and Twilio got no redirect in {WAIT_SECONDS:.0f} s"
                )
            await asyncio.sleep(0.05)
        await self.hang_up()

    async def _note_world(self) -> None:
        """Bring the stage up to date: the codes that reached Twilio, the bookings the server wrote."""
        pattern = _code_text(self.stage)
        outbox = self.stage.outbox
        outbox.sent[:] = [
            Text(message.to, "code", found.group(1))
            for message in self.line.twilio.messages
            if (found := pattern.fullmatch(message.body)) is not None
        ]
        async with self.line.runtime.engine.connect() as connection:
            uids = (await connection.execute(select(bookings.c.uid).order_by(bookings.c.id))).scalars()
            written = [uid for uid in uids if uid not in self.stage.others]
        self.stage.calendar.written[:] = written


def _code_text(stage: Stage) -> re.Pattern[str]:
    """The verification-code text of this business, with the code as its one group."""
    text = load_sms_templates().render(
        "codes.verification", business_name=stage.script.business.name, code=_CODE_MARK
    )
    return re.compile(re.escape(text).replace(re.escape(_CODE_MARK), r"(\w+)"))
