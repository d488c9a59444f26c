"""The call's turn-latency observer, told only of the frames it reads.

Pipecat's `PipelineWorker` hands its observers to a `WorkerObserver`, which queues every frame each
processor processes and every push between two processors for each observer's task. On a call that
is mostly audio: the caller's, 25 frames a second at each hop all call long, and the agent's voice,
chunk by chunk, as it leaves the output. The call's one observer, Pipecat's
`UserBotLatencyObserver`, reads no processed-frame event and no audio except the voice as the TTS
service first pushes it (where it marks the turn's first audio). Queuing the rest and waking its
task for each was ~5% of a `serve` worker's time at 40 calls (py-spy, `python -m agent bench`).
"""

from __future__ import annotations

from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame, TTSAudioRawFrame
from pipecat.observers.base_observer import FrameProcessed, FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.transports.base_output import BaseOutputTransport


def read_by_latency_observer(data: FramePushed) -> bool:
    """Whether `UserBotLatencyObserver` can make anything of this push."""
    frame = data.frame
    if isinstance(frame, InputAudioRawFrame):
        return False
    if isinstance(frame, OutputAudioRawFrame):
        return isinstance(frame, TTSAudioRawFrame) and not isinstance(data.source, BaseOutputTransport)
    return True


class LatencyObserving(WorkerObserver):
    """Pipecat's `WorkerObserver` for one `UserBotLatencyObserver`, skipping what it does not read."""

    def __init__(self, latency: UserBotLatencyObserver) -> None:
        super().__init__(observers=[latency])

    async def on_process_frame(self, data: FrameProcessed) -> None:
        """`UserBotLatencyObserver` keeps `BaseObserver`'s no-op here: nothing to queue."""

    async def on_push_frame(self, data: FramePushed) -> None:
        if read_by_latency_observer(data):
            await super().on_push_frame(data)


def observe_latency(worker: PipelineWorker, latency: UserBotLatencyObserver) -> None:
    """Make `latency` the worker's only observer, through `LatencyObserving`.

    Pipecat 1.14 builds its `WorkerObserver` in the worker's constructor (`_observer`, used from
    `run()` on), so it is replaced before the worker runs; pinned by `pipecat-ai<1.15`.
    """
    worker._observer = LatencyObserving(latency)
