"""Twilio's REST API for a live call: move it to a person, or end it. Every request goes to
`TWILIO_API_BASE_URL`, which is how tests reach a local fake Twilio."""

from __future__ import annotations

import httpx
from loguru import logger

CALL_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class TwilioCallError(Exception):
    """Twilio refused or did not answer a call update."""


class TwilioCalls:
    def __init__(self, client: httpx.AsyncClient, *, account_sid: str, auth_token: str) -> None:
        self._client = client
        self._account_sid = account_sid
        self._auth = (account_sid, auth_token)

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """Replace what the call is doing (our media stream) with new TwiML, e.g. `<Dial>`."""
        await self._update(call_sid, {"Twiml": twiml})

    async def hang_up(self, call_sid: str) -> None:
        await self._update(call_sid, {"Status": "completed"})

    async def _update(self, call_sid: str, form: dict[str, str]) -> None:
        path = f"/2010-04-01/Accounts/{self._account_sid}/Calls/{call_sid}.json"
        try:
            response = await self._client.post(path, data=form, auth=self._auth, timeout=CALL_TIMEOUT)
        except httpx.HTTPError as exc:
            raise TwilioCallError(f"Twilio did not answer the call update: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            logger.warning("Twilio refused a call update: HTTP {}", response.status_code)
            raise TwilioCallError(f"Twilio refused the call update: HTTP {response.status_code}")
