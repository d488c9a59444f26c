"""Times and slots are spoken the way a person says them, and read back to the same instant."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.dates import resolve
from booking.phrasing import speak_date, speak_slot, speak_slots, speak_time

NY = ZoneInfo("America/New_York")
NOW = datetime(2025, 12, 15, 10, 0, tzinfo=NY)  # a Monday


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.mark.parametrize(
    ("t", "spoken"),
    [
        (ny(2025, 12, 16, 14, 0), "2 in the afternoon"),
        (ny(2025, 12, 16, 10, 30), "10:30 in the morning"),
        (ny(2025, 12, 16, 12, 0), "noon"),
        (ny(2025, 12, 16, 12, 45), "12:45 in the afternoon"),
        (ny(2025, 12, 16, 18, 5), "6:05 in the evening"),
        (ny(2025, 12, 16, 0, 0), "midnight"),
    ],
)
def test_times_are_spoken_in_words_a_voice_reads_well(t: datetime, spoken: str):
    """No 24-hour clock, no "PM": the part of the day says it."""
    assert speak_time(t) == spoken


@pytest.mark.parametrize(
    ("day", "spoken"),
    [
        (ny(2025, 12, 15, 16, 0), "today"),
        (ny(2025, 12, 16, 9, 0), "tomorrow"),
        (ny(2025, 12, 23, 9, 0), "Tuesday the 23rd"),
        (ny(2026, 1, 2, 9, 0), "Friday, January 2nd, 2026"),
    ],
)
def test_dates_say_today_tomorrow_and_the_year_only_when_it_differs(day: datetime, spoken: str):
    """ "today"/"tomorrow" when true; month when not this month; year when not this year."""
    assert speak_date(day, NOW) == spoken


def test_month_is_named_when_it_is_not_this_month():
    """A date next month names the month so "the 2nd" is not taken for this month's."""
    assert speak_date(ny(2025, 11, 20).date(), ny(2025, 10, 28, 9)) == "Thursday, November 20th"


def test_a_slot_reads_like_a_receptionist():
    """A single slot: day, then "at", then the time."""
    assert speak_slot(ny(2025, 12, 16, 14, 0), NOW) == "tomorrow at 2 in the afternoon"
    assert speak_slot(ny(2025, 12, 19, 12, 0), NOW) == "Friday the 19th at noon"


def test_slots_are_grouped_by_day_and_part_of_day():
    """Several slots on one day share the day and the part of the day."""
    starts = [
        ny(2025, 12, 17, 9, 0),
        ny(2025, 12, 17, 10, 30),
        ny(2025, 12, 17, 11, 0),
        ny(2025, 12, 17, 14, 0),
    ]
    assert (
        speak_slots(starts, NOW)
        == "Wednesday the 17th at 9, 10:30 or 11 in the morning, or at 2 in the afternoon"
    )


def test_slots_on_several_days_are_in_order():
    """Days come earliest first, each with its own times."""
    starts = [ny(2025, 12, 17, 9, 0), ny(2025, 12, 16, 12, 0)]
    assert speak_slots(starts, NOW) == "tomorrow at noon; or Wednesday the 17th at 9 in the morning"


def test_no_slots_say_nothing():
    """An empty list renders as an empty string for the caller to handle."""
    assert speak_slots([], NOW) == ""


def test_the_zone_is_said_only_when_the_caller_is_elsewhere():
    """Same zone: no zone. Another zone: the business's and the caller's own time."""
    start = ny(2025, 12, 16, 14, 0)
    assert "time" not in speak_slot(start, NOW, caller_tz=NY)
    spoken = speak_slot(start, NOW, caller_tz=ZoneInfo("America/Los_Angeles"))
    assert spoken == "tomorrow at 2 in the afternoon Eastern time, which is 11 in the morning for you"


@pytest.mark.parametrize(
    "start",
    [
        ny(2025, 12, 15, 15, 0),
        ny(2025, 12, 16, 9, 0),
        ny(2025, 12, 18, 16, 45),
        ny(2025, 12, 19, 12, 0),
        ny(2025, 12, 31, 11, 15),
        ny(2026, 1, 5, 8, 30),
        ny(2026, 3, 9, 13, 0),
    ],
)
def test_spoken_slot_resolves_back_to_the_same_instant(start: datetime):
    """render -> resolve gives back the slot."""
    windows = resolve(speak_slot(start, NOW), NOW)
    assert any(w.contains(start) and w.is_instant for w in windows)


@settings(max_examples=200, deadline=None)
@given(
    days=st.integers(min_value=0, max_value=400),
    quarter=st.integers(min_value=7 * 4, max_value=20 * 4),
)
def test_round_trip_holds_for_any_business_hour(days: int, quarter: int):
    """Any quarter-hour slot between 7:00 and 20:00 in the next year reads back to itself."""
    day = (NOW + timedelta(days=days)).date()
    start = datetime(day.year, day.month, day.day, quarter // 4, (quarter % 4) * 15, tzinfo=NY)
    if start < NOW:
        return
    windows = resolve(speak_slot(start, NOW), NOW)
    assert any(w.contains(start) for w in windows), speak_slot(start, NOW)


def test_grouped_slots_resolve_back_to_every_slot():
    """Every slot in a grouped sentence is covered when the sentence is read back."""
    starts = [ny(2025, 12, 17, 9, 0), ny(2025, 12, 17, 10, 30), ny(2025, 12, 17, 14, 0)]
    windows = resolve(speak_slots(starts, NOW), NOW)
    assert all(any(w.contains(s) for w in windows) for s in starts)
