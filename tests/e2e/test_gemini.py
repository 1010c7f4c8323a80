"""`provider: gemini`: Chorus speaks Gemini's native API to the upstream and OpenAI's to clients.

The upstream is the fake's Gemini mode (`/v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`), started with an API key it requires in `x-goog-api-key`.
What reached it is read back from `/_fake/requests` (the raw Gemini bodies), so each test checks
both sides: the OpenAI answer the client got (validated against the official schemas) and the
Gemini request Chorus sent.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

import pytest
from openai import OpenAI

from conftest import (FAKE_TIMEOUTS, Chorus, FakeUpstream, ManagedProcess, OpenAISchemas, answer, reasoning_text,
                      start_chorus, stream_chat, unique_tag, user_body, wait_until)

GEMINI_KEY = "gk-e2e-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def gemini_fake(fake_upstream_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    log_dir = tmp_path_factory.mktemp("fake-gemini")
    process = ManagedProcess("fake-gemini", [fake_upstream_bin, "--port", "0", "--api-key", GEMINI_KEY], log_dir)
    try:
        url = process.listening_url("fake-upstream listening on ")
        yield FakeUpstream(url=url, process=process)
    finally:
        process.stop()


def gemini_model_yaml(fake: FakeUpstream, name: str, key_env: str, extra: str = "") -> str:
    return (
        f"  {name}:\n"
        f"    provider: gemini\n"
        f"    base_url: {fake.url}/v1beta\n"
        f"    api_key_env: {key_env}\n"
        f"    upstream_model: gemini-test\n"
        f"    timeouts: {FAKE_TIMEOUTS}\n"
        f"    retry_backoff_seconds: 0.05\n"
        + extra
    )


@pytest.fixture(scope="module")
def gchorus(chorus_bin: str, gemini_fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chorus]:
    """Chorus with `gemini` (streams upstream), `gemini-direct` (`upstream_streaming: false`:
    generateContent), `gemini-nokey` (its key variable unset), `gemini-badkey` (a wrong key) and
    `gemini-quick` (1 s first-token and between-token timeouts, no retries).
    It logs at debug level, so a key that leaked into any log line would show."""
    env = dict(os.environ)
    env["GEMINI_E2E_KEY"] = GEMINI_KEY
    env["GEMINI_E2E_BAD_KEY"] = "not-the-key"
    env.pop("GEMINI_E2E_NO_KEY", None)
    models = (gemini_model_yaml(gemini_fake, "gemini", "GEMINI_E2E_KEY")
              + gemini_model_yaml(gemini_fake, "gemini-direct", "GEMINI_E2E_KEY", "    upstream_streaming: false\n")
              + gemini_model_yaml(gemini_fake, "gemini-nokey", "GEMINI_E2E_NO_KEY", "    retries: 0\n")
              + gemini_model_yaml(gemini_fake, "gemini-badkey", "GEMINI_E2E_BAD_KEY", "    retries: 0\n")
              + gemini_model_yaml(gemini_fake, "gemini-quick", "GEMINI_E2E_KEY", "    retries: 0\n").replace(
                  FAKE_TIMEOUTS, "{connect: 5, first_token: 1, between_tokens: 1, total: 60}"))
    instance = start_chorus(chorus_bin, tmp_path_factory.mktemp("chorus-gemini"), models, env=env,
                            config={"logging": {"level": "debug"}})
    try:
        yield instance
    finally:
        instance.close()
        instance.process.stop()


@pytest.fixture
def sdk(gchorus: Chorus) -> Iterator[OpenAI]:
    client = OpenAI(base_url=gchorus.base_url, api_key=gchorus.api_key, max_retries=0, timeout=30)
    yield client
    client.close()


def sent_with(fake: FakeUpstream, tag: str) -> list[dict[str, Any]]:
    """The Gemini bodies the fake received whose text holds `tag`, oldest first."""
    return [body for body in fake.requests(200) if tag in json.dumps(body)]


def last_sent(fake: FakeUpstream, tag: str) -> dict[str, Any]:
    bodies = sent_with(fake, tag)
    assert bodies, f"no request with {tag!r} reached the fake"
    return bodies[-1]


def choice_text(chunks: list[dict[str, Any]], field: str) -> str:
    return "".join((c.get("delta") or {}).get(field) or "" for chunk in chunks for c in chunk.get("choices") or [])


def finish_reasons(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["finish_reason"] for chunk in chunks for c in chunk.get("choices") or [] if c.get("finish_reason")]


def check_chunks(result, openai_schemas: OpenAISchemas) -> list[dict[str, Any]]:
    assert result.status_code == 200, result.body
    assert result.done, f"stream did not end with [DONE]: {result.events[-3:]}"
    for chunk in result.chunks:
        openai_schemas.assert_valid("CreateChatCompletionStreamResponse", chunk)
    return result.chunks


# --------------------------------------------------------------------------------------------
# Instructions, history, thinking, usage


def test_system_instruction_history_thinking_and_usage_through_the_sdk(sdk: OpenAI, gemini_fake: FakeUpstream):
    tag = unique_tag()
    completion = sdk.chat.completions.create(
        model="gemini",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"{tag} first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": f"{tag} second [[fake tokens=3 reasoning=2]]"},
        ],
        reasoning_effort="low",
    )
    message = completion.choices[0].message
    assert message.content == answer(3)
    assert (message.model_extra or {}).get("reasoning_content") == reasoning_text(2)
    assert completion.choices[0].finish_reason == "stop"
    # usageMetadata: the fake counts the prompt's words (3 + 3 + 2 + 3 + 2), 3 answer tokens
    # and 2 thoughts; completion tokens are both, the thoughts also as reasoning tokens.
    assert completion.usage.prompt_tokens == 13
    assert completion.usage.completion_tokens == 5
    assert completion.usage.completion_tokens_details.reasoning_tokens == 2

    sent = last_sent(gemini_fake, tag)
    assert sent["systemInstruction"] == {"parts": [{"text": "You are terse."}, {"text": "Use metric units."}]}
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][0]["parts"] == [{"text": f"{tag} first question"}]
    assert sent["contents"][1]["parts"] == [{"text": "first answer"}]
    assert sent["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    assert "messages" not in sent and "model" not in sent


def test_streamed_thinking_arrives_as_reasoning(gchorus: Chorus, gemini_fake: FakeUpstream, openai_schemas: OpenAISchemas):
    tag = unique_tag()
    result = stream_chat(gchorus, user_body(f"{tag} [[fake tokens=4 reasoning=3]]", model="gemini",
                                            reasoning_effort="high", stream_options={"include_usage": True}))
    chunks = check_chunks(result, openai_schemas)
    assert result.reasoning == reasoning_text(3)
    assert result.content == answer(4)
    assert finish_reasons(chunks) == ["stop"]
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 7 and usage["completion_tokens_details"]["reasoning_tokens"] == 3
    assert last_sent(gemini_fake, tag)["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 24576}

    # Without reasoning_effort, Gemini is not asked for its thoughts: none arrive, though counted.
    quiet = stream_chat(gchorus, user_body(f"{unique_tag()} [[fake tokens=2 reasoning=3]]", model="gemini",
                                           stream_options={"include_usage": True}))
    check_chunks(quiet, openai_schemas)
    assert quiet.reasoning == "" and quiet.content == answer(2)
    assert quiet.chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3


@pytest.mark.parametrize("model", ["gemini", "gemini-direct"])
def test_non_streamed_answers_match_the_schema(gchorus: Chorus, gemini_fake: FakeUpstream,
                                               openai_schemas: OpenAISchemas, model: str):
    streams_before = gemini_fake.stats()["streams_started"]
    r = gchorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} [[fake tokens=5]]", model=model,
                                                                  temperature=0.3, max_tokens=50, stop=["zzz"]))
    assert r.status_code == 200, r.text
    body = r.json()
    openai_schemas.assert_valid("CreateChatCompletionResponse", body)
    assert body["model"] == model
    assert body["choices"][0]["message"]["content"] == answer(5)
    assert body["usage"]["completion_tokens"] == 5
    # `gemini-direct` calls generateContent, the other streamGenerateContent.
    assert (gemini_fake.stats()["streams_started"] > streams_before) == (model == "gemini")
    config = gemini_fake.requests(1)[0]["generationConfig"]
    assert config == {"temperature": 0.3, "maxOutputTokens": 50, "stopSequences": ["zzz"]}


# --------------------------------------------------------------------------------------------
# Tool calls

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False},
    },
}]


def ask(sdk: OpenAI, stream: bool, **body: Any) -> tuple[str | None, list[dict[str, Any]], str]:
    """(content, tool calls, finish reason) of one completion, streamed or not."""
    if not stream:
        choice = sdk.chat.completions.create(**body).choices[0]
        calls = [call.model_dump(exclude_none=True) for call in choice.message.tool_calls or []]
        return choice.message.content, calls, choice.finish_reason
    content, calls, finish = "", {}, None
    for chunk in sdk.chat.completions.create(stream=True, **body):
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                call["id"] = call["id"] or delta.id or ""
                if delta.function:
                    call["function"]["name"] += delta.function.name or ""
                    call["function"]["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    return content or None, [calls[i] for i in sorted(calls)], finish


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_round_trip(sdk: OpenAI, gemini_fake: FakeUpstream, stream: bool):
    tag = unique_tag()
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"{tag} weather in Paris?"}]
    content, calls, finish = ask(sdk, stream, model="gemini", messages=messages, tools=TOOLS, tool_choice="required")
    assert finish == "tool_calls"
    assert len(calls) == 1
    call = calls[0]
    assert call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    # The call's thought signature (Gemini 3 wants it back) rides in the id.
    signature = call["id"].split("__thought__", 1)[1]
    assert signature.startswith("fakesig-")
    assert json.loads(call["function"]["arguments"]) == {"city": "city_0"}
    sent = last_sent(gemini_fake, tag)
    assert sent["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "The weather in a city.",
        "parametersJsonSchema": TOOLS[0]["function"]["parameters"]}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"temperature": 21})},
    ]
    content, calls, finish = ask(sdk, stream, model="gemini", messages=messages, tools=TOOLS)
    assert calls == [] and finish == "stop"
    assert content == 'tool results: get_weather={"temperature":21}'
    sent = last_sent(gemini_fake, tag)
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": f"{tag} weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "city_0"}},
                                     "thoughtSignature": signature}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temperature": 21}}}]},
    ]


def test_a_tool_loop_as_queued_tasks_keeps_the_signature_in_the_stored_history(gchorus: Chorus, gemini_fake: FakeUpstream):
    """Tasks run the same provider; the second turn's history is rebuilt from the database, and
    the call's thought signature comes back from there."""
    tag = unique_tag()

    def finished(task_id: str) -> dict[str, Any]:
        def done():
            task = gchorus.http.get(f"/v1/tasks/{task_id}").json()
            return task if task["state"] in ("SUCCESS", "FAILURE", "CANCELLED") else None
        return wait_until(done, 30, interval=0.1, message=f"task {task_id} to finish")

    r = gchorus.http.post("/v1/batches", json={"messages": [{"role": "user", "content": f"{tag} weather?"}],
                                               "models": ["gemini"], "tools": TOOLS})
    assert r.status_code == 202, r.text
    first = r.json()
    task = finished(first["task_ids"][0])
    assert task["state"] == "SUCCESS" and task["result"]["finish_reason"] == "tool_calls", task
    call = task["result"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and "__thought__fakesig-" in call["id"]

    r = gchorus.http.post("/v1/batches", json={
        "messages": [{"role": "tool", "tool_call_id": call["id"], "content": "rain"}], "models": ["gemini"],
        "conversation_id": first["conversation_id"], "tools": TOOLS})
    assert r.status_code == 202, r.text
    task = finished(r.json()["task_ids"][0])
    assert task["state"] == "SUCCESS", task
    assert task["result"]["content"] == 'tool results: get_weather={"result":"rain"}'
    sent = last_sent(gemini_fake, tag)
    assert sent["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather", "args": {"city": "city_0"}},
                                             "thoughtSignature": call["id"].split("__thought__", 1)[1]}]


def test_a_call_without_its_thought_signature_is_the_clients_400(gchorus: Chorus, gemini_fake: FakeUpstream):
    """A history with a call Chorus did not make (an id with no signature): the fake refuses it as
    Gemini 3 does, and the client gets Gemini's reason as a 400, not a 502."""
    tag = unique_tag()
    r = gchorus.http.post("/v1/chat/completions", json={"model": "gemini", "tools": TOOLS, "messages": [
        {"role": "user", "content": f"{tag} weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_own", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_own", "content": "sunny"},
    ]})
    assert r.status_code == 400, r.text
    assert "thought_signature" in r.json()["error"]["message"]
    sent = last_sent(gemini_fake, tag)
    assert sent["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}]}


def test_a_named_tool_choice_and_an_unknown_tool_result(gchorus: Chorus, gemini_fake: FakeUpstream):
    tag = unique_tag()
    r = gchorus.http.post("/v1/chat/completions", json=user_body(
        f"{tag} go", model="gemini", tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    assert r.status_code == 200, r.text
    assert last_sent(gemini_fake, tag)["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    # A tool result that answers no call: Gemini needs the function's name, so it is the client's 400.
    orphan = unique_tag()
    r = gchorus.http.post("/v1/chat/completions", json={"model": "gemini", "messages": [
        {"role": "user", "content": f"{orphan} hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[1].tool_call_id", r.text
    assert sent_with(gemini_fake, orphan) == []


# --------------------------------------------------------------------------------------------
# Safety blocks


def test_a_safety_block_is_a_content_filter_with_the_reason(gchorus: Chorus, openai_schemas: OpenAISchemas):
    r = gchorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} [[fake tokens=2 block=SAFETY]]", model="gemini"))
    assert r.status_code == 200, r.text
    body = r.json()
    openai_schemas.assert_valid("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == answer(2)
    assert choice["message"]["refusal"] == "Gemini blocked the response (SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT)."

    result = stream_chat(gchorus, user_body(f"{unique_tag()} [[fake tokens=1 block=RECITATION]]", model="gemini"))
    chunks = check_chunks(result, openai_schemas)
    assert finish_reasons(chunks) == ["content_filter"]
    assert result.content == answer(1)
    assert choice_text(chunks, "refusal") == "Gemini blocked the response (RECITATION: HARM_CATEGORY_DANGEROUS_CONTENT)."


@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_prompt_is_a_content_filter_with_no_answer(gchorus: Chorus, openai_schemas: OpenAISchemas, stream: bool):
    body = user_body(f"{unique_tag()} [[fake block_prompt=PROHIBITED_CONTENT]]", model="gemini")
    expected = "Gemini blocked the prompt (PROHIBITED_CONTENT: HARM_CATEGORY_DANGEROUS_CONTENT)."
    if stream:
        result = stream_chat(gchorus, body)
        chunks = check_chunks(result, openai_schemas)
        assert finish_reasons(chunks) == ["content_filter"]
        assert result.content == "" and choice_text(chunks, "refusal") == expected
    else:
        r = gchorus.http.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        openai_schemas.assert_valid("CreateChatCompletionResponse", r.json())
        message = r.json()["choices"][0]["message"]
        assert message["content"] is None and message["refusal"] == expected
        assert r.json()["choices"][0]["finish_reason"] == "content_filter"


# --------------------------------------------------------------------------------------------
# Images

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()


def test_an_image_goes_as_inline_data(sdk: OpenAI, gemini_fake: FakeUpstream):
    tag = unique_tag()
    completion = sdk.chat.completions.create(model="gemini", messages=[{"role": "user", "content": [
        {"type": "text", "text": f"{tag} what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]}])
    assert completion.choices[0].message.content == answer(8)
    assert last_sent(gemini_fake, tag)["contents"] == [{"role": "user", "parts": [
        {"text": f"{tag} what is this?"},
        {"inline_data": {"mime_type": "image/png", "data": PNG}},
    ]}]


def test_an_image_at_a_web_url_is_a_400(gchorus: Chorus, gemini_fake: FakeUpstream, openai_schemas: OpenAISchemas):
    tag = unique_tag()
    r = gchorus.http.post("/v1/chat/completions", json={"model": "gemini", "messages": [{"role": "user", "content": [
        {"type": "text", "text": f"{tag} and this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]}]})
    assert r.status_code == 400, r.text
    openai_schemas.assert_valid("ErrorResponse", r.json())
    assert r.json()["error"]["param"] == "messages[0].content[1].image_url.url"
    assert sent_with(gemini_fake, tag) == [], "a refused request must not reach the upstream"


# --------------------------------------------------------------------------------------------
# Errors and retries


@pytest.mark.parametrize("directive,attempts", [("status=429 times=1", 2), ("status=503 times=2", 3)])
@pytest.mark.parametrize("stream", [False, True])
def test_a_429_or_503_is_retried(gchorus: Chorus, gemini_fake: FakeUpstream, directive: str, attempts: int, stream: bool):
    tag = unique_tag()
    body = user_body(f"{tag} [[fake tokens=3 {directive}]]", model="gemini")
    if stream:
        result = stream_chat(gchorus, body)
        assert result.status_code == 200 and result.content == answer(3), result.body
    else:
        r = gchorus.http.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == answer(3)
    assert len(sent_with(gemini_fake, tag)) == attempts


def test_a_lasting_503_is_a_502_after_the_retries(gchorus: Chorus, gemini_fake: FakeUpstream, openai_schemas: OpenAISchemas):
    tag = unique_tag()
    r = gchorus.http.post("/v1/chat/completions", json=user_body(f"{tag} [[fake status=503]]", model="gemini"))
    assert r.status_code == 502, r.text
    openai_schemas.assert_valid("ErrorResponse", r.json())
    assert "503" in r.json()["error"]["message"]
    assert len(sent_with(gemini_fake, tag)) == 3, "one call and the two retries"


@pytest.mark.parametrize("model", ["gemini", "gemini-direct"])
def test_a_400_is_the_clients_400_and_not_retried(gchorus: Chorus, gemini_fake: FakeUpstream,
                                                  openai_schemas: OpenAISchemas, model: str):
    tag = unique_tag()
    r = gchorus.http.post("/v1/chat/completions", json=user_body(f"{tag} [[fake status=400]]", model=model))
    assert r.status_code == 400, r.text
    openai_schemas.assert_valid("ErrorResponse", r.json())
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_argument"
    assert "The fake upstream was asked to fail with status 400." in error["message"]
    assert len(sent_with(gemini_fake, tag)) == 1


def test_an_error_mid_stream_keeps_what_came(gchorus: Chorus):
    result = stream_chat(gchorus, user_body(f"{unique_tag()} [[fake tokens=4 error_after=2]]", model="gemini"))
    assert result.status_code == 200
    assert result.content == answer(2)
    assert result.errors and result.errors[0]["type"] == "upstream_error"


def test_faults_in_a_gemini_stream(gchorus: Chorus, openai_schemas: OpenAISchemas):
    """The fake's stalls, drops and malformed events, in Gemini's stream, reach the client as
    they do from an OpenAI upstream."""
    late = gchorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} [[fake stall_first=2]]", model="gemini-quick"))
    assert late.status_code == 504 and late.json()["error"]["code"] == "upstream_timeout_first_token", late.text

    stalled = stream_chat(gchorus, user_body(f"{unique_tag()} [[fake tokens=4 stall_after=2 stall=3]]", model="gemini-quick"))
    assert stalled.status_code == 200 and stalled.content == answer(2)
    assert stalled.errors and stalled.errors[0]["code"] == "upstream_timeout_between_tokens", stalled.errors

    dropped = stream_chat(gchorus, user_body(f"{unique_tag()} [[fake tokens=4 disconnect_after=2]]", model="gemini"))
    assert dropped.status_code == 200 and dropped.content == answer(2)
    assert dropped.errors and dropped.errors[0]["type"] == "upstream_error", dropped.errors

    # A malformed event is skipped; the rest of the answer arrives.
    skipped = stream_chat(gchorus, user_body(f"{unique_tag()} [[fake tokens=4 malformed_after=1 comments=1]]", model="gemini"))
    check_chunks(skipped, openai_schemas)
    assert skipped.content == answer(4) and not skipped.errors


# --------------------------------------------------------------------------------------------
# The API key


def test_the_key_is_sent_and_never_logged(gchorus: Chorus, gemini_fake: FakeUpstream, openai_schemas: OpenAISchemas):
    # The fake answers only calls with its key in x-goog-api-key: every success above sent it.
    ok = gchorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} [[fake tokens=1]]", model="gemini"))
    assert ok.status_code == 200, ok.text
    # No key: Google's 403 is Chorus's 502, the operator's to fix.
    missing = gchorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} hi", model="gemini-nokey"))
    assert missing.status_code == 502, missing.text
    openai_schemas.assert_valid("ErrorResponse", missing.json())
    assert "unregistered callers" in missing.json()["error"]["message"]
    # A wrong key: Google says 400 API_KEY_INVALID, which is not the client's fault either.
    wrong = gchorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} hi", model="gemini-badkey"))
    assert wrong.status_code == 502, wrong.text
    assert "API key not valid" in wrong.json()["error"]["message"]

    logs = gchorus.process.stderr_text() + "\n".join(gchorus.process.stdout_lines)
    assert "request" in logs, "the debug log is empty: the check below would prove nothing"
    assert GEMINI_KEY not in logs and "not-the-key" not in logs
    for path in Path(gchorus.data_dir).rglob("*"):
        if path.is_file():
            assert GEMINI_KEY.encode() not in path.read_bytes(), f"the key is in {path}"
