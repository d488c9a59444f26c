"""Speech-to-text that starts transcribing at the caller's first pause, not after the silence wait.

A segmented STT (OpenAI's transcription API) hears nothing until the VAD has counted its
end-of-turn silence (0.2 s); only then does the upload start, and the caller waits for the
silence *and* the transcription (~150 ms) one after the other. Yet the words are all there at
the first quiet window: what follows is silence. So when the VAD first hears the caller pause
(`CallerPausedFrame`, from the call's `SpeechGate`, right after the audio it follows), this
service uploads what it has buffered; if the caller stays quiet until the VAD declares the
turn over, that early transcript is the segment's transcript, already back or nearly so. If the
caller goes on talking, the early upload is dropped and the whole segment is transcribed as
usual, so a pause mid-sentence costs one extra (short) upload and never loses words. How long a
quiet counts as a pause is the call's `TurnSettings.early_transcript_secs`.

The audio after the pause that the early upload does not carry is what the VAD judged not to be
speech. Everything else (the segment queue, metrics, the transcript frame) is Pipecat's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from loguru import logger
from openai.types.audio import Transcription
from pipecat.audio.utils import pcm_to_wav
from pipecat.frames.frames import Frame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.openai.stt import OpenAISTTService

from agent.speech_gate import CallerPausedFrame, CallerResumedFrame

# What an early upload ends with: the provider's transcription, or the error it failed with.
_Outcome = Transcription | Exception


class EarlyTranscriptSTT(OpenAISTTService):
    """OpenAI's segmented STT that also reads the gate's pause and resume marks (and ends them here)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._early: asyncio.Task[_Outcome] | None = None
        # One entry per segment queued for transcription, in queue order: its early upload, if any.
        self._answers: deque[asyncio.Task[_Outcome] | None] = deque()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, CallerPausedFrame):
            self._caller_paused()
        elif isinstance(frame, CallerResumedFrame):
            self._drop_early()
        else:
            await super().process_frame(frame, direction)

    def _caller_paused(self) -> None:
        """The caller has paused (the turn is not over yet): upload what has been said so far."""
        self._drop_early()
        pcm = bytes(self._audio_buffer) + self._trailing_silence()
        self._early = self.create_task(self._upload(pcm_to_wav(pcm, self.sample_rate)), "early_transcript")

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early.cancel()
            self._early = None

    async def _upload(self, wav: bytes) -> _Outcome:
        # Returned, not raised: Pipecat's task wrapper would log the error and answer None.
        try:
            return await super()._transcribe(wav)
        except Exception as error:
            return error

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        early, self._early = self._early, None
        if self.is_usable:
            self._answers.append(early)  # Pipecat queues this segment; it takes the early upload
        elif early is not None:
            early.cancel()
        await super()._handle_user_stopped_speaking(frame)

    async def _transcribe(self, audio: bytes) -> Transcription:
        early = self._answers.popleft() if self._answers else None
        if early is None:
            return await super()._transcribe(audio)
        outcome = await early
        if isinstance(outcome, Exception):  # the whole segment gets its own try
            logger.warning("early transcript failed ({}); transcribing the segment", outcome)
            return await super()._transcribe(audio)
        return outcome
