"""Cal.com webhooks: only signed ones count, each applies once in any order, each caller gets one text."""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from agent.businesses import BusinessProfile
from agent.loopback.calcom_api import DEFAULT_API_KEY, WebhookDelivery
from agent.mirror import MirroredBooking
from agent.reminders import Notifier
from agent.webhooks import WebhookRegistrationFailed, calcom_signature_ok, register_webhook
from tests.agent.messaging_stage import (
    CALLER,
    FRIDAY_10AM,
    PUBLIC_BASE_URL,
    SECRET,
    WEDNESDAY_2PM,
    stage,
)


async def test_a_web_booking_is_texted_as_booked_and_reminded(database_url: str) -> None:
    """A caller who books on the website gets "you're booked", and a reminder the day before."""
    async with stage(database_url) as s:
        await s.subscribe()
        uid = await s.book(WEDNESDAY_2PM)
        [response] = await s.deliver_all()
        assert response.status_code == 200 and response.json()["outcome"] == "processed"

        assert await s.send_due() == 1
        [text] = s.twilio.texts_to(CALLER)
        assert text.from_ == "+15550100100"
        assert text.body == (
            "Hi Jane, you're booked for consultation at Bright Smile Dental on Wednesday, November 25th "
            "at 2pm. Reply STOP to opt out."
        )
        assert (await s.mirror.next_booking_for("bright-smile", CALLER, s.clock.now())).uid == uid  # type: ignore[union-attr]

        s.later(timedelta(hours=30))  # Tuesday 15:00: the reminder (24 hours before) is due
        assert await s.send_due() == 1
        assert s.twilio.texts_to(CALLER)[-1].body.startswith(
            "Reminder: your consultation at Bright Smile Dental"
        )


async def test_forged_and_unsigned_webhooks_are_refused(database_url: str) -> None:
    """A webhook not signed with the business's secret changes nothing and texts no one."""
    async with stage(database_url) as s:
        await s.subscribe()
        await s.book(WEDNESDAY_2PM)
        [real] = s.take_deliveries()
        tampered = real.body.replace(b"Jane Doe", b"Mallory X")
        attempts = [
            {**real.headers, "X-Cal-Signature-256": "0" * 64},
            {k: v for k, v in real.headers.items() if k != "X-Cal-Signature-256"},
            {**real.headers, "X-Cal-Signature-256": "no-secret-provided"},
            {**real.headers, "X-Cal-Signature-256": "sha256=" + real.headers["X-Cal-Signature-256"]},
        ]
        for headers in attempts:
            response = await s.client.post("/webhooks/calcom", content=real.body, headers=headers)
            assert response.status_code == 401
        response = await s.client.post("/webhooks/calcom", content=tampered, headers=real.headers)
        assert response.status_code == 401
        assert await s.queued() == []
        assert await s.mirror.upcoming("bright-smile", s.clock.now()) == []


async def test_a_webhook_created_without_a_secret_is_refused(database_url: str) -> None:
    """Cal.com's `no-secret-provided` (a subscription made without a secret) is never trusted."""
    async with stage(database_url) as s:
        await s.subscribe(secret=None)
        await s.book(WEDNESDAY_2PM)
        [response] = await s.deliver_all()
        assert response.status_code == 401
        assert await s.queued() == []


def test_signature_is_the_hex_hmac_of_the_raw_body() -> None:
    """Upper-case hex is the same signature; a re-serialised body is not the body that was signed."""
    body = b'{"triggerEvent":"BOOKING_CREATED","payload":{"uid":"x"}}'
    good = hmac.new(SECRET.encode(), body, "sha256").hexdigest()
    assert calcom_signature_ok(SECRET, body, good)
    assert calcom_signature_ok(SECRET, body, good.upper())
    assert not calcom_signature_ok(SECRET, json.dumps(json.loads(body)).encode(), good)
    assert not calcom_signature_ok(SECRET, body, "ünïcode")


async def test_a_repeated_webhook_texts_once(database_url: str) -> None:
    """Cal.com delivering the same booking twice gives the caller one confirmation."""
    async with stage(database_url) as s:
        await s.subscribe()
        await s.book(WEDNESDAY_2PM)
        [delivery] = s.take_deliveries()
        first, second = await s.deliver(delivery), await s.deliver(delivery)
        assert (first.status_code, second.status_code) == (200, 200)
        assert second.json()["outcome"] == "duplicate"
        await s.send_due()
        assert len(s.twilio.texts_to(CALLER)) == 1


async def test_a_cancellation_arriving_before_its_booking_wins(database_url: str) -> None:
    """Out of order: the cancel is applied, the late "created" does not bring the booking back."""
    async with stage(database_url) as s:
        await s.subscribe()
        uid = await s.book(WEDNESDAY_2PM)
        s.later(timedelta(minutes=5))
        await s.cancel(uid)
        created, cancelled = s.take_deliveries()
        assert (await s.deliver(cancelled)).status_code == 200
        assert (await s.deliver(created)).status_code == 200

        assert (await s.mirror.get(uid)).status == "cancelled"  # type: ignore[union-attr]
        assert [m.kind for m in await s.queued()] == ["cancelled"]
        await s.send_due()
        [text] = s.twilio.texts_to(CALLER)
        assert "is cancelled" in text.body


async def test_a_cancellation_withdraws_the_unsent_reminder(database_url: str) -> None:
    """A caller who cancels gets the cancellation and never the reminder."""
    async with stage(database_url) as s:
        await s.subscribe()
        uid = await s.book(WEDNESDAY_2PM)
        await s.deliver_all()
        await s.send_due()
        await s.cancel(uid)
        await s.deliver_all()
        await s.send_due()
        s.later(timedelta(hours=30))
        await s.send_due()
        bodies = [t.body for t in s.twilio.texts_to(CALLER)]
        assert len(bodies) == 2 and "booked" in bodies[0] and "cancelled" in bodies[1]
        [reminder] = await s.queued(kind="reminder")
        assert reminder.status == "cancelled"


async def test_a_reschedule_moves_the_text_and_the_reminder(database_url: str) -> None:
    """Moving a booking texts the new time once and reminds before the new time, not the old one."""
    async with stage(database_url) as s:
        await s.subscribe()
        old = await s.book(WEDNESDAY_2PM)
        await s.deliver_all()
        await s.send_due()
        new = await s.reschedule(old, FRIDAY_10AM)
        await s.deliver_all()
        await s.send_due()
        moved = s.twilio.texts_to(CALLER)[-1].body
        assert moved.startswith(
            "Hi Jane, your consultation at Bright Smile Dental has moved to Friday, November 27th"
        )
        assert (await s.mirror.get(old)).rescheduled_to == new  # type: ignore[union-attr]
        reminders = {m.booking_uid: m.status for m in await s.queued(kind="reminder")}
        assert reminders == {old: "cancelled", new: "pending"}
        assert [b.uid for b in await s.mirror.upcoming("bright-smile", s.clock.now(), phone=CALLER)] == [new]


async def test_both_meeting_ended_shapes_ask_for_one_review(database_url: str) -> None:
    """After the visit the caller gets one review request, whichever MEETING_ENDED shape Cal.com sends."""
    async with stage(database_url) as s:
        await s.subscribe()
        first = await s.book(WEDNESDAY_2PM)
        second = await s.book(FRIDAY_10AM, name="Sam Roe", phone="+14155550102")
        await s.deliver_all()
        s.later(timedelta(days=4, hours=2))  # Friday 11:00: both visits are over
        s.calcom.end_meeting(first)
        s.calcom.end_meeting(second, legacy=True)
        deliveries = s.take_deliveries()
        assert b'"payload"' in deliveries[0].body and b'"payload"' not in deliveries[1].body
        for delivery in [*deliveries, *deliveries]:
            assert (await s.deliver(delivery)).status_code == 200
        reviews = await s.queued(kind="review")
        assert {m.booking_uid for m in reviews} == {first, second}
        s.later(timedelta(hours=2))
        await s.send_due()
        assert s.twilio.texts_to(CALLER)[-1].body.startswith("Thanks for visiting Bright Smile Dental, Jane!")
        assert s.twilio.texts_to("+14155550102")[-1].body.startswith(
            "Thanks for visiting Bright Smile Dental, Sam!"
        )


class _CrashOnce(Notifier):
    """The process dies after the event was stored, before anything was queued."""

    crashed = False

    async def booking_changed(
        self, business: BusinessProfile, booking: MirroredBooking, *args: Any, **kwargs: Any
    ) -> bool:
        if not _CrashOnce.crashed:
            _CrashOnce.crashed = True
            raise RuntimeError("killed between store and send")
        return await super().booking_changed(business, booking, *args, **kwargs)


async def test_an_event_stored_before_a_crash_is_texted_once_later(database_url: str) -> None:
    """A crash after the webhook was stored still ends in exactly one confirmation."""
    _CrashOnce.crashed = False
    async with stage(database_url, notifier_class=_CrashOnce) as s:
        await s.subscribe()
        await s.book(WEDNESDAY_2PM)
        [delivery] = s.take_deliveries()
        assert (await s.deliver(delivery)).status_code == 200  # stored: Cal.com will not send it again
        assert await s.queued() == []
        assert (await s.deliver(delivery)).json()["outcome"] == "duplicate"

        assert await s.events.process_stored() == 0  # too fresh: its request may still be working
        s.later(timedelta(minutes=2))
        assert await s.events.process_stored() == 1
        assert await s.events.process_stored() == 0
        await s.send_due()
        await s.send_due()
        assert len(s.twilio.texts_to(CALLER)) == 1


async def test_a_webhook_for_an_unknown_trigger_is_acknowledged(database_url: str) -> None:
    """Cal.com gets its 200 for triggers we do not use, so it never marks the subscription failing."""
    async with stage(database_url) as s:
        body = json.dumps({"triggerEvent": "OOO_CREATED", "createdAt": "2026-11-23T14:00:00.000Z",
                           "payload": {"oooEntry": {"id": 1}}}, separators=(",", ":")).encode()  # fmt: skip
        delivery = WebhookDelivery(
            "OOO_CREATED", "", body, {"X-Cal-Signature-256": s.calcom.signature(body, SECRET)}
        )
        response = await s.deliver(delivery)
        assert response.status_code == 200 and response.json()["outcome"] == "ignored"
        assert (await s.client.post("/webhooks/calcom", content=b"[]", headers={
            "X-Cal-Signature-256": s.calcom.signature(b"[]", SECRET)})).status_code == 400  # fmt: skip


async def test_registering_twice_keeps_one_subscription(database_url: str) -> None:
    """`webhooks register` run again updates the subscription instead of doubling every webhook."""
    async with stage(database_url) as s:
        url = f"{PUBLIC_BASE_URL}/webhooks/calcom"
        first = await register_webhook(s.calcom_http, api_key=DEFAULT_API_KEY, subscriber_url=url, secret="a")
        again = await register_webhook(
            s.calcom_http, api_key=DEFAULT_API_KEY, subscriber_url=url, secret=SECRET
        )
        assert (first.created, again.created, first.id) == (True, False, again.id)
        [webhook] = s.calcom.webhooks.values()
        assert webhook["secret"] == SECRET and "MEETING_ENDED" in webhook["triggers"]
        bad = httpx.AsyncClient(base_url="https://api.cal.com/v2", transport=httpx.MockTransport(s.calcom))
        try:
            with pytest.raises(WebhookRegistrationFailed) as failure:
                await register_webhook(bad, api_key="cal_wrong", subscriber_url=url, secret=SECRET)
            assert failure.value.status == 401
        finally:
            await bad.aclose()
