"""The phone call's language model posts the request Pipecat builds, byte for byte what the SDK would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import openai
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.openai.llm import OpenAILLMService

from agent.phone import pipecat_tools
from agent.services import build_services, post_chat_completion
from agent.settings import Settings

CHUNK = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Tuesday at two works."}}],
}


def sse(request: httpx2.Request) -> httpx2.Response:
    stream = f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n"
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=stream.encode())


def conversation() -> LLMContext:
    """A call three turns in: a question, a tool call and its result, the caller's answer."""
    return LLMContext(
        messages=[
            {"role": "user", "content": "What do you have next Tuesday afternoon?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "find_slots", "arguments": '{"when": "next Tuesday afternoon"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"slots": ["2026-12-01T14:00:00-06:00"]}'},
            {"role": "assistant", "content": "I have two o'clock on Tuesday, December first."},
            {"role": "user", "content": "Two works, my name is Ana, ana at example dot com."},
        ],
        tools=pipecat_tools(),
    )


async def test_the_model_gets_the_request_the_sdk_would_send_and_its_reply_streams_back(
    tmp_path: Path,
) -> None:
    seen: list[httpx2.Request] = []

    def openai_api(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return sse(request)

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        openai_api_key="sk-test",
        openai_base_url="http://openai.test/v1",
        _env_file=None,
    )
    async with openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(openai_api)) as http:
        llm = build_services(settings, "You answer the phone for a dental clinic.", http).llm
        context = conversation()
        ours = [chunk async for chunk in await llm.get_chat_completions(context)]
        [chunk async for chunk in await OpenAILLMService.get_chat_completions(llm, context)]

    assert [c.choices[0].delta.content for c in ours] == ["Tuesday at two works."]
    posted, through_sdk = seen
    assert (posted.method, posted.url) == (through_sdk.method, through_sdk.url)
    assert posted.headers["authorization"] == through_sdk.headers["authorization"] == "Bearer sk-test"
    body: dict[str, Any] = json.loads(posted.content)
    assert body == json.loads(through_sdk.content)
    assert body["messages"][0] == {"role": "system", "content": "You answer the phone for a dental clinic."}
    assert len(body["messages"]) == 6 and body["tools"] and body["stream"] is True


async def test_extra_body_headers_and_query_go_where_the_sdk_puts_them() -> None:
    seen: list[httpx2.Request] = []

    def openai_api(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return sse(request)

    params: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "Hello?"}],
        "seed": openai.NOT_GIVEN,
        "extra_body": {"provider": {"order": ["a"]}},
        "extra_headers": {"X-Call": "CA1"},
        "extra_query": {"api-version": "1"},
        "timeout": openai.NOT_GIVEN,
    }
    async with openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(openai_api)) as http:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://openai.test/v1", http_client=http)
        [chunk async for chunk in await post_chat_completion(client, params)]
        [chunk async for chunk in await client.chat.completions.create(**params)]

    posted, through_sdk = seen
    assert posted.url == through_sdk.url == "http://openai.test/v1/chat/completions?api-version=1"
    assert posted.headers["x-call"] == through_sdk.headers["x-call"] == "CA1"
    assert json.loads(posted.content) == json.loads(through_sdk.content)
    assert json.loads(posted.content)["provider"] == {"order": ["a"]}
