"""Opening hours as real instants, right on the days the clocks change.

Hours are written in wall-clock time ("09:00-17:00") but bookings are instants. Each opening span is
turned into a UTC interval once, and every later step (slot starts, containment) is plain UTC
arithmetic: adding a timedelta to an aware datetime in Python moves the wall clock, not the
instant, which is the classic DST bug this module exists to avoid.

Wall times that do not map to exactly one instant follow one rule, chosen so that a later wall
time never resolves to an earlier instant (spans never turn inside out):

- a time the clocks skip (02:30 on a spring-forward night) is the moment the clocks jump to;
- a time the clocks show twice (01:30 on a fall-back night) is its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.calendars._local_config import MIDNIGHT, LocalCalendarConfig

ONE_DAY = timedelta(days=1)
ONE_SECOND = timedelta(seconds=1)


def resolve(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant the business's clock first shows `wall` on `day` (see the module rules)."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # Skipped: with the pre-jump offset `first` lands after the jump, with the post-jump offset
    # it lands before; the jump itself lies between, so bisect to the second.
    before = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    jumped_offset = first.astimezone(zone).utcoffset()
    while first - before > ONE_SECOND:
        middle = before + (first - before) / 2
        if middle.astimezone(zone).utcoffset() == jumped_offset:
            first = middle
        else:
            before = middle
    return first.replace(microsecond=0)


def opening_periods(config: LocalCalendarConfig, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The business's open intervals `[opens, closes)` in UTC, for local dates `first`..`last`."""
    periods: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if day not in config.closed_dates:
            for opens, closes in config.weekly_hours.get(day.weekday(), ()):
                start = resolve(day, opens, config.zone)
                end = (
                    resolve(day + ONE_DAY, MIDNIGHT, config.zone)
                    if closes == MIDNIGHT
                    else resolve(day, closes, config.zone)
                )
                if start < end:
                    periods.append((start, end))
        day += ONE_DAY
    return periods


def local_dates(config: LocalCalendarConfig, start: datetime, end: datetime) -> tuple[date, date]:
    """Local dates whose opening spans can touch `[start, end]` (a span may run to midnight)."""
    return start.astimezone(config.zone).date() - ONE_DAY, end.astimezone(config.zone).date()


def start_times(
    periods: list[tuple[datetime, datetime]], duration: timedelta, interval: timedelta
) -> Iterator[datetime]:
    """Every start, `interval` apart from each opening, whose whole appointment fits in the span."""
    for opens, closes in periods:
        start = opens
        while start + duration <= closes:
            yield start
            start += interval


def within_hours(config: LocalCalendarConfig, start: datetime, end: datetime) -> bool:
    """Whether `[start, end)` lies inside one opening span."""
    first, last = local_dates(config, start, end)
    return any(opens <= start and end <= closes for opens, closes in opening_periods(config, first, last))
