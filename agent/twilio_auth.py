"""Proof that a request really comes from Twilio, and that a media stream belongs to the call it claims.

Twilio signs every webhook with the account's auth token over the URL it called, so signatures
are checked against the URL built from `PUBLIC_BASE_URL` (a proxy in front of us changes scheme,
host and port). The Media Streams WebSocket is signed too, but its signature over a fixed URL
would replay forever; so the signed voice webhook mints a single-use token bound to the CallSid,
the token goes in the stream's path, and the stream is accepted only if the handshake signature
over that exact `wss://` URL checks out, the token is fresh and unused, and the stream's `start`
names the same call. Tokens are HMAC-signed (any server process can check one) and each is
redeemed once in the database (a replay fails in every process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from twilio.request_validator import RequestValidator

from agent.errors import ConfigError
from agent.settings import Settings
from booking.clock import Clock
from booking.sql import UTCDateTime, create_tables

TOKEN_TTL = timedelta(seconds=30)


@dataclass(frozen=True)
class PhoneLine:
    """The credentials a real phone line needs, checked once at start-up."""

    account_sid: str
    auth_token: str
    public_base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PhoneLine:
        missing = [name for name in settings.phone_line_missing() if name != "OPENAI_API_KEY"]
        if settings.openai_api_key is None:
            missing.insert(0, "OPENAI_API_KEY")
        if missing:
            raise ConfigError(f"serve needs {', '.join(missing)} (see the README: connecting a phone line).")
        assert settings.twilio_account_sid and settings.twilio_auth_token and settings.public_base_url
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            str(settings.public_base_url).rstrip("/"),
        )


metadata = MetaData()
redeemed_tokens = Table(
    "redeemed_stream_tokens",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("redeemed_at", UTCDateTime(), nullable=False),
)


def webhook_url(public_base_url: str, path: str) -> str:
    """The URL Twilio called (and signed), from the configured public address."""
    return public_base_url.rstrip("/") + path


def stream_url(public_base_url: str, path: str) -> str:
    """The `wss://` URL Twilio opens (and signs) for a media stream."""
    base = public_base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + path


def signature_valid(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    """Twilio's own check (HMAC-SHA1 over URL + sorted form fields, with and without the port)."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a redeemed stream token vouches for: which call, which business, who is calling."""

    call_sid: str
    business_id: str
    caller: str | None
    dialled: str | None
    attestation: str | None
    nonce: str
    expires_at: datetime


class StreamTokens:
    """Mints and redeems single-use, short-lived media stream tokens."""

    def __init__(self, secret: str, engine: AsyncEngine, clock: Clock, ttl: timedelta = TOKEN_TTL) -> None:
        self._key = hashlib.sha256(("stream-token:" + secret).encode()).digest()
        self._engine = engine
        self._clock = clock
        self._ttl = ttl

    async def create_schema(self) -> None:
        await create_tables(self._engine, metadata)

    def mint(
        self,
        *,
        call_sid: str,
        business_id: str,
        caller: str | None,
        dialled: str | None,
        attestation: str | None,
    ) -> str:
        payload = {
            "c": call_sid,
            "b": business_id,
            "f": caller,
            "t": dialled,
            "a": attestation,
            "n": secrets.token_hex(12),
            "e": int((self._clock.now() + self._ttl).timestamp()),
        }
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
        return f"{body.decode()}.{self._sign(body)}"

    async def redeem(self, token: str) -> StreamGrant | None:
        """The grant if the token is authentic, unexpired and never used before; else None."""
        grant = self._read(token)
        if grant is None or self._clock.now() >= grant.expires_at:
            return None
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(redeemed_tokens).values(nonce=grant.nonce, redeemed_at=self._clock.now())
                )
        except IntegrityError:
            return None
        return grant

    def _sign(self, body: bytes) -> str:
        digest = hmac.new(self._key, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _read(self, token: str) -> StreamGrant | None:
        body, _, signature = token.partition(".")
        if not body or not signature or not hmac.compare_digest(signature, self._sign(body.encode())):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            expires = datetime.fromtimestamp(int(payload["e"]), tz=self._clock.now().tzinfo)
            return StreamGrant(
                call_sid=str(payload["c"]),
                business_id=str(payload["b"]),
                caller=payload.get("f"),
                dialled=payload.get("t"),
                attestation=payload.get("a"),
                nonce=str(payload["n"]),
                expires_at=expires,
            )
        except (ValueError, KeyError, TypeError):
            return None
