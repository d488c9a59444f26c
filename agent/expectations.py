"""Judging a scripted call: what it was expected to leave behind against what it did.

The calendar is the judge's main witness: it is read back at the end of the call (never taken from
what the agent said), and the call's writes are sorted into bookings created, moved and cancelled.
Each failed expectation becomes one reason a developer can act on ("expected 1 booking created,
the calendar has none"). In live mode the model words things its own way, so only what the call
did is judged (the calendar, texts, how the call ended, refusals); wording and tool arguments are
judged in replay only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.conversation import ToolEvent
from agent.scripts import ExpectedBooking, ExpectedMove, ExpectedTool, FinalCalendar, Script
from agent.tools import Action
from booking.calendar import Calendar
from booking.models import Booking, Window


@dataclass(frozen=True, slots=True)
class Text:
    """A text message the call sent: `kind` is what it carried ("code")."""

    to: str
    kind: str
    body: str


@dataclass(frozen=True)
class Observed:
    """What one scripted call did."""

    turns: int
    spoken: tuple[str, ...]
    tools: tuple[ToolEvent, ...]
    texts: tuple[Text, ...]
    action: Action | None
    others: tuple[str, ...]
    """Bookings this call did not make (the starting ones, and those made elsewhere mid-call)."""
    written: tuple[str, ...]


@dataclass(frozen=True)
class Changes:
    """The call's effect on the calendar, as the calendar holds it at the end."""

    created: tuple[Booking, ...]
    moved: tuple[tuple[Booking, Booking], ...]
    cancelled: tuple[Booking, ...]


async def calendar_changes(calendar: Calendar, others: Sequence[str], written: Sequence[str]) -> Changes:
    """Every booking the call wrote or could have touched, re-read, and sorted by what happened to it."""
    final = {uid: await calendar.get(uid) for uid in dict.fromkeys([*others, *written])}
    moves = []
    for booking in final.values():
        if booking.rescheduled_from is not None:
            old = final.get(booking.rescheduled_from) or await calendar.get(booking.rescheduled_from)
            moves.append((old, booking))
    moved_away = {old.uid for old, _ in moves}
    return Changes(
        created=tuple(b for uid, b in final.items() if uid not in others and b.rescheduled_from is None),
        moved=tuple(moves),
        cancelled=tuple(b for b in final.values() if b.status == "cancelled" and b.uid not in moved_away),
    )


async def judge(script: Script, observed: Observed, calendar: Calendar, *, live: bool) -> list[str]:
    """The reasons the call failed its expectations; empty when it passed."""
    expect = script.document.expect
    reasons: list[str] = []
    said = " ".join(observed.spoken).casefold()
    if not live:
        reasons += _tools(expect.tools, observed.tools)
        reasons += [f"the agent never said {p!r}" for p in expect.says if p.casefold() not in said]
    reasons += [f"the agent said {p!r}" for p in expect.never_says if p.casefold() in said]
    if expect.refusals is not None:
        reasons += _refusals(expect.refusals, observed.tools, exact=not live)
    changes = await calendar_changes(calendar, observed.others, observed.written)
    reasons += await _calendar(script, expect.calendar, changes, calendar)
    if expect.sms is not None:
        wanted = [(t.to, t.kind) for t in expect.sms]
        sent = [(t.to, t.kind) for t in observed.texts]
        if wanted != sent:
            reasons.append(f"expected texts {_texts(wanted)}, sent {_texts(sent)}")
    ended = observed.action or "none"
    if expect.action is not None and expect.action != ended:
        reasons.append(f"expected the call to end with {expect.action}, it ended with {ended}")
    if expect.max_turns is not None and observed.turns > expect.max_turns:
        reasons.append(f"took {observed.turns} caller turns, at most {expect.max_turns} expected")
    return reasons


def _tools(expected: Sequence[ExpectedTool], events: Sequence[ToolEvent]) -> list[str]:
    """Each expected call, in order, among the calls made (other calls may come between)."""
    remaining = iter(events)
    for want in expected:
        if not any(e.name == want.tool and _subset(want.arguments, e.arguments) for e in remaining):
            made = ", ".join(e.name for e in events) or "none"
            return [
                f"expected a call to {want.tool}{_arguments(want.arguments)} in order; calls made: {made}"
            ]
    return []


def _subset(wanted: dict[str, Any], actual: dict[str, Any]) -> bool:
    return all(key in actual and _same(value, actual[key]) for key, value in wanted.items())


def _same(wanted: object, actual: object) -> bool:
    if isinstance(wanted, str) and isinstance(actual, str):
        return _words(wanted) == _words(actual)
    return wanted == actual


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _refusals(expected: Sequence[str], events: Sequence[ToolEvent], *, exact: bool) -> list[str]:
    made = [str(e.result["error"]) for e in events if "error" in e.result]
    missing = [code for code in dict.fromkeys(expected) if code not in made]
    extra = [code for code in dict.fromkeys(made) if code not in expected] if exact else []
    reasons = [f"expected the refusal {code}, it never came" for code in missing]
    return reasons + [f"unexpected refusal {code}" for code in extra]


async def _calendar(
    script: Script, expected: FinalCalendar, changes: Changes, calendar: Calendar
) -> list[str]:
    reasons = _match(script, "created", expected.created, changes.created)
    reasons += _match(script, "cancelled", expected.cancelled, changes.cancelled)
    reasons += _moves(script, expected.moved, changes.moved)
    services = {s.key: s for s in script.business.booking_services()}
    for free in expected.free:
        start = script.at(free.start)
        offered = await calendar.slots(services[free.service], Window(start, start))
        if not offered:
            reasons.append(f"{free.service} at {_local(script, start)} is not free at the end of the call")
    return reasons


def _match(
    script: Script, what: str, expected: Sequence[ExpectedBooking], actual: Sequence[Booking]
) -> list[str]:
    unmatched = list(actual)
    reasons = []
    for want in expected:
        found = next((b for b in unmatched if _fits(script, want, b)), None)
        if found is None:
            have = "; ".join(_describe(script, b) for b in unmatched) or "none"
            reasons.append(f"expected a booking {what} ({_wanted(script, want)}); {what}: {have}")
        else:
            unmatched.remove(found)
    if not reasons:
        reasons = [f"unexpected booking {what}: {_describe(script, b)}" for b in unmatched]
    return reasons


def _fits(script: Script, want: ExpectedBooking, booking: Booking) -> bool:
    attendee = booking.attendee
    checks = [
        want.service is None or want.service == booking.service_key,
        want.start is None or script.at(want.start) == booking.start,
        want.name is None or _words(want.name) == _words(attendee.name),
        want.email is None or want.email.casefold() == attendee.email.casefold(),
        want.phone is None or want.phone == attendee.phone,
        want.status is None or want.status == booking.status,
    ]
    return all(checks)


def _moves(
    script: Script, expected: Sequence[ExpectedMove], actual: Sequence[tuple[Booking, Booking]]
) -> list[str]:
    unmatched = list(actual)
    reasons = []
    for want in expected:
        found = next(
            (
                (old, new)
                for old, new in unmatched
                if old.start == script.at(want.from_)
                and new.start == script.at(want.to)
                and want.service in (None, new.service_key)
            ),
            None,
        )
        if found is None:
            have = "; ".join(_move(script, old, new) for old, new in unmatched) or "none"
            wanted = f"{_local(script, script.at(want.from_))} to {_local(script, script.at(want.to))}"
            reasons.append(f"expected a booking moved from {wanted}; moved: {have}")
        else:
            unmatched.remove(found)
    if not reasons:
        reasons = [f"unexpected booking moved: {_move(script, old, new)}" for old, new in unmatched]
    return reasons


def _local(script: Script, moment: datetime) -> str:
    return f"{moment.astimezone(script.zone):%a %Y-%m-%d %H:%M}"


def _describe(script: Script, booking: Booking) -> str:
    who = booking.attendee
    when = _local(script, booking.start)
    return f"{booking.service_key} {when} for {who.name} <{who.email}> ({booking.status})"


def _move(script: Script, old: Booking, new: Booking) -> str:
    return f"{new.service_key} from {_local(script, old.start)} to {_local(script, new.start)}"


def _wanted(script: Script, want: ExpectedBooking) -> str:
    parts = [want.service or "any service"]
    if want.start is not None:
        parts.append(_local(script, script.at(want.start)))
    if want.name is not None:
        parts.append(f"for {want.name}")
    if want.email is not None:
        parts.append(f"<{want.email}>")
    if want.phone is not None:
        parts.append(want.phone)
    if want.status is not None:
        parts.append(f"({want.status})")
    return " ".join(parts)


def _arguments(arguments: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")" if arguments else ""


def _texts(texts: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} to {to}" for to, kind in texts) or "none"
