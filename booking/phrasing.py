"""Speakable wording for times and slots, so the model never invents how a time is said.

A text-to-speech engine reads "2 in the afternoon" and "10:30 in the morning" naturally; it
stumbles on "14:00", "2:00 PM EST" or "2025-04-08". Everything here produces the first kind:

    speak_time(t)            "noon", "2 in the afternoon", "10:30 in the morning"
    speak_date(day, now)     "today", "tomorrow", "Tuesday the 16th", "Friday, May 2nd",
                             "Monday, January 4th, 2027" (month when not this month, year when
                             not this year)
    speak_slot(start, now)   "Tuesday the 16th at 2 in the afternoon"
    speak_slots(starts, now) "Tuesday the 16th at 9, 10:30 or 11 in the morning, or at 2 in the
                             afternoon; or tomorrow at noon"

With `caller_tz` in a zone other than the business's (at that instant), a slot also says the
caller's own time: "... at 2 in the afternoon Eastern time, which is 11 in the morning for you".
Every phrase reads back through `booking.dates.resolve` to the same instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["part_of_day", "speak_date", "speak_slot", "speak_slots", "speak_time"]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ZONE_NAMES = {
    "America/New_York": "Eastern",
    "America/Detroit": "Eastern",
    "America/Toronto": "Eastern",
    "America/Chicago": "Central",
    "America/Winnipeg": "Central",
    "America/Denver": "Mountain",
    "America/Edmonton": "Mountain",
    "America/Phoenix": "Arizona",
    "America/Los_Angeles": "Pacific",
    "America/Vancouver": "Pacific",
    "America/Anchorage": "Alaska",
    "Pacific/Honolulu": "Hawaii",
}


def ordinal(n: int) -> str:
    """1 -> "1st", 22 -> "22nd", 13 -> "13th"."""
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def part_of_day(t: datetime) -> str:
    """ "morning" before noon, "afternoon" until 5, then "evening"."""
    if t.hour < 12:
        return "morning"
    return "afternoon" if t.hour < 17 else "evening"


def _clock(t: datetime) -> str:
    hour = t.hour % 12 or 12
    return f"{hour}:{t.minute:02d}" if t.minute else str(hour)


def speak_time(t: datetime) -> str:
    """ "noon", "midnight", "2 in the afternoon", "10:30 in the morning"."""
    if t.minute == 0 and t.hour == 12:
        return "noon"
    if t.minute == 0 and t.hour == 0:
        return "midnight"
    return f"{_clock(t)} in the {part_of_day(t)}"


def speak_date(day: date | datetime, now: datetime) -> str:
    """ "today", "tomorrow", "Tuesday the 16th", "Friday, May 2nd", "Monday, January 4th, 2027"."""
    if isinstance(day, datetime):
        day = day.astimezone(now.tzinfo).date() if now.tzinfo else day.date()
    today = now.date()
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    weekday = _WEEKDAYS[day.weekday()]
    if day.year == today.year and day.month == today.month:
        return f"{weekday} the {ordinal(day.day)}"
    text = f"{weekday}, {_MONTHS[day.month - 1]} {ordinal(day.day)}"
    return text if day.year == today.year else f"{text}, {day.year}"


def _zone_name(zone: ZoneInfo) -> str:
    return _ZONE_NAMES.get(zone.key, zone.key.rsplit("/", 1)[-1].replace("_", " "))


def _at(t: datetime) -> str:
    return "at noon" if (t.hour, t.minute) == (12, 0) else f"at {speak_time(t)}"


def _caller_note(start: datetime, caller_tz: ZoneInfo | None) -> str:
    if caller_tz is None or start.tzinfo is None:
        return ""
    theirs = start.astimezone(caller_tz)
    if theirs.utcoffset() == start.utcoffset():
        return ""
    zone = start.tzinfo
    ours = f" {_zone_name(zone)} time" if isinstance(zone, ZoneInfo) else ""
    return f"{ours}, which is {speak_time(theirs)} for you"


def speak_slot(slot_start: datetime, now: datetime, caller_tz: ZoneInfo | None = None) -> str:
    """ "Tuesday the 16th at 2 in the afternoon" (in the business zone, `now`'s zone)."""
    start = slot_start.astimezone(now.tzinfo) if now.tzinfo else slot_start
    return f"{speak_date(start, now)} {_at(start)}{_caller_note(start, caller_tz)}"


def _join_or(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def _speak_part(times: list[datetime]) -> str:
    """Times in one part of one day: "9, 10:30 or 11 in the morning", "noon"."""
    noon = [t for t in times if (t.hour, t.minute) == (12, 0)]
    others = [t for t in times if (t.hour, t.minute) != (12, 0)]
    pieces: list[str] = []
    if noon:
        pieces.append("noon")
    if others:
        pieces.append(f"{_join_or([_clock(t) for t in others])} in the {part_of_day(others[0])}")
    return " or ".join(pieces)


def speak_slots(starts: Sequence[datetime], now: datetime, caller_tz: ZoneInfo | None = None) -> str:
    """Several start times, grouped by day and part of day, earliest first.

    "Tuesday the 16th at 9, 10:30 or 11 in the morning, or at 2 in the afternoon; or tomorrow at noon"
    """
    if not starts:
        return ""
    local = sorted({s.astimezone(now.tzinfo) if now.tzinfo else s for s in starts})
    if len(local) == 1:
        return speak_slot(local[0], now, caller_tz)
    days: dict[date, dict[str, list[datetime]]] = {}
    for start in local:
        days.setdefault(start.date(), {}).setdefault(part_of_day(start), []).append(start)
    spoken_days: list[str] = []
    for day, parts in days.items():
        spoken_parts = [_speak_part(times) for times in parts.values()]
        spoken_days.append(f"{speak_date(day, now)} at {', or at '.join(spoken_parts)}")
    return "; or ".join(spoken_days)
