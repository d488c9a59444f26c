"""The models that listen to callers, loaded once per server and shared by all its calls.

Left to itself, Pipecat gives every call its own Silero VAD and Smart-Turn ONNX sessions (~60 ms
of CPU to load, and memory, per call) and runs Silero once per 32 ms window per call. A server
here holds one session of each:

- Silero scores, in one batched run, the windows of every call that are waiting (the model takes
  a batch dimension and gives the same scores as one at a time): 106 µs for one window alone,
  35 µs a window in a batch of 20. Each call keeps its own recurrent state and audio context, and
  Pipecat's rule for resetting them. The batch is scored on the event loop: a handful of
  windows costs less than handing them to a thread, which under load waits for the GIL.
- Smart-Turn's session is shared; ONNX sessions may be run from several threads at once.

A call's VAD can also tell a `PauseListener` (the call's `SpeechGate`, which marks it for the STT)
when the caller has paused and if they go on: what lets transcription start before the end-of-turn
silence is over.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from importlib import resources
from typing import Protocol

import numpy as np
import onnxruntime
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.utils import exp_smoothing
from pipecat.audio.vad.silero import (
    _MODEL_RESET_INTERVAL_SECS,
    _MODEL_RESET_LOW_CONFIDENCE_WINDOWS,
    _MODEL_RESET_MAX_CONFIDENCE,
)
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import AudioVolumeTracker

# Phone audio: Twilio streams 8 kHz; Silero takes 256-sample windows with 32 samples of context.
SAMPLE_RATE = 8000
WINDOW_SAMPLES = 256
CONTEXT_SAMPLES = 32
# Unmeasured windows the loudness catches up on when it is read (`LateLoudness`): 2 s.
LOUDNESS_CATCH_UP = 64
# How long a window waits for others to join its batch. A run costs a fixed 0.1-0.5 ms (more when
# the core was idle before it) besides ~70 µs a window, so the fewer runs the better; but the VAD
# hears the end of a turn only when its windows are scored. A window from a caller who is
# speaking (or about to be heard as stopping) waits at most BATCH_WAIT_SECS: at 20 calls a worker,
# 2 ms gathered ~1.5 windows a run, 6 ms ~4. A window from a quiet line, where nothing waits on
# its verdict but the start of speech (200 ms of it to count), waits up to QUIET_BATCH_WAIT_SECS
# and goes with the first batch that runs: 20 quiet calls on a worker, 43% of a core -> 32-37%.
BATCH_WAIT_SECS = 0.006
QUIET_BATCH_WAIT_SECS = 0.024


def _session(package: str, name: str) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    path = str(resources.files(package).joinpath(name))
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=options)


class SileroStream:
    """One call's place in the shared model: its recurrent state and the audio before its window."""

    def __init__(self) -> None:
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def reset(self) -> None:
        self.state = np.zeros_like(self.state)
        self.context = np.zeros_like(self.context)


class SileroBatch:
    """Scores Silero windows from many calls together, on the loop that asked."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self._session = session
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)
        self._waiting: list[tuple[SileroStream, np.ndarray, asyncio.Future[float]]] = []
        self._flush: asyncio.TimerHandle | None = None

    async def score(self, stream: SileroStream, window: bytes, *, quiet: bool = False) -> float:
        """The speech confidence of one 256-sample window of 16-bit audio, advancing `stream`.

        A window from a `quiet` line may wait longer for company (`QUIET_BATCH_WAIT_SECS`).
        """
        samples = np.frombuffer(window, dtype=np.int16).astype(np.float32) / 32768.0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._waiting.append((stream, samples, future))
        run_at = loop.time() + (QUIET_BATCH_WAIT_SECS if quiet else BATCH_WAIT_SECS)
        if self._flush is None or run_at < self._flush.when():
            if self._flush is not None:
                self._flush.cancel()
            self._flush = loop.call_at(run_at, self._run)
        return await future

    def _run(self) -> None:
        self._flush = None
        waiting, self._waiting = self._waiting, []
        inputs = np.stack([np.concatenate((stream.context, samples)) for stream, samples, _ in waiting])
        states = np.concatenate([stream.state for stream, _, _ in waiting], axis=1)
        try:
            scores, new_states = self._session.run(None, {"input": inputs, "state": states, "sr": self._rate})
        except Exception as error:  # the calls' VADs raise it; none is left waiting
            for _, _, future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        for index, (stream, _, future) in enumerate(waiting):
            stream.state = np.ascontiguousarray(new_states[:, index : index + 1])
            stream.context = inputs[index, -CONTEXT_SAMPLES:]
            if not future.done():
                future.set_result(float(scores[index, 0]))


class PauseListener(Protocol):
    """Told when the caller falls quiet mid-turn and when they speak again before the turn ends."""

    async def caller_paused(self) -> None: ...

    async def caller_resumed(self) -> None: ...


class LateLoudness:
    """Pipecat's VAD volume for one call (400 ms loudness, smoothed window by window), measured late.

    Pipecat measures the loudness of the last 400 ms at every 32 ms window, but a window only
    needs it when Silero already calls it speech: the VAD's verdict is "confident and loud
    enough". On a quiet line that is never, and the measure was ~15% of a quiet call's CPU. So
    windows are kept as they come and the smoothed value is brought up to date, window by window
    with Pipecat's own arithmetic, only when it is read. Windows more than `LOUDNESS_CATCH_UP`
    behind are not measured: their weight in the smoothing is below 0.8 ** 64 (6e-7), the only
    way this can differ from Pipecat's value.
    """

    def __init__(self, sample_rate: int, factor: float) -> None:
        self._sample_rate = sample_rate
        self._factor = factor
        # Pipecat's own 400 ms window, fed every window but read only when one is measured.
        self._tracker = AudioVolumeTracker()  # type: ignore[no-untyped-call]  # untyped in Pipecat
        self._unmeasured: deque[bytes] = deque()
        self._smoothed = 0.0

    def add(self, window: bytes) -> None:
        """One more window of 16-bit audio, not measured yet."""
        self._unmeasured.append(window)
        if len(self._unmeasured) > LOUDNESS_CATCH_UP:
            self._tracker.update(self._unmeasured.popleft(), self._sample_rate)

    def smoothed(self) -> float:
        """The smoothed volume after the last window added, as Pipecat's VAD computes it."""
        while self._unmeasured:
            self._tracker.update(self._unmeasured.popleft(), self._sample_rate)
            self._smoothed = exp_smoothing(self._tracker.volume, self._smoothed, self._factor)
        return self._smoothed


class BatchedSileroVAD(VADAnalyzer):
    """Pipecat's VAD state machine on the shared batch, with Silero's state-reset rule per call.

    Silero's recurrent state is reset about every two seconds of audio, once the caller is quiet
    and the recent windows are clearly not speech (at 8 kHz, long silence otherwise leaves the
    model deaf to the speech that follows); the rule and its numbers are Pipecat's.

    A listener given to `report_pauses` hears when the caller has been quiet for a while mid-turn
    (still STOPPING, not yet QUIET) and when speech resumes before the stop (STOPPING -> SPEAKING).

    The volume is measured only for windows Silero finds confident enough (`LateLoudness`).
    """

    def __init__(self, batch: SileroBatch, params: VADParams) -> None:
        super().__init__(sample_rate=SAMPLE_RATE, params=params)
        self._batch = batch
        self._stream = SileroStream()
        self._scores: deque[float] = deque()
        self._confidence = 0.0
        self._loudness = LateLoudness(SAMPLE_RATE, self._smoothing_factor)
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._pauses: PauseListener | None = None
        self._pause_windows = 1

    def report_pauses(self, listener: PauseListener, quiet_secs: float) -> None:
        """Tell `listener` once the caller has been quiet `quiet_secs` (in whole windows) mid-turn."""
        self._pauses = listener
        self._pause_windows = max(1, math.ceil(round(quiet_secs * SAMPLE_RATE / WINDOW_SAMPLES, 6)))

    def num_frames_required(self) -> int:
        return WINDOW_SAMPLES

    def set_sample_rate(self, sample_rate: int) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Phone VAD runs at {SAMPLE_RATE} Hz, not {sample_rate} Hz.")
        super().set_sample_rate(sample_rate)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Score each window `buffer` completes (in the shared batch), then run the state machine."""
        rest = buffer
        while len(self._vad_buffer) + len(rest) >= self._vad_frames_num_bytes:
            head = rest[: self._vad_frames_num_bytes - len(self._vad_buffer)]
            rest = rest[len(head) :]
            quiet = self._vad_state == VADState.QUIET
            self._scores.append(await self._batch.score(self._stream, self._vad_buffer + head, quiet=quiet))
            before = self._vad_state
            after = self._run_analyzer(head)
            if self._pauses is not None:
                if after == VADState.STOPPING and self._vad_stopping_count == self._pause_windows:
                    await self._pauses.caller_paused()
                elif (before, after) == (VADState.STOPPING, VADState.SPEAKING):
                    await self._pauses.caller_resumed()
        return self._run_analyzer(rest)

    def voice_confidence(self, buffer: bytes) -> float:
        confidence = self._scores.popleft()
        self._maybe_reset(confidence)
        self._confidence = confidence
        return confidence

    def _get_smoothed_volume(self, audio: bytes) -> float:
        """Pipecat's smoothed volume where the state machine reads it: only past the confidence bar.

        Below it the verdict is "not speech" whatever the volume, and what is returned is only
        stored back (Pipecat's `_prev_volume`, which nothing here reads).
        """
        self._loudness.add(audio)
        if self._confidence < self._params.confidence:
            return self._prev_volume
        return self._loudness.smoothed()

    def _maybe_reset(self, confidence: float) -> None:
        self._windows_since_reset += 1
        if confidence < _MODEL_RESET_MAX_CONFIDENCE:
            self._low_confidence_windows += 1
        else:
            self._low_confidence_windows = 0
        if (
            self._windows_since_reset * WINDOW_SAMPLES >= _MODEL_RESET_INTERVAL_SECS * SAMPLE_RATE
            and self._vad_state == VADState.QUIET
            and self._low_confidence_windows >= _MODEL_RESET_LOW_CONFIDENCE_WINDOWS
        ):
            self._stream.reset()
            self._windows_since_reset = 0


class SharedSmartTurn(LocalSmartTurnAnalyzerV3):
    """Smart-Turn v3 on a session shared by every call (Pipecat loads one per analyzer)."""

    def __init__(self, session: onnxruntime.InferenceSession, params: SmartTurnParams) -> None:
        BaseSmartTurn.__init__(self, params=params)
        self._log_data = False
        self._session = session


class Listening:
    """A server's listening models: loaded off the loop, once (`serve` before its first call)."""

    def __init__(self) -> None:
        self._loaded: tuple[SileroBatch, onnxruntime.InferenceSession] | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> tuple[SileroBatch, onnxruntime.InferenceSession]:
        """The models, loaded now if they are not yet: a server does this before taking calls."""
        async with self._lock:
            if self._loaded is None:
                self._loaded = await asyncio.to_thread(self._load)
            return self._loaded

    async def for_call(
        self, vad_stop_secs: float, incomplete_wait_secs: float
    ) -> tuple[BatchedSileroVAD, SharedSmartTurn]:
        """A call's VAD (stop after `vad_stop_secs`) and Smart-Turn (`incomplete_wait_secs`)."""
        batch, smart_turn = await self.load()
        return (
            BatchedSileroVAD(batch, VADParams(stop_secs=vad_stop_secs)),
            SharedSmartTurn(smart_turn, SmartTurnParams(stop_secs=incomplete_wait_secs)),
        )

    @staticmethod
    def _load() -> tuple[SileroBatch, onnxruntime.InferenceSession]:
        silero = _session("pipecat.audio.vad.data", "silero_vad.onnx")
        smart_turn = _session("pipecat.audio.turn.smart_turn.data", "smart-turn-v3.2-cpu.onnx")
        return SileroBatch(silero), smart_turn
