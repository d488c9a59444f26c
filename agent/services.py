"""The only module that names speech and language providers: STT, LLM and TTS built from `Settings`.

Every service goes through `OPENAI_BASE_URL` (tests point it at a local fake) with timeouts a
phone call can live with, not the SDK's ten-minute default. All calls of a server process share
one HTTP client (`openai_http_client`): connections stay warm between turns and calls, and none
is left open when a call ends (Pipecat's services never close the clients they create).
OpenAI's segmented speech-to-text is the default, starting at the caller's first pause
(`EarlyTranscriptSTT`); `STT_PROVIDER=deepgram` (extra `deepgram`) is the streaming choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.openai.base_llm import OpenAILLMSettings
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.types import assert_given

from agent.early_transcript import EarlyTranscriptSTT
from agent.errors import ConfigError
from agent.settings import Settings

# OpenAI TTS produces 24 kHz PCM and does not resample; the output transport brings it to 8 kHz.
TTS_SAMPLE_RATE = 24_000
SERVICE_TIMEOUT = openai.Timeout(10.0, connect=3.0)
LLM_TIMEOUT_SECONDS = 8.0
MAX_REPLY_TOKENS = 250


@dataclass(frozen=True)
class Services:
    stt: Any
    llm: OpenAILLMService
    tts: OpenAITTSService


def openai_http_client() -> Any:
    """The HTTP client every OpenAI service of this process uses; close it at shutdown."""
    return openai.DefaultAsyncHttpxClient(timeout=SERVICE_TIMEOUT)


class _SharedClientLLM(OpenAILLMService):
    """Pipecat's OpenAI LLM service on the process's shared HTTP client."""

    def __init__(self, *, http_client: Any, **kwargs: Any) -> None:
        self._shared_http_client = http_client
        super().__init__(**kwargs)

    def create_client(
        self,
        api_key: Any = None,
        base_url: Any = None,
        organization: Any = None,
        project: Any = None,
        default_headers: Any = None,
        **kwargs: Any,
    ) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            default_headers=default_headers,
            http_client=self._shared_http_client,
            # One quick retry: after that a caller is better served by a person than by waiting.
            max_retries=1,
        )

    async def get_chat_completions(self, context: LLMContext) -> AsyncStream[ChatCompletionChunk]:
        """Pipecat's request for this turn, posted as Pipecat built it.

        `chat.completions.create` walks every message and tool schema against the SDK's TypedDicts
        before sending, on the call's event loop and on the turn's critical path: 6 ms of CPU a
        request at a call's start, 25 ms after 20 turns (this machine). Chat parameters carry no
        aliases or formats, so the walk changes nothing in the JSON sent. Pipecat's retry on
        timeout is off for our calls (`retry_on_timeout=False`); the SDK's one retry still applies.
        """
        self._log_llm_response(context)
        params = self.build_chat_completion_params(
            await self.get_llm_adapter().get_llm_invocation_params(
                context,
                system_instruction=assert_given(cast(OpenAILLMSettings, self._settings).system_instruction),
                convert_developer_to_user=not self.supports_developer_role,
            )
        )
        return await post_chat_completion(self._client, params)


# `create`'s keyword arguments that shape the request rather than its JSON body.
_REQUEST_OPTIONS = {
    "extra_headers": "headers",
    "extra_query": "params",
    "extra_body": "extra_json",
    "timeout": "timeout",
}


async def post_chat_completion(
    client: openai.AsyncOpenAI, params: dict[str, Any]
) -> AsyncStream[ChatCompletionChunk]:
    """A streaming chat completion from `create`'s keyword arguments, without `create`'s type walk.

    `post` drops the unset (`NOT_GIVEN`) values from the body and options, as `create` does.
    """
    body = {k: v for k, v in params.items() if k not in _REQUEST_OPTIONS}
    options: Any = {opt: params[k] for k, opt in _REQUEST_OPTIONS.items() if k in params}
    return await client.post(
        "/chat/completions",
        body=body,
        options=options,
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )


def build_services(settings: Settings, system_prompt: str, http_client: Any) -> Services:
    """Fresh service objects for one call (each holds per-call state), on the shared client."""
    if settings.openai_api_key is None:
        raise ConfigError("OPENAI_API_KEY is not set; a live call needs speech and a language model.")
    key = settings.openai_api_key.get_secret_value()
    base_url = str(settings.openai_base_url).rstrip("/") if settings.openai_base_url else None
    llm = _SharedClientLLM(
        http_client=http_client,
        api_key=key,
        base_url=base_url,
        settings=OpenAILLMService.Settings(
            model=settings.openai_model,
            system_instruction=system_prompt,
            temperature=0.2,
            max_completion_tokens=MAX_REPLY_TOKENS,
        ),
        retry_timeout_secs=LLM_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )
    tts = OpenAITTSService(
        api_key=key,
        base_url=base_url,
        http_client=http_client,
        sample_rate=TTS_SAMPLE_RATE,
        settings=OpenAITTSService.Settings(model=settings.openai_tts_model, voice=settings.openai_tts_voice),
    )
    return Services(stt=_stt(settings, key, base_url, http_client), llm=llm, tts=tts)


def _stt(settings: Settings, key: str, base_url: str | None, http_client: Any) -> Any:
    if settings.stt_provider == "deepgram":
        if settings.deepgram_api_key is None:
            raise ConfigError("STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY.")
        try:
            from pipecat.services.deepgram.stt import DeepgramSTTService
        except ImportError as exc:
            raise ConfigError("STT_PROVIDER=deepgram needs the extra: pip install -e '.[deepgram]'.") from exc
        return DeepgramSTTService(api_key=settings.deepgram_api_key.get_secret_value())
    return EarlyTranscriptSTT(
        api_key=key,
        base_url=base_url,
        http_client=http_client,
        settings=EarlyTranscriptSTT.Settings(model=settings.openai_stt_model, language=Language.EN),
    )
