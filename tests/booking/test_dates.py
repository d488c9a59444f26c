"""What a caller says about *when* becomes the right windows (booking.dates.resolve).

Probes follow the corpus conventions (../shared/dates/README.md): an include instant must be inside
some window, an exclude instant inside none. The phrasings here are deliberately not the corpus's.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.dates import resolve
from booking.models import Window

NY = ZoneInfo("America/New_York")
NOWS = {
    "wed": datetime(2025, 3, 26, 10, 0, tzinfo=NY),  # Wednesday morning
    "sun": datetime(2025, 3, 30, 11, 0, tzinfo=NY),  # Sunday
    "fri_pm": datetime(2025, 3, 28, 16, 0, tzinfo=NY),  # Friday afternoon
    "dst": datetime(2025, 3, 7, 9, 0, tzinfo=ZoneInfo("America/Chicago")),  # Friday, DST starts Sunday
    "jan30": datetime(2025, 1, 30, 15, 0, tzinfo=NY),  # Thursday near a month end
    "dec30": datetime(2025, 12, 30, 9, 0, tzinfo=NY),  # Tuesday near a year end
}


def at(now_key: str, text: str) -> datetime:
    """A wall-clock instant in the zone of `now_key`: at("wed", "2025-03-27 14:00")."""
    zone = NOWS[now_key].tzinfo
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def covers(windows: list[Window], t: datetime) -> bool:
    return any(w.contains(t) for w in windows)


CASES: list[tuple[str, str, list[str], list[str]]] = [
    # relative days and parts of the day
    (
        "sometime tomorrow afternoon",
        "wed",
        ["2025-03-27 13:00", "2025-03-27 15:30"],
        ["2025-03-27 09:00", "2025-03-28 14:00"],
    ),
    (
        "the day after tomorrow first thing",
        "wed",
        ["2025-03-28 08:30"],
        ["2025-03-28 11:30", "2025-03-27 08:30"],
    ),
    ("tomorrow night", "wed", ["2025-03-27 20:00"], ["2025-03-27 10:00", "2025-03-26 20:00"]),
    ("later this evening", "wed", ["2025-03-26 18:30"], ["2025-03-26 13:00", "2025-03-27 18:30"]),
    ("tomorrow late in the afternoon", "wed", ["2025-03-27 16:30"], ["2025-03-27 13:00", "2025-03-27 10:00"]),
    ("tomorrow mid morning", "wed", ["2025-03-27 10:30"], ["2025-03-27 14:00"]),
    # weekdays
    (
        "thursday, actually make that friday",
        "wed",
        ["2025-03-28 10:00", "2025-03-28 15:00"],
        ["2025-03-27 10:00"],
    ),
    (
        "friday or maybe saturday morning",
        "wed",
        ["2025-03-28 10:00", "2025-03-29 09:00"],
        ["2025-03-29 14:00", "2025-03-27 10:00"],
    ),
    ("how about next tuesday", "sun", ["2025-04-01 10:00"], ["2025-03-31 10:00", "2025-04-08 10:00"]),
    ("this wednesday", "sun", [], ["2025-04-01 10:00"]),
    ("the thursday after next", "wed", ["2025-04-03 10:00"], ["2025-03-27 10:00", "2025-04-10 10:00"]),
    ("monday the week after next", "wed", ["2025-04-07 10:00"], ["2025-03-31 10:00", "2025-04-14 10:00"]),
    ("first thing monday", "wed", ["2025-03-31 08:30"], ["2025-03-31 11:30", "2025-04-07 08:30"]),
    ("tuesday at like ten thirty", "wed", ["2025-04-01 10:30"], ["2025-04-01 11:30", "2025-04-01 22:30"]),
    # clock times
    (
        "can you do twenty to four on friday",
        "wed",
        ["2025-03-28 15:40"],
        ["2025-03-28 16:00", "2025-03-28 03:40"],
    ),
    ("at five past ten tomorrow", "wed", ["2025-03-27 10:05"], ["2025-03-27 22:05"]),
    ("quarter after three tomorrow", "wed", ["2025-03-27 15:15"], ["2025-03-27 03:15"]),
    ("fourteen hundred on thursday", "wed", ["2025-03-27 14:00"], ["2025-03-27 02:00"]),
    ("at 8 pm tomorrow", "wed", ["2025-03-27 20:00"], ["2025-03-27 08:00"]),
    ("three pm", "wed", ["2025-03-26 15:00"], ["2025-03-27 15:00"]),
    ("at 9", "wed", ["2025-03-27 09:00"], ["2025-03-26 09:00", "2025-03-27 21:00"]),
    ("tomorrow around 3", "wed", ["2025-03-27 15:00"], ["2025-03-27 12:00", "2025-03-27 18:00"]),
    ("noonish on friday", "wed", ["2025-03-28 12:00"], ["2025-03-28 09:00", "2025-03-28 15:00"]),
    ("Monday 10", "wed", ["2025-03-31 10:00"], ["2025-03-31 22:00"]),
    (
        "at 9, 10 or 11 on friday",
        "wed",
        ["2025-03-28 09:00", "2025-03-28 10:00", "2025-03-28 11:00"],
        ["2025-03-28 14:00"],
    ),
    ("Thursday at 10, sorry, 11", "wed", ["2025-03-27 11:00"], ["2025-03-27 10:00"]),
    # dates
    ("the 3rd of next month", "wed", ["2025-04-03 10:00"], ["2025-04-02 10:00", "2025-05-03 10:00"]),
    ("on the twenty first", "wed", ["2025-04-21 10:00"], ["2025-03-21 10:00", "2025-04-22 10:00"]),
    ("the 22nd of April at noon", "wed", ["2025-04-22 12:00"], ["2025-04-22 13:00"]),
    ("may the fifth", "wed", ["2025-05-05 10:00"], ["2025-05-06 10:00"]),
    ("march 3rd", "wed", ["2026-03-03 10:00"], ["2025-03-03 10:00"]),
    ("the 31st", "jan30", ["2025-01-31 10:00"], ["2025-03-31 10:00"]),
    ("the 30th", "jan30", ["2025-03-30 10:00"], ["2025-01-30 16:00", "2025-02-28 10:00"]),
    ("the third", "dec30", ["2026-01-03 10:00"], ["2025-12-03 10:00"]),
    ("the first monday of next month", "wed", ["2025-04-07 10:00"], ["2025-04-14 10:00"]),
    # ranges
    (
        "tuesday from 3 to 5",
        "wed",
        ["2025-04-01 15:30", "2025-04-01 16:30"],
        ["2025-04-01 14:00", "2025-04-01 17:30"],
    ),
    (
        "between 10 and 2 on monday",
        "wed",
        ["2025-03-31 11:00", "2025-03-31 13:30"],
        ["2025-03-31 09:00", "2025-03-31 15:00"],
    ),
    ("tomorrow no later than 2", "wed", ["2025-03-27 11:00"], ["2025-03-27 15:00"]),
    ("not before 10 tomorrow", "wed", ["2025-03-27 11:00"], ["2025-03-27 09:00"]),
    ("saturday from noon onwards", "wed", ["2025-03-29 13:00"], ["2025-03-29 10:00"]),
    (
        "monday through wednesday next week",
        "wed",
        ["2025-03-31 10:00", "2025-04-02 10:00"],
        ["2025-04-03 10:00"],
    ),
    # weeks and months
    (
        "sometime the week after next",
        "wed",
        ["2025-04-07 10:00", "2025-04-11 10:00"],
        ["2025-04-01 10:00", "2025-04-14 10:00"],
    ),
    ("late next week", "wed", ["2025-04-04 10:00"], ["2025-03-31 10:00", "2025-04-01 10:00"]),
    ("early next week", "fri_pm", ["2025-03-31 10:00"], ["2025-04-03 10:00", "2025-04-04 10:00"]),
    ("the week of the 14th", "wed", ["2025-04-15 10:00"], ["2025-04-11 10:00", "2025-04-21 10:00"]),
    ("early april", "wed", ["2025-04-02 10:00", "2025-04-04 10:00"], ["2025-04-20 10:00"]),
    ("towards the end of next month", "wed", ["2025-04-28 10:00"], ["2025-04-10 10:00", "2025-05-05 10:00"]),
    (
        "this weekend",
        "fri_pm",
        ["2025-03-29 11:00", "2025-03-30 14:00"],
        ["2025-03-28 17:00", "2025-03-31 10:00"],
    ),
    # durations
    ("two weeks from tomorrow", "wed", ["2025-04-10 10:00"], ["2025-04-09 10:00", "2025-04-11 10:00"]),
    ("in 3 days", "wed", ["2025-03-29 10:00"], ["2025-03-28 10:00", "2025-03-30 10:00"]),
    (
        "in a week or two",
        "wed",
        ["2025-04-02 10:00", "2025-04-08 10:00"],
        ["2025-03-27 10:00", "2025-04-20 10:00"],
    ),
    ("in the next couple of days", "wed", ["2025-03-27 10:00"], ["2025-04-02 10:00"]),
    ("in about an hour", "wed", ["2025-03-26 11:00"], ["2025-03-26 13:00"]),
    ("a week on tuesday", "wed", ["2025-04-08 10:00"], ["2025-04-01 10:00"]),
    # lists, exclusions and corrections
    (
        "any morning next week but not Monday",
        "wed",
        ["2025-04-01 09:00", "2025-04-04 10:00"],
        ["2025-03-31 09:00", "2025-04-01 14:00"],
    ),
    ("not tomorrow, the day after", "wed", ["2025-03-28 10:00"], ["2025-03-27 10:00"]),
    (
        "tuesday or wednesday but not in the morning",
        "wed",
        ["2025-04-01 14:00", "2025-04-02 14:00"],
        ["2025-04-01 09:00"],
    ),
    (
        "tomorrow morning is bad, how about the afternoon",
        "wed",
        ["2025-03-27 14:00"],
        ["2025-03-27 09:00", "2025-03-26 14:00"],
    ),
    ("friday at 3 doesn't work, how about 4", "wed", ["2025-03-28 16:00"], ["2025-03-28 15:00"]),
    ("I'm busy monday, tuesday's fine", "wed", ["2025-04-01 10:00"], ["2025-03-31 10:00"]),
    ("um tuesday no wait wednesday at three", "wed", ["2025-04-02 15:00"], ["2025-04-01 15:00"]),
    (
        "Anything Monday morning? If not, Tuesday afternoon.",
        "wed",
        ["2025-03-31 09:00", "2025-04-01 14:00"],
        ["2025-03-31 14:00"],
    ),
    ("11 or 12 tomorrow", "wed", ["2025-03-27 11:00", "2025-03-27 12:00"], ["2025-03-27 23:00"]),
    # DST and month/year ends
    ("sunday at 9", "dst", ["2025-03-09 09:00"], ["2025-03-09 10:00"]),
    ("monday afternoon", "dst", ["2025-03-10 13:00"], ["2025-03-10 09:00"]),
    ("end of the month", "jan30", ["2025-01-31 10:00"], ["2025-02-05 10:00"]),
    (
        "next week",
        "dec30",
        ["2026-01-05 10:00", "2026-01-09 10:00"],
        ["2025-12-31 10:00", "2026-01-12 10:00"],
    ),
    ("new year's day", "dec30", [], ["2025-12-30 10:00"]),
]


@pytest.mark.parametrize(("text", "now_key", "include", "exclude"), CASES)
def test_phrasings_resolve_to_what_the_caller_meant(
    text: str, now_key: str, include: list[str], exclude: list[str]
):
    """Each phrasing covers what the caller meant and nothing they ruled out."""
    windows = resolve(text, NOWS[now_key])
    for t in include:
        assert covers(windows, at(now_key, t)), f"{text!r} misses {t}: {windows}"
    for t in exclude:
        assert not covers(windows, at(now_key, t)), f"{text!r} wrongly covers {t}: {windows}"


@pytest.mark.parametrize(
    "text",
    [
        "tomorrow at 2",
        "Ten thirty on the 14th.",
        "quarter to five on friday",
        "at noon or 1 tomorrow",
        "monday at 11:30 am or thursday at 9 am",
    ],
)
def test_exact_times_are_instants(text: str):
    """A named clock time is offered as an instant, not a stretch of the day."""
    windows = resolve(text, NOWS["wed"])
    assert windows
    assert all(w.is_instant for w in windows)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like a cleaning",
        "my name is April May",
        "member ID ends in 1530",
        "may I schedule something",
        "I have two kids, ages six and nine",
        "He's 6 and she's 9",
        "one moment please",
        "just a second",
        "hold on a minute",
        "my date of birth is march 3rd",
        "I was born on the 3rd of June 1990",
        "my March invoice",
        "it's the second time I've called",
        "I need 2 fillings",
        "my number is 415 555 1234",
        "is the first floor accessible",
        "",
        "   ",
        "?!",
    ],
)
def test_no_time_said_gives_nothing(text: str):
    """Talk that names no time, including numbers and month-like names, yields no window."""
    assert resolve(text, NOWS["wed"]) == []


@pytest.mark.parametrize(
    "text",
    [
        "today at nine",
        "yesterday afternoon",
        "last tuesday",
        "this past monday",
        "three days ago",
        "sometime last week",
    ],
)
def test_past_requests_offer_nothing_past(text: str):
    """A request entirely in the past gives no window (the dialogue can say so)."""
    assert resolve(text, NOWS["wed"]) == []


def test_windows_are_aware_and_in_the_business_zone():
    """Every window carries the zone `now` was given in."""
    windows = resolve("next week in the afternoon", NOWS["dst"])
    assert windows
    assert all(w.start.tzinfo == NOWS["dst"].tzinfo and w.end.tzinfo == NOWS["dst"].tzinfo for w in windows)


def test_dst_week_keeps_wall_clock_times():
    """9 a.m. after the spring-forward Sunday is 9 a.m. local, at the new offset."""
    (window,) = resolve("monday at 9", NOWS["dst"])
    assert window.start.replace(tzinfo=None) == datetime(2025, 3, 10, 9, 0)
    assert window.start.utcoffset() == timedelta(hours=-5)


def test_naive_now_is_refused():
    """Resolution needs to know the business zone."""
    with pytest.raises(ValueError, match="aware"):
        resolve("tomorrow", datetime(2025, 3, 26, 10, 0))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80), minutes=st.integers(min_value=0, max_value=60 * 24 * 800))
def test_never_raises_and_never_offers_the_past(text: str, minutes: int):
    """Arbitrary text never raises, and no window ends before now."""
    now = datetime(2025, 1, 1, tzinfo=NY) + timedelta(minutes=minutes)
    for window in resolve(text, now):
        assert window.end >= now
        assert window.start <= window.end


_WORDS = [
    "tomorrow",
    "today",
    "next",
    "this",
    "monday",
    "friday",
    "the",
    "15th",
    "3",
    "at",
    "pm",
    "morning",
    "afternoon",
    "or",
    "but",
    "not",
    "except",
    "between",
    "and",
    "after",
    "before",
    "week",
    "month",
    "end",
    "of",
    "early",
    "late",
    "in",
    "two",
    "days",
    "a",
    "from",
    "thursday",
    "noon",
    "half",
    "past",
    "quarter",
    "to",
    "no",
    "wait",
    "sorry",
    "weekend",
    "first",
    "second",
    "may",
    "april",
    "ish",
    "around",
]


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(_WORDS), max_size=12))
def test_grammar_soup_never_raises(words: list[str]):
    """Any jumble of grammar words resolves without error to valid, future windows."""
    now = NOWS["wed"]
    for window in resolve(" ".join(words), now):
        assert window.end >= now


CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "dates" / "dev.jsonl"


@pytest.mark.skipif(not CORPUS.exists(), reason="shared corpus not present")
def test_dev_corpus_accuracy():
    """The shared development corpus passes at >= 97% under the scorer's rules."""
    items = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    passed = 0
    for item in items:
        now = datetime.fromisoformat(item["now"]).astimezone(ZoneInfo(item["tz"]))
        windows = resolve(item["text"], now)
        passed += _judge(item, windows)
    assert passed / len(items) >= 0.97


def _judge(item: dict[str, object], windows: list[Window]) -> bool:
    if item["none"]:
        return not windows
    include = [datetime.fromisoformat(s) for s in item["include"]]  # type: ignore[attr-defined]
    exclude = [datetime.fromisoformat(s) for s in item["exclude"]]  # type: ignore[attr-defined]
    if not all(covers(windows, t) for t in include) or any(covers(windows, t) for t in exclude):
        return False
    return not item["exact"] or all(w.end - w.start <= timedelta(minutes=15) for w in windows)
