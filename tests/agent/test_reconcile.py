"""The reconciler: a webhook Cal.com lost still ends in the right texts, and nothing is texted twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.reconcile import ReconcileFailed
from tests.agent.messaging_stage import CALLER, FRIDAY_10AM, OTHER_CALLER, WEDNESDAY_2PM, stage


async def test_the_first_pass_seeds_without_texting_old_bookings(database_url: str) -> None:
    """Installing the runtime does not text every existing customer "you're booked"; reminders still come."""
    async with stage(database_url) as s:
        uid = await s.book(WEDNESDAY_2PM)
        report = await s.reconciler().run_once()
        assert report.seeded and report.changed == 1
        assert (await s.mirror.get(uid)).status == "accepted"  # type: ignore[union-attr]
        assert [m.kind for m in await s.queued()] == ["reminder"]
        known = await s.mirror.known_caller("bright-smile", CALLER, s.clock.now())
        assert known is not None and known.name == "Jane Doe" and known.next_booking.uid == uid  # type: ignore[union-attr]


async def test_a_lost_booking_webhook_is_texted_by_the_next_pass(database_url: str) -> None:
    """Cal.com never retries; a booking whose webhook was lost is still confirmed, once."""
    async with stage(database_url) as s:
        await s.subscribe()
        reconciler = s.reconciler()
        await reconciler.run_once()
        s.later(timedelta(minutes=1))
        await s.book(WEDNESDAY_2PM)
        s.take_deliveries()  # lost on the way
        s.later(timedelta(minutes=5))
        assert (await reconciler.run_once()).changed == 1
        assert (await reconciler.run_once()).changed == 0
        await s.send_due()
        [text] = s.twilio.texts_to(CALLER)
        assert "you're booked" in text.body


async def test_a_pass_after_the_webhook_changes_nothing(database_url: str) -> None:
    """A booking the webhook already reported is not texted again by the reconciler."""
    async with stage(database_url) as s:
        await s.subscribe()
        reconciler = s.reconciler()
        await reconciler.run_once()
        s.later(timedelta(minutes=1))
        await s.book(WEDNESDAY_2PM)
        await s.deliver_all()
        s.later(timedelta(minutes=5))
        assert (await reconciler.run_once()).changed == 0
        await s.send_due()
        assert len(s.twilio.texts_to(CALLER)) == 1


async def test_a_lost_cancellation_and_reschedule_are_caught_up(database_url: str) -> None:
    """Changes made by the office with lost webhooks reach the callers: a cancel notice and a moved notice."""
    async with stage(database_url) as s:
        await s.subscribe()
        reconciler = s.reconciler()
        cancelled = await s.book(WEDNESDAY_2PM)
        moved = await s.book(FRIDAY_10AM, name="Sam Roe", phone=OTHER_CALLER)
        await s.deliver_all()
        await reconciler.run_once()
        await s.send_due()
        s.later(timedelta(hours=1))
        await s.cancel(cancelled)
        new = await s.reschedule(moved, FRIDAY_10AM + timedelta(hours=3))
        s.take_deliveries()  # both lost
        s.later(timedelta(minutes=5))
        await reconciler.run_once()
        await s.send_due()
        assert "is cancelled" in s.twilio.texts_to(CALLER)[-1].body
        assert "has moved to Friday, November 27th at 1pm" in s.twilio.texts_to(OTHER_CALLER)[-1].body
        reminders = {m.booking_uid: m.status for m in await s.queued(kind="reminder")}
        assert reminders == {cancelled: "cancelled", moved: "cancelled", new: "pending"}
        assert (await s.mirror.get(moved)).rescheduled_to == new  # type: ignore[union-attr]


async def test_a_lost_meeting_ended_still_asks_for_a_review(database_url: str) -> None:
    """A visit that ended without its MEETING_ENDED webhook still gets its review request."""
    async with stage(database_url) as s:
        await s.book(WEDNESDAY_2PM)
        reconciler = s.reconciler()
        await reconciler.run_once()
        s.later(timedelta(days=2, hours=6))  # Wednesday 15:00, half an hour after the visit
        report = await reconciler.run_once()
        assert report.ended == 1
        s.later(timedelta(hours=1))
        await s.send_due()
        assert s.twilio.texts_to(CALLER)[-1].body.startswith("Thanks for visiting Bright Smile Dental, Jane!")


async def test_cal_com_down_is_a_typed_failure_and_nothing_moves(database_url: str) -> None:
    """When Cal.com cannot be listed the pass fails as a whole; the next one starts from the same point."""
    async with stage(database_url) as s:
        s.calcom.fail_next(1, status=503)
        with pytest.raises(ReconcileFailed) as failure:
            await s.reconciler().run_once()
        assert failure.value.status == 503
        assert (await s.reconciler().run_once()).seeded
