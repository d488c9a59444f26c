"""`python -m agent simulate`: scripted calls through the same conversation core as a phone call.

Each run of a script gets a fresh world — the embedded calendar on a temporary SQLite file holding
the script's starting bookings, a clock pinned at the script's "now", an SMS outbox — so runs never
disturb each other or the real database. A `Driver` decides who answers the caller's lines: the
script's own assistant steps (replay: no model, no network; what `make demo` and CI run), the real
model (`--live`), or speech through the real phone server (`--audio`, `agent.simulate_audio`).
Whoever answers, the same expectations judge what the call left behind (`agent.expectations`).

Between turns a script can change the world the way real calls meet it: someone else books the
offered time, or the calendar stops answering (`StageCalendar`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from agent.conversation import Conversation, Reply, ToolEvent
from agent.database import make_engine
from agent.errors import ConfigError
from agent.expectations import Observed, Text, judge
from agent.llm import LLM, AssistantTurn, OpenAIChat, PlannedTurn, ScriptedLLM, ToolCall
from agent.logs import setup_logging
from agent.prompting import Prompts, load_prompts
from agent.scripts import (
    SHIPPED_SCRIPTS,
    BeforeTurn,
    Script,
    ScriptInvalid,
    Step,
    Turn,
    UnresolvedReference,
    load_script,
    resolve,
    resolve_arguments,
    script_paths,
)
from agent.settings import Settings
from agent.simulate_report import print_results, write_junit
from agent.tools import Action
from agent.wiring import local_calendar_config, open_conversation
from booking.calendar import Calendar
from booking.calendars.local import LocalCalendar, create_schema
from booking.clock import Clock, FixedClock
from booking.errors import BookingError, CalendarUnavailable, SlotTaken
from booking.models import Attendee, Booking, BookingRequest, Hold, Service, Slot, Window
from booking.session import CallerId

NO_KEY = (
    "simulate --live needs a language model: set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
    "compatible server), or leave out --live to replay the scripts."
)
LIVE_AUDIO = (
    "simulate --audio replays the scripts' own assistant steps through the phone path; "
    "it cannot be combined with --live yet."
)


@dataclass(frozen=True)
class Options:
    """How `simulate` runs: who answers (replay, `live`, `audio`), how often, and where JUnit goes."""

    live: bool = False
    audio: bool = False
    repeat: int = 1
    junit: Path | None = None


class ScriptMismatch(Exception):
    """The call went differently from the script's assistant steps (replay only)."""


class Outbox:
    """The SMS gateway of a scripted call: every text is kept, none is sent."""

    def __init__(self) -> None:
        self.sent: list[Text] = []

    async def send_code(self, phone: str, code: str) -> None:
        self.sent.append(Text(phone, "code", code))

    @property
    def codes(self) -> list[str]:
        return [text.body for text in self.sent if text.kind == "code"]


class StageCalendar:
    """The call's calendar: the embedded one, with operations the script made fail, and writes noted.

    A failing operation raises `CalendarUnavailable`, exactly what Cal.com's client raises on a
    timeout or a 5xx, so the conversation meets an outage the way it would in production.
    """

    def __init__(self, inner: Calendar) -> None:
        self.inner = inner
        self.failing: set[str] = set()
        self.written: list[str] = []

    def _gate(self, operation: str) -> None:
        if operation in self.failing:
            raise CalendarUnavailable("the script made the calendar fail", operation=operation)

    def _wrote(self, booking: Booking) -> Booking:
        self.written.append(booking.uid)
        return booking

    async def services(self) -> list[Service]:
        self._gate("services")
        return await self.inner.services()

    async def time_zone(self) -> ZoneInfo:
        self._gate("time_zone")
        return await self.inner.time_zone()

    async def slots(self, service: Service, window: Window) -> list[Slot]:
        self._gate("slots")
        return await self.inner.slots(service, window)

    async def hold(self, slot: Slot) -> Hold:
        self._gate("hold")
        return await self.inner.hold(slot)

    async def release(self, hold: Hold) -> None:
        self._gate("release")
        await self.inner.release(hold)

    async def create(self, request: BookingRequest, hold: Hold | None) -> Booking:
        self._gate("create")
        return self._wrote(await self.inner.create(request, hold))

    async def get(self, uid: str) -> Booking:
        self._gate("get")
        return await self.inner.get(uid)

    async def find(
        self, *, email: str | None = None, phone: str | None = None, window: Window
    ) -> list[Booking]:
        self._gate("find")
        return await self.inner.find(email=email, phone=phone, window=window)

    async def reschedule(self, uid: str, new_start: datetime, reason: str | None = None) -> Booking:
        self._gate("reschedule")
        return self._wrote(await self.inner.reschedule(uid, new_start, reason))

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        self._gate("cancel")
        return self._wrote(await self.inner.cancel(uid, reason))


@dataclass
class Stage:
    """The world one run of a script happens in."""

    script: Script
    calendar: StageCalendar
    clock: Clock
    prompts: Prompts
    outbox: Outbox = field(default_factory=Outbox)
    others: list[str] = field(default_factory=list)
    """Bookings this call did not make: the starting ones, and those made "elsewhere" mid-call."""

    def conversation(self, llm: LLM) -> Conversation:
        caller = self.script.document.caller
        return open_conversation(
            business=self.script.business,
            calendar=self.calendar,
            prompts=self.prompts,
            llm=llm,
            clock=self.clock,
            caller=CallerId(caller.number, caller.attestation),
            codes=self.outbox,
        )

    async def book(self, service_key: str, start: datetime, attendee: Attendee) -> Booking:
        """A booking made through the calendar by someone other than this call."""
        service = next(s for s in self.script.business.booking_services() if s.key == service_key)
        slot = Slot(service_key, start, start + service.duration)
        request = BookingRequest(slot, attendee, attempt_id=f"elsewhere-{uuid.uuid4().hex}")
        booking = await self.calendar.inner.create(request, None)
        self.others.append(booking.uid)
        return booking

    async def take(self, service_key: str, start: datetime) -> None:
        """Other callers book this time until the calendar has no one left to give it to."""
        for seat in range(1, max(1, len(self.script.business.staff)) + 1):
            someone = Attendee(
                f"Other Caller {seat}", f"other{seat}@example.com", self.script.zone.key, f"+1555010990{seat}"
            )
            try:
                await self.book(service_key, start, someone)
            except SlotTaken:
                return


@asynccontextmanager
async def open_stage(script: Script, prompts: Prompts) -> AsyncIterator[Stage]:
    """A fresh embedded calendar holding the script's starting bookings, at the script's "now"."""
    with tempfile.TemporaryDirectory(prefix="simulate-") as folder:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(folder) / 'calendar.db'}")
        try:
            await create_schema(engine)
            clock = FixedClock(script.at(script.document.now))
            local = LocalCalendar(engine, local_calendar_config(script.business), clock)
            yield await set_stage(script, local, clock, prompts)
        finally:
            await engine.dispose()


async def set_stage(script: Script, calendar: Calendar, clock: Clock, prompts: Prompts) -> Stage:
    """The stage on `calendar` (fresh for this run), once it holds the script's starting bookings."""
    stage = Stage(script, StageCalendar(calendar), clock, prompts)
    for number, existing in enumerate(script.document.calendar.bookings):
        attendee = Attendee(existing.name, existing.email, script.zone.key, existing.phone)
        try:
            await stage.book(existing.service, script.at(existing.start), attendee)
        except BookingError as error:
            raise ScriptInvalid(
                f"{script.path} is invalid at calendar.bookings.{number}: the calendar refused it "
                f"({error.code}: {error.message})."
            ) from error
    return stage


class Call(Protocol):
    """One call in progress on its stage, however the caller's lines reach the receptionist."""

    stage: Stage
    latency: float | None
    """Seconds from the caller's last word to the agent's first sound in the last turn, if measured."""

    async def greet(self) -> str: ...

    async def hear(self, turn: Turn, line: str) -> Reply: ...

    async def end(self) -> None: ...


class Driver(Protocol):
    """Who answers a script's caller lines: replayed steps, the live model, or the phone path."""

    name: str
    scripted: bool
    """The script's assistant steps are played, and must fit the call exactly."""

    def open(self, script: Script, prompts: Prompts) -> AbstractAsyncContextManager[Call]:
        """A call on a fresh stage for one run of `script`, torn down on leaving."""
        ...


@dataclass
class TextCall:
    """A call carried as text through `Conversation`; in replay, each turn plays the script's steps."""

    conversation: Conversation
    stage: Stage
    replay: bool
    latency: float | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def greet(self) -> str:
        return await self.conversation.greet()

    async def hear(self, turn: Turn, line: str) -> Reply:
        if not self.replay:
            return await self.conversation.hear(line)
        plan = ScriptedLLM(
            [*(planned_step(step, self.stage, self._ids) for step in turn.agent), _no_more_steps]
        )
        self.conversation.llm = plan
        reply = await self.conversation.hear(line)
        unused = len(plan.turns) - 1
        if unused:
            raise ScriptMismatch(f"{unused} assistant step(s) were left unused: the agent's turn ended first")
        return reply

    async def end(self) -> None:
        await self.conversation.end()


def planned_step(step: Step, stage: Stage, ids: itertools.count[int]) -> PlannedTurn:
    """A script's assistant step as the model's answer: references filled from the messages' tool results."""

    def turn(messages: Sequence[dict[str, Any]]) -> AssistantTurn:
        results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
        codes = stage.outbox.codes
        return AssistantTurn(
            text=None if step.say is None else resolve(step.say, results, codes),
            tool_calls=tuple(
                ToolCall(f"call_{next(ids)}", call.tool, resolve_arguments(call.arguments, results, codes))
                for call in step.calls
            ),
        )

    return turn


def _no_more_steps(messages: Sequence[dict[str, Any]]) -> AssistantTurn:
    raise ScriptMismatch("the agent needed another step, and the script has no more for this turn")


class ReplayDriver:
    """The script's own assistant steps: no model, no network."""

    name = "replay"
    scripted = True

    @asynccontextmanager
    async def open(self, script: Script, prompts: Prompts) -> AsyncIterator[Call]:
        async with open_stage(script, prompts) as stage:
            yield TextCall(stage.conversation(ScriptedLLM([])), stage, replay=True)


@dataclass
class LiveDriver:
    """The real model decides; the script's assistant steps are ignored."""

    llm: LLM
    name: str = "live"
    scripted: bool = False

    @asynccontextmanager
    async def open(self, script: Script, prompts: Prompts) -> AsyncIterator[Call]:
        async with open_stage(script, prompts) as stage:
            yield TextCall(stage.conversation(self.llm), stage, replay=False)


def live_driver(settings: Settings) -> LiveDriver:
    """The model from `OPENAI_API_KEY`/`OPENAI_BASE_URL`/`OPENAI_MODEL`; without a key, a `ConfigError`."""
    if settings.openai_api_key is None:
        raise ConfigError(NO_KEY)
    return LiveDriver(
        OpenAIChat(
            api_key=settings.openai_api_key.get_secret_value(),
            model=settings.openai_model,
            base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
        )
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a run's transcript: who spoke, a tool call folded to one line, or a world event."""

    who: Literal["caller", "agent", "tool", "world"]
    text: str
    failed: bool = False


@dataclass(frozen=True)
class RunResult:
    transcript: tuple[Entry, ...]
    turns: int
    tools: int
    reasons: tuple[str, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class ScriptResult:
    """Every run of one script; it passes when all of them did (pass^N)."""

    script: Script
    runs: tuple[RunResult, ...]

    @property
    def passed(self) -> bool:
        return all(run.passed for run in self.runs)

    @property
    def passes(self) -> int:
        return sum(run.passed for run in self.runs)

    @property
    def shown(self) -> RunResult:
        """The run to show: the first that failed, else the first."""
        return next((run for run in self.runs if not run.passed), self.runs[0])


@dataclass
class _Log:
    """What a run has seen so far: the transcript, tool events, speech, and reasons it failed."""

    entries: list[Entry] = field(default_factory=list)
    events: list[ToolEvent] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    turns: int = 0
    ended: bool = False

    @property
    def results(self) -> list[dict[str, Any]]:
        return [event.result for event in self.events]

    def say(self, who: Literal["caller", "agent", "world"], text: str) -> None:
        self.entries.append(Entry(who, text))
        if who == "agent":
            self.spoken.append(text)

    def reply(self, reply: Reply) -> None:
        self.events.extend(reply.tools)
        for event in reply.tools:
            arguments = ", ".join(f"{k}={v!r}" for k, v in event.arguments.items())
            self.entries.append(
                Entry(
                    "tool", f"{event.name}({arguments}) → {_outcome(event.result)}", "error" in event.result
                )
            )
        for sentence in reply.spoken:
            self.say("agent", sentence)
        if reply.action == "transfer":
            self.say("world", "the call is transferred to the office")
        elif reply.action == "hang_up":
            self.say("world", "the agent hangs up")


def _outcome(result: dict[str, Any]) -> str:
    for key in ("error", "status", "verification"):
        if key in result:
            return str(result[key])
    for key in ("slots", "bookings"):
        if key in result:
            count = len(result[key])
            return f"{count} {key if count != 1 else key[:-1]}"
    return "read back" if "proposal_id" in result else "ok"


async def run_script(script: Script, driver: Driver, prompts: Prompts) -> RunResult:
    """One run of a script on a fresh stage, judged. A call that crashes fails; the run goes on."""
    started = time.perf_counter()
    log = _Log()
    async with driver.open(script, prompts) as call:
        stage = call.stage
        try:
            action = await _play(script, driver, stage, call, log)
            if script.document.hangup or action is not None:
                await _end(call, log)
            observed = Observed(
                turns=log.turns,
                spoken=tuple(log.spoken),
                tools=tuple(log.events),
                texts=tuple(stage.outbox.sent),
                action=action,
                others=tuple(stage.others),
                written=tuple(stage.calendar.written),
            )
            log.reasons += await judge(script, observed, stage.calendar.inner, live=not driver.scripted)
        except (ScriptMismatch, UnresolvedReference) as mismatch:
            log.reasons.append(f"turn {log.turns}: {mismatch}")
        except Exception as crash:
            log.reasons.append(f"turn {log.turns}: the call crashed: {type(crash).__name__}: {crash}")
        if not log.ended:
            await _end(call, log)
    seconds = time.perf_counter() - started
    return RunResult(tuple(log.entries), log.turns, len(log.events), tuple(log.reasons), seconds)


async def _play(script: Script, driver: Driver, stage: Stage, call: Call, log: _Log) -> Action | None:
    """Greet, then each turn: what happens in the world first, then the caller's line and the reply."""
    turns = script.document.turns
    log.say("agent", await call.greet())
    for turn in turns:
        log.turns += 1
        if turn.before is not None:
            await _before(stage, turn.before, log)
        line = resolve(turn.caller, log.results, stage.outbox.codes)
        log.say("caller", line)
        reply = await call.hear(turn, line)
        if call.latency is not None:
            log.say("world", f"the agent is heard {call.latency:.2f} s after the caller stops")
        log.reply(reply)
        if reply.action is not None:
            unheard = len(turns) - log.turns
            if unheard and driver.scripted:
                ending = f"the call ended ({reply.action}) at turn {log.turns}"
                log.reasons.append(f"{ending}, with {unheard} caller line(s) unheard")
            return reply.action
    if script.document.hangup:
        log.say("world", "the caller hangs up")
    return None


async def _end(call: Call, log: _Log) -> None:
    log.ended = True
    try:
        await call.end()
    except Exception as crash:
        log.reasons.append(f"ending the call crashed: {type(crash).__name__}: {crash}")


async def _before(stage: Stage, before: BeforeTurn, log: _Log) -> None:
    if before.book_elsewhere is not None:
        slot_id = resolve(before.book_elsewhere, log.results, stage.outbox.codes)
        offer = next(r for r in reversed(log.results) if "slots" in r)
        slot = next(s for s in offer["slots"] if s["slot_id"] == slot_id)
        start = datetime.fromisoformat(slot["start"])
        await stage.take(offer["service"], start)
        log.say("world", f"someone else books {offer['service']} at {start:%a %Y-%m-%d %H:%M}")
    if before.calendar_fails:
        stage.calendar.failing.update(before.calendar_fails)
        log.say("world", f"the calendar stops answering ({', '.join(before.calendar_fails)})")


async def simulate_scripts(
    scripts: Sequence[Script], driver: Driver, repeat: int, done: Callable[[Script], None]
) -> list[ScriptResult]:
    """Run every script `repeat` times, one after another; `done` is told after each run."""
    prompts = load_prompts()
    results = []
    for script in scripts:
        runs = []
        for _ in range(repeat):
            runs.append(await run_script(script, driver, prompts))
            done(script)
        results.append(ScriptResult(script, tuple(runs)))
    return results


def run_simulate(paths: Sequence[Path], options: Options, settings: Settings, console: Console) -> int:
    """The `simulate` command: 0 when every script passed, 1 when any failed.

    No paths means the shipped scripts (`fixtures/calls`). A script that does not load, `--live`
    without a key, or `--audio` with `--live` raise a `RuntimeFailure` (exit code 2) before anything
    runs. With `--audio`, scripts the phone path cannot stage are listed as skipped, not run.
    """
    if options.audio and options.live:
        raise ConfigError(LIVE_AUDIO)
    scripts = [load_script(path) for path in script_paths(paths or [SHIPPED_SCRIPTS])]
    driver: Driver
    if options.audio:
        # The phone path (uvicorn, Pipecat) loads only when asked for; it also imports this module.
        from agent.simulate_audio import AudioDriver, audio_unsupported

        driver = AudioDriver()
        for script in scripts:
            if (reason := audio_unsupported(script)) is not None:
                console.print(f"skipped in audio: {script.name} ({reason})", markup=False, highlight=False)
        scripts = [script for script in scripts if audio_unsupported(script) is None]
    else:
        driver = live_driver(settings) if options.live else ReplayDriver()
    # The transcripts show what INFO logs would ("tool refused: ..."); keep stderr for real trouble.
    setup_logging(settings.log_level if settings.log_level in ("TRACE", "DEBUG") else "WARNING")
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    )
    with progress:
        task = progress.add_task(f"simulating ({driver.name})", total=len(scripts) * options.repeat)

        def done(script: Script) -> None:
            progress.update(task, advance=1, description=f"{driver.name}: {script.name}")

        results = asyncio.run(simulate_scripts(scripts, driver, options.repeat, done))
    print_results(console, results, driver.name, options.repeat)
    if options.junit is not None:
        write_junit(options.junit, results, driver.name)
        console.print(f"JUnit XML written to {options.junit}", markup=False, highlight=False)
    return 0 if all(result.passed for result in results) else 1
