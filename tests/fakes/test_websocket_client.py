"""The fake callers' websocket client speaks the protocol as a browser or Twilio would: it answers
pings, reassembles fragmented messages, reports the server's close code, and refuses to send on a
closed line. The server here is websockets' own asyncio server, a second implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from agent.loopback.websocket_client import ClientSocket


class _Server:
    """A websocket server whose handler the test drives through queues."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.done = asyncio.Event()
        self.requests: list[Request] = []

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        self.requests.append(connection.request)
        await self.connections.put(connection)
        await self.done.wait()

    def refuse_bad_token(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("X-Token") != "right":
            return connection.respond(403, "no\n")
        return None


@pytest.fixture
async def server() -> AsyncIterator[tuple[_Server, str]]:
    state = _Server()
    async with serve(state.handler, "127.0.0.1", 0, process_request=state.refuse_bad_token) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        yield state, f"ws://127.0.0.1:{port}/stream"
        state.done.set()


async def _open(url: str, received: list[str | bytes], closed: asyncio.Future[int | None]) -> ClientSocket:
    return await ClientSocket.open(
        url,
        on_message=received.append,
        on_close=lambda code: closed.set_result(code),
        headers={"X-Token": "right", "User-Agent": "Twilio.TmeWs/1.0"},
        open_timeout=2,
        close_timeout=2,
    )


async def test_messages_both_ways_with_fragments_and_pings(server: tuple[_Server, str]) -> None:
    state, url = server
    received: list[str | bytes] = []
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    client = await _open(url, received, closed)
    connection = await state.connections.get()
    assert state.requests[0].headers["User-Agent"] == "Twilio.TmeWs/1.0"

    client.send('{"event": "connected"}')
    client.send(b"\x00\xff")
    assert await connection.recv() == '{"event": "connected"}'
    assert await connection.recv() == b"\x00\xff"

    await connection.send(['{"event": ', '"mark"}'])  # one message in two frames
    await connection.send(b"\x01\x02")
    pong = await connection.ping()
    await asyncio.wait_for(pong, 2)  # the client answered the ping
    assert received == ['{"event": "mark"}', b"\x01\x02"]

    await connection.close(4000, "call over")
    assert await asyncio.wait_for(closed, 2) == 4000
    assert client.close_code == 4000
    with pytest.raises(ConnectionClosed):
        client.send("too late")


async def test_closing_from_our_side_ends_cleanly(server: tuple[_Server, str]) -> None:
    state, url = server
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    client = await _open(url, [], closed)
    connection = await state.connections.get()
    await client.close()
    assert closed.done()
    assert connection.close_code == 1000
    with pytest.raises(ConnectionClosed):
        client.send("after hang-up")


async def test_a_refused_upgrade_raises_invalid_status(server: tuple[_Server, str]) -> None:
    _, url = server
    with pytest.raises(InvalidStatus) as refused:
        await ClientSocket.open(url, on_message=print, on_close=print, headers={"X-Token": "wrong"})
    assert refused.value.response.status_code == 403


async def test_nothing_listening_raises_connection_refused() -> None:
    with pytest.raises(ConnectionRefusedError):
        await ClientSocket.open("ws://127.0.0.1:9/", on_message=print, on_close=print, open_timeout=2)
