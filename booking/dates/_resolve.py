"""A `Reading` + the moment of the call -> windows in the business's zone.

Everything here works on naive wall-clock datetimes of the business zone (so "9:00 on the day
after DST starts" is simply 9:00) and attaches the zone at the very end. Days are half-open date
ranges `[first, last)`, times of day are minute ranges `[start, end)` (an instant when equal).

The conventions callers expect live here: a bare weekday or "the 15th" is the first one after
today; "this Tuesday" may be today; a clock time with no day is today if still ahead, else
tomorrow; bare hours 1-7 are pm and 8-11 am; nothing before `now` is ever offered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from booking.dates._discourse import Reading
from booking.dates._ir import (
    AnyDay,
    At,
    Atom,
    Clock,
    Date,
    DayOfMonth,
    DayRange,
    Moment,
    MonthName,
    MonthRef,
    NthWeekday,
    Part,
    PeriodPart,
    Range,
    RelDay,
    Shift,
    Span,
    Weekday,
    WeekdayClass,
    Weekend,
    WeekOf,
    WeekRef,
    is_time_of_day,
)
from booking.dates._lexicon import AM_PARTS, PARTS, PM_PARTS
from booking.models import Window

Days = list[tuple[date, date]]
Interval = tuple[datetime, datetime]
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_HORIZON = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class _Context:
    now: datetime
    aware_now: datetime
    today: date


def resolve_reading(reading: Reading, now: datetime) -> list[Window]:
    """Windows for every option, minus every excluded group, never before `now`."""
    tz = now.tzinfo
    local_now = now.replace(tzinfo=None)
    ctx = _Context(local_now, now, local_now.date())
    windows: list[Interval] = []
    for option in reading.options:
        windows.extend(_option_windows(option, ctx))
    for group in reading.excluded:
        if not windows:
            break
        windows = _subtract(windows, _excluded_windows(group, windows, ctx))
    result: list[Window] = []
    for start, end in sorted(set(_clip(windows, local_now))):
        aware_start, aware_end = start.replace(tzinfo=tz), end.replace(tzinfo=tz)
        if aware_end < aware_start:
            aware_end = aware_start
        result.append(Window(aware_start, aware_end))
    return result


# --------------------------------------------------------------------- options


def _option_windows(atoms: tuple[Atom, ...], ctx: _Context) -> list[Interval]:
    moments = [a for a in atoms if isinstance(a, Moment)]
    if moments:
        moment = moments[-1]
        at = (ctx.aware_now.astimezone(UTC) + timedelta(minutes=moment.minutes)).astimezone(
            ctx.aware_now.tzinfo
        )
        t = at.replace(tzinfo=None)
        spread = timedelta(minutes=moment.spread)
        return [(t - spread, t + spread)] if spread else [(t, t)]
    times = [a for a in atoms if is_time_of_day(a)]
    day_atoms = [a for a in atoms if not is_time_of_day(a)]
    minutes = _time_of_day(times)
    days = _days(day_atoms, ctx) if day_atoms else None
    if days is None:
        if minutes is None:
            return []
        if any(isinstance(a, Part) and a.plural for a in times):
            days = [(ctx.today, ctx.today + _HORIZON)]
        else:
            for day in (ctx.today, ctx.today + _DAY):
                found = _clip(_on_days([(day, day + _DAY)], minutes), ctx.now)
                if found:
                    return found
            return []
    return _on_days(days, minutes)


def _on_days(days: Days, minutes: list[tuple[int, int]] | None) -> list[Interval]:
    out: list[Interval] = []
    for first, last in days:
        if minutes is None:
            out.append((_midnight(first), _midnight(last)))
            continue
        day = first
        while day < last:
            base = _midnight(day)
            for start, end in minutes:
                out.append((base + timedelta(minutes=start), base + timedelta(minutes=end)))
            day += _DAY
    return out


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _clip(windows: Iterable[Interval], now: datetime) -> list[Interval]:
    out: list[Interval] = []
    for start, end in windows:
        if start == end:
            if start >= now:
                out.append((start, end))
        elif end > now:
            out.append((max(start, now), end))
    return out


# --------------------------------------------------------------------- time of day


def _time_of_day(atoms: list[Atom]) -> list[tuple[int, int]] | None:
    if not atoms:
        return None
    parts = [a for a in atoms if isinstance(a, Part)]
    hint = None
    for part in parts:
        hint = "am" if part.name in AM_PARTS else "pm" if part.name in PM_PARTS else hint
    clocks = [a for a in atoms if isinstance(a, At)]
    if clocks:
        at = clocks[-1]
        minute = _minutes(at.clock, hint)
        return [(minute - 60, minute + 60)] if at.approx else [(minute, minute)]
    span = (0, 24 * 60)
    for part in parts:
        span = _narrow(span, PARTS[part.name])
    for atom in atoms:
        if isinstance(atom, Range):
            span = _narrow(span, _range_minutes(atom, hint))
    return [span]


def _narrow(span: tuple[int, int], other: tuple[int, int]) -> tuple[int, int]:
    start, end = max(span[0], other[0]), min(span[1], other[1])
    return (start, end) if start < end else other


def _minutes(clock: Clock, hint: str | None) -> int:
    hour, minute = clock.hour, clock.minute
    if clock.meridiem == "24h":
        return hour * 60 + minute
    if clock.meridiem == "am":
        return (hour % 12) * 60 + minute
    if clock.meridiem == "pm" or (hint == "pm" and hour != 12):
        return (hour % 12 + 12) * 60 + minute
    if hour == 12 or hint == "am":
        return hour * 60 + minute
    return (hour + 12) * 60 + minute if hour <= 7 else hour * 60 + minute


def _candidates(clock: Clock) -> tuple[int, ...]:
    if clock.meridiem is not None:
        return (_minutes(clock, None),)
    base = (clock.hour % 12) * 60 + clock.minute
    return (base + 12 * 60, base + 24 * 60) if clock.hour == 12 else (base, base + 12 * 60)


def _range_minutes(atom: Range, hint: str | None) -> tuple[int, int]:
    if atom.start is None:
        end = _minutes(atom.end, hint) if atom.end is not None else 24 * 60
        return (0, end)
    start = _minutes(atom.start, hint)
    if atom.end is None:
        return (start, 24 * 60)
    if atom.start.meridiem is None and atom.end.meridiem is not None and hint is None:
        end = _minutes(atom.end, None)
        earlier = [c for c in _candidates(atom.start) if c < end]
        if earlier:
            start = max(earlier)
        return (start, end)
    later = [c for c in _candidates(atom.end) if c > start]
    return (start, min(later) if later else 24 * 60)


# --------------------------------------------------------------------- days


def _days(atoms: list[Atom], ctx: _Context) -> Days | None:
    """The days a set of day-level atoms names, or None when they name none."""
    today = ctx.today
    ranges: Days | None = None

    def narrow(new: Days) -> None:
        nonlocal ranges
        ranges = new if ranges is None else _intersect(ranges, new)

    months = [a for a in atoms if isinstance(a, MonthName | MonthRef)]
    weeks = [a for a in atoms if isinstance(a, WeekRef)]
    weekdays = [a for a in atoms if isinstance(a, Weekday)]
    doms = [a for a in atoms if isinstance(a, DayOfMonth)]
    dated = False
    for atom in atoms:
        if isinstance(atom, RelDay):
            day = today + timedelta(days=atom.offset)
            narrow([(day, day + _DAY)])
        elif isinstance(atom, Shift):
            narrow(_shift(atom, ctx))
        elif isinstance(atom, Span):
            narrow([(today, _add_months(today, atom.months) + timedelta(days=atom.days))])
        elif isinstance(atom, DayRange):
            narrow(_day_range(atom, ctx))
        elif isinstance(atom, WeekRef):
            narrow([_week(today, atom.offset)])
        elif isinstance(atom, WeekOf):
            base = _days(list(atom.base), ctx)
            narrow([_week(base[0][0], 0)] if base else [])
        elif isinstance(atom, Weekend):
            saturday = _week(today, atom.offset)[0] + timedelta(days=5)
            narrow([(saturday, saturday + 2 * _DAY)])
        elif isinstance(atom, Date):
            found = _date(atom, today)
            narrow([(found, found + _DAY)] if found else [])
            dated = True
    for atom in atoms:
        if isinstance(atom, PeriodPart):
            unit = atom.unit or ("month" if months else "week")
            if unit == "month":
                month = _month_range(months[0], today) if months else _month_range(MonthRef(0), today)
                narrow([_month_part(month, atom)])
            else:
                week = _week(today, weeks[0].offset) if weeks else _week(today, 0)
                narrow([_week_part(week, atom)])
    if months and not any(isinstance(a, PeriodPart) for a in atoms):
        narrow([_month_range(months[0], today)])
    for atom in atoms:
        if isinstance(atom, NthWeekday):
            narrow(_nth_weekday(atom, months[0] if months else None, today))
    if doms:
        dom = doms[0].day
        if ranges is not None:
            ranges = _filter(ranges, _on_day_of_month(dom))
        else:
            wanted = {w.day for w in weekdays}
            found = _next_day_of_month(dom, today, wanted)
            ranges = [(found, found + _DAY)]
        dated = True
    if weekdays:
        wanted = {w.day for w in weekdays}
        if ranges is not None:
            filtered = _filter(ranges, _on_weekdays(wanted))
            ranges = filtered if filtered or not dated else ranges
        elif weekdays[0].plural:
            first = _weekday(weekdays[0], today)
            ranges = [(first + k * _WEEK, first + k * _WEEK + _DAY) for k in range(4)]
        else:
            found = _weekday(weekdays[0], today)
            ranges = [(found, found + _DAY)]
    for atom in atoms:
        if isinstance(atom, WeekdayClass):
            horizon = ranges if ranges is not None else [(today, today + _HORIZON)]
            ranges = _filter(horizon, _on_weekend(atom.weekend))
    if ranges is None and any(isinstance(a, AnyDay) for a in atoms):
        ranges = [(today, today + _HORIZON)]
    return ranges


def _intersect(a: Days, b: Days) -> Days:
    out: Days = []
    for first_a, last_a in a:
        for first_b, last_b in b:
            first, last = max(first_a, first_b), min(last_a, last_b)
            if first < last:
                out.append((first, last))
    return out


def _filter(ranges: Days, keep: Callable[[date], bool]) -> Days:
    out: Days = []
    for first, last in ranges:
        day = first
        while day < last:
            if keep(day):
                if out and out[-1][1] == day:
                    out[-1] = (out[-1][0], day + _DAY)
                else:
                    out.append((day, day + _DAY))
            day += _DAY
    return out


def _on_weekdays(weekdays: set[int]) -> Callable[[date], bool]:
    return lambda day: day.weekday() in weekdays


def _on_day_of_month(dom: int) -> Callable[[date], bool]:
    return lambda day: day.day == dom


def _in_month(month: int) -> Callable[[date], bool]:
    return lambda day: day.month == month


def _on_weekend(weekend: bool) -> Callable[[date], bool]:
    return lambda day: (day.weekday() >= 5) == weekend


def _week(today: date, offset: int) -> tuple[date, date]:
    monday = today - timedelta(days=today.weekday()) + offset * _WEEK
    return (monday, monday + _WEEK)


def _weekday(atom: Weekday, today: date) -> date:
    delta = (atom.day - today.weekday()) % 7
    if atom.mode == "this":
        ahead = atom.day >= today.weekday()
        return today + timedelta(days=delta if ahead else delta or 7)
    if atom.mode == "last":
        return today - timedelta(days=(today.weekday() - atom.day) % 7 or 7)
    found = today + timedelta(days=delta or 7)
    return found + _WEEK if atom.mode == "after_next" else found


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, dom))
        except ValueError:
            continue
    return date(year, month, 28)


def _first_of_month(year: int, month: int, offset: int = 0) -> date:
    index = year * 12 + month - 1 + offset
    return date(index // 12, index % 12 + 1, 1)


def _month_range(atom: MonthName | MonthRef, today: date) -> tuple[date, date]:
    if isinstance(atom, MonthRef):
        first = _first_of_month(today.year, today.month, atom.offset)
    else:
        year = atom.year or (today.year if atom.month >= today.month else today.year + 1)
        first = date(year, atom.month, 1)
    return (first, _first_of_month(first.year, first.month, 1))


def _month_part(month: tuple[date, date], atom: PeriodPart) -> tuple[date, date]:
    first, after = month
    last = after - _DAY
    bounds = {
        "early": (1, 11),
        "mid": (10, 21),
        "late": (21, last.day + 1),
        "end": (last.day - 6, last.day + 1),
        "last_week": (last.day - 6, last.day + 1),
        "week1": (1, 8),
        "week2": (8, 15),
        "week3": (15, 22),
        "week4": (22, 29),
    }.get(atom.part)
    if bounds is None:
        return month
    return (first + timedelta(days=bounds[0] - 1), first + timedelta(days=bounds[1] - 1))


def _week_part(week: tuple[date, date], atom: PeriodPart) -> tuple[date, date]:
    monday = week[0]
    bounds = {"early": (0, 2), "mid": (1, 4), "late": (3, 5), "end": (3, 5), "last_week": (3, 5)}.get(
        atom.part
    )
    if bounds is None:
        return week
    return (monday + timedelta(days=bounds[0]), monday + timedelta(days=bounds[1]))


def _nth_weekday(atom: NthWeekday, month: MonthName | MonthRef | None, today: date) -> Days:
    offsets = (0,) if month is not None else (0, 1)
    for offset in offsets:
        if month is not None:
            first, after = _month_range(month, today)
        else:
            first = _first_of_month(today.year, today.month, offset)
            after = _first_of_month(first.year, first.month, 1)
        days = [
            d
            for d in (first + timedelta(days=k) for k in range((after - first).days))
            if d.weekday() == atom.day
        ]
        if not days or (atom.n > len(days)):
            continue
        found = days[atom.n - 1] if atom.n > 0 else days[-1]
        if month is not None or found >= today:
            return [(found, found + _DAY)]
    return []


def _date(atom: Date, today: date) -> date | None:
    years = (atom.year,) if atom.year else range(today.year, today.year + 9)
    for year in years:
        try:
            found = date(year, atom.month, atom.day)
        except ValueError:
            continue
        if atom.year or found >= today:
            return found
    return None


def _next_day_of_month(dom: int, today: date, weekdays: set[int]) -> date:
    found: list[date] = []
    for offset in range(15):
        first = _first_of_month(today.year, today.month, offset)
        try:
            day = first.replace(day=dom)
        except ValueError:
            continue
        if day > today:
            found.append(day)
            if len(found) == 2:
                break
    if weekdays and found[0].weekday() not in weekdays and len(found) > 1 and found[1].weekday() in weekdays:
        return found[1]
    return found[0]


def _shift(atom: Shift, ctx: _Context) -> Days:
    base = _days(list(atom.base), ctx) or [(ctx.today, ctx.today + _DAY)]
    out: Days = []
    for first, last in base:
        start = _add_months(first, atom.months) + timedelta(days=atom.days)
        out.append((start, start + (last - first) + timedelta(days=atom.spread)))
    return out


def _day_range(atom: DayRange, ctx: _Context) -> Days:
    first = _days(list(atom.first), ctx)
    if not first:
        return []
    if atom.last is None:
        start = first[-1][1] if atom.exclusive_first else first[0][0]
        return [(start, start + _HORIZON)]
    last = _days(list(atom.last), ctx)
    if not last:
        return []
    start, end = first[0][0], last[-1][1]
    if end <= start:
        end += _WEEK
    return [(start, end)] if start < end else []


# --------------------------------------------------------------------- exclusions


def _excluded_windows(group: tuple[Atom, ...], windows: list[Interval], ctx: _Context) -> list[Interval]:
    """What an excluded group covers, over the days the offered windows span.

    Weekdays, day numbers and month names are patterns here ("next week but not Monday" means
    that week's Monday); everything else resolves as it would if it were offered.
    """
    first = min(start for start, _ in windows).date()
    last = max(end for _, end in windows).date() + _DAY
    times = [a for a in group if is_time_of_day(a)]
    patterns = [a for a in group if isinstance(a, Weekday | DayOfMonth | MonthName | WeekdayClass)]
    anchored: list[Atom] = [
        a for a in group if not is_time_of_day(a) and a not in patterns and not isinstance(a, AnyDay)
    ]
    ranges: Days = [(first, last)]
    if anchored:
        ranges = _intersect(ranges, _days(anchored, ctx) or [])
    for atom in patterns:
        if isinstance(atom, Weekday):
            ranges = _filter(ranges, _on_weekdays({atom.day}))
        elif isinstance(atom, DayOfMonth):
            ranges = _filter(ranges, _on_day_of_month(atom.day))
        elif isinstance(atom, MonthName):
            ranges = _filter(ranges, _in_month(atom.month))
        else:
            ranges = _filter(ranges, _on_weekend(atom.weekend))
    return _on_days(ranges, _time_of_day(times))


def _subtract(windows: list[Interval], holes: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in windows:
        pieces = [(start, end)]
        for hole_start, hole_end in holes:
            if hole_start == hole_end:
                pieces = [p for p in pieces if p != (hole_start, hole_end)]
                continue
            next_pieces: list[Interval] = []
            for a, b in pieces:
                if a == b:
                    if not hole_start <= a < hole_end:
                        next_pieces.append((a, b))
                    continue
                if hole_end <= a or hole_start >= b:
                    next_pieces.append((a, b))
                    continue
                if a < hole_start:
                    next_pieces.append((a, hole_start))
                if hole_end < b:
                    next_pieces.append((hole_end, b))
            pieces = next_pieces
        out.extend(pieces)
    return out
