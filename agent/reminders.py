"""What a booking change means for the caller's phone: confirmations, notices, reminders, reviews.

Every path that learns of a booking (a Cal.com webhook, the reconciler, a booking made on the line)
calls `Notifier`; it writes the mirror, then puts the texts the change calls for in the outbox:

    accepted (new)            "you're booked", and a reminder N hours before (per business)
    accepted (rescheduled)    "your appointment has moved", and a reminder for the new time
    pending                   "we got your request"
    cancelled (not moved)     "your appointment is cancelled"; unsent texts about it are withdrawn
    meeting ended             a review request, a little later

Each text has an idempotency key (`confirmed:<uid>`, `reminder:<uid>`, ...), so however many
times and in whatever order a change is reported, each text is enqueued at most once. A change the
mirror did not take (older than what it knows, or a repeat) sends nothing. Just before sending,
`still_wanted` checks the mirror again, so a reminder for a booking cancelled a second earlier by
another process is skipped. Texts go only to a business with `sms_opt_in`, from its first number,
to a caller whose number we know and who has not opted out (checked at send time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from loguru import logger

from agent.businesses import BusinessProfile, Directory
from agent.logs import mask_phone
from agent.mirror import BookingMirror, MirroredBooking
from agent.outbox import NewMessage, Outbox, OutboxMessage
from agent.sms import SmsTemplates, first_name, normalise_phone, text_when
from booking.clock import Clock
from booking.models import Booking

__all__ = ["BOOKING_NOTICES", "Notifier", "ReminderSweep", "mirrored"]

BOOKING_NOTICES: Final = ("confirmed", "requested", "rescheduled", "reminder")
"""Kinds that speak of a live booking: withdrawn when it is cancelled, skipped at send time if it is."""


def mirrored(booking: Booking, business: BusinessProfile) -> MirroredBooking:
    """A calendar `Booking` (e.g. one just made on the phone) as the mirror keeps it."""
    service = next((s.name for s in business.services if s.key == booking.service_key), booking.service_key)
    return MirroredBooking(
        uid=booking.uid,
        business_id=business.id,
        status=booking.status,
        start=booking.start,
        end=booking.end,
        service=service,
        attendee_name=booking.attendee.name,
        attendee_phone=normalise_phone(booking.attendee.phone),
        attendee_email=booking.attendee.email or None,
        rescheduled_from=booking.rescheduled_from,
    )


@dataclass(frozen=True, slots=True)
class _Recipient:
    to: str
    from_: str


class Notifier:
    """Applies booking changes to the mirror and enqueues the texts they call for."""

    def __init__(
        self,
        *,
        mirror: BookingMirror,
        outbox: Outbox,
        templates: SmsTemplates,
        clock: Clock,
        review_delay: timedelta = timedelta(hours=1),
        review_window: timedelta = timedelta(days=2),
        review_urls: Mapping[str, str] | None = None,
    ) -> None:
        self._mirror = mirror
        self._outbox = outbox
        self._templates = templates
        self._clock = clock
        self._review_delay = review_delay
        self._review_window = review_window
        self._review_urls = dict(review_urls or {})

    @property
    def mirror(self) -> BookingMirror:
        return self._mirror

    async def booking_changed(
        self,
        business: BusinessProfile,
        booking: MirroredBooking,
        as_of: datetime,
        *,
        notify: bool = True,
        reschedule_requested: bool = False,
    ) -> bool:
        """Record `booking` as of `as_of`; True if the mirror took it. `notify=False` seeds silently
        (reminders are still scheduled: they are not news, they are due)."""
        if await self._mirror.apply(booking, as_of) == "unchanged":
            return False
        if not booking.live:
            await self._outbox.cancel_unsent(booking.uid, BOOKING_NOTICES)
        if booking.status == "accepted":
            await self.schedule_reminder(business, booking)
        if not notify or booking.moved or booking.start <= self._clock.now():
            return True
        match booking.status:
            case "accepted" if booking.rescheduled_from is not None:
                await self._notice(business, booking, "rescheduled", "booking.rescheduled")
            case "accepted":
                await self._notice(business, booking, "confirmed", "booking.confirmed")
            case "pending":
                await self._notice(business, booking, "requested", "booking.requested")
            case "cancelled" | "rejected":
                template = "booking.reschedule_requested" if reschedule_requested else "booking.cancelled"
                await self._notice(business, booking, "cancelled", template)
        return True

    async def schedule_reminder(self, business: BusinessProfile, booking: MirroredBooking) -> bool:
        """Enqueue the reminder N hours before the start, unless that moment has already passed."""
        hours = business.reminder_hours_before
        recipient = self._recipient(business, booking)
        if hours is None or recipient is None or booking.status != "accepted":
            return False
        remind_at = booking.start - timedelta(hours=hours)
        if remind_at <= self._clock.now():
            return False
        return await self._outbox.enqueue(
            NewMessage(
                idempotency_key=f"reminder:{booking.uid}",
                business_id=business.id,
                kind="reminder",
                booking_uid=booking.uid,
                to_number=recipient.to,
                from_number=recipient.from_,
                body=self._render("booking.reminder", business, booking),
                send_after=remind_at,
                expires_at=booking.start,
            )
        )

    async def meeting_ended(
        self, business: BusinessProfile, booking: MirroredBooking, ended_at: datetime
    ) -> bool:
        """Ask for a review a little after the appointment, unless it was cancelled or moved."""
        known = await self._mirror.get(booking.uid)
        if (known is not None and not known.live) or not booking.live:
            return False
        recipient = self._recipient(business, known or booking)
        if recipient is None:
            return False
        name = first_name((known or booking).attendee_name)
        url = self._review_urls.get(business.id)
        body = (
            self._templates.render(
                "after.review", footer=True, business_name=business.name, name=name, review_url=url
            )
            if url
            else self._templates.render(
                "after.review_no_link", footer=True, business_name=business.name, name=name
            )
        )
        send_after = max(ended_at + self._review_delay, self._clock.now())
        return await self._outbox.enqueue(
            NewMessage(
                idempotency_key=f"review:{booking.uid}",
                business_id=business.id,
                kind="review",
                booking_uid=booking.uid,
                to_number=recipient.to,
                from_number=recipient.from_,
                body=body,
                send_after=send_after,
                expires_at=ended_at + self._review_window,
            )
        )

    async def still_wanted(self, message: OutboxMessage) -> bool:
        """At send time: is the booking still in a state this text speaks of?"""
        if message.booking_uid is None:
            return True
        booking = await self._mirror.get(message.booking_uid)
        if booking is None:
            return True
        if message.kind in (*BOOKING_NOTICES, "review"):
            return booking.live
        if message.kind == "cancelled":
            return not booking.live
        return True

    async def _notice(
        self, business: BusinessProfile, booking: MirroredBooking, kind: str, template: str
    ) -> None:
        recipient = self._recipient(business, booking)
        if recipient is None:
            return
        await self._outbox.enqueue(
            NewMessage(
                idempotency_key=f"{kind}:{booking.uid}",
                business_id=business.id,
                kind=kind,
                booking_uid=booking.uid,
                to_number=recipient.to,
                from_number=recipient.from_,
                body=self._render(template, business, booking),
                send_after=self._clock.now(),
                expires_at=booking.start,
            )
        )

    def _render(self, template: str, business: BusinessProfile, booking: MirroredBooking) -> str:
        return self._templates.render(
            template,
            footer=True,
            business_name=business.name,
            name=first_name(booking.attendee_name),
            service=booking.service,
            when=text_when(booking.start, business.zone),
        )

    @staticmethod
    def _recipient(business: BusinessProfile, booking: MirroredBooking) -> _Recipient | None:
        if not business.sms_opt_in or not business.phone_numbers or booking.attendee_phone is None:
            if booking.attendee_phone is None:
                logger.bind(business=business.id, booking=booking.uid).debug("no phone to text")
            return None
        return _Recipient(to=booking.attendee_phone, from_=business.phone_numbers[0])


class ReminderSweep:
    """The safety net for reminders: every upcoming accepted booking in the mirror gets one.

    `Notifier` schedules a reminder as soon as it learns of a booking; this sweep catches any the
    first path missed (a crash between the mirror write and the enqueue, a profile whose
    `reminder_hours_before` was just set). Enqueueing is idempotent, so running it often is free.
    """

    def __init__(self, *, notifier: Notifier, directory: Directory, clock: Clock) -> None:
        self._notifier = notifier
        self._directory = directory
        self._clock = clock

    async def run_once(self) -> int:
        scheduled = 0
        now = self._clock.now()
        for business in self._directory:
            for booking in await self._notifier.mirror.upcoming(business.id, now):
                if await self._notifier.schedule_reminder(business, booking):
                    logger.bind(business=business.id, to=mask_phone(booking.attendee_phone or "")).info(
                        "reminder scheduled by the sweep"
                    )
                    scheduled += 1
        return scheduled

    async def run(self, interval: timedelta = timedelta(minutes=10)) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("reminder sweep failed; retrying at the next interval")
            await asyncio.sleep(interval.total_seconds())
