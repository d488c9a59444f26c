"""Where `booking/` gets the time from.

Nothing in `booking/` reads the wall clock itself: a `Clock` is passed in, so a scripted call, a
test or a replay can pin "now" and every decision (minimum notice, "tomorrow", hold expiry) follows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A pinned instant that moves only when told to (`advance`)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, by: timedelta) -> None:
        self._at = self._at + by
