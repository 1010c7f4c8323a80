"""The official `openai` Python SDK works against Chorus unchanged."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from openai import OpenAI

from conftest import Chorus, answer, reasoning_text, unique_tag


@pytest.fixture
def client(chorus: Chorus) -> OpenAI:
    # No retries: the SDK would retry 5xx answers and dropped connections by itself, hiding
    # failures. A fresh client (and connection pool) per test: Chorus closes the connection after
    # a streamed response (test_schemas.py::test_streamed_response_connection_reuse).
    sdk = OpenAI(base_url=chorus.base_url, api_key=chorus.api_key, max_retries=0, timeout=30)
    yield sdk
    sdk.close()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def delta_reasoning(delta) -> str | None:
    extra = delta.model_extra or {}
    return extra.get("reasoning_content", getattr(delta, "reasoning_content", None))


def test_non_streamed_completion_returns_the_deterministic_answer(client: OpenAI):
    completion = client.chat.completions.create(model="fake", messages=user(f"{unique_tag()} [[fake tokens=5]]"))
    assert completion.object == "chat.completion"
    assert completion.model == "fake"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == answer(5)
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    # The conversation extension rides along as an extra field.
    assert (completion.model_extra or {}).get("conversation_id", "").startswith("conv")


def test_non_streamed_reasoning_is_separate_from_content(client: OpenAI):
    completion = client.chat.completions.create(
        model="fake", messages=user(f"{unique_tag()} [[fake tokens=3 reasoning=2]]")
    )
    message = completion.choices[0].message
    assert message.content == answer(3)
    assert (message.model_extra or {}).get("reasoning_content") == reasoning_text(2)


def test_streamed_completion_with_usage(client: OpenAI):
    stream = client.chat.completions.create(
        model="fake",
        messages=user(f"{unique_tag()} [[fake tokens=6]]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "the stream yielded no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1, "every chunk of one completion carries the same id"
    content_deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_deltas) >= 2, "the answer should arrive in several deltas, not one"
    assert "".join(content_deltas) == answer(6)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    # include_usage: the last chunk has no choices and carries the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 6
    assert last.usage.total_tokens == last.usage.prompt_tokens + 6
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("directive", ["reasoning=3", "reasoning=3 think_tags=1"], ids=["reasoning_content", "think_tags"])
def test_streamed_reasoning_arrives_as_reasoning_content(client: OpenAI, directive: str):
    stream = client.chat.completions.create(
        model="fake",
        messages=user(f"{unique_tag()} [[fake tokens=4 {directive}]]"),
        stream=True,
    )
    reasoning, content = [], []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta_reasoning(delta):
            reasoning.append(delta_reasoning(delta))
        if delta.content:
            content.append(delta.content)
    assert "".join(reasoning) == reasoning_text(3)
    assert "".join(content) == answer(4)
    joined = "".join(content)
    assert "<think" not in joined and "think>" not in joined and "r0" not in joined


def test_models_list_includes_fake(client: OpenAI):
    ids = [m.id for m in client.models.list()]
    assert "fake" in ids
    model = client.models.retrieve("fake")
    assert model.id == "fake" and model.object == "model"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_unknown_model_raises_not_found(client: OpenAI, stream: bool):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-model", messages=user("hello"), stream=stream)
    assert raised.value.status_code == 404
    assert raised.value.code == "model_not_found"


def test_missing_messages_raises_bad_request(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="fake", messages=openai.NOT_GIVEN)
    assert raised.value.status_code == 400
    assert raised.value.param == "messages"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_upstream_http_error_is_502(client: OpenAI, stream: bool):
    with pytest.raises(openai.APIStatusError) as raised:
        result = client.chat.completions.create(
            model="fake", messages=user(f"{unique_tag()} [[fake status=500]]"), stream=stream
        )
        if stream:
            list(result)
    assert raised.value.status_code == 502


def test_upstream_first_token_timeout_is_504(chorus: Chorus):
    """first_token timeout is 3 s; the fake answers nothing for 5 s. Both modes run at once (each
    takes several timeouts, as Chorus retries before the first token)."""
    def call(stream: bool):
        sdk = OpenAI(base_url=chorus.base_url, api_key=chorus.api_key, max_retries=0, timeout=60)
        try:
            result = sdk.chat.completions.create(
                model="fake", messages=user(f"{unique_tag()} [[fake stall_first=5 tokens=2]]"), stream=stream
            )
            if stream:
                list(result)
        except openai.APIStatusError as error:
            return error
        finally:
            sdk.close()
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        plain, streamed = pool.map(call, [False, True])
    for mode, error in (("plain", plain), ("streamed", streamed)):
        assert error is not None, f"{mode}: no error raised"
        assert error.status_code == 504, f"{mode}: {error}"
        assert error.code == "upstream_timeout_first_token", f"{mode}: {error}"
