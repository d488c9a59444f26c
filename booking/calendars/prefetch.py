"""A calendar that fetched availability before anyone asked.

When a call starts, the main service's free times for the next days are fetched while the caller
is still hearing the greeting; the first "what do you have on Tuesday" is then answered from memory
instead of waiting on Cal.com. A prefetched list is used only while it is fresh and covers the
asked window, and any write through this calendar drops it. It may still be a little stale
(someone booked on the web meanwhile): that is caught when the chosen time is held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from booking.calendar import Calendar
from booking.clock import Clock
from booking.models import Booking, BookingRequest, Hold, Service, Slot, Window


@dataclass
class _Fetch:
    service_key: str
    window: Window
    fetched_at: datetime
    task: asyncio.Task[list[Slot]]


class PrefetchingCalendar:
    """Wraps any `Calendar`; `prefetch()` warms it, everything else behaves as the inner calendar."""

    def __init__(self, inner: Calendar, clock: Clock, fresh_for: timedelta = timedelta(seconds=60)) -> None:
        self._inner = inner
        self._clock = clock
        self._fresh_for = fresh_for
        self._fetches: list[_Fetch] = []

    def prefetch(self, service: Service, window: Window) -> None:
        """Start fetching in the background; a later `slots()` inside the window waits for it."""
        task = asyncio.ensure_future(self._inner.slots(service, window))
        self._fetches.append(_Fetch(service.key, window, self._clock.now(), task))

    async def slots(self, service: Service, window: Window) -> list[Slot]:
        for fetch in self._fetches:
            if (
                fetch.service_key == service.key
                and fetch.window.start <= window.start
                and window.end <= fetch.window.end
                and self._clock.now() - fetch.fetched_at < self._fresh_for
            ):
                try:
                    found = await asyncio.shield(fetch.task)
                except Exception:
                    self._fetches.remove(fetch)
                    break
                now = self._clock.now()
                return [s for s in found if window.contains(s.start) and s.start >= now]
        return await self._inner.slots(service, window)

    async def close(self) -> None:
        """Stop any fetch still running (the call ended)."""
        self._forget()

    def _forget(self) -> None:
        for fetch in self._fetches:
            fetch.task.cancel()
        self._fetches.clear()

    async def services(self) -> list[Service]:
        return await self._inner.services()

    async def time_zone(self) -> ZoneInfo:
        return await self._inner.time_zone()

    async def hold(self, slot: Slot) -> Hold:
        self._forget()
        return await self._inner.hold(slot)

    async def release(self, hold: Hold) -> None:
        self._forget()
        await self._inner.release(hold)

    async def create(self, request: BookingRequest, hold: Hold | None) -> Booking:
        self._forget()
        return await self._inner.create(request, hold)

    async def get(self, uid: str) -> Booking:
        return await self._inner.get(uid)

    async def find(
        self, *, email: str | None = None, phone: str | None = None, window: Window
    ) -> list[Booking]:
        return await self._inner.find(email=email, phone=phone, window=window)

    async def reschedule(self, uid: str, new_start: datetime, reason: str | None = None) -> Booking:
        self._forget()
        return await self._inner.reschedule(uid, new_start, reason)

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        self._forget()
        return await self._inner.cancel(uid, reason)
