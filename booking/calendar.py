"""The one interface the conversation books through: Cal.com in production, the embedded calendar
otherwise. Both implementations pass the same behavioural suite (tests/booking/test_calendar_contract.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from booking.models import Booking, BookingRequest, Hold, Service, Slot, Window


class Calendar(Protocol):
    async def services(self) -> list[Service]:
        """What can be booked, in the business's order."""
        ...

    async def time_zone(self) -> ZoneInfo:
        """The business's time zone: every slot is expressed in it."""
        ...

    async def slots(self, service: Service, window: Window) -> list[Slot]:
        """Free start times for `service` inside `window`, earliest first, never in the past."""
        ...

    async def hold(self, slot: Slot) -> Hold:
        """Reserve `slot` for a short while; raises `SlotTaken` if it is no longer free."""
        ...

    async def release(self, hold: Hold) -> None:
        """Give a held slot back. Releasing an expired or unknown hold is not an error."""
        ...

    async def create(self, request: BookingRequest, hold: Hold | None) -> Booking:
        """Book the request's slot (through `hold` when given). Never creates twice for one attempt id."""
        ...

    async def get(self, uid: str) -> Booking:
        """One booking by uid; raises `NotFound`."""
        ...

    async def find(
        self, *, email: str | None = None, phone: str | None = None, window: Window
    ) -> list[Booking]:
        """Bookings of one attendee (by email or E.164 phone) that start inside `window`."""
        ...

    async def reschedule(self, uid: str, new_start: datetime, reason: str | None = None) -> Booking:
        """Move a booking in one step; returns the booking as it now stands (it may carry a new uid)."""
        ...

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        """Cancel a booking; returns it with status `cancelled`."""
        ...
