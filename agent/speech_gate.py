"""Which of the caller's audio enters the call's pipeline: what a turn needs, and the VAD's verdicts.

Twilio streams the caller's line all call long, silence included, and in Pipecat every 40 ms frame
then travels through the STT and the user aggregator (VAD, Smart-Turn, turn controller): a queue, a
task switch and a few handlers at each hop, most of a call while the caller is quiet (listening to
the agent, or between turns). With a segmented STT nothing after the input needs that quiet audio:
the STT transcribes from the start of speech (with the second before it, for the VAD's lag), and
Smart-Turn reads the turn's speech and the silence after it until the turn ends.

So the call's VAD runs here, as the socket hands each frame over (`agent.phone_transport`), and the
gate passes on, in order:
- the VAD's started and stopped frames, where the user aggregator would have put them: after the
  audio that decided them;
- the caller's audio while the VAD hears speech and while their turn is open (until the aggregator
  releases it, `UserStoppedSpeakingFrame` upstream), opening with the unsent audio before it (up
  to `PRE_ROLL_SECS`, in one frame): the same contiguous audio Pipecat's STT would have kept;
- the early transcript's marks (`CallerPausedFrame`, `CallerResumedFrame`), right after the audio
  they follow, so the STT has exactly the words before the pause.
Between turns the quiet audio waits in the pre-roll ring and is dropped as it ages. A streaming STT
(Deepgram) listens to the whole line, so for it the gate passes all audio (`pass_quiet`).
"""

from __future__ import annotations

from collections import deque

from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    SystemFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from agent.listening import BatchedSileroVAD

# What Pipecat's segmented STT keeps before the VAD's start (Smart-Turn reads the last 0.7 s of it).
PRE_ROLL_SECS = 1.0


class CallerPausedFrame(SystemFrame):
    """The caller has been quiet a moment mid-turn: the words so far can be transcribed."""


class CallerResumedFrame(SystemFrame):
    """The caller spoke again before their turn ended: a transcript of the pause missed words."""


class SpeechGate:
    """One call's VAD and the gate it drives; `hear` each frame from the socket, `note` each upstream frame.

    Start it (`start`) with the pipeline's input sample rate before the first frame. When
    `pause_after_secs` is given, the VAD's pause and resume (`BatchedSileroVAD.report_pauses`)
    come out as `CallerPausedFrame` and `CallerResumedFrame`.
    """

    def __init__(self, vad: BatchedSileroVAD, *, pass_quiet: bool, pause_after_secs: float | None) -> None:
        self._vad = vad
        self._pass_quiet = pass_quiet
        self._ring: deque[bytes] = deque()
        self._ring_bytes = 0
        self._pre_roll_bytes = 0
        self._speaking = False
        self._turn_open = False
        self._marks: list[Frame] = []
        if pause_after_secs is not None:
            vad.report_pauses(self, pause_after_secs)

    def start(self, sample_rate: int) -> None:
        self._vad.set_sample_rate(sample_rate)
        self._pre_roll_bytes = int(PRE_ROLL_SECS * sample_rate) * 2

    async def hear(self, frame: InputAudioRawFrame) -> list[Frame]:
        """What goes downstream for this frame of the caller's audio, in order (often nothing)."""
        state = await self._vad.analyze_audio(frame.audio)
        started = state == VADState.SPEAKING and not self._speaking
        stopped = state == VADState.QUIET and self._speaking
        if started:
            self._speaking = True
        out: list[Frame] = []
        if self._pass_quiet or self._speaking or self._turn_open:
            if self._ring:
                out.append(self._pre_roll(frame))
            out.append(frame)
        else:
            self._keep(frame)
        out.extend(self._marks)
        self._marks.clear()
        if started:
            out.append(VADUserStartedSpeakingFrame(start_secs=self._vad.params.start_secs))
        elif stopped:
            self._speaking = False
            out.append(VADUserStoppedSpeakingFrame(stop_secs=self._vad.params.stop_secs))
        return out

    def note(self, frame: Frame) -> None:
        """An upstream frame: the user aggregator opening or releasing the caller's turn."""
        if isinstance(frame, UserStartedSpeakingFrame):
            self._turn_open = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._turn_open = False

    async def caller_paused(self) -> None:
        self._marks.append(CallerPausedFrame())

    async def caller_resumed(self) -> None:
        self._marks.append(CallerResumedFrame())

    def _pre_roll(self, like: InputAudioRawFrame) -> InputAudioRawFrame:
        """The held audio as one frame: every frame costs the same at each hop, whatever its length."""
        audio = b"".join(self._ring)
        self._ring.clear()
        self._ring_bytes = 0
        return InputAudioRawFrame(audio=audio, sample_rate=like.sample_rate, num_channels=like.num_channels)

    def _keep(self, frame: InputAudioRawFrame) -> None:
        self._ring.append(frame.audio)
        self._ring_bytes += len(frame.audio)
        while self._ring_bytes > self._pre_roll_bytes:
            self._ring_bytes -= len(self._ring.popleft())
