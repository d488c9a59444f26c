"""A fake of the Twilio REST API (2010-04-01) for the parts this project calls: Messages and Calls.

`FakeTwilio().app` is a FastAPI app, so it runs in-process behind `httpx.ASGITransport(app=...)`
(see `transport()`) or on 127.0.0.1 under uvicorn, where Pipecat's serializer POSTs its hang-up
(`Status=completed`) and the transfer updates the call (`Twiml=<Response><Dial>...`). It answers
the way Twilio does:

- Basic auth with the account SID and auth token (or an API key SID and secret); anything else is
  401 with Twilio's error body (`code` 20003). A path for another account is 404 (20404).
- `POST .../Messages.json` (form `To`, `From`, `Body`) -> 201 with the Message resource (`SM...`
  sid, `status: queued`, RFC 2822 dates); a number that opted out gets 400 with code 21610, a bad
  `To` 21211, a missing `To`/`From`/`Body` 21604/21603/21602, a body over 1600 characters 21617.
- `POST .../Calls/{CA}.json` (form `Status`, `Twiml`, `Url`, `Method`) -> 200 with the Call
  resource; redirecting a call that has ended is 400 with code 21220, an unknown call (when
  `known_calls` is given) 404.
- `GET .../Messages.json` (filters `To`, `From`) and `GET .../Messages/{SM}.json`.
- Fault knobs: the next N requests (optionally only for a path suffix) answer 5xx or 429 (20429).

Every request is recorded in `requests`, every accepted text in `messages`, every call update in
`call_updates`. `signature(url, params)` computes the `X-Twilio-Signature` Twilio would send to us.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from booking.clock import Clock, SystemClock

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "CallUpdate",
    "FakeMessage",
    "FakeTwilio",
    "RecordedRequest",
]

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
API_VERSION = "2010-04-01"
MAX_BODY = 1600
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    username: str | None


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    date_created: datetime
    status: str = "queued"


@dataclass(frozen=True)
class CallUpdate:
    call_sid: str
    status: str | None
    twiml: str | None
    url: str | None


@dataclass
class _Fault:
    kind: Literal["status", "rate_limit"]
    remaining: int
    status: int
    path_suffix: str | None

    def matches(self, path: str) -> bool:
        return self.path_suffix is None or path.endswith(self.path_suffix)


@dataclass
class FakeTwilio:
    """One Twilio account, its texts and its call updates."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    api_keys: dict[str, str] = field(default_factory=dict)
    clock: Clock = field(default_factory=SystemClock)
    known_calls: set[str] | None = None
    opted_out: set[str] = field(default_factory=set)
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list)
    call_updates: list[CallUpdate] = field(default_factory=list)
    incoming_numbers: dict[str, dict[str, str]] = field(default_factory=dict)
    ended_calls: set[str] = field(default_factory=set)
    _faults: list[_Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = self._build_app()

    # -- knobs and helpers for tests ---------------------------------------------------------

    def fail_next(self, n: int = 1, *, status: int = 500, path_suffix: str | None = None) -> None:
        """The next `n` matching requests get a 5xx (Twilio's 20500 body), unprocessed."""
        self._faults.append(_Fault("status", n, status, path_suffix))

    def rate_limit_next(self, n: int = 1, *, path_suffix: str | None = None) -> None:
        """The next `n` matching requests get 429 Too Many Requests (code 20429), unprocessed."""
        self._faults.append(_Fault("rate_limit", n, 429, path_suffix))

    def own_number(self, number: str) -> str:
        """The account owns this phone number (an IncomingPhoneNumber); returns its PN sid."""
        sid = "PN" + secrets.token_hex(16)
        self.incoming_numbers[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "phone_number": number,
            "voice_url": "",
            "voice_method": "POST",
            "sms_url": "",
            "sms_method": "POST",
        }
        return sid

    def opt_out(self, number: str) -> None:
        """The recipient texted STOP to Twilio: texts to them now fail with 21610."""
        self.opted_out.add(number)

    def transport(self) -> httpx.ASGITransport:
        """An in-process transport for `httpx.AsyncClient(transport=..., base_url=...)`."""
        return httpx.ASGITransport(app=self.app)

    def signature(self, url: str, params: dict[str, str]) -> str:
        """The `X-Twilio-Signature` Twilio computes for a webhook to `url` with these form fields."""
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def texts_to(self, number: str) -> list[FakeMessage]:
        return [m for m in self.messages if m.to == number]

    # -- the API -----------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="fake Twilio REST")
        prefix = f"/{API_VERSION}/Accounts/{{account}}"

        @app.middleware("http")
        async def record_and_check(request: Request, call_next: Any) -> Response:
            raw = await request.body()
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            username = _basic_username(request)
            self.requests.append(RecordedRequest(request.method, request.url.path, form, username))
            fault = next((f for f in self._faults if f.remaining > 0 and f.matches(request.url.path)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.kind == "rate_limit":
                    return _error(429, 20429, "Too Many Requests")
                return _error(fault.status, 20500, "An internal server error has occurred")
            if not self._authorised(request):
                return _error(401, 20003, "Authenticate")
            request.state.form = form
            response: Response = await call_next(request)
            return response

        @app.post(prefix + "/Messages.json")
        async def create_message(account: str, request: Request) -> Response:
            if account != self.account_sid:
                return _not_found(request.url.path)
            form: dict[str, str] = request.state.form
            to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
            if not to:
                return _error(400, 21604, "A 'To' phone number is required.")
            if not from_ and not form.get("MessagingServiceSid"):
                return _error(400, 21603, "A 'From' phone number is required.")
            if not body and not form.get("MediaUrl"):
                return _error(400, 21602, "Message body is required.")
            if not _E164.match(to):
                return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
            if len(body) > MAX_BODY:
                return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
            if to in self.opted_out:
                return _error(400, 21610, "Attempt to send to unsubscribed recipient")
            message = FakeMessage(
                sid="SM" + secrets.token_hex(16), to=to, from_=from_, body=body, date_created=self.clock.now()
            )
            self.messages.append(message)
            return JSONResponse(self._message_resource(message), status_code=201)

        @app.get(prefix + "/Messages.json")
        async def list_messages(account: str, request: Request) -> Response:
            if account != self.account_sid:
                return _not_found(request.url.path)
            to, from_ = request.query_params.get("To"), request.query_params.get("From")
            found = [
                self._message_resource(m)
                for m in self.messages
                if (to is None or m.to == to) and (from_ is None or m.from_ == from_)
            ]
            return JSONResponse({"messages": found[::-1], "page": 0, "page_size": 50})

        @app.get(prefix + "/Messages/{sid}.json")
        async def get_message(account: str, sid: str, request: Request) -> Response:
            found = next((m for m in self.messages if m.sid == sid), None)
            if account != self.account_sid or found is None:
                return _not_found(request.url.path)
            return JSONResponse(self._message_resource(found))

        @app.get(prefix + "/IncomingPhoneNumbers.json")
        async def list_numbers(account: str, request: Request) -> Response:
            if account != self.account_sid:
                return _not_found(request.url.path)
            wanted = request.query_params.get("PhoneNumber")
            found = [
                n for n in self.incoming_numbers.values() if wanted is None or n["phone_number"] == wanted
            ]
            return JSONResponse({"incoming_phone_numbers": found, "page": 0, "page_size": 50})

        @app.post(prefix + "/IncomingPhoneNumbers/{sid}.json")
        async def update_number(account: str, sid: str, request: Request) -> Response:
            number = self.incoming_numbers.get(sid)
            if account != self.account_sid or number is None:
                return _not_found(request.url.path)
            form: dict[str, str] = request.state.form
            for field_name, key in (
                ("VoiceUrl", "voice_url"),
                ("VoiceMethod", "voice_method"),
                ("SmsUrl", "sms_url"),
                ("SmsMethod", "sms_method"),
            ):
                if field_name in form:
                    number[key] = form[field_name]
            return JSONResponse(number)

        @app.post(prefix + "/Calls/{call_sid}.json")
        async def update_call(account: str, call_sid: str, request: Request) -> Response:
            if account != self.account_sid or (
                self.known_calls is not None and call_sid not in self.known_calls
            ):
                return _not_found(request.url.path)
            form: dict[str, str] = request.state.form
            status, twiml, url = form.get("Status"), form.get("Twiml"), form.get("Url")
            if call_sid in self.ended_calls and (twiml or url):
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            self.call_updates.append(CallUpdate(call_sid, status, twiml, url))
            if status in ("completed", "canceled"):
                self.ended_calls.add(call_sid)
            return JSONResponse(self._call_resource(call_sid))

        return app

    def _authorised(self, request: Request) -> bool:
        credentials = _basic_credentials(request)
        if credentials is None:
            return False
        user, password = credentials
        if user == self.account_sid:
            return password == self.auth_token
        return self.api_keys.get(user) == password

    def _message_resource(self, message: FakeMessage) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}"
        stamp = format_datetime(message.date_created, usegmt=False)
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": message.body,
            "date_created": stamp,
            "date_sent": None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(message.body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": message.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": message.to,
            "uri": f"{uri}.json",
        }

    def _call_resource(self, call_sid: str) -> dict[str, Any]:
        stamp = format_datetime(self.clock.now(), usegmt=False)
        return {
            "sid": call_sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "status": "completed" if call_sid in self.ended_calls else "in-progress",
            "date_updated": stamp,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call_sid}.json",
        }


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _basic_username(request: Request) -> str | None:
    credentials = _basic_credentials(request)
    return credentials[0] if credentials else None


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _not_found(path: str) -> JSONResponse:
    return _error(404, 20404, f"The requested resource {path} was not found")
