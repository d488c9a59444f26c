"""The intermediate representation between grammar and resolution.

The grammar turns words into *atoms* (each one thing the caller said about time: "Tuesday", "the
15th", "after lunch", "at 2:30") and *marks* (how those things relate: "or", "except", "no wait").
Atoms do not know what today is; `_resolve` gives them dates against `now`. Keeping the two apart
is what lets "a week from Thursday" reuse the meaning of "Thursday", and exclusions reuse the
meaning of anything that can be included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Meridiem = Literal["am", "pm", "24h"] | None


@dataclass(frozen=True, slots=True)
class Clock:
    """A clock reading as said. `hour` is 1-12 unless `meridiem` is "24h" (0-24, 24 = midnight)."""

    hour: int
    minute: int = 0
    meridiem: Meridiem = None


@dataclass(frozen=True, slots=True)
class At:
    """A time of day: "at 2:30" (an instant) or "around 3" (an hour either side)."""

    clock: Clock
    approx: bool = False


@dataclass(frozen=True, slots=True)
class Part:
    """A named part of the day ("morning", "after lunch"); `plural` for "mornings"."""

    name: str
    plural: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    """A stretch of the day: "between 2 and 4", "after 3" (no end), "before noon" (no start)."""

    start: Clock | None
    end: Clock | None


@dataclass(frozen=True, slots=True)
class RelDay:
    """A day counted from today: 0 today, 1 tomorrow, -1 yesterday."""

    offset: int


WeekdayMode = Literal["bare", "this", "last", "after_next"]


@dataclass(frozen=True, slots=True)
class Weekday:
    """A day of the week (0 = Monday) and how it was qualified ("this", "last", "after next")."""

    day: int
    mode: WeekdayMode = "bare"
    plural: bool = False


@dataclass(frozen=True, slots=True)
class DayOfMonth:
    """A day number without a month: "the 15th"."""

    day: int


@dataclass(frozen=True, slots=True)
class Date:
    """A calendar date: "April 5th", "March 3rd 1980"."""

    month: int
    day: int
    year: int | None = None


@dataclass(frozen=True, slots=True)
class MonthName:
    """A whole named month: "in May", "mid-April"."""

    month: int
    year: int | None = None


@dataclass(frozen=True, slots=True)
class MonthRef:
    """A month counted from this one: 0 "this month", 1 "next month"."""

    offset: int


@dataclass(frozen=True, slots=True)
class WeekRef:
    """A Monday-start week counted from this one: 1 "next week", 2 "the week after next"."""

    offset: int


@dataclass(frozen=True, slots=True)
class WeekOf:
    """The Monday-start week holding a day: "the week of the 14th"."""

    base: tuple[Atom, ...]


@dataclass(frozen=True, slots=True)
class Weekend:
    """Saturday and Sunday: 0 the coming weekend, 1 "next weekend"."""

    offset: int


PeriodPartName = Literal[
    "early", "mid", "late", "end", "rest", "week1", "week2", "week3", "week4", "last_week"
]


@dataclass(frozen=True, slots=True)
class PeriodPart:
    """Part of a week or month: "early next week", "the end of June", "the first week of May"."""

    part: PeriodPartName
    unit: Literal["week", "month"] | None = None


@dataclass(frozen=True, slots=True)
class NthWeekday:
    """ "The first Monday of next month": `n` 1-5, or -1 for the last one."""

    n: int
    day: int


@dataclass(frozen=True, slots=True)
class WeekdayClass:
    """Weekdays (Monday-Friday) or weekend days, as a filter: "any weekday next week"."""

    weekend: bool


@dataclass(frozen=True, slots=True)
class AnyDay:
    """ "Any day", "anytime": no constraint by itself, but a horizon when nothing else is said."""


@dataclass(frozen=True, slots=True)
class Shift:
    """A day moved from another: "a week from Thursday", "in 3 days", "the day after".

    The result is the days `days .. days + spread` (plus `months`) after each day of `base`.
    """

    base: tuple[Atom, ...]
    days: int = 0
    months: int = 0
    spread: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    """From now for a while: "within two weeks", "in the next couple of days", "as soon as possible"."""

    days: int = 0
    months: int = 0


@dataclass(frozen=True, slots=True)
class DayRange:
    """ "Monday to Wednesday", "by Friday" (from today), "after Tuesday" (no `last`)."""

    first: tuple[Atom, ...]
    last: tuple[Atom, ...] | None
    exclusive_first: bool = False


@dataclass(frozen=True, slots=True)
class Moment:
    """Minutes from now: "in two hours" (`spread` minutes either side)."""

    minutes: int
    spread: int = 30


Atom = (
    At
    | Part
    | Range
    | RelDay
    | Weekday
    | DayOfMonth
    | Date
    | MonthName
    | MonthRef
    | WeekRef
    | WeekOf
    | Weekend
    | PeriodPart
    | NthWeekday
    | WeekdayClass
    | AnyDay
    | Shift
    | Span
    | DayRange
    | Moment
)

MarkKind = Literal["or", "and", "boundary", "correct", "neg", "neg_after", "neg_either", "off_topic"]


@dataclass(frozen=True, slots=True)
class Mark:
    """How atoms relate: alternatives, clause ends, corrections, exclusions, off-topic clauses."""

    kind: MarkKind


Event = Atom | Mark

TIME_OF_DAY = (At, Part, Range)


def is_time_of_day(atom: Atom) -> bool:
    """True for atoms about the hour rather than the day."""
    return isinstance(atom, TIME_OF_DAY)


def slot(atom: Atom) -> str:
    """Which part of a request an atom fills; two atoms for one slot are two options."""
    if isinstance(atom, At):
        return "clock"
    if isinstance(atom, Part):
        return "part"
    if isinstance(atom, Range):
        return "range"
    if isinstance(atom, RelDay | Shift | DayRange):
        return "day"
    if isinstance(atom, Weekday):
        return "weekday"
    if isinstance(atom, DayOfMonth | Date):
        return "date"
    if isinstance(atom, MonthName | MonthRef):
        return "month"
    if isinstance(atom, WeekRef | WeekOf | Weekend):
        return "week"
    if isinstance(atom, PeriodPart):
        return "period_part"
    if isinstance(atom, NthWeekday):
        return "nth"
    if isinstance(atom, WeekdayClass):
        return "weekday_class"
    if isinstance(atom, Span):
        return "span"
    if isinstance(atom, Moment):
        return "moment"
    return "any"


def level(atom: Atom) -> int:
    """How coarse a day-level atom is (1 day, 2 week, 3 month); 0 for time of day.

    A correction replaces what it is as coarse as: "next week Tuesday, no, Wednesday" keeps the
    week, "tomorrow, no wait, next week" drops tomorrow.
    """
    if is_time_of_day(atom) or isinstance(atom, Moment):
        return 0
    if isinstance(atom, WeekRef | WeekOf | Weekend) or (isinstance(atom, PeriodPart) and atom.unit == "week"):
        return 2
    if isinstance(atom, MonthName | MonthRef | Span | PeriodPart):
        return 3
    return 1
