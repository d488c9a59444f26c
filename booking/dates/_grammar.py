"""Tokens -> a sequence of atoms and marks (see `_ir`).

A hand-written, left-to-right grammar: at each token the rules are tried from the most specific
("between 2 and 4", "the first week of May") to the least ("morning"); a rule that matches emits
atoms and moves on, a token no rule wants is skipped (that is how fillers, names and small talk
fall away). Sub-parsers (`clock_at`, `day_at`, `quantity_at`) are pure lookups that return what
they recognised and where it ended, so rules compose: "a week from <day>", "between <clock> and
<clock>", "<clock> on <day>".

Numbers are the dangerous part: "my two kids", "he's six", "ends in 1530" must stay numbers. A
bare number becomes an hour only with a cue ("at", "around", "after", "ish", "o'clock", "pm",
"in the morning", a minute part) or right next to a day ("Eleven on the 24th", "Monday 10").
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from booking.dates._ir import (
    AnyDay,
    At,
    Atom,
    Clock,
    Date,
    DayOfMonth,
    DayRange,
    Event,
    Mark,
    MarkKind,
    Meridiem,
    Moment,
    MonthName,
    MonthRef,
    NthWeekday,
    Part,
    PeriodPart,
    PeriodPartName,
    Range,
    RelDay,
    Shift,
    Span,
    Weekday,
    WeekdayClass,
    WeekdayMode,
    Weekend,
    WeekOf,
    WeekRef,
    is_time_of_day,
)
from booking.dates._lexicon import (
    AFTER_BARE_HOUR,
    APPROX_WORDS,
    BOUNDARIES,
    CORRECTIONS,
    MONTH_CUES,
    MONTHS,
    NEGATIONS_AFTER,
    NEGATIONS_BEFORE,
    NEGATIONS_EITHER,
    NOT_SCHEDULING,
    NOUNS_AFTER_NUMBER,
    PART_WORDS,
    PARTS,
    PERIOD_PARTS,
    UNIT_DAYS,
    UNIT_MINUTES,
    WEEKDAY_PLURALS,
    WEEKDAYS,
)
from booking.dates._tokens import Tok

_NOON = Clock(12, 0, "24h")
_MIDNIGHT = Clock(24, 0, "24h")
_LUNCH_START = Clock(11, 30, "24h")
_TODAY = RelDay(0)
_NOT_BEFORE_HOUR = frozenset(
    [
        "for",
        "my",
        "the",
        "of",
        "than",
        "his",
        "her",
        "our",
        "their",
        "every",
        "each",
        "ages",
        "age",
        "aged",
        "in",
    ]
)
_TO_WORDS = frozenset({"to", "till", "til", "until", "through", "thru", "and"})
_BEFORE_WORDS = frozenset({"before", "until", "till", "til", "by"})
_AFTER_PARTS = {
    "lunch": "after_lunch",
    "lunchtime": "after_lunch",
    "work": "after_work",
    "school": "after_school",
}
_LAST_WORDS = frozenset({"last", "past", "previous"})
_NTH = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1, "final": -1}
_WEEK_OF_MONTH: dict[int, PeriodPartName] = {1: "week1", 2: "week2", 3: "week3", 4: "week4", -1: "last_week"}
_ASAP = (
    ("as", "soon", "as", "possible"),
    ("as", "soon", "as", "you", "can"),
    ("as", "early", "as", "possible"),
    ("asap",),
    ("earliest",),
    ("soonest",),
    ("first", "available"),
    ("next", "available"),
    ("first", "availability"),
    ("next", "availability"),
    ("first", "opening"),
    ("next", "opening"),
)
_MERIDIEM_PHRASES: tuple[tuple[tuple[str, ...], Meridiem], ...] = (
    (("in", "the", "morning"), "am"),
    (("in", "the", "am"), "am"),
    (("in", "the", "afternoon"), "pm"),
    (("in", "the", "evening"), "pm"),
    (("in", "the", "pm"), "pm"),
    (("at", "night"), "pm"),
)


def _by_first_word(*phrases: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    table: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        table.setdefault(phrase[0], []).append(phrase)
    return {word: tuple(group) for word, group in table.items()}


_NEGATIONS: tuple[tuple[dict[str, tuple[tuple[str, ...], ...]], MarkKind], ...] = (
    (_by_first_word(*NEGATIONS_AFTER), "neg_after"),
    (_by_first_word(*NEGATIONS_EITHER), "neg_either"),
    (_by_first_word(*NEGATIONS_BEFORE), "neg"),
)
_CORRECTIONS = _by_first_word(*CORRECTIONS)
_BOUNDARIES = _by_first_word(*BOUNDARIES)
_ASAP_PHRASES = _by_first_word(*_ASAP)
_WITHIN = _by_first_word(
    ("within", "the", "next"),
    ("in", "the", "next"),
    ("over", "the", "next"),
    ("during", "the", "next"),
    ("in", "the", "coming"),
    ("the", "next"),
    ("next",),
    ("within",),
    ("in",),
)
# Words a rule can start at; any other word (that is not a number) is skipped at once.
_STARTERS = frozenset(
    {phrase[0] for table, _ in _NEGATIONS for phrase in (p for group in table.values() for p in group)}
    | set(_CORRECTIONS)
    | set(_BOUNDARIES)
    | set(_ASAP_PHRASES)
    | set(_WITHIN)
    | NOT_SCHEDULING
    | APPROX_WORDS
    | set(WEEKDAYS)
    | set(WEEKDAY_PLURALS)
    | set(MONTHS)
    | set(PART_WORDS)
    | set(PERIOD_PARTS)
    | set(_NTH)
    | set(
        [
            "or",
            "and",
            "if",
            "not",
            "out",
            "no",
            "between",
            "from",
            "at",
            "after",
            "past",
            "later",
            "earlier",
            "before",
            "until",
            "till",
            "til",
            "by",
            "up",
            "give",
            "the",
            "towards",
            "toward",
            "midweek",
            "mid",
            "a",
            "an",
            "couple",
            "few",
            "several",
            "today",
            "tonight",
            "tomorrow",
            "tomorow",
            "tommorow",
            "tomorrows",
            "yesterday",
            "tmrw",
            "overmorrow",
            "day",
            "week",
            "this",
            "next",
            "coming",
            "last",
            "previous",
            "following",
            "weekend",
            "weekends",
            "weekday",
            "weekdays",
            "any",
            "anytime",
            "anyday",
            "whenever",
            "on",
            "first",
            "early",
            "late",
            "end",
            "close",
            "am",
            "pm",
            "noon",
            "midday",
            "midnight",
            "half",
            "quarter",
            "in",
            "within",
            "over",
            "during",
            "sometime",
        ]
    )
)


class ClockHit(NamedTuple):
    clock: Clock
    end: int
    approx: bool
    bare: bool


class DayHit(NamedTuple):
    atoms: tuple[Atom, ...]
    end: int


class Quantity(NamedTuple):
    value: int
    fuzzy: str
    end: int


def parse(toks: list[Tok]) -> list[Event]:
    """Read the whole utterance into events."""
    return _Parser(toks).run()


class _Parser:
    __slots__ = ("cue_end", "last_day", "last_end", "n", "out", "toks", "words")

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.words = tuple(t.word for t in toks)
        self.n = len(toks)
        self.out: list[Event] = []
        self.last_day: tuple[Atom, ...] = ()
        self.last_end = -1
        self.cue_end = -1

    # ----------------------------------------------------------------- helpers

    def w(self, i: int) -> str:
        return self.words[i] if 0 <= i < self.n else ""

    def at_phrase(self, i: int, words: tuple[str, ...]) -> bool:
        return self.words[i : i + len(words)] == words

    def first_phrase(self, i: int, phrases: dict[str, tuple[tuple[str, ...], ...]]) -> int:
        for phrase in phrases.get(self.w(i), ()):
            if self.words[i : i + len(phrase)] == phrase:
                return len(phrase)
        return 0

    def mark(self, kind: MarkKind) -> None:
        self.out.append(Mark(kind))

    def emit(self, atoms: tuple[Atom, ...], start: int, end: int) -> int:
        day_atoms = tuple(a for a in atoms if not is_time_of_day(a))
        if day_atoms:
            adjacent = (
                self.last_end >= start - 1
                and self.last_day
                and self.out
                and not isinstance(self.out[-1], Mark)
            )
            self.last_day = (self.last_day + day_atoms) if adjacent else day_atoms
        self.out.extend(atoms)
        self.last_end = end
        return end

    def last_atom(self) -> Atom | None:
        for event in reversed(self.out):
            if not isinstance(event, Mark):
                return event
        return None

    # ----------------------------------------------------------------- driver

    def run(self) -> list[Event]:
        i = 0
        while i < self.n:
            j = self.step(i)
            i = j if j > i else i + 1
        return self.out

    def step(self, i: int) -> int:
        t = self.toks[i]
        if t.sep:
            self.mark("boundary")
            return i + 1
        if t.word not in _STARTERS and t.num is None and t.ordinal is None:
            return i + 1
        for rule in (self.markers, self.cued_time, self.period, self.duration, self.day, self.part):
            j = rule(i)
            if j > i:
                return j
        return self.free_clock(i)

    # ----------------------------------------------------------------- marks

    def markers(self, i: int) -> int:
        w = self.w(i)
        if w in NOT_SCHEDULING:
            self.mark("off_topic")
            return i + 1
        if w == "or" and self.w(i + 1) != "rather":
            self.mark("or")
            return i + 1
        if w == "and":
            self.mark("and")
            return i + 1
        if w == "if" and self.w(i + 1) == "not":
            self.mark("or")
            return i + 2
        if w == "not" and self.w(i + 1) in ("sure", "really", "too", "much", "that", "a"):
            return i + 2
        if w == "out" and self.w(i - 1) not in ("is", "im", "be", "are", "totally", "definitely"):
            return i + 1
        if w in ("no", "not") and self.w(i + 1) in ("later", "earlier", "before", "after", "until", "till"):
            return 0
        for phrases, kind in _NEGATIONS:
            k = self.first_phrase(i, phrases)
            if k:
                self.mark(kind)
                return i + k
        if w == "no" and (
            self.w(i + 1) in WEEKDAY_PLURALS
            or self.w(i + 1) in ("mornings", "afternoons", "evenings", "weekends")
        ):
            self.mark("neg")
            return i + 1
        k = self.first_phrase(i, _CORRECTIONS)
        if k or w == "no":
            self.mark("correct")
            self.cue_end = i + max(k, 1)
            return i + max(k, 1)
        k = self.first_phrase(i, _BOUNDARIES)
        if k:
            self.mark("boundary")
            self.cue_end = i + k
            return i + k
        return 0

    # ----------------------------------------------------------------- clock times

    def clock_at(self, i: int, *, minutes_to: bool = True) -> ClockHit | None:
        """A clock time starting at `i`: "2:30 pm", "half past nine", "ten thirty", "noon", "3"."""
        if i >= self.n:
            return None
        t = self.toks[i]
        w = t.word
        if w == "a" and self.w(i + 1) in ("quarter", "half"):
            return self.clock_at(i + 1, minutes_to=minutes_to)
        clock: Clock | None = None
        j = i + 1
        bare = False
        if w in ("noon", "midday"):
            clock = _NOON
        elif w == "midnight":
            clock = _MIDNIGHT
        elif w in ("half", "quarter") or (t.num is not None and t.minute is None and 1 <= t.num <= 30):
            past = self._minutes_past(i, minutes_to)
            if past is not None:
                clock, j = past
        if clock is None and t.num is not None:
            clock, j, bare = self._hour_minutes(i, t)
        if clock is None:
            return None
        return self._clock_suffix(clock, j, bare)

    def _minutes_past(self, i: int, minutes_to: bool) -> tuple[Clock, int] | None:
        t = self.toks[i]
        w = t.word
        minutes = 30 if w == "half" else 15 if w == "quarter" else t.num
        if minutes is None:
            return None
        j = i + 1
        if self.w(j) in ("minutes", "minute", "mins"):
            j += 1
        rel = self.w(j)
        if rel in ("past", "after"):
            sign = 1
        elif rel in ("to", "of", "till", "til", "before") and (minutes_to or w in ("half", "quarter")):
            if w == "half" or (j == i + 1 and w != "quarter" and minutes not in (5, 10, 20, 25)):
                return None
            sign = -1
        elif w == "half" and self._hour_value(j) is not None and self.w(j + 1) not in UNIT_MINUTES:
            hour = self._hour_value(j)
            assert hour is not None
            return Clock(hour, 30), j + 1
        else:
            return None
        hour = self._hour_value(j + 1)
        if hour is None:
            return None
        if sign > 0:
            return Clock(hour, minutes), j + 2
        return Clock(hour - 1 if hour > 1 else 12, 60 - minutes), j + 2

    def _hour_value(self, i: int) -> int | None:
        if i >= self.n:
            return None
        t = self.toks[i]
        if t.word in ("noon", "midday"):
            return 12
        if t.num is not None and t.minute is None and 1 <= t.num <= 12:
            return t.num
        return None

    def _hour_minutes(self, i: int, t: Tok) -> tuple[Clock | None, int, bool]:
        num = t.num
        assert num is not None
        if t.minute is not None:
            if num > 24 or t.minute > 59:
                return None, i, False
            return Clock(num, t.minute, "24h" if num > 12 or num == 0 else None), i + 1, False
        if len(t.word) == 4 and not t.spelled and self.w(i - 1) == "at":
            hour, minute = divmod(num, 100)
            if hour <= 23 and minute <= 59:
                return Clock(hour, minute, "24h"), i + 1, False
            return None, i, False
        if num > 24:
            return None, i, False
        nxt = self.toks[i + 1] if i + 1 < self.n else None
        if nxt is not None and nxt.word == "hundred" and num <= 24:
            j = i + 2
            if self.w(j) == "hours":
                j += 1
            return Clock(num, 0, "24h"), j, False
        if nxt is not None and nxt.word in ("oh", "o") and i + 2 < self.n:
            m = self.toks[i + 2].num
            if m is not None and 0 <= m <= 9 and num <= 12:
                return Clock(num, m), i + 3, False
        if (
            nxt is not None
            and nxt.num is not None
            and nxt.minute is None
            and 10 <= nxt.num <= 59
            and (num <= 12 or self.w(i - 1) == "at")
            and self.w(i + 2) not in NOUNS_AFTER_NUMBER
            and (nxt.spelled or t.spelled or nxt.word.isdigit())
        ):
            meridiem: Meridiem = "24h" if num > 12 else None
            return Clock(num, nxt.num, meridiem), i + 2, False
        if num > 12:
            if self.w(i + 1) in ("hours", "hundred"):
                return Clock(num, 0, "24h"), i + 2, False
            return None, i, False
        return Clock(num, 0), i + 1, True

    def _clock_suffix(self, clock: Clock, j: int, bare: bool) -> ClockHit:
        approx = False
        for _ in range(3):
            w = self.w(j)
            if w in ("am", "pm") and clock.meridiem != "24h":
                if clock.hour <= 12:
                    clock = Clock(clock.hour, clock.minute, "am" if w == "am" else "pm")
                bare = False
                j += 1
            elif w == "oclock":
                bare = False
                j += 1
            elif w == "ish":
                approx, bare = True, False
                j += 1
            elif w == "or" and self.w(j + 1) == "so":
                approx, bare = True, False
                j += 2
            elif w == "sharp" or (w == "on" and self.at_phrase(j, ("on", "the", "dot"))):
                bare = False
                j += 1 if w == "sharp" else 3
            elif w in ("tonight", "noon") or (w == "this" and self.w(j + 1) in PART_WORDS):
                bare = False
                break
            else:
                for phrase, meridiem in _MERIDIEM_PHRASES:
                    if w == phrase[0] and self.at_phrase(j, phrase):
                        if clock.meridiem is None:
                            clock = Clock(clock.hour, clock.minute, meridiem)
                        bare = False
                        j += len(phrase)
                        break
                else:
                    break
        return ClockHit(clock, j, approx, bare)

    def _range_tail(self, first: ClockHit) -> tuple[Clock, int] | None:
        """ "... to 4", "... till 5:30" after a clock."""
        if self.w(first.end) in _TO_WORDS and self.w(first.end) != "and":
            second = self.clock_at(first.end + 1, minutes_to=False)
            if second is not None:
                return second.clock, second.end
        return None

    def cued_time(self, i: int) -> int:
        w = self.w(i)
        if w == "between":
            return self._between(i)
        if w == "from":
            return self._from(i)
        if w == "at" and self.w(i + 1) == "night":
            return self.emit((Part("night"),), i, i + 2)
        if w in ("after", "past") or self.at_phrase(i, ("later", "than")):
            k = 1 if w != "later" else 2
            return self._after(i, i + k)
        if w in ("no", "not") and self.w(i + 1) in ("earlier", "before"):
            return self._after(i, i + (3 if self.w(i + 2) == "than" else 2))
        if w == "earlier" and self.w(i + 1) == "than":
            return self._before(i, i + 2)
        if w in ("no", "not") and self.w(i + 1) in ("later", "after", "until", "till"):
            return self._before(i, i + (3 if self.w(i + 2) == "than" else 2))
        if w in _BEFORE_WORDS or self.at_phrase(i, ("up", "to")):
            return self._before(i, i + (2 if w == "up" else 1))
        if w in APPROX_WORDS or self.at_phrase(i, ("give", "or", "take")):
            hit = self.clock_at(i + 1)
            if hit is not None:
                return self.emit((At(hit.clock, approx=True),), i, hit.end)
            return 0
        if w == "at":
            hit = self.clock_at(i + 1)
            if hit is not None:
                tail = self._range_tail(hit)
                if tail is not None:
                    return self.emit((Range(hit.clock, tail[0]),), i, tail[1])
                return self.emit((At(hit.clock, approx=hit.approx),), i, hit.end)
        return 0

    def _between(self, i: int) -> int:
        first = self.clock_at(i + 1, minutes_to=False)
        if first is not None and self.w(first.end) in ("and", "to", "till", "until"):
            second = self.clock_at(first.end + 1, minutes_to=False)
            if second is not None:
                return self.emit((Range(first.clock, second.clock),), i, second.end)
        return self._day_range(i, i + 1, ("and", "to", "through", "thru", "till", "until"))

    def _from(self, i: int) -> int:
        first = self.clock_at(i + 1, minutes_to=False)
        if first is not None:
            tail = self._range_tail(first) or (self._and_tail(first) if self.w(first.end) == "and" else None)
            if tail is not None:
                return self.emit((Range(first.clock, tail[0]),), i, tail[1])
            j = first.end
            if self.w(j) in ("on", "onwards", "onward", "forward"):
                j += 1
            return self.emit((Range(first.clock, None),), i, j)
        return self._day_range(i, i + 1, ("to", "through", "thru", "till", "until"))

    def _and_tail(self, first: ClockHit) -> tuple[Clock, int] | None:
        second = self.clock_at(first.end + 1, minutes_to=False)
        return (second.clock, second.end) if second is not None else None

    def _day_range(self, i: int, j: int, joiners: tuple[str, ...]) -> int:
        first = self.day_at(j)
        if first is None or self.w(first.end) not in joiners:
            return 0
        last = self.day_at(first.end + 1)
        if last is None:
            return 0
        return self.emit((DayRange(first.atoms, last.atoms),), i, last.end)

    def _after(self, i: int, j: int) -> int:
        w = self.w(j)
        if w in _AFTER_PARTS:
            return self.emit((Part(_AFTER_PARTS[w]),), i, j + 1)
        if w == "the" and self.w(j + 1) in ("morning", "afternoon"):
            start = Clock(12, 0, "24h") if self.w(j + 1) == "morning" else Clock(17, 0, "24h")
            return self.emit((Range(start, None),), i, j + 2)
        hit = self.clock_at(j, minutes_to=False)
        if hit is not None and (not hit.bare or hit.clock.hour <= 12):
            if self.w(hit.end) in UNIT_DAYS or self.w(hit.end) in UNIT_MINUTES:
                return 0
            end = hit.end
            if self.w(end) in ("on", "onwards", "onward"):
                end += 1
            return self.emit((Range(hit.clock, None),), i, end)
        day = self.day_at(j)
        if day is not None and self.w(i) == "after":
            return self.emit((DayRange(day.atoms, None, exclusive_first=True),), i, day.end)
        return 0

    def _before(self, i: int, j: int) -> int:
        w = self.w(j)
        if w in ("lunch", "lunchtime"):
            return self.emit((Range(None, _LUNCH_START),), i, j + 1)
        if w == "work":
            return self.emit((Part("before_work"),), i, j + 1)
        if w == "the" and self.w(j + 1) in ("afternoon", "evening"):
            end = Clock(12, 0, "24h") if self.w(j + 1) == "afternoon" else Clock(17, 0, "24h")
            return self.emit((Range(None, end),), i, j + 2)
        hit = self.clock_at(j, minutes_to=False)
        if hit is not None:
            if self.w(hit.end) in UNIT_DAYS or self.w(hit.end) in UNIT_MINUTES:
                return 0
            return self.emit((Range(None, hit.clock),), i, hit.end)
        day = self.day_at(j)
        if day is not None and self.w(i) in ("before", "until", "till", "til", "by"):
            exclusive = self.w(i) == "before"
            last = day.atoms if not exclusive else (Shift(day.atoms, days=-1),)
            return self.emit((DayRange((_TODAY,), last),), i, day.end)
        return 0

    def free_clock(self, i: int) -> int:
        """A clock time said without a cue word: kept only when it cannot be anything else."""
        hit = self.clock_at(i)
        if hit is None:
            return i + 1
        if hit.bare and not self._bare_hour_is_time(i, hit):
            return i + 1
        tail = self._range_tail(hit)
        if tail is not None:
            return self.emit((Range(hit.clock, tail[0]),), i, tail[1])
        return self.emit((At(hit.clock, approx=hit.approx),), i, hit.end)

    def _bare_hour_is_time(self, i: int, hit: ClockHit) -> bool:
        if self.w(i - 1) in _NOT_BEFORE_HOUR:
            return False
        if self.cue_end <= i and all(self.toks[k].sep for k in range(self.cue_end, i)):
            return self._may_end_hour(hit.end)
        last = self.last_atom()
        if last is not None and i - 2 <= self.last_end <= i and self._may_end_hour(hit.end):
            between = [self.w(k) for k in range(self.last_end, i) if not self.toks[k].sep]
            if all(w in ("on", "at") for w in between) or (
                isinstance(last, At | Range) and all(w in ("or", "and") for w in between)
            ):
                return True
        return self._day_or_hour_follows(hit.end)

    def _may_end_hour(self, end: int) -> bool:
        """Can a bare hour be followed by the token at `end` ("3 tomorrow", not "3 kids")?"""
        if end >= self.n or self.toks[end].sep:
            return True
        after = self.toks[end].word
        return after in AFTER_BARE_HOUR or after in WEEKDAYS or after in MONTHS or after in PART_WORDS

    def _day_or_hour_follows(self, end: int) -> bool:
        """ "Eleven on the 24th", "2 or 3 pm", "9, 10 or 11 on Friday": a bare hour in a list."""
        if not self._may_end_hour(end) or end >= self.n:
            return False
        after = self.w(end)
        if after in ("or", "and", "to") or self.toks[end].sep:
            nxt = self.clock_at(end + 1)
            if nxt is not None and (not nxt.bare or self._day_or_hour_follows(nxt.end)):
                return True
        if after == "on" or self.toks[end].sep:
            end += 1
        return self.day_at(end) is not None

    # ----------------------------------------------------------------- parts of the day

    def part(self, i: int) -> int:
        w = self.w(i)
        if w == "first" and self.w(i + 1) == "thing":
            j = i + 2
            if self.at_phrase(j, ("in", "the", "morning")):
                j += 3
            return self.emit((Part("first_thing"),), i, j)
        if w in ("early", "late", "mid"):
            k = i + 3 if self.at_phrase(i + 1, ("in", "the")) else i + 1
            name = f"{w}_{PART_WORDS.get(self.w(k), '')}"
            if name in PARTS:
                return self.emit((Part(name, plural=self.w(k).endswith("s")),), i, k + 1)
        if w in PART_WORDS:
            j = i + 1
            if w == "lunch" and self.w(j) == "time":
                j += 1
            return self.emit((Part(PART_WORDS[w], plural=w.endswith("s")),), i, j)
        if self.at_phrase(i, ("end", "of", "the", "day")) or self.at_phrase(i, ("close", "of", "business")):
            return self.emit((Part("end_of_day"),), i, i + 4 if w == "end" else i + 3)
        if self.at_phrase(i, ("end", "of", "day")) or self.at_phrase(i, ("last", "thing")):
            return self.emit((Part("end_of_day"),), i, i + (3 if w == "end" else 2))
        if w in ("am", "pm"):
            return self.emit((Part("morning" if w == "am" else "afternoon"),), i, i + 1)
        if w == "early" and self.w(i + 1) not in PERIOD_PARTS:
            return self.emit((Part("first_thing"),), i, i + 1)
        return 0

    # ----------------------------------------------------------------- weeks and months

    def period(self, i: int) -> int:
        j = i + 1 if self.w(i) in ("the", "towards", "toward") else i
        if self.w(j) == "the":
            j += 1
        w = self.w(j)
        if w == "midweek" or (w == "mid" and self.w(j + 1) == "week"):
            return self.emit((PeriodPart("mid", "week"),), i, j + (1 if w == "midweek" else 2))
        if w in PERIOD_PARTS:
            part = PERIOD_PARTS[w]
            k = j + 1
            if self.w(k) in ("of", "in", "on"):
                k += 1
            if self.w(k) == "the":
                k += 1
            nxt = self.w(k)
            if nxt in ("week", "month") and not self.at_phrase(k + 1, ("after", "next")):
                unit: Literal["week", "month"] = "week" if nxt == "week" else "month"
                return self.emit((PeriodPart(part, unit),), i, k + 1)
            if nxt in ("this", "next", "last", "coming") and self.w(k + 1) in ("week", "month", "weekend"):
                return self.emit((PeriodPart(part),), i, k)
            if nxt in MONTHS or (nxt == "week" and self.at_phrase(k + 1, ("after", "next"))):
                return self.emit((PeriodPart(part),), i, k)
            if part == "rest" and nxt in ("today", "tonight", "this", "tomorrow", "on"):
                return k
            return 0
        n = _NTH.get(w)
        if n is None:
            ordinal = self.toks[j].ordinal if j < self.n else None
            n = ordinal if ordinal is not None and ordinal <= 5 else None
        if n is not None:
            nxt = self.w(j + 1)
            if nxt == "week" and self.w(j + 2) in ("of", "in") and n in _WEEK_OF_MONTH:
                k = j + 3
                if self.w(k) == "the" and self.w(k + 1) == "month":
                    return self.emit((PeriodPart(_WEEK_OF_MONTH[n], "month"),), i, k + 2)
                return self.emit((PeriodPart(_WEEK_OF_MONTH[n], "month"),), i, k)
            if nxt in WEEKDAYS and self.w(j + 2) in ("of", "in"):
                k = j + 3
                if self.w(k) == "the" and self.w(k + 1) == "month":
                    return self.emit((NthWeekday(n, WEEKDAYS[nxt]), MonthRef(0)), i, k + 2)
                return self.emit((NthWeekday(n, WEEKDAYS[nxt]),), i, k)
        return 0

    # ----------------------------------------------------------------- durations

    def quantity_at(self, i: int) -> Quantity | None:
        w = self.w(i)
        if w in ("a", "an"):
            if self.w(i + 1) == "couple":
                return Quantity(2, "couple", i + (3 if self.w(i + 2) == "of" else 2))
            if self.w(i + 1) == "few":
                return Quantity(3, "few", i + 2)
            return Quantity(1, "", i + 1)
        if w == "couple":
            return Quantity(2, "couple", i + (2 if self.w(i + 1) == "of" else 1))
        if w == "few":
            return Quantity(3, "few", i + 1)
        if w == "several":
            return Quantity(4, "few", i + 1)
        t = self.toks[i] if i < self.n else None
        if t is not None and t.num is not None and t.minute is None and 0 < t.num <= 400:
            if self.w(i + 1) == "or" and i + 2 < self.n and self.toks[i + 2].num is not None:
                return Quantity(t.num, "few", i + 3)
            return Quantity(t.num, "", i + 1)
        return None

    def duration(self, i: int) -> int:
        w = self.w(i)
        if w == "in" and self.at_phrase(i + 1, ("half", "an", "hour")):
            return self.emit((Moment(30, 15),), i, i + 4)
        if w in ("in", "within", "over", "during", "the", "next", "sometime"):
            k = self.first_phrase(i, _WITHIN)
            within = k > 1 or w in ("within", "next")
            if k and self.w(i + k) in APPROX_WORDS:
                k += 1
            if k:
                q = self.quantity_at(i + k)
                if q is None and self.w(i + k) in UNIT_DAYS and self.w(i + k + 1) == "or":
                    q = Quantity(1, "", i + k)
                if q is not None:
                    return self._duration_tail(i, q, within=within, ahead=True)
        q = self.quantity_at(i)
        if q is not None and (self.w(q.end) in UNIT_DAYS or self.w(q.end) in UNIT_MINUTES):
            return self._duration_tail(i, q, within=False, ahead=False)
        k = self.first_phrase(i, _ASAP_PHRASES)
        if k:
            return self.emit((Span(days=14),), i, i + k)
        return 0

    def _duration_tail(self, i: int, q: Quantity, *, within: bool, ahead: bool) -> int:
        unit = self.w(q.end)
        j = q.end + 1
        if unit in UNIT_MINUTES:
            minutes = q.value * UNIT_MINUTES[unit]
            if self.at_phrase(j, ("and", "a", "half")):
                minutes += UNIT_MINUTES[unit] // 2
                j += 3
            if within:
                return self.emit((Moment(minutes // 2, minutes // 2),), i, j)
            if self.at_phrase(j, ("from", "now")):
                ahead = True
                j += 2
            elif self.w(j) == "ago":
                return self.emit((Moment(-minutes, 0),), i, j + 1)
            if not ahead:
                return 0
            spread = 60 if q.fuzzy else min(30, max(minutes // 2, 5))
            return self.emit((Moment(minutes, spread),), i, j)
        if unit not in UNIT_DAYS:
            return 0
        per_days, per_months = UNIT_DAYS[unit]
        days, months = q.value * per_days, q.value * per_months
        more = self.toks[j + 1].num if self.w(j) == "or" and j + 1 < self.n else None
        if more is not None and q.value < more <= q.value + 3:
            if within:
                days, months = more * per_days + (per_days == 1), more * per_months
                return self.emit((Span(days=days, months=months),), i, j + 2)
            q = Quantity(q.value, "range", q.end)
            j += 2
        if self.w(j) == "time" or self.at_phrase(j, ("s", "time")):
            j += 1 if self.w(j) == "time" else 2
        if within:
            if per_days == 1:
                days += 1
            return self.emit((Span(days=days, months=months),), i, j)
        spread = 0
        if q.fuzzy == "range":
            spread = per_days
        elif q.fuzzy and per_days == 1:
            days, spread = 2, (1 if q.fuzzy == "couple" else 2)
        elif q.fuzzy and per_days:
            spread = 3 if q.fuzzy == "couple" else 7
            days -= 1
        if self.w(j) == "ago":
            return self.emit((Shift((_TODAY,), days=-days, months=-months),), i, j + 1)
        if self.w(j) in ("from", "after") or (self.w(j) == "on" and per_days == 7):
            nxt = self.w(j + 1)
            if nxt in ("now", "here"):
                return self.emit((Shift((_TODAY,), days, months, spread),), i, j + 2)
            base = self.day_at(j + 1)
            if base is not None:
                return self.emit((Shift(base.atoms, days, months, spread),), i, base.end)
            return 0
        if per_days == 7 and not ahead:
            base = self.day_at(j)
            if base is not None and self.w(j) in ("today", "tomorrow", *WEEKDAYS):
                return self.emit((Shift(base.atoms, days, months, spread),), i, base.end)
        if ahead:
            return self.emit((Shift((_TODAY,), days, months, spread),), i, j)
        return 0

    # ----------------------------------------------------------------- days

    def day(self, i: int) -> int:
        hit = self.day_at(i)
        if hit is None:
            return 0
        if self.w(hit.end) in ("through", "thru", "to", "till", "until"):
            last = self.day_at(hit.end + 1)
            if last is not None:
                return self.emit((DayRange(hit.atoms, last.atoms),), i, last.end)
        return self.emit(hit.atoms, i, hit.end)

    def day_at(self, i: int) -> DayHit | None:
        """Something naming a day, week or month at `i` (pure: emits nothing)."""
        if i >= self.n:
            return None
        w = self.w(i)
        if w in ("today", "tonight", "tomorrow", "tomorow", "tommorow", "tomorrows", "yesterday", "tmrw"):
            if w == "tonight":
                return DayHit((_TODAY, Part("tonight")), i + 1)
            return DayHit((RelDay({"today": 0, "yesterday": -1}.get(w, 1)),), i + 1)
        if w == "overmorrow":
            return DayHit((RelDay(2),), i + 1)
        j = i + 1 if w == "the" else i
        if self.at_phrase(j, ("day", "after", "tomorrow")):
            return DayHit((RelDay(2),), j + 3)
        if self.at_phrase(j, ("day", "before", "yesterday")):
            return DayHit((RelDay(-2),), j + 3)
        if j > i or w in ("day", "week"):
            hit = self._anaphora(i, j)
            if hit is not None:
                return hit
        if w in ("this", "next", "coming", "last", "past", "previous", "following"):
            return self._qualified(i)
        if w == "the" and self.w(i + 1) in WEEKDAYS and self.at_phrase(i + 2, ("after", "next")):
            return DayHit((Weekday(WEEKDAYS[self.w(i + 1)], "after_next"),), i + 4)
        if self.at_phrase(j, ("week", "after", "next")):
            return DayHit((WeekRef(2),), j + 3)
        if self.at_phrase(j, ("week", "of")):
            base = self.day_at(j + 2)
            if base is not None:
                return DayHit((WeekOf(base.atoms),), base.end)
        if self.at_phrase(j, ("weekend", "after", "next")):
            return DayHit((Weekend(2),), j + 3)
        if self.at_phrase(j, ("month", "after", "next")):
            return DayHit((MonthRef(2),), j + 3)
        if self.w(j) in ("weekend", "weekends"):
            return DayHit((Weekend(0),), j + 1)
        if w in ("weekday", "weekdays"):
            return DayHit((WeekdayClass(weekend=False),), i + 1)
        if self.at_phrase(i, ("any", "day")) or self.at_phrase(i, ("any", "time")):
            return DayHit((AnyDay(),), i + 2)
        if w in ("anytime", "anyday", "whenever"):
            return DayHit((AnyDay(),), i + 1)
        if w in WEEKDAYS or w in WEEKDAY_PLURALS:
            return self._weekday(i, "bare")
        if w in MONTHS:
            return self._month_first(i)
        return self._ordinal_date(i)

    def _anaphora(self, i: int, j: int) -> DayHit | None:
        """ "the day after", "the next day", "the week after": relative to the last day said."""
        base = self.last_day or (_TODAY,)
        for phrase, days in (
            (("day", "after"), 1),
            (("next", "day"), 1),
            (("following", "day"), 1),
            (("day", "before"), -1),
            (("week", "after"), 7),
            (("following", "week"), 7),
        ):
            if self.at_phrase(j, phrase) and self.w(j + 2) != "next":
                k = j + 2
                if self.w(k) == "that":
                    k += 1
                if phrase[0] == "following" and not self.last_day:
                    return DayHit((WeekRef(1),) if days == 7 else (RelDay(1),), k)
                return DayHit((Shift(base, days=days),), k)
        return None

    def _qualified(self, i: int) -> DayHit | None:
        w = self.w(i)
        j = i + 1
        mode: WeekdayMode = "bare"
        offset = 1
        if w == "this" and self.w(j) == "coming":
            j += 1
        elif w == "this" and self.w(j) in _LAST_WORDS:
            mode, offset = "last", -1
            j += 1
        elif w == "this":
            mode, offset = "this", 0
        elif w in _LAST_WORDS:
            mode, offset = "last", -1
        nxt = self.w(j)
        if nxt in WEEKDAYS or nxt in WEEKDAY_PLURALS:
            return self._weekday(j, mode)
        if nxt == "week":
            return DayHit((WeekRef(offset if w != "coming" else 1),), j + 1)
        if nxt in ("weekend", "weekends"):
            return DayHit((Weekend(max(offset, 0) if mode != "last" else -1),), j + 1)
        if nxt == "month":
            return DayHit((MonthRef(offset),), j + 1)
        if w == "this" and nxt in PART_WORDS:
            return DayHit((_TODAY, Part(PART_WORDS[nxt])), j + 1)
        if nxt in MONTHS:
            hit = self._month_first(j, cued=True)
            if hit is not None and mode == "last":
                return DayHit((Shift(hit.atoms, months=-12),), hit.end)
            return hit
        return None

    def _weekday(self, i: int, mode: WeekdayMode) -> DayHit:
        w = self.w(i)
        plural = w in WEEKDAY_PLURALS
        atoms: list[Atom] = [Weekday(WEEKDAY_PLURALS[w] if plural else WEEKDAYS[w], mode, plural)]
        j = i + 1
        if self.at_phrase(j, ("after", "next")):
            return DayHit((Weekday(WEEKDAYS.get(w, 0), "after_next"),), j + 2)
        k = j + 1 if self.w(j) in ("of", "on") else j
        if self.w(k) == "the" and self.at_phrase(k + 1, ("week", "after", "next")):
            atoms.append(WeekRef(2))
            j = k + 4
        elif self.w(k) in ("next", "this", "coming") and self.w(k + 1) == "week":
            atoms.append(WeekRef(0 if self.w(k) == "this" else 1))
            j = k + 2
        elif self.at_phrase(k, ("the", "following", "week")):
            atoms.append(WeekRef(1))
            j = k + 3
        elif self.w(j) == "coming" and self.w(j + 1) == "up":
            j += 2
        t = self.toks[j] if j < self.n else None
        if t is not None and t.ordinal is not None and 1 <= t.ordinal <= 31 and not self._noun_follows(j + 1):
            date = self._ordinal_date(j, allow_bare=True)
            if date is not None:
                return DayHit((*atoms, *date.atoms), date.end)
        return DayHit(tuple(atoms), j)

    def _noun_follows(self, j: int) -> bool:
        return self.w(j) in NOUNS_AFTER_NUMBER or self.w(j) == "thing"

    def _year_at(self, i: int) -> tuple[int, int] | None:
        if i >= self.n:
            return None
        t = self.toks[i]
        if t.num is not None and not t.spelled and 1900 <= t.num <= 2100:
            return t.num, i + 1
        if t.spelled and t.num in (19, 20) and i + 1 < self.n:
            nxt = self.toks[i + 1]
            if nxt.spelled and nxt.num is not None and 10 <= nxt.num <= 99:
                return t.num * 100 + nxt.num, i + 2
        if t.spelled and t.num == 2 and self.w(i + 1) == "thousand":
            k = i + 2 + (1 if self.w(i + 2) == "and" else 0)
            if k < self.n and self.toks[k].num is not None:
                value = self.toks[k].num
                assert value is not None
                if value < 100:
                    return 2000 + value, k + 1
            return 2000, i + 2
        return None

    def _day_number(self, i: int) -> int | None:
        if i >= self.n:
            return None
        t = self.toks[i]
        if t.ordinal is not None and 1 <= t.ordinal <= 31:
            return t.ordinal
        if t.num is not None and t.minute is None and 1 <= t.num <= 31 and (t.spelled or len(t.word) <= 2):
            return t.num
        return None

    def _month_first(self, i: int, *, cued: bool = False) -> DayHit | None:
        """ "April 5th", "February twenty-second", "March the 3rd, 1980", "in May", "June 2026"."""
        month = MONTHS[self.w(i)]
        j = i + 1
        k = j + 1 if self.w(j) == "the" else j
        day = self._day_number(k)
        if day is not None and not self._noun_follows(k + 1):
            nxt = self.toks[k + 1] if k + 1 < self.n else None
            if not (nxt is not None and nxt.word in ("am", "pm", "oclock")):
                end = k + 1
                if end < self.n and self.toks[end].sep and self._year_at(end + 1) is not None:
                    end += 1
                year = self._year_at(end)
                if year is not None:
                    return DayHit((Date(month, day, year[0]),), year[1])
                return DayHit((Date(month, day),), end)
        year = self._year_at(j)
        if year is not None:
            return DayHit((MonthName(month, year[0]),), year[1])
        if cued or self.w(i - 1) in MONTH_CUES:
            if self.w(i) == "may" and self.w(j) in ("i", "we", "be", "have", "need"):
                return None
            return DayHit((MonthName(month),), j)
        return None

    def _ordinal_date(self, i: int, *, allow_bare: bool = False) -> DayHit | None:
        """ "the 15th", "the fifth of April", "5 April", "the 3rd of next month"."""
        w = self.w(i)
        j = i
        led = allow_bare
        if w == "on":
            j += 1
            led = True
        if self.w(j) == "the":
            j += 1
            led = True
        if j >= self.n:
            return None
        t = self.toks[j]
        day = t.ordinal
        if day is None and t.num is not None and t.minute is None and 1 <= t.num <= 31:
            k = j + 1 + (1 if self.w(j + 1) == "of" else 0)
            if self.w(k) in MONTHS:
                day = t.num
        if day is None or not 1 <= day <= 31:
            return None
        k = j + 1
        if self.w(k) == "of":
            k += 1
        if self.w(k) == "the" and self.w(k + 1) == "month":
            return DayHit((DayOfMonth(day), MonthRef(0)), k + 2)
        if self.w(k) in ("this", "next") and self.w(k + 1) == "month":
            return DayHit((DayOfMonth(day), MonthRef(0 if self.w(k) == "this" else 1)), k + 2)
        if self.w(k) in MONTHS:
            month = MONTHS[self.w(k)]
            end = k + 1
            year = self._year_at(end)
            if year is not None:
                return DayHit((Date(month, day, year[0]),), year[1])
            return DayHit((Date(month, day),), end)
        if t.ordinal is None or self._noun_follows(j + 1) or self.w(j + 1) in ("half", "floor"):
            return None
        if not led and not (self.last_end == i and isinstance(self.last_atom(), Weekday | MonthName)):
            return None
        return DayHit((DayOfMonth(day),), j + 1)
