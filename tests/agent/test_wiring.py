"""Start-up picks the calendar: the embedded one with no key, Cal.com (and its account) with one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.errors import ConfigError
from agent.loopback.calcom_api import DEFAULT_API_KEY, FakeCalcom, FakeEventType
from agent.settings import Settings
from agent.wiring import calendar_for, open_runtime
from booking.calendars.calcom import CalcomCalendar
from booking.calendars.local import LocalCalendar
from booking.clock import FixedClock

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}", _env_file=None, **values)


def fake_calcom() -> FakeCalcom:
    return FakeCalcom(
        FixedClock(NOW),
        time_zone="America/Chicago",
        event_types=[
            FakeEventType(11, "cleaning", "Teeth cleaning", 45),
            FakeEventType(12, "exam", "Exam", 30),
        ],
    )


async def test_no_key_books_into_the_embedded_calendar(tmp_path: Path) -> None:
    """Without CALCOM_API_KEY the demo business books into the embedded calendar."""
    async with open_runtime(settings(tmp_path)) as runtime:
        business = runtime.directory.default
        assert business.name == "Bright Smile Dental"
        assert isinstance(calendar_for(runtime, business, FixedClock(NOW)), LocalCalendar)


async def test_calcom_account_becomes_the_business(tmp_path: Path) -> None:
    """With a key and no profile file, the Cal.com account's name, zone and event types make the business."""
    fake = fake_calcom()
    config = settings(tmp_path, calcom_api_key=DEFAULT_API_KEY)
    async with open_runtime(config, calcom_transport=httpx.MockTransport(fake)) as runtime:
        business = runtime.directory.default
        assert business.name == "Dr Smith"
        assert business.time_zone == "America/Chicago"
        assert [(s.key, s.event_type_id, s.duration_minutes) for s in business.services] == [
            ("cleaning", 11, 45),
            ("exam", 12, 30),
        ]
        assert runtime.directory.by_number("+15557654321") == business
        calendar = calendar_for(runtime, business, FixedClock(NOW))
        assert isinstance(calendar, CalcomCalendar)
        assert [s.key for s in await calendar.services()] == ["cleaning", "exam"]


async def test_refused_calcom_key_stops_start_up(tmp_path: Path) -> None:
    """A key Cal.com refuses is one clear configuration error at start-up."""
    config = settings(tmp_path, calcom_api_key="cal_wrong")
    with pytest.raises(ConfigError, match=r"Cal\.com did not give the account's details"):
        async with open_runtime(config, calcom_transport=httpx.MockTransport(fake_calcom())):
            pass


async def test_calcom_profile_needs_event_type_ids(tmp_path: Path) -> None:
    """In Cal.com mode a profile service without event_type_id is refused at start-up."""
    from agent.businesses import DEMO_BUSINESSES_FILE

    config = settings(tmp_path, calcom_api_key=DEFAULT_API_KEY, businesses_file=DEMO_BUSINESSES_FILE)
    with pytest.raises(ConfigError, match="every service needs event_type_id"):
        async with open_runtime(config, calcom_transport=httpx.MockTransport(fake_calcom())):
            pass
