"""The websocket protocol our server speaks to Twilio Media Streams, tuned for 50 messages a second.

uvicorn's sans-I/O websockets protocol pauses reading the socket after every message and resumes
it once the app has taken that message: two epoll changes per message. A call's media stream is a
message every 20 ms in each direction, so at tens of calls that bookkeeping was a visible share of
the event loop (py-spy, `python -m agent bench`). This protocol keeps uvicorn's behaviour and only
pauses once a call has `MAX_QUEUED` messages waiting, which is still back-pressure against a peer
that floods us, but none for a call that is keeping up.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# Messages a call may have waiting before we stop reading its socket: 0.64 s of Twilio audio.
MAX_QUEUED = 32


class MediaStreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol that pauses reading only when the app falls behind."""

    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        # uvicorn pauses after queueing unless reads are already paused: say they are, then decide.
        self.read_paused = True
        super().send_receive_event_to_app()
        self.read_paused = paused
        if not paused and self.queue.qsize() >= MAX_QUEUED:
            self.read_paused = True
            self.transport.pause_reading()
