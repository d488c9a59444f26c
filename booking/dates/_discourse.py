"""Atoms and marks -> what the caller wants: options to include and groups to exclude.

Callers do not say one tidy expression. They list ("Tuesday or Thursday morning"), take back
("thursday, no wait, friday"), rule out before or after ("anything but Monday", "Thursday is bad
for me"), and drift into other topics. This module reads the event stream once, left to right:

* atoms gather into the current *option* until one fills a slot the option already has
  ("Tuesday ... Wednesday") or an "or"/"and" comes: then a new option starts;
* a correction makes the following atoms replace the same kind of atom in the last group
  ("at four ... make that twelve thirty" keeps the day, replaces the hour);
* a negation sends atoms to an excluded group: forwards until the clause ends ("except Monday or
  Thursday"), or backwards over the clause ("Wednesday's out");
* an off-topic word ("birth", "invoice") drops its clause.

Finally options that lack a day or an hour borrow it from their neighbours ("9:30 or 10:30 in
the morning Tuesday"), and an option that only replaces half of an excluded one borrows the rest
("Monday morning is bad, how about the afternoon").
"""

from __future__ import annotations

from dataclasses import dataclass

from booking.dates._ir import (
    At,
    Atom,
    DayRange,
    Event,
    Mark,
    MonthName,
    MonthRef,
    Part,
    Range,
    RelDay,
    Shift,
    Span,
    WeekRef,
    is_time_of_day,
    level,
    slot,
)
from booking.dates._lexicon import PARTS


@dataclass(frozen=True, slots=True)
class Reading:
    """What to offer (`options`, any of them) and what not to (`excluded`)."""

    options: tuple[tuple[Atom, ...], ...]
    excluded: tuple[tuple[Atom, ...], ...]


def read(events: list[Event]) -> Reading:
    """Interpret the grammar's events (see the module docstring)."""
    state = _State()
    for event in events:
        if isinstance(event, Mark):
            state.on_mark(event)
        else:
            state.on_atom(event)
    return state.finish()


class _Group:
    __slots__ = ("atoms", "negative", "old")

    def __init__(self, negative: bool) -> None:
        self.atoms: list[Atom] = []
        self.negative = negative
        self.old: list[Atom] = []


class _State:
    __slots__ = ("clause", "correcting", "groups", "last", "negating", "off_topic", "pending_or")

    def __init__(self) -> None:
        self.groups: list[_Group] = []
        self.last: _Group | None = None
        self.negating = False
        self.pending_or = False
        self.correcting: _Group | None = None
        self.off_topic = False
        self.clause: list[tuple[_Group, Atom]] = []

    def on_mark(self, mark: Mark) -> None:
        kind = mark.kind
        if kind in ("or", "and"):
            self.pending_or = True
            self.correcting = None
        elif kind == "boundary":
            self._end_clause()
        elif kind == "correct":
            if self.last is not None and self.last.atoms:
                self.correcting = self.last
                self.last.old = list(self.last.atoms)
                self.negating = self.last.negative
            self.pending_or = False
        elif kind == "neg":
            self._start_negation()
        elif kind == "neg_after":
            self._negate_clause()
        elif kind == "neg_either":
            if self.clause:
                self._negate_clause()
            else:
                self._start_negation()
        elif kind == "off_topic":
            for group, atom in self.clause:
                if atom in group.atoms:
                    group.atoms.remove(atom)
            self.clause = []
            self.off_topic = True

    def _end_clause(self) -> None:
        self.negating = False
        self.off_topic = False
        self.clause = []

    def _start_negation(self) -> None:
        self.negating = True
        self.pending_or = True
        self.correcting = None

    def _negate_clause(self) -> None:
        if not self.clause:
            return
        negative = _Group(negative=True)
        for group, atom in self.clause:
            if atom in group.atoms and not group.negative:
                group.atoms.remove(atom)
                negative.atoms.append(atom)
        if negative.atoms:
            self.groups.append(negative)
        self._end_clause()
        self.pending_or = True
        self.correcting = None
        self.last = negative

    def on_atom(self, atom: Atom) -> None:
        if self.off_topic:
            return
        target = self.correcting
        if target is not None:
            replaced = [old for old in target.old if _replaces(atom, old)]
            for old in replaced:
                target.old.remove(old)
                if old in target.atoms:
                    target.atoms.remove(old)
            if not _collides(target.atoms, atom):
                self._add(target, atom)
                return
            self.correcting = None
        current = self._current(self.negating)
        if current is None or self.pending_or or _collides(current.atoms, atom):
            current = _Group(self.negating)
            self.groups.append(current)
        self.pending_or = False
        self._add(current, atom)

    def _current(self, negative: bool) -> _Group | None:
        for group in reversed(self.groups):
            if group.negative == negative:
                return group if group is self.last or not group.atoms else None
        return None

    def _add(self, group: _Group, atom: Atom) -> None:
        group.atoms.append(atom)
        self.clause.append((group, atom))
        self.last = group

    def finish(self) -> Reading:
        positive = [g.atoms for g in self.groups if not g.negative and g.atoms]
        negative = [g.atoms for g in self.groups if g.negative and g.atoms]
        if len(positive) > 1:
            positive = _distribute(positive)
        positive = [_borrow_from_excluded(option, negative) for option in positive]
        options: list[tuple[Atom, ...]] = []
        for option in positive:
            key = tuple(option)
            if key not in options:
                options.append(key)
        return Reading(tuple(options), tuple(tuple(g) for g in negative))


def _replaces(new: Atom, old: Atom) -> bool:
    new_level, old_level = level(new), level(old)
    if new_level == 0:
        return old_level == 0
    return 1 <= old_level <= new_level


def _collides(atoms: list[Atom], atom: Atom) -> bool:
    """Would `atom` be a second answer to something `atoms` already answer?"""
    s = slot(atom)
    for other in atoms:
        if slot(other) != s:
            continue
        if isinstance(atom, Part) and isinstance(other, Part):
            a, b = PARTS[atom.name], PARTS[other.name]
            if max(a[0], b[0]) < min(a[1], b[1]):
                continue
        if isinstance(atom, Range) and isinstance(other, Range):
            continue
        if s == "any":
            continue
        return True
    return False


_PERIODS = WeekRef | MonthName | MonthRef


def _distribute(options: list[list[Atom]]) -> list[list[Atom]]:
    """Share what one option says and another leaves open: "Tuesday or Thursday morning"."""
    result: list[list[Atom]] = []
    for index, option in enumerate(options):
        neighbours = sorted(range(len(options)), key=lambda k: (abs(k - index), k < index))
        neighbours.remove(index)
        extra: list[Atom] = []
        has_time = any(is_time_of_day(a) for a in option)
        has_day = any(not is_time_of_day(a) for a in option)
        if not has_time:
            for k in neighbours:
                times = [a for a in options[k] if is_time_of_day(a)]
                if times:
                    extra.extend(times)
                    break
        if not has_day:
            for k in neighbours:
                days = [a for a in options[k] if not is_time_of_day(a)]
                if days:
                    extra.extend(days)
                    break
        elif not any(isinstance(a, _PERIODS | RelDay | Shift | Span | DayRange) for a in option):
            for k in neighbours:
                periods = [a for a in options[k] if isinstance(a, _PERIODS)]
                if periods:
                    extra.extend(periods)
                    break
        result.append(option + extra)
    return result


def _borrow_from_excluded(option: list[Atom], excluded: list[list[Atom]]) -> list[Atom]:
    """ "Tuesday at 3 doesn't work, how about 4": the new hour keeps the excluded day."""
    has_time = any(is_time_of_day(a) for a in option)
    has_day = any(not is_time_of_day(a) for a in option)
    if has_time == has_day:
        return option
    for group in reversed(excluded):
        times = [a for a in group if is_time_of_day(a)]
        days = [a for a in group if not is_time_of_day(a)]
        if times and days:
            return option + (days if has_time else [a for a in times if isinstance(a, At | Part | Range)])
    return option
