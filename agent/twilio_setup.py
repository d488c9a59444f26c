"""`python -m agent twilio-setup`: point the businesses' Twilio numbers at this server.

It does what the README's console steps do: each number's voice webhook becomes
`POST {PUBLIC_BASE_URL}/twilio/voice` and its messaging webhook `POST {PUBLIC_BASE_URL}/twilio/sms`,
through Twilio's IncomingPhoneNumbers REST API (at `TWILIO_API_BASE_URL`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx

SETUP_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass(frozen=True)
class NumberSetup:
    number: str
    done: bool
    detail: str


async def point_numbers(
    client: httpx.AsyncClient,
    *,
    account_sid: str,
    auth_token: str,
    numbers: Iterable[str],
    public_base_url: str,
) -> list[NumberSetup]:
    """Set each number's voice and SMS webhooks; a number the account does not own is reported, not fatal."""
    base = f"/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers"
    auth = (account_sid, auth_token)
    public = public_base_url.rstrip("/")
    results: list[NumberSetup] = []
    for number in numbers:
        try:
            listing = await client.get(
                f"{base}.json", params={"PhoneNumber": number}, auth=auth, timeout=SETUP_TIMEOUT
            )
            if listing.status_code != 200:
                results.append(NumberSetup(number, False, f"Twilio answered HTTP {listing.status_code}"))
                continue
            owned = listing.json().get("incoming_phone_numbers", [])
            if not owned:
                results.append(NumberSetup(number, False, "this Twilio account does not own the number"))
                continue
            update = await client.post(
                f"{base}/{owned[0]['sid']}.json",
                data={
                    "VoiceUrl": f"{public}/twilio/voice",
                    "VoiceMethod": "POST",
                    "SmsUrl": f"{public}/twilio/sms",
                    "SmsMethod": "POST",
                },
                auth=auth,
                timeout=SETUP_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            results.append(NumberSetup(number, False, f"Twilio did not answer ({type(exc).__name__})"))
            continue
        if update.status_code == 200:
            results.append(NumberSetup(number, True, f"calls and texts now go to {public}"))
        else:
            results.append(
                NumberSetup(number, False, f"Twilio refused the update: HTTP {update.status_code}")
            )
    return results
