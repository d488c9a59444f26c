"""Text messages through Twilio: the words, the sending, and the caller's right to say STOP.

* **Words** come from `prompts/sms.toml` only, checked at start-up like the spoken phrases: the
  model never writes a text, and a placeholder typo stops the program instead of reaching a phone.
* **Sending** is one form-encoded `POST {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{sid}/Messages.json`
  with Basic auth. Failures are typed (`SmsError`) with Twilio's error code and whether a retry can
  help, so the outbox knows to back off (5xx, 429, network) or stop (21610 opted out, 21211 bad
  number). Verification codes go out immediately through `TwilioCodeSender`: a caller is waiting.
* **Opt-out.** `POST /twilio/sms` receives replies. Its `X-Twilio-Signature` is checked over the URL
  built from `PUBLIC_BASE_URL` (a proxy's view of scheme, host or port would not match what Twilio
  signed) and every form field, blank ones included. STOP-type keywords record an opt-out per
  business and number, START-type ones lift it, HELP answers from the template. Twilio's own
  opt-out handling may also answer STOP; we never add a reply to it.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import httpx
import phonenumbers
from fastapi import APIRouter, Request, Response
from loguru import logger
from sqlalchemy import Column, MetaData, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import FormData, UploadFile
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from agent.businesses import BusinessProfile, Directory
from agent.errors import ConfigError
from agent.logs import mask_phone
from agent.outbox import Delivery, OutboxMessage, PermanentFailure, Skip, TransientFailure
from agent.prompting import PROMPTS_DIR
from booking.clock import Clock
from booking.phrasing import ordinal
from booking.sql import UTCDateTime, create_tables

__all__ = [
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "SMS_PLACEHOLDERS",
    "OptOuts",
    "SentMessage",
    "SmsError",
    "SmsTemplates",
    "TwilioCodeSender",
    "TwilioMessages",
    "create_schema",
    "deliver_with",
    "first_name",
    "load_sms_templates",
    "normalise_phone",
    "text_when",
    "twilio_signature_ok",
    "twilio_sms_router",
]

SMS_TEMPLATES_FILE: Final = PROMPTS_DIR / "sms.toml"
_BOOKING = frozenset({"business_name", "name", "service", "when"})
SMS_PLACEHOLDERS: Final[dict[str, frozenset[str]]] = {
    "booking.confirmed": _BOOKING,
    "booking.requested": _BOOKING,
    "booking.rescheduled": _BOOKING,
    "booking.cancelled": _BOOKING,
    "booking.reschedule_requested": _BOOKING,
    "booking.reminder": _BOOKING,
    "after.review": frozenset({"business_name", "name", "review_url"}),
    "after.review_no_link": frozenset({"business_name", "name"}),
    "codes.verification": frozenset({"business_name", "code"}),
    "replies.help": frozenset({"business_name"}),
    "replies.start": frozenset({"business_name"}),
    "footer.opt_out": frozenset(),
}
"""Which placeholders the runtime fills for each text; a template may use any subset."""

# Twilio's default keywords (https://help.twilio.com/articles/223134027), plus OPTOUT and REVOKE.
OPT_OUT_KEYWORDS: Final = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
OPT_IN_KEYWORDS: Final = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS: Final = frozenset({"HELP", "INFO"})

TWILIO_TIMEOUT: Final = httpx.Timeout(10.0, connect=3.0)
OPTED_OUT_CODE: Final = 21610
_PERMANENT_CODES: Final = frozenset({21211, 21212, 21408, 21606, 21610, 21612, 21614, 21617})


# -- the words -------------------------------------------------------------------------------


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class SmsTemplates:
    """Every text by `section.key`, checked against the placeholders the runtime fills for it."""

    templates: dict[str, str]

    def render(self, key: str, *, footer: bool = False, **values: str) -> str:
        template = self.templates[key]
        missing = _fields(template) - values.keys()
        if missing:
            raise KeyError(f"text {key} needs {', '.join(sorted(missing))}")
        text = template.format(**values)
        return f"{text} {self.templates['footer.opt_out']}" if footer else text


def load_sms_templates(path: Path = SMS_TEMPLATES_FILE) -> SmsTemplates:
    """Read `sms.toml`; a missing text or an unknown placeholder is one `ConfigError` sentence."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Prompt file {path} is missing.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc
    templates: dict[str, str] = {}
    for section, entries in document.items():
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise ConfigError(f"{path} [{section}] must be a table of texts.")
        templates.update({f"{section}.{key}": value for key, value in entries.items()})
    for key, allowed in SMS_PLACEHOLDERS.items():
        section, name = key.split(".", 1)
        if key not in templates:
            raise ConfigError(f"{path} has no [{section}] {name} text.")
        try:
            unknown = _fields(templates[key]) - allowed
        except ValueError as exc:
            raise ConfigError(f"{path} {key} has a broken placeholder: {exc}.") from exc
        if unknown:
            raise ConfigError(f"{path} {key} uses unknown placeholder {{{sorted(unknown)[0]}}}.")
    return SmsTemplates(templates)


def text_when(start: datetime, zone: ZoneInfo) -> str:
    """ "Tuesday, March 10th at 2pm" / "... at 10:30am": absolute, since a text is read later."""
    local = start.astimezone(zone)
    hour = local.hour % 12 or 12
    clock = f"{hour}:{local.minute:02d}" if local.minute else str(hour)
    return f"{local:%A, %B} {ordinal(local.day)} at {clock}{'am' if local.hour < 12 else 'pm'}"


def first_name(name: str) -> str:
    """The name a text greets: "Jane" for "Jane Doe"; "there" when nothing usable is known."""
    parts = name.split()
    return parts[0] if parts else "there"


def normalise_phone(number: str | None, default_region: str = "US") -> str | None:
    """E.164 for a number as Cal.com or Twilio wrote it; None when it is not a possible number."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, None if number.strip().startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# -- sending ---------------------------------------------------------------------------------


class SmsError(Exception):
    """Twilio did not take the message. `retryable` says whether the same request may work later."""

    def __init__(
        self, message: str, *, to: str, status: int | None = None, code: int | None = None, retryable: bool
    ) -> None:
        super().__init__(f"{message} (to {mask_phone(to)}, status {status}, Twilio code {code})")
        self.to = to
        self.status = status
        self.code = code
        self.retryable = retryable

    @property
    def opted_out(self) -> bool:
        return self.code == OPTED_OUT_CODE


@dataclass(frozen=True, slots=True)
class SentMessage:
    sid: str
    status: str


class TwilioMessages:
    """Twilio's Messages resource over an injected `httpx.AsyncClient` (tests pass the fake's transport)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account_sid: str,
        auth_token: str,
        base_url: str = "https://api.twilio.com",
        timeout: httpx.Timeout = TWILIO_TIMEOUT,
    ) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._timeout = timeout

    async def send(self, *, to: str, from_: str, body: str) -> SentMessage:
        """Send one text; raises `SmsError` (with `retryable`) when Twilio does not accept it."""
        try:
            response = await self._client.post(
                self._url,
                data={"To": to, "From": from_, "Body": body},
                auth=self._auth,
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:
            raise SmsError(f"Twilio could not be reached: {exc!r}", to=to, retryable=True) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.is_success and isinstance(payload.get("sid"), str):
            return SentMessage(sid=payload["sid"], status=str(payload.get("status", "queued")))
        code = payload.get("code") if isinstance(payload.get("code"), int) else None
        status = response.status_code
        retryable = status in (401, 408, 409, 429) or status >= 500 or response.is_success
        if code in _PERMANENT_CODES:
            retryable = False
        reason = str(payload.get("message") or response.reason_phrase or "no reason given")
        raise SmsError(
            f"Twilio refused the message: {reason}", to=to, status=status, code=code, retryable=retryable
        )


class TwilioCodeSender:
    """`booking.session.CodeSender` for one business: the code goes out now, not through the outbox."""

    def __init__(self, messages: TwilioMessages, templates: SmsTemplates, business: BusinessProfile) -> None:
        if not business.phone_numbers:
            raise ConfigError(f"{business.id} has no phone number to text verification codes from.")
        self._messages = messages
        self._templates = templates
        self._business = business

    async def send_code(self, phone: str, code: str) -> None:
        body = self._templates.render("codes.verification", business_name=self._business.name, code=code)
        sent = await self._messages.send(to=phone, from_=self._business.phone_numbers[0], body=body)
        logger.bind(to=mask_phone(phone), sid=sent.sid).info("verification code texted")


def deliver_with(
    messages: TwilioMessages,
    opt_outs: OptOuts,
    still_wanted: Callable[[OutboxMessage], Awaitable[bool]] | None = None,
) -> Delivery:
    """The outbox's `Delivery` through Twilio: honours opt-outs and `still_wanted` (e.g. the booking
    was cancelled since), and maps `SmsError` to retry or stop."""

    async def deliver(message: OutboxMessage) -> str:
        if await opt_outs.is_opted_out(message.business_id, message.to_number):
            raise Skip("the recipient opted out")
        if still_wanted is not None and not await still_wanted(message):
            raise Skip("the booking it speaks of has changed")
        try:
            sent = await messages.send(to=message.to_number, from_=message.from_number, body=message.body)
        except SmsError as error:
            if error.opted_out:
                await opt_outs.opt_out(message.business_id, message.to_number)
                raise Skip("the recipient opted out (Twilio 21610)") from error
            if error.retryable:
                raise TransientFailure(str(error)) from error
            raise PermanentFailure(str(error)) from error
        return sent.sid

    return deliver


# -- opt-outs --------------------------------------------------------------------------------

metadata = MetaData()

sms_opt_outs = Table(
    "sms_opt_outs",
    metadata,
    Column("business_id", String(64), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("opted_out_at", UTCDateTime(), nullable=False),
)


async def create_schema(engine: AsyncEngine) -> None:
    await create_tables(engine, metadata)


class OptOuts:
    """Who said STOP to which business. Checked again just before every text is sent."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def is_opted_out(self, business_id: str, phone: str) -> bool:
        async with self._engine.connect() as connection:
            row = await connection.execute(
                select(sms_opt_outs.c.phone).where(
                    sms_opt_outs.c.business_id == business_id, sms_opt_outs.c.phone == phone
                )
            )
            return row.first() is not None

    async def opt_out(self, business_id: str, phone: str) -> None:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(sms_opt_outs).values(
                        business_id=business_id, phone=phone, opted_out_at=self._clock.now()
                    )
                )
        except IntegrityError:
            return

    async def opt_in(self, business_id: str, phone: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(sms_opt_outs).where(
                    sms_opt_outs.c.business_id == business_id, sms_opt_outs.c.phone == phone
                )
            )


# -- the inbound webhook ---------------------------------------------------------------------

_KEYWORD = re.compile(r"[^A-Z]")


def twilio_signature_ok(
    *, auth_token: str, public_base_url: str, request: Request, form: FormData, signature: str | None
) -> bool:
    """Check `X-Twilio-Signature` over `PUBLIC_BASE_URL` + the path and query Twilio requested."""
    if not signature:
        return False
    url = public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += f"?{request.url.query}"
    return bool(RequestValidator(auth_token).validate(url, form, signature))


def _twiml(text: str | None) -> Response:
    reply = MessagingResponse()
    if text is not None:
        reply.message(text)
    return Response(content=str(reply), media_type="application/xml")


def twilio_sms_router(
    *,
    auth_token: str,
    public_base_url: str,
    directory: Directory,
    opt_outs: OptOuts,
    templates: SmsTemplates,
    path: str = "/twilio/sms",
    max_body_bytes: int = 64 * 1024,
) -> APIRouter:
    """`POST /twilio/sms`: the number's "A message comes in" webhook; signed, form-encoded."""
    router = APIRouter()

    @router.post(path, include_in_schema=False)
    async def inbound_sms(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > max_body_bytes:
            return Response(status_code=413)
        try:
            fields: list[tuple[str, str | UploadFile]] = list(
                parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
            )
        except UnicodeDecodeError:
            return Response(status_code=400)
        form = FormData(fields)
        signature = request.headers.get("X-Twilio-Signature")
        if not twilio_signature_ok(
            auth_token=auth_token,
            public_base_url=public_base_url,
            request=request,
            form=form,
            signature=signature,
        ):
            logger.warning("inbound text refused: bad or missing X-Twilio-Signature")
            return Response(status_code=403)
        sender = normalise_phone(str(form.get("From") or ""))
        business = directory.by_number(str(form.get("To") or ""))
        keyword = _KEYWORD.sub("", str(form.get("Body") or "").upper())
        if sender is None or business is None:
            return _twiml(None)
        log = logger.bind(business=business.id, sender=mask_phone(sender))
        if keyword in OPT_OUT_KEYWORDS:
            await opt_outs.opt_out(business.id, sender)
            log.info("caller opted out of texts")
            return _twiml(None)
        if keyword in OPT_IN_KEYWORDS:
            await opt_outs.opt_in(business.id, sender)
            log.info("caller opted back in to texts")
            return _twiml(templates.render("replies.start", business_name=business.name))
        if keyword in HELP_KEYWORDS:
            return _twiml(templates.render("replies.help", business_name=business.name))
        log.info("inbound text with no keyword; not answered")
        return _twiml(None)

    return router
