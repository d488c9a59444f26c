"""`twilio-setup` points the business's numbers at this server, and says which it could not."""

from __future__ import annotations

import httpx

from agent.loopback.twilio_rest import FakeTwilio
from agent.twilio_setup import point_numbers


async def test_owned_numbers_get_our_webhooks_and_others_are_reported() -> None:
    """An owned number gets voice and SMS webhooks; a number the account lacks is named, not fatal."""
    twilio = FakeTwilio()
    sid = twilio.own_number("+15550100100")
    async with httpx.AsyncClient(transport=twilio.transport(), base_url="http://twilio.test") as client:
        results = await point_numbers(
            client,
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            numbers=["+15550100100", "+15550100777"],
            public_base_url="https://rx.example.com/",
        )
    assert [(r.number, r.done) for r in results] == [("+15550100100", True), ("+15550100777", False)]
    assert "does not own" in results[1].detail
    number = twilio.incoming_numbers[sid]
    assert (number["voice_url"], number["sms_url"]) == (
        "https://rx.example.com/twilio/voice",
        "https://rx.example.com/twilio/sms",
    )


async def test_wrong_credentials_are_reported() -> None:
    """A refused token is a clear per-number failure."""
    twilio = FakeTwilio()
    twilio.own_number("+15550100100")
    async with httpx.AsyncClient(transport=twilio.transport(), base_url="http://twilio.test") as client:
        [result] = await point_numbers(
            client,
            account_sid=twilio.account_sid,
            auth_token="wrong",
            numbers=["+15550100100"],
            public_base_url="https://rx.example.com",
        )
    assert not result.done and "HTTP 401" in result.detail
