"""A call's media stream socket is only paused once the app falls `MAX_QUEUED` messages behind.

Twilio sends a message every 20 ms per call. uvicorn's websockets protocol stops reading the socket
after every message and starts again once the app takes it: two epoll changes per message, a
visible share of the event loop at tens of concurrent calls. `MediaStreamProtocol` keeps the
back-pressure but only applies it when a call has `MAX_QUEUED` messages waiting. The protocol is
served on a real socket (as uvicorn hands an upgraded connection to it), the app never takes a
message, and the test reads whether the socket transport is still reading after each message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn import Config
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.asyncio.client import connect

from agent.media_socket import MAX_QUEUED, MediaStreamProtocol


class Recording(WebSocketsSansIOProtocol):
    """Notes, after each message is queued for the app: (messages waiting, socket still read)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, bool]] = []
        self.paused = asyncio.Event()

    def send_receive_event_to_app(self) -> None:
        super().send_receive_event_to_app()
        reading = self.transport.is_reading()
        self.seen.append((self.queue.qsize(), reading))
        if not reading:
            self.paused.set()


class RecordingMediaStream(Recording, MediaStreamProtocol):
    pass


@pytest.mark.parametrize(
    ("protocol_class", "paused_at"),
    [(Recording, 1), (RecordingMediaStream, MAX_QUEUED)],
    ids=["uvicorn", "media-stream"],
)
async def test_reading_pauses_only_when_the_app_falls_behind(
    protocol_class: type[Recording], paused_at: int
) -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await release.wait()  # a call that has fallen behind: takes none of the messages
        await send({"type": "websocket.close", "code": 1000, "reason": ""})

    config = Config(app, log_config=None, ws_ping_interval=None)
    protocols: list[Recording] = []

    def protocol() -> Recording:
        protocols.append(protocol_class(config=config, server_state=ServerState(), app_state={}))
        return protocols[-1]

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with connect(f"ws://127.0.0.1:{port}/", close_timeout=2) as client:
            for n in range(MAX_QUEUED):
                await client.send(f"media {n}")
            (served,) = protocols
            await asyncio.wait_for(served.paused.wait(), timeout=5)
            release.set()
            await client.wait_closed()
    finally:
        server.close()
        await server.wait_closed()

    still_reading = [(waiting, True) for waiting in range(1, paused_at)]
    assert served.seen[:paused_at] == [*still_reading, (paused_at, False)]
