"""Our phone server on 127.0.0.1 with every outside service faked: a whole call, locally.

`loopback_line()` serves the real app (signature checks, Pipecat, VAD, turn detection, tools,
calendar, call records) in the current event loop, with the local OpenAI and Twilio REST fakes
beside it. `Line.ring()` plays Twilio's signed voice webhook and `Line.caller()` opens a signed
media stream. Tests, `simulate --audio` and `bench` all drive calls this way.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from twilio.request_validator import RequestValidator

from agent.llm import PlannedTurn
from agent.loopback.calcom_api import FakeCalcom
from agent.loopback.openai_api import NO_DELAYS, Delays, FakeOpenAI
from agent.loopback.serving import ServedApp
from agent.loopback.twilio_caller import FakeTwilioCaller
from agent.loopback.twilio_rest import FakeTwilio
from agent.media_socket import MediaStreamProtocol
from agent.phone import TurnSettings
from agent.server import MAX_MESSAGE_BYTES, LiveCalls, create_app
from agent.settings import Settings
from agent.wiring import Runtime, open_runtime
from booking.clock import Clock, SystemClock

CALLER_NUMBER = "+14155550101"
BUSINESS_NUMBER = "+15550100100"


@dataclass
class Dialer:
    """Twilio's side of calls to our server on 127.0.0.1 (in this process or another)."""

    port: int
    twilio: FakeTwilio

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ring(self, call_sid: str, caller: str = CALLER_NUMBER, to: str = BUSINESS_NUMBER) -> str:
        """Twilio's signed voice webhook for a new call; returns the stream URL from the TwiML."""
        params = {
            "CallSid": call_sid,
            "AccountSid": self.twilio.account_sid,
            "From": caller,
            "To": to,
        }
        url = f"{self.public}/twilio/voice"
        headers = {"X-Twilio-Signature": self.twilio.signature(url, params)}
        async with httpx.AsyncClient() as client:
            response = await client.post(url, data=params, headers=headers)
        match = re.search(r'<Stream url="([^"]+)"', response.text)
        if response.status_code != 200 or match is None:
            raise RuntimeError(
                f"the voice webhook did not connect a stream: {response.status_code} {response.text}"
            )
        return match.group(1).replace("&amp;", "&")

    def caller(self, stream_url: str, call_sid: str, **kwargs: Any) -> FakeTwilioCaller:
        signature = RequestValidator(self.twilio.auth_token).compute_signature(stream_url, {})
        return FakeTwilioCaller(
            stream_url,
            headers={"X-Twilio-Signature": signature},
            call_sid=call_sid,
            account_sid=self.twilio.account_sid,
            **kwargs,
        )


@dataclass
class Line(Dialer):
    """Our server in this process, listening on 127.0.0.1, with its fakes."""

    runtime: Runtime
    openai: FakeOpenAI
    live: LiveCalls

    async def calls_finished(self) -> None:
        """Wait until the server has finished every call (and written its record)."""
        await self.live.wait_idle(limit_secs=20)
        assert not self.live.tasks


class ReadyServer(uvicorn.Server):
    """uvicorn in the test's own loop (the app shares its database engine), telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@asynccontextmanager
async def loopback_line(
    workdir: Path,
    turns: list[PlannedTurn],
    transcripts: list[str],
    turn: TurnSettings | None = None,
    delays: Delays | None = None,
    businesses_file: Path | None = None,
    clock: Clock | None = None,
    calcom: FakeCalcom | None = None,
) -> AsyncIterator[Line]:
    """Serve the app on a free port with fresh fakes and a fresh SQLite database under `workdir`.

    With `calcom`, the business books into that fake Cal.com (through the real client) instead of
    the embedded calendar; `clock` is the booking clock (the audio always runs in real time).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    twilio = FakeTwilio()
    async with (
        FakeOpenAI(turns, transcripts, delays=delays or NO_DELAYS) as openai,
        ServedApp(twilio.app) as twilio_server,
    ):
        settings = Settings(
            database_url=f"sqlite:///{workdir / 'phone.db'}",
            businesses_file=businesses_file,
            openai_api_key="sk-test",
            openai_base_url=openai.base_url,
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token,
            twilio_api_base_url=twilio_server.url(),
            public_base_url=f"http://127.0.0.1:{port}",
            calcom_api_key=calcom.api_key if calcom is not None else None,
            _env_file=None,
        )
        transport = httpx.MockTransport(calcom) if calcom is not None else None
        async with open_runtime(settings, calcom_transport=transport) as runtime:
            live = LiveCalls()
            app = create_app(
                runtime, clock=clock or SystemClock(), turn=turn or TurnSettings(idle_secs=30), live=live
            )
            config = uvicorn.Config(
                app, lifespan="on", ws=MediaStreamProtocol, log_config=None, ws_max_size=MAX_MESSAGE_BYTES
            )
            server = ReadyServer(config)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                await asyncio.wait_for(server.ready.wait(), timeout=10)
                yield Line(port=port, twilio=twilio, runtime=runtime, openai=openai, live=live)
            finally:
                server.should_exit = True
                await serving
