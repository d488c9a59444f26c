"""Texts through Twilio: the words come from templates, codes go out at once, and STOP is honoured."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest

from agent.errors import ConfigError
from agent.loopback.twilio_rest import FakeTwilio
from agent.sms import (
    SMS_TEMPLATES_FILE,
    SmsError,
    TwilioCodeSender,
    TwilioMessages,
    load_sms_templates,
    text_when,
)
from tests.agent.messaging_stage import (
    BUSINESS,
    BUSINESS_NUMBER,
    CALLER,
    PUBLIC_BASE_URL,
    WEDNESDAY_2PM,
    ZONE,
    stage,
)


def test_every_text_template_loads_and_is_checked(tmp_path: Path) -> None:
    """A typo in a text's placeholder stops start-up instead of reaching a caller's phone."""
    templates = load_sms_templates()
    assert "{" not in templates.render(
        "booking.confirmed", footer=True, business_name="B", name="Jo", service="s", when="w"
    )
    broken = tmp_path / "sms.toml"
    broken.write_text(SMS_TEMPLATES_FILE.read_text().replace("{when}.", "{wen}.", 1))
    with pytest.raises(ConfigError, match="unknown placeholder"):
        load_sms_templates(broken)
    missing = tmp_path / "missing.toml"
    missing.write_text('[booking]\nconfirmed = "hi"\n')
    with pytest.raises(ConfigError, match="no \\[booking\\] requested"):
        load_sms_templates(missing)


def test_times_in_texts_are_absolute_and_local() -> None:
    """A text names the day and the business's local time, since it is read later."""
    assert text_when(WEDNESDAY_2PM, ZONE) == "Wednesday, November 25th at 2pm"
    assert text_when(datetime(2026, 12, 1, 15, 30, tzinfo=ZONE), ZONE) == "Tuesday, December 1st at 3:30pm"


async def test_twilio_errors_say_whether_to_retry() -> None:
    """Twilio's answers map to retry (outage, rate limit) or stop (opted out, bad credentials aside)."""
    twilio = FakeTwilio()
    async with httpx.AsyncClient(transport=twilio.transport()) as client:
        messages = TwilioMessages(
            client,
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            base_url="http://twilio.test",
        )
        sent = await messages.send(to=CALLER, from_=BUSINESS_NUMBER, body="hello")
        assert sent.sid.startswith("SM") and sent.status == "queued"
        assert twilio.requests[0].form == {"To": CALLER, "From": BUSINESS_NUMBER, "Body": "hello"}
        assert twilio.requests[0].username == twilio.account_sid

        twilio.opt_out(CALLER)
        with pytest.raises(SmsError) as opted_out:
            await messages.send(to=CALLER, from_=BUSINESS_NUMBER, body="hello")
        assert opted_out.value.opted_out and not opted_out.value.retryable
        assert CALLER not in str(opted_out.value)

        twilio.fail_next(1, status=500)
        with pytest.raises(SmsError) as outage:
            await messages.send(to="+14155550177", from_=BUSINESS_NUMBER, body="hello")
        assert outage.value.retryable and outage.value.status == 500

        wrong = TwilioMessages(
            client, account_sid=twilio.account_sid, auth_token="nope", base_url="http://twilio.test"
        )
        with pytest.raises(SmsError) as refused:
            await wrong.send(to="+14155550177", from_=BUSINESS_NUMBER, body="hello")
        assert refused.value.code == 20003


async def test_a_verification_code_is_texted_at_once() -> None:
    """A caller asked to read back a code gets it while still on the line, from the business's number."""
    twilio = FakeTwilio()
    async with httpx.AsyncClient(transport=twilio.transport()) as client:
        messages = TwilioMessages(
            client,
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            base_url="http://twilio.test",
        )
        await TwilioCodeSender(messages, load_sms_templates(), BUSINESS).send_code(CALLER, "4821")
    [text] = twilio.messages
    assert (text.to, text.from_) == (CALLER, BUSINESS_NUMBER)
    assert text.body.startswith("Your Bright Smile Dental verification code is 4821.")


def _inbound(body: str, sender: str = CALLER) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": BUSINESS_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "MessagingServiceSid": "",
    }


async def _reply(s: object, form: dict[str, str], signature: str | None) -> httpx.Response:
    client: httpx.AsyncClient = s.client  # type: ignore[attr-defined]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await client.post("/twilio/sms", content=httpx.QueryParams(form).__str__(), headers=headers)


async def test_stop_is_honoured_before_any_later_text(database_url: str) -> None:
    """A caller who texts STOP gets no confirmation or reminder afterwards, until they text START."""
    async with stage(database_url) as s:
        url = f"{PUBLIC_BASE_URL}/twilio/sms"
        stop = _inbound("Stop ")
        response = await _reply(s, stop, s.twilio.signature(url, stop))
        assert response.status_code == 200 and "<Message>" not in response.text
        assert await s.opt_outs.is_opted_out("bright-smile", CALLER)

        await s.subscribe()
        await s.book(WEDNESDAY_2PM)
        await s.deliver_all()
        await s.send_due()
        assert s.twilio.texts_to(CALLER) == []
        [confirmation] = await s.queued(kind="confirmed")
        assert confirmation.status == "skipped"

        start = _inbound("START")
        response = await _reply(s, start, s.twilio.signature(url, start))
        assert "appointment texts again" in response.text
        assert not await s.opt_outs.is_opted_out("bright-smile", CALLER)
        help_ = _inbound("help")
        assert "Reply STOP" in (await _reply(s, help_, s.twilio.signature(url, help_))).text


async def test_an_unsigned_or_forged_stop_changes_nothing(database_url: str) -> None:
    """Nobody but Twilio can opt a caller out: the signature covers the public URL and every field."""
    async with stage(database_url) as s:
        stop = _inbound("STOP")
        internal = s.twilio.signature("http://internal:8000/twilio/sms", stop)
        other = s.twilio.signature(f"{PUBLIC_BASE_URL}/twilio/sms", _inbound("STOP", sender="+14155550199"))
        for signature in (None, "forged", internal, other):
            assert (await _reply(s, stop, signature)).status_code == 403
        assert not await s.opt_outs.is_opted_out("bright-smile", CALLER)


async def test_twilio_saying_opted_out_is_remembered(database_url: str) -> None:
    """If Twilio reports the caller unsubscribed (21610), the text is dropped and none is tried again."""
    async with stage(database_url) as s:
        s.twilio.opt_out(CALLER)
        await s.subscribe()
        await s.book(WEDNESDAY_2PM)
        await s.deliver_all()
        await s.send_due()
        assert await s.opt_outs.is_opted_out("bright-smile", CALLER)
        assert [m.status for m in await s.queued(kind="confirmed")] == ["skipped"]
        assert len(s.twilio.requests) == 1


async def test_the_server_gets_both_routes_and_its_workers(tmp_path: Path) -> None:
    """With Twilio and a Cal.com webhook secret configured, both webhooks are mounted and the workers run."""
    from agent.messaging import Messaging
    from agent.settings import Settings
    from agent.wiring import open_runtime
    from booking.clock import FixedClock
    from tests.agent.messaging_stage import NOW

    twilio = FakeTwilio()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        public_base_url=PUBLIC_BASE_URL,
        calcom_webhook_secret="s3cret",
    )
    async with (
        open_runtime(settings) as runtime,
        httpx.AsyncClient(transport=twilio.transport()) as twilio_http,
    ):
        messaging = Messaging.build(runtime, clock=FixedClock(NOW), twilio_http=twilio_http)
        await messaging.create_schema()
        paths = sorted(route.path for router in messaging.routers() for route in router.routes)  # type: ignore[attr-defined]
        assert paths == ["/twilio/sms", "/webhooks/calcom"]
        assert messaging.code_sender(runtime.directory.default) is not None
        await messaging.start()
        await messaging.stop()
