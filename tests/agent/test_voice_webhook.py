"""Twilio's voice webhook: only Twilio gets a call started, and each stream token works once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from agent.server import LiveCalls, create_app
from agent.settings import Settings
from agent.twilio_auth import StreamTokens
from agent.wiring import Runtime, open_runtime
from booking.clock import FixedClock

ACCOUNT = "AC" + "0" * 32
TOKEN = "twilio-auth-token-for-tests"
PUBLIC = "https://receptionist.example.com"
BUSINESS_NUMBER = "+15550100100"
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def call_params(to: str = BUSINESS_NUMBER) -> dict[str, str]:
    return {
        "CallSid": "CA" + "1" * 32,
        "AccountSid": ACCOUNT,
        "From": "+14155550101",
        "To": to,
        "StirVerstat": "TN-Validation-Passed-A",
    }


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'v.db'}",
        openai_api_key="sk-test",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        public_base_url=PUBLIC,
        _env_file=None,
    )
    async with open_runtime(settings) as runtime:
        yield runtime


async def post_voice(
    runtime: Runtime, params: dict[str, str], headers: dict[str, str], live: LiveCalls | None = None
) -> httpx.Response:
    app = create_app(runtime, clock=FixedClock(NOW), live=live)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as client:
            return await client.post("/twilio/voice", data=params, headers=headers)


async def test_signed_call_is_connected_to_a_tokened_stream(runtime: Runtime) -> None:
    """A genuine Twilio request gets <Connect><Stream> to a wss URL carrying a one-time token."""
    params = call_params()
    response = await post_voice(runtime, params, signed(f"{PUBLIC}/twilio/voice", params))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    match = re.search(r'<Stream url="wss://receptionist\.example\.com/twilio/media/([^"]+)"', response.text)
    assert match, response.text
    assert '<Parameter name="business" value="bright-smile"' in response.text


@pytest.mark.parametrize("forgery", ["missing", "wrong token", "tampered From", "other URL"])
async def test_forged_or_missing_signature_is_refused(runtime: Runtime, forgery: str) -> None:
    """Without Twilio's valid signature no call starts: 403."""
    params = call_params()
    headers = {
        "missing": {},
        "wrong token": signed(f"{PUBLIC}/twilio/voice", params, token="not-the-token"),
        "tampered From": signed(f"{PUBLIC}/twilio/voice", {**params, "From": "+19995550000"}),
        "other URL": signed("https://evil.example.com/twilio/voice", params),
    }[forgery]
    response = await post_voice(runtime, params, headers)
    assert response.status_code == 403
    assert "Stream" not in response.text


async def test_unknown_number_hears_not_in_service(runtime: Runtime) -> None:
    """A number no business owns is told so, and the call ends."""
    params = call_params(to="+15559999999")
    response = await post_voice(runtime, params, signed(f"{PUBLIC}/twilio/voice", params))
    assert "not in service" in response.text and "<Hangup" in response.text


async def test_draining_server_puts_new_callers_through(runtime: Runtime) -> None:
    """During a deploy, a new caller is dialled straight to the business instead of the agent."""
    params = call_params()
    response = await post_voice(
        runtime, params, signed(f"{PUBLIC}/twilio/voice", params), live=LiveCalls(draining=True)
    )
    assert "<Dial><Number>+15550100199</Number></Dial>" in response.text


async def test_stream_tokens_are_single_use_and_short_lived(runtime: Runtime) -> None:
    """A token redeems once; a replay, a forgery or a late use is refused."""
    clock = FixedClock(NOW)
    tokens = StreamTokens(TOKEN, runtime.engine, clock)
    await tokens.create_schema()
    token = tokens.mint(call_sid="CA1", business_id="b", caller="+1", dialled="+2", attestation=None)
    grant = await tokens.redeem(token)
    assert grant is not None and grant.call_sid == "CA1"
    assert await tokens.redeem(token) is None
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert await tokens.redeem(forged) is None
    late = tokens.mint(call_sid="CA2", business_id="b", caller=None, dialled=None, attestation=None)
    clock.advance(timedelta(seconds=31))
    assert await tokens.redeem(late) is None
    other_secret = StreamTokens("another-token", runtime.engine, clock)
    assert (
        await other_secret.redeem(
            tokens.mint(call_sid="CA3", business_id="b", caller=None, dialled=None, attestation=None)
        )
        is None
    )
