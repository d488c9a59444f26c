"""A websocket client on websockets' sans-I/O protocol, for fake callers that send 50 messages a second.

The bench runs its fake Twilio callers on the same two cores as the server, so what a caller
costs per message is taken from the server. `websockets.asyncio`'s `send` is a coroutine that
enters an async context manager and drains the transport for every message, and its receiving
side is a task reading a queue. Here, on the same library's documented sans-I/O `ClientProtocol`,
a send is a frame written to the socket at once and each message reaches a callback as its bytes
arrive: no task, queue or lock per message. Control frames (the server's pings, the closing
handshake) are answered by the protocol, as in the asyncio client.

Only what the fakes need: `ws://` URLs, no extensions (no compression), no keepalive pings of our
own, and no back-pressure (Twilio keeps streaming whatever the server does, and so do the fakes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["ClientSocket"]

OnMessage = Callable[[str | bytes], None]
OnClose = Callable[[int | None], None]


class ClientSocket(asyncio.Protocol):
    """One client websocket connection; `await ClientSocket.open(url, ...)`.

    `on_message` gets each complete message (`str` for text frames, `bytes` for binary ones) and
    `on_close` the close code once the TCP connection is gone, both on the event loop's thread.
    """

    def __init__(
        self,
        protocol: ClientProtocol,
        headers: Mapping[str, str],
        on_message: OnMessage,
        on_close: OnClose,
        close_timeout: float,
    ) -> None:
        self._protocol = protocol
        self._headers = dict(headers)
        self._on_message = on_message
        self._on_close = on_close
        self._close_timeout = close_timeout
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._abort_timer: asyncio.TimerHandle | None = None
        self._fragments: list[bytes] = []
        self._fragmented_text = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        on_message: OnMessage,
        on_close: OnClose,
        headers: Mapping[str, str] | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 10.0,
    ) -> ClientSocket:
        """Connect to a `ws://` URL and complete the opening handshake.

        `headers` go on the handshake request (`User-Agent` among them: none is sent otherwise).
        Raises `websockets.exceptions.InvalidStatus` when the server refuses the upgrade (e.g.
        403), `OSError` when nothing listens, and `TimeoutError` after `open_timeout`.
        """
        uri = parse_uri(url)
        if uri.secure:
            raise ValueError(f"{url}: only ws:// URLs (the fakes listen on 127.0.0.1 without TLS).")
        loop = asyncio.get_running_loop()

        def make() -> ClientSocket:
            return cls(ClientProtocol(uri), headers or {}, on_message, on_close, close_timeout)

        async with asyncio.timeout(open_timeout):
            transport, socket = await loop.create_connection(make, uri.host, uri.port)
            try:
                await socket._opened
            except BaseException:
                transport.abort()
                raise
        return socket

    @property
    def close_code(self) -> int | None:
        """The close code the server sent (1006 for a connection lost without one); None while open."""
        return self._protocol.close_code

    def send(self, message: str | bytes) -> None:
        """Write one message now: `str` as a text frame, `bytes` as a binary frame.

        Raises `websockets.exceptions.ConnectionClosed` once the connection is closing or closed.
        """
        if self._protocol.state is not State.OPEN:
            protocol = self._protocol
            raise ConnectionClosed(protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent)
        if isinstance(message, str):
            self._protocol.send_text(message.encode())
        else:
            self._protocol.send_binary(message)
        self._flush()

    async def close(self) -> None:
        """Start the closing handshake (1000) and wait for the server to drop the connection.

        After `close_timeout` without that, the connection is aborted.
        """
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(1000)
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), self._close_timeout)
        except TimeoutError:
            self._abort()
            await self._lost

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        request = self._protocol.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._protocol.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._protocol.receive_data(data)
        self._handle_events()

    def eof_received(self) -> None:
        self._protocol.receive_eof()
        self._handle_events()

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.receive_eof()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if not self._opened.done():
            failure = self._protocol.handshake_exc or InvalidMessage("the server closed the connection")
            self._opened.set_exception(failure)
        self._lost.set_result(None)
        self._on_close(self._protocol.close_code)

    # -- internals -------------------------------------------------------------------------------

    def _handle_events(self) -> None:
        events = self._protocol.events_received()
        self._flush()
        for event in events:
            if isinstance(event, Response):
                if self._protocol.handshake_exc is not None:
                    self._opened.set_exception(self._protocol.handshake_exc)
                    self._abort()
                    return
                self._opened.set_result(None)
            elif isinstance(event, Frame):
                self._on_frame(event)
        if self._protocol.close_expected() and self._abort_timer is None:
            # The server closes the TCP connection after the closing handshake; don't wait forever.
            self._abort_timer = asyncio.get_running_loop().call_later(self._close_timeout, self._abort)

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            self._fragmented_text = frame.opcode is Opcode.TEXT
            self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
        else:
            return
        if frame.fin:
            data = b"".join(self._fragments)
            self._fragments = []
            self._on_message(data.decode() if self._fragmented_text else data)

    def _flush(self) -> None:
        assert self._transport is not None
        for data in self._protocol.data_to_send():
            if data:
                self._transport.write(data)
            elif self._transport.can_write_eof():
                self._transport.write_eof()
            else:
                self._transport.close()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
