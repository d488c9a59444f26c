"""The scripted-call format (`fixtures/calls/*.yaml`): one real situation per file, checked on load.

A script pins everything a call depends on — the business, "now", the caller's number, what the
calendar already holds — then lists the caller's lines, what the assistant does at each (so a
script replays with no model at all), and what must be true afterwards. Scripts are written by
people, so every problem is reported as one sentence naming the file and the field
(`ScriptInvalid`), never a traceback.

Tool results carry ids that are random per call, so replayed assistant steps and between-turn
actions refer to them symbolically (`REFERENCE_HELP`); `resolve` fills them in from the tool
results the call has produced so far.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.businesses import DEMO_BUSINESSES_FILE, BusinessProfile, load_directory
from agent.errors import RuntimeFailure
from agent.prompting import EXTRA_ERROR_CODES
from agent.tools import TOOL_ERROR_CODES, TOOLS
from agent.yamldoc import load_yaml_model
from booking.errors import ALL_ERRORS

SHIPPED_SCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "calls"

REFERENCE_HELP = "$slots[N], $bookings[N], $proposal, $spoken or $code"
_REFERENCE = re.compile(r"\$(?:(slots|bookings)\[(\d+)\]|(proposal|spoken|code))(?![\w\[])")
_ANY_REFERENCE = re.compile(r"\$[A-Za-z_]\w*(?:\[\d*\]?)?")
_LIST_ID = {"slots": "slot_id", "bookings": "booking_id"}
_SCALAR_KEY = {"proposal": "proposal_id", "spoken": "spoken"}

# Every `error` a tool result can carry: the booking errors, the phrase-only codes, and the tools' own.
REFUSAL_CODES = frozenset(
    {error.code for error in ALL_ERRORS} | set(EXTRA_ERROR_CODES) | set(TOOL_ERROR_CODES)
)
CalendarOperation = Literal[
    "services", "time_zone", "slots", "hold", "release", "create", "get", "find", "reschedule", "cancel"
]


class ScriptInvalid(RuntimeFailure):
    """A scripted call that cannot be run as written; the message names the file and the field."""

    exit_code = 2


class UnresolvedReference(Exception):
    """A `$reference` that the call's tool results (or texts) so far cannot fill in."""


def _check_references(text: str) -> str:
    for found in _ANY_REFERENCE.finditer(text):
        if not _REFERENCE.fullmatch(found.group()):
            raise ValueError(f"unknown reference {found.group()!r}; use {REFERENCE_HELP}")
    return text


def _check_nested_references(value: Any) -> None:
    if isinstance(value, str):
        _check_references(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _check_nested_references(item)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Caller(_Strict):
    """Who is calling: the caller ID the phone network gave (null when withheld)."""

    number: str | None = Field(pattern=r"^\+[1-9]\d{6,14}$")
    attestation: str | None = None


class ExistingBooking(_Strict):
    """A booking the calendar holds before the call starts (made through the calendar itself)."""

    service: str
    start: datetime
    name: str
    email: str
    phone: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$")


class StartingCalendar(_Strict):
    bookings: tuple[ExistingBooking, ...] = ()


class BeforeTurn(_Strict):
    """What happens in the world between the previous caller line and this one."""

    book_elsewhere: str | None = Field(
        None, description="An offered slot (a reference such as $slots[0]) that someone else books."
    )
    calendar_fails: tuple[CalendarOperation, ...] = Field(
        (), description="Calendar operations that fail (calendar unavailable) from this turn on."
    )

    @field_validator("book_elsewhere")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\$slots\[\d+\]", value):
            raise ValueError(f"book_elsewhere takes a slot reference such as $slots[0], got {value!r}")
        return value


class PlannedCall(_Strict):
    tool: str
    arguments: dict[str, Any]


class Step(_Strict):
    """One assistant message in replay: words to say, tool calls in order, or both."""

    say: str | None = None
    calls: tuple[PlannedCall, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, value: object) -> object:
        """`{say: "...", check_availability: {when: ...}}`: every key but `say` is a tool name."""
        if not isinstance(value, Mapping):
            raise ValueError("an assistant step is a mapping such as {check_availability: {when: ...}}")
        calls = []
        for key, arguments in value.items():
            if key == "say":
                continue
            model = TOOLS.get(str(key))
            if model is None:
                raise ValueError(f"unknown tool {key!r}; the tools are {', '.join(TOOLS)}")
            arguments = {} if arguments is None else arguments
            if not isinstance(arguments, Mapping):
                raise ValueError(f"the arguments of {key} must be a mapping")
            try:
                model.model_validate(arguments)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                if first["type"] == "extra_forbidden":
                    raise ValueError(f"{key} has no argument {field!r}") from exc
                raise ValueError(f"{key} argument {field}: {first['msg']}") from exc
            _check_nested_references(arguments)
            calls.append({"tool": key, "arguments": dict(arguments)})
        if "say" not in value and not calls:
            raise ValueError("an assistant step needs `say` or a tool call")
        return {"say": value.get("say"), "calls": calls}

    @field_validator("say")
    @classmethod
    def _say(cls, value: str | None) -> str | None:
        return None if value is None else _check_references(value)


class Turn(_Strict):
    """One caller line, what happens just before it, and (for replay) what the assistant does."""

    caller: str = Field(min_length=1)
    audio: Path | None = Field(None, description="A WAV of the line, for the audio path.")
    before: BeforeTurn | None = None
    agent: tuple[Step, ...] = ()

    @field_validator("caller")
    @classmethod
    def _caller(cls, value: str) -> str:
        return _check_references(value)


class ExpectedBooking(_Strict):
    """A booking as it stands in the calendar at the end; only the fields given are checked."""

    service: str | None = None
    start: datetime | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    status: Literal["accepted", "pending", "cancelled"] | None = None


class ExpectedMove(_Strict):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    service: str | None = None


class FreeTime(_Strict):
    service: str
    start: datetime


class FinalCalendar(_Strict):
    """What the call did to the calendar, exactly: `{}` means it changed nothing."""

    created: tuple[ExpectedBooking, ...] = ()
    moved: tuple[ExpectedMove, ...] = ()
    cancelled: tuple[ExpectedBooking, ...] = ()
    free: tuple[FreeTime, ...] = Field((), description="Times that must be bookable again at the end.")


class ExpectedText(_Strict):
    to: str
    kind: Literal["code"] = "code"


class ExpectedTool(_Strict):
    tool: str
    arguments: dict[str, Any]


class Expect(_Strict):
    """What must be true after the call; `calendar` always, the rest when given."""

    tools: tuple[ExpectedTool, ...] = ()
    refusals: tuple[str, ...] | None = None
    says: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    calendar: FinalCalendar
    sms: tuple[ExpectedText, ...] | None = None
    action: Literal["transfer", "hang_up", "none"] | None = None
    max_turns: int | None = Field(None, gt=0)

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: object) -> object:
        """`- end_call` or `- propose_booking: {name: Jane Doe}`: a tool and an argument subset."""
        if not isinstance(value, Sequence) or isinstance(value, str):
            return value
        parsed = []
        for item in value:
            if isinstance(item, str):
                item = {item: {}}
            if not isinstance(item, Mapping) or len(item) != 1:
                raise ValueError("each expected tool is a name, or {name: {argument: value}}")
            [(tool, arguments)] = item.items()
            if tool not in TOOLS:
                raise ValueError(f"unknown tool {tool!r}; the tools are {', '.join(TOOLS)}")
            parsed.append({"tool": tool, "arguments": dict(arguments or {})})
        return parsed

    @field_validator("refusals")
    @classmethod
    def _codes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = sorted(set(value or ()) - REFUSAL_CODES)
        if unknown:
            raise ValueError(f"unknown refusal code {unknown[0]!r}")
        return value


def _business_kind(value: object) -> str:
    return "inline" if isinstance(value, Mapping | BusinessProfile) else "file"


# A path, or a profile written inline: told apart up front, so an error names the inline field.
BusinessSource = Annotated[
    Annotated[Path, Tag("file")] | Annotated[BusinessProfile, Tag("inline")],
    Discriminator(_business_kind),
]


class ScriptFile(_Strict):
    """The YAML document of one scripted call."""

    description: str = Field(min_length=1)
    business: BusinessSource | None = Field(
        None, description="A businesses YAML file (its first business), or a profile inline."
    )
    time_zone: str | None = None
    now: datetime
    caller: Caller
    calendar: StartingCalendar = StartingCalendar()
    turns: tuple[Turn, ...] = Field(min_length=1)
    hangup: bool = False
    expect: Expect

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{value!r} is not an IANA time zone such as America/New_York") from exc
        return value


@dataclass(frozen=True)
class Script:
    """A loaded script: its file, its name (the file's stem), the document and the business it calls."""

    path: Path
    document: ScriptFile
    business: BusinessProfile

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def zone(self) -> ZoneInfo:
        return self.business.zone

    def at(self, moment: datetime) -> datetime:
        """A script's date-time as an instant: one without an offset is the business's local time."""
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.zone)


def load_script(path: Path) -> Script:
    """Read and validate one scripted call; any problem is one `ScriptInvalid` sentence."""
    parsed = load_yaml_model(path, ScriptFile, label=str(path), error=ScriptInvalid)
    business = _business(path, parsed)
    for turn in parsed.turns:
        if turn.audio is not None and not (path.parent / turn.audio).is_file():
            raise ScriptInvalid(f"{path} is invalid at turns: the audio file {turn.audio} does not exist.")
    known = {s.key for s in business.services}
    expected = parsed.expect.calendar
    named: list[str | None] = [b.service for b in parsed.calendar.bookings]
    named += [b.service for b in (*expected.created, *expected.cancelled)]
    named += [m.service for m in expected.moved] + [f.service for f in expected.free]
    for service in named:
        if service is not None and service not in known:
            raise ScriptInvalid(
                f"{path} names the service {service!r}, which {business.name} does not offer "
                f"({', '.join(sorted(known))})."
            )
    return Script(path, parsed, business)


def _business(path: Path, document: ScriptFile) -> BusinessProfile:
    if isinstance(document.business, BusinessProfile):
        business = document.business
    else:
        file = DEMO_BUSINESSES_FILE if document.business is None else path.parent / document.business
        if not file.is_file():
            raise ScriptInvalid(f"{path} is invalid at business: {document.business} does not exist.")
        try:
            business = load_directory(file).default
        except RuntimeFailure as failure:
            raise ScriptInvalid(f"{path} uses a business file that does not load: {failure}") from failure
    if document.time_zone is not None:
        business = business.model_copy(update={"time_zone": document.time_zone})
    return business


def script_paths(paths: Sequence[Path]) -> list[Path]:
    """The script files named: a directory stands for its `*.yaml` files, in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob("*.yaml")))
        elif path.is_file():
            found.append(path)
        else:
            raise ScriptInvalid(f"{path} does not exist.")
    if not found:
        raise ScriptInvalid(f"There are no scripted calls (*.yaml) in {', '.join(map(str, paths))}.")
    return found


def resolve(text: str, results: Sequence[Mapping[str, Any]], codes: Sequence[str]) -> str:
    """Fill the references in `text` from the latest tool result carrying each key, or the last code."""
    return _REFERENCE.sub(lambda match: _value(match, results, codes), text)


def resolve_arguments(
    arguments: Mapping[str, Any], results: Sequence[Mapping[str, Any]], codes: Sequence[str]
) -> dict[str, Any]:
    """Tool arguments with every string's references filled in."""
    return {
        key: resolve(value, results, codes)
        if isinstance(value, str)
        else resolve_arguments(value, results, codes)
        if isinstance(value, Mapping)
        else value
        for key, value in arguments.items()
    }


def _value(match: re.Match[str], results: Sequence[Mapping[str, Any]], codes: Sequence[str]) -> str:
    listed, index, scalar = match.groups()
    if scalar == "code":
        if not codes:
            raise UnresolvedReference("$code: no code has been texted in this call")
        return codes[-1]
    key = listed or _SCALAR_KEY[scalar]
    carrying = next((r for r in reversed(results) if key in r), None)
    if carrying is None:
        raise UnresolvedReference(f"{match.group()}: no tool result has carried {key} yet")
    if scalar is not None:
        return str(carrying[key])
    items = carrying[listed]
    if int(index) >= len(items):
        raise UnresolvedReference(f"{match.group()}: the latest {listed} list has only {len(items)}")
    return str(items[int(index)][_LIST_ID[listed]])
