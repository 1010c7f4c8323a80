"""A corpus of valid OpenAI Chat Completions requests, as the OpenAI API reference and the official
Python SDK's examples write them, sent through Chorus streamed and not, raw (httpx, every body and
chunk validated against the official schemas) and through the official `openai` SDK.

After each request the test checks what the upstream received (`fake_upstream.requests`) and what
Chorus stored (its SQLite file, read-only). The fake upstream is deterministic: see its
`[[fake ...]]` directives in conftest and Sources/FakeUpstreamKit.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest
from openai import OpenAI
from openai.resources.chat.completions import Completions
from pydantic import BaseModel

from conftest import Chorus, FakeUpstream, OpenAISchemas, answer, reasoning_text, stream_chat, unique_tag, wait_until

# --------------------------------------------------------------------------------------------
# Request material

PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgo="
REFUSAL = "I'm sorry, but I can't help with that."

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the local time in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}, "utc_offset": {"type": "integer"}},
            "required": ["timezone"],
        },
    },
}

CALL_ID = re.compile(r"call_\d+_(\d+)")


def compact(value: Any) -> str:
    """JSON as the fake upstream writes tool arguments and JSON answers."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def user(text: str, **fields: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **fields}


def chat_body(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"model": "fake", "messages": messages, **fields}


# --------------------------------------------------------------------------------------------
# One completion as the client saw it


@dataclass
class Reply:
    """A completion, streamed or not, reduced to what the tests compare."""
    stream: bool
    headers: httpx.Headers
    bodies: list[dict[str, Any]]            # the body, or every chunk
    content: str | None                      # streamed: the deltas joined ("" when none)
    refusal: str | None
    reasoning: str
    tool_calls: list[dict[str, Any]]         # whole calls {id, type, function: {name, arguments}}
    tool_call_deltas: list[dict[str, Any]]   # streamed: every delta.tool_calls entry, in order
    finish_reason: str | None
    logprobs: list[dict[str, Any]] | None    # the logprobs.content entries, all chunks together
    usage: dict[str, Any] | None

    @property
    def text(self) -> str:
        return self.content or ""

    @property
    def conversation_id(self) -> str | None:
        return self.headers.get("x-conversation-id")

    @property
    def finish_body(self) -> dict[str, Any]:
        """The body, or the chunk that carries the finish reason."""
        return next(b for b in self.bodies if any(c.get("finish_reason") for c in b.get("choices") or []))


def accumulate_tool_calls(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole calls from streamed `delta.tool_calls` entries, as the SDK accumulates them."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        call = calls.setdefault(delta["index"], {"id": None, "type": None, "function": {"name": "", "arguments": ""}})
        call["id"] = delta.get("id") or call["id"]
        call["type"] = delta.get("type") or call["type"]
        function = delta.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""
    return [calls[index] for index in sorted(calls)]


def reduce_completion(body: dict[str, Any], headers: httpx.Headers) -> Reply:
    assert body["object"] == "chat.completion" and body["model"] == "fake", body
    assert len(body["choices"]) == 1, body
    choice = body["choices"][0]
    message = choice["message"]
    assert message["role"] == "assistant", message
    return Reply(
        stream=False, headers=headers, bodies=[body],
        content=message.get("content"), refusal=message.get("refusal"),
        reasoning=message.get("reasoning_content") or "",
        tool_calls=message.get("tool_calls") or [], tool_call_deltas=[],
        finish_reason=choice.get("finish_reason"),
        logprobs=(choice.get("logprobs") or {}).get("content"),
        usage=body.get("usage"),
    )


def reduce_chunks(chunks: list[dict[str, Any]], headers: httpx.Headers) -> Reply:
    assert chunks, "the stream had no chunks"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1, "every chunk of one completion carries the same id"
    assert {c["model"] for c in chunks} == {"fake"}
    choices = [choice for c in chunks for choice in c.get("choices") or []]
    deltas = [choice.get("delta") or {} for choice in choices]
    finishes = [choice["finish_reason"] for choice in choices if choice.get("finish_reason")]
    assert len(finishes) == 1, f"exactly one chunk must finish the choice: {finishes}"
    logprobs = [entry for choice in choices for entry in ((choice.get("logprobs") or {}).get("content") or [])]
    refusal = "".join(d.get("refusal") or "" for d in deltas)
    tool_call_deltas = [call for d in deltas for call in d.get("tool_calls") or []]
    usages = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usages) <= 1 and (not usages or chunks[-1].get("usage")), "usage comes once, on the last chunk"
    return Reply(
        stream=True, headers=headers, bodies=chunks,
        content="".join(d.get("content") or "" for d in deltas), refusal=refusal or None,
        reasoning="".join(d.get("reasoning_content") or "" for d in deltas),
        tool_calls=accumulate_tool_calls(tool_call_deltas), tool_call_deltas=tool_call_deltas,
        finish_reason=finishes[0], logprobs=logprobs or None,
        usage=usages[0] if usages else None,
    )


SDK_PARAMS = set(inspect.signature(Completions.create).parameters) - {
    "self", "stream", "extra_headers", "extra_query", "extra_body", "timeout"}


class Caller:
    """Sends one chat body streamed or not, raw (schema-validated) or through the SDK."""

    def __init__(self, chorus: Chorus, schemas: OpenAISchemas, client: OpenAI, stream: bool, via: str):
        self.chorus, self.schemas, self.client = chorus, schemas, client
        self.stream, self.via = stream, via

    def __call__(self, body: dict[str, Any]) -> Reply:
        return self.raw(body) if self.via == "raw" else self.sdk(body)

    def raw(self, body: dict[str, Any]) -> Reply:
        if self.stream:
            result = stream_chat(self.chorus, body)
            assert result.status_code == 200, f"{result.status_code} {result.body[:2000]!r}"
            assert not result.errors, f"the stream carried errors: {result.errors}"
            assert result.done, f"the stream did not end with [DONE]: {result.events[-3:]}"
            for chunk in result.chunks:
                self.schemas.assert_valid("CreateChatCompletionStreamResponse", chunk)
            return reduce_chunks(result.chunks, result.headers)
        r = self.chorus.http.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, f"{r.status_code} {r.text[:2000]}"
        self.schemas.assert_valid("CreateChatCompletionResponse", r.json())
        return reduce_completion(r.json(), r.headers)

    def sdk(self, body: dict[str, Any]) -> Reply:
        params = {key: value for key, value in body.items() if key in SDK_PARAMS}
        extra = {key: value for key, value in body.items() if key not in SDK_PARAMS}
        raw = self.client.chat.completions.with_raw_response.create(
            **params, stream=self.stream, extra_body=extra or None)
        parsed = raw.parse()
        if self.stream:
            return reduce_chunks([chunk.model_dump(exclude_none=True) for chunk in parsed], raw.headers)
        return reduce_completion(parsed.model_dump(exclude_none=True), raw.headers)


VARIANTS = {
    "plain-raw": (False, "raw"),
    "streamed-raw": (True, "raw"),
    "plain-sdk": (False, "sdk"),
    "streamed-sdk": (True, "sdk"),
}
STREAMED = pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])


@pytest.fixture
def client(chorus: Chorus) -> Iterator[OpenAI]:
    sdk = OpenAI(base_url=chorus.base_url, api_key=chorus.api_key, max_retries=0, timeout=30)
    yield sdk
    sdk.close()


@pytest.fixture(params=list(VARIANTS))
def complete(request: pytest.FixtureRequest, chorus: Chorus, openai_schemas: OpenAISchemas, client: OpenAI) -> Caller:
    stream, via = VARIANTS[request.param]
    return Caller(chorus, openai_schemas, client, stream, via)


# --------------------------------------------------------------------------------------------
# What the upstream received, what Chorus stored


def upstream_request(fake: FakeUpstream, tag: str, last: int = 20) -> dict[str, Any]:
    """The newest request body the fake upstream received whose messages mention `tag`."""
    for body in reversed(fake.requests(last)):
        if tag in json.dumps(body.get("messages")):
            return body
    raise AssertionError(f"the fake upstream received no request mentioning {tag!r}")


def stored(chorus: Chorus, conversation_id: str) -> list[dict[str, Any]]:
    """The conversation's message rows in order, `tool_calls` and `parts` decoded."""
    rows = chorus.query(
        "SELECT role, content, parts, name, status, turn_id, tool_calls, tool_call_id FROM messages "
        "WHERE conversation_id = ? ORDER BY seq", (conversation_id,))
    decoded = []
    for row in rows:
        item = dict(row)
        for column in ("tool_calls", "parts"):
            item[column] = json.loads(item[column]) if item[column] else None
        decoded.append(item)
    return decoded


def conversations_mentioning(chorus: Chorus, tag: str) -> set[str]:
    """The conversations holding a message whose text contains `tag`."""
    rows = chorus.query("SELECT DISTINCT conversation_id FROM messages WHERE content LIKE ?", (f"%{tag}%",))
    return {row["conversation_id"] for row in rows}


def assert_stored_once(chorus: Chorus, reply: Reply, roles: list[str]) -> list[dict[str, Any]]:
    """The reply names its new conversation (header, and body or every chunk); the conversation
    holds `roles`, ending with the one answer (complete, with a turn_id)."""
    conversation_id = reply.conversation_id
    assert conversation_id and conversation_id.startswith("conv"), dict(reply.headers)
    assert {b.get("conversation_id") for b in reply.bodies} == {conversation_id}, \
        "the body (every chunk when streamed) names the conversation of X-Conversation-Id"
    rows = stored(chorus, conversation_id)
    assert [r["role"] for r in rows] == roles, rows
    last = rows[-1]
    assert last["status"] == "complete" and last["turn_id"], last
    answers = [r for r in rows if r["role"] == "assistant" and r["turn_id"] is not None]
    assert answers == [last], f"only the answer has a turn_id among assistant rows: {rows}"
    return rows


# --------------------------------------------------------------------------------------------
# 1, 2, 3, 4, 17: the messages a client sends without conversation_id


def test_stateless_multi_turn_is_answered_and_stored_once(chorus: Chorus, fake_upstream: FakeUpstream,
                                                          complete: Caller):
    tag = unique_tag()
    messages = [
        user(f"Who won the world series in 2020? {tag}"),
        {"role": "assistant", "content": f"The Los Angeles Dodgers won the World Series in 2020. {tag}"},
        user(f"Where was it played? {tag} [[fake echo=1]]"),
    ]
    reply = complete(chat_body(messages))
    assert reply.text == f"echo: 3 | Where was it played? {tag}"
    assert reply.finish_reason == "stop"
    assert upstream_request(fake_upstream, tag)["messages"] == messages, "messages go upstream exactly as sent"
    rows = assert_stored_once(chorus, reply, ["user", "assistant", "user", "assistant"])
    assert [r["content"] for r in rows] == [m["content"] for m in messages] + [reply.text]
    assert conversations_mentioning(chorus, tag) == {reply.conversation_id}, "stored once"


def test_resending_growing_history_creates_one_conversation_per_call(chorus: Chorus, complete: Caller):
    tag = unique_tag()
    messages: list[dict[str, Any]] = []
    conversations = []
    for turn in range(3):
        messages.append(user(f"turn {turn} {tag} [[fake echo=1]]"))
        reply = complete(chat_body(messages))
        assert reply.text == f"echo: {len(messages)} | turn {turn} {tag}"
        rows = assert_stored_once(chorus, reply, ["user", "assistant"] * (turn + 1))
        assert [r["content"] for r in rows[:-1]] == [m["content"] for m in messages]
        conversations.append(reply.conversation_id)
        assert conversations_mentioning(chorus, f"turn {turn} {tag}") == {reply.conversation_id}
        messages.append({"role": "assistant", "content": reply.text})
    assert len(set(conversations)) == 3


def test_system_and_developer_messages_go_upstream_but_are_not_stored(chorus: Chorus, fake_upstream: FakeUpstream,
                                                                     complete: Caller):
    tag = unique_tag()
    messages = [
        {"role": "system", "content": f"You are a helpful assistant. {tag}"},
        {"role": "developer", "content": "Answer in one sentence."},
        user(f"Hello! {tag} [[fake echo=1]]", name="alice"),
    ]
    reply = complete(chat_body(messages))
    assert reply.text == f"echo: 3 | Hello! {tag}"
    assert upstream_request(fake_upstream, tag)["messages"] == messages
    rows = assert_stored_once(chorus, reply, ["user", "assistant"])
    assert rows[0]["content"] == messages[2]["content"]
    assert rows[0]["name"] == "alice"
    assert rows[1]["content"] == reply.text


def test_content_parts_with_an_image_go_upstream_and_are_stored(chorus: Chorus, fake_upstream: FakeUpstream,
                                                                complete: Caller):
    tag = unique_tag()
    parts = [
        {"type": "text", "text": f"What's in this image? {tag} [[fake echo=1]]"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
    ]
    reply = complete(chat_body([{"role": "user", "content": parts}]))
    assert reply.text == f"echo: 1 | What's in this image? {tag}"
    assert upstream_request(fake_upstream, tag)["messages"] == [{"role": "user", "content": parts}]
    rows = assert_stored_once(chorus, reply, ["user", "assistant"])
    assert rows[0]["parts"] is not None, rows[0]
    images = [p for p in rows[0]["parts"] if p.get("type") == "image_url"]
    assert [p["image_url"]["url"] for p in images] == [PNG_DATA_URL], rows[0]["parts"]


def test_fifty_turn_history_is_sent_and_stored_once(chorus: Chorus, fake_upstream: FakeUpstream, complete: Caller):
    tag = unique_tag()
    messages: list[dict[str, Any]] = []
    for turn in range(50):
        messages += [user(f"question {turn} {tag}"), {"role": "assistant", "content": f"answer {turn}"}]
    messages.append(user(f"last question {tag} [[fake echo=1]]"))
    assert len(messages) == 101
    reply = complete(chat_body(messages))
    assert reply.text == f"echo: 101 | last question {tag}"
    assert upstream_request(fake_upstream, tag)["messages"] == messages
    rows = assert_stored_once(chorus, reply, ["user", "assistant"] * 51)
    assert [r["content"] for r in rows[:-1]] == [m["content"] for m in messages]
    assert conversations_mentioning(chorus, tag) == {reply.conversation_id}, "stored once"


# --------------------------------------------------------------------------------------------
# 5, 6, 7: tool calls


@dataclass
class ToolCase:
    tools: list[dict[str, Any]]
    fields: dict[str, Any]                     # tool_choice, parallel_tool_calls
    directive: str
    calls: list[tuple[str, dict[str, Any]]]    # (function name, arguments) per call


TOOL_CASES = {
    "auto": ToolCase([WEATHER_TOOL], {"tool_choice": "auto"}, "", [("get_weather", {"city": "city_0"})]),
    "forced_second_tool": ToolCase(
        [WEATHER_TOOL, TIME_TOOL], {"tool_choice": {"type": "function", "function": {"name": "get_time"}}}, "",
        [("get_time", {"timezone": "timezone_0", "utc_offset": 0})]),
    "parallel": ToolCase(
        [WEATHER_TOOL, TIME_TOOL], {}, "[[fake tool_calls=2]]",
        [("get_weather", {"city": "city_0"}), ("get_time", {"timezone": "timezone_1", "utc_offset": 1})]),
    "parallel_off": ToolCase(
        [WEATHER_TOOL, TIME_TOOL], {"parallel_tool_calls": False}, "[[fake tool_calls=2]]",
        [("get_weather", {"city": "city_0"})]),
}


def expected_tool_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the fake upstream streams for `calls`: a header per call, then ≤ 8-character
    argument fragments."""
    deltas = []
    for index, call in enumerate(calls):
        deltas.append({"index": index, "id": call["id"], "type": "function",
                       "function": {"name": call["function"]["name"], "arguments": ""}})
        arguments = call["function"]["arguments"]
        deltas += [{"index": index, "function": {"arguments": arguments[i:i + 8]}} for i in range(0, len(arguments), 8)]
    return deltas


@pytest.mark.parametrize("case", list(TOOL_CASES))
def test_tool_calls(chorus: Chorus, fake_upstream: FakeUpstream, complete: Caller, case: str):
    spec = TOOL_CASES[case]
    tag = unique_tag()
    body = chat_body([user(f"What's the weather like in Paris today? {tag} {spec.directive}")],
                     tools=spec.tools, **spec.fields)
    reply = complete(body)
    assert reply.finish_reason == "tool_calls"
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in reply.tool_calls] == \
        [(name, compact(arguments)) for name, arguments in spec.calls]
    for index, call in enumerate(reply.tool_calls):
        assert call["type"] == "function"
        match = CALL_ID.fullmatch(call["id"] or "")
        assert match and int(match.group(1)) == index, call
    if reply.stream:
        assert reply.text == ""
        assert reply.tool_call_deltas == expected_tool_deltas(reply.tool_calls), \
            "streamed tool-call deltas are relayed as the upstream sent them"
    else:
        assert reply.content is None, "a message with only tool calls has content null"

    sent = upstream_request(fake_upstream, tag)
    for key in ("tools", *spec.fields):
        assert sent[key] == body[key], f"{key} must reach the upstream unchanged"

    rows = assert_stored_once(chorus, reply, ["user", "assistant"])
    assert rows[1]["tool_calls"] == reply.tool_calls
    assert rows[1]["content"] == ""


# --------------------------------------------------------------------------------------------
# 8, 9: the SDK's tool-calling loop


def sdk_turn(client: OpenAI, stream: bool, **kwargs: Any) -> tuple[Any, str | None]:
    """One call as the SDK's examples make it (`create`, or the `stream` helper and
    `get_final_completion()`); the completion and the conversation Chorus stored it in."""
    if not stream:
        completion = client.chat.completions.create(**kwargs)
        return completion, (completion.model_extra or {}).get("conversation_id")
    conversations = set()
    with client.chat.completions.stream(**kwargs) as events:
        for event in events:
            if event.type == "chunk":
                conversations.add((event.chunk.model_extra or {}).get("conversation_id"))
        completion = events.get_final_completion()
    assert len(conversations) == 1, f"every chunk names the same conversation: {conversations}"
    return completion, conversations.pop()


def tool_result(call: Any) -> dict[str, Any]:
    """The tool message a client sends back for one call (its content names the arguments)."""
    arguments = json.loads(call.function.arguments)
    return {"role": "tool", "tool_call_id": call.id, "content": f"{call.function.name}-{'-'.join(map(str, arguments.values()))}"}


def expected_results_answer(results: list[dict[str, Any]]) -> str:
    return "tool results: " + "; ".join(f"{r['tool_call_id']}={r['content']}" for r in results)


def dumped_calls(message: Any) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls]


@STREAMED
def test_sdk_tool_loop_stateless(chorus: Chorus, fake_upstream: FakeUpstream, client: OpenAI, stream: bool):
    tag = unique_tag()
    tools = [WEATHER_TOOL, TIME_TOOL]
    messages: list[Any] = [user(f"Weather and time in Paris? {tag} [[fake tool_calls=2]]")]
    first, _ = sdk_turn(client, stream, model="fake", messages=messages, tools=tools)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in message.tool_calls] == ["get_weather", "get_time"]
    # As the SDK's docs do: the assistant message itself, then one tool message per call.
    messages.append(message if not stream else message.model_dump(exclude_none=True))
    # What the SDK sends for it (the streaming helper's accumulated calls keep their `index`).
    sent_calls = dumped_calls(message) if not stream else messages[-1]["tool_calls"]
    results = [tool_result(call) for call in message.tool_calls]
    messages += results

    final, conversation_id = sdk_turn(client, stream, model="fake", messages=messages, tools=tools)
    assert final.choices[0].message.content == expected_results_answer(results)
    assert final.choices[0].finish_reason == "stop"

    sent = upstream_request(fake_upstream, tag)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert sent[1]["tool_calls"] == sent_calls, "the assistant's tool calls go upstream as the client sent them"
    assert not sent[1].get("content"), sent[1]
    assert sent[2:] == results

    rows = stored(chorus, conversation_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "tool", "assistant"]
    # Stored as whole calls (without the `index` the SDK's streaming helper leaves on them).
    assert rows[1]["tool_calls"] == dumped_calls(message)
    assert rows[1]["turn_id"] is None
    assert [(r["tool_call_id"], r["content"]) for r in rows[2:4]] == [(r["tool_call_id"], r["content"]) for r in results]
    assert rows[4]["content"] == expected_results_answer(results) and rows[4]["turn_id"]


@STREAMED
def test_sdk_tool_loop_through_a_stored_conversation(chorus: Chorus, fake_upstream: FakeUpstream, client: OpenAI,
                                                     stream: bool):
    tag = unique_tag()
    tools = [WEATHER_TOOL, TIME_TOOL]
    question = user(f"Weather and time in Paris? {tag} [[fake tool_calls=2]]")
    first, conversation_id = sdk_turn(client, stream, model="fake", messages=[question], tools=tools)
    assert conversation_id and conversation_id.startswith("conv")
    message = first.choices[0].message
    assert len(message.tool_calls) == 2
    results = [tool_result(call) for call in message.tool_calls]

    # Only the tool results: the history comes from the database.
    final, same = sdk_turn(client, stream, model="fake", messages=results, tools=tools,
                           extra_body={"conversation_id": conversation_id})
    assert same == conversation_id
    assert final.choices[0].message.content == expected_results_answer(results)

    sent = upstream_request(fake_upstream, tag)
    assert "conversation_id" not in sent
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "tool"]
    assert sent["messages"][0]["content"] == question["content"]
    assert sent["messages"][1]["tool_calls"] == dumped_calls(message)
    assert [(m["tool_call_id"], m["content"]) for m in sent["messages"][2:]] == \
        [(r["tool_call_id"], r["content"]) for r in results]

    history = chorus.http.get(f"/v1/conversations/{conversation_id}/history")
    assert history.status_code == 200, history.text
    items = history.json()["data"]
    assert [m["role"] for m in items] == ["user", "assistant", "tool", "tool", "assistant"]
    assert items[1]["tool_calls"] == dumped_calls(message)
    assert [(m["tool_call_id"], m["content"]) for m in items[2:4]] == [(r["tool_call_id"], r["content"]) for r in results]
    assert items[4]["content"] == expected_results_answer(results)


# --------------------------------------------------------------------------------------------
# 10: the loop as queued tasks

TERMINAL_STATES = {"SUCCESS", "FAILURE", "CANCELLED"}


def task_events(chorus: Chorus, task_id: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(event type, data) of a task's SSE stream, read until its terminal event."""
    events: list[tuple[str | None, dict[str, Any]]] = []
    with httpx.Client(base_url=chorus.url, timeout=30, headers=chorus.auth_headers) as http:
        with http.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            assert response.status_code == 200, response.read()
            kind, data = None, []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    events.append((kind, json.loads("\n".join(data))))
                    if kind in ("finish", "error"):
                        break
                    kind, data = None, []
    return events


def run_batch(chorus: Chorus, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list]:
    """POST /v1/batches for one model; the submission, the finished task and its events."""
    r = chorus.http.post("/v1/batches", json={"models": ["fake"], **body})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert len(batch["task_ids"]) == 1, batch
    task_id = batch["task_ids"][0]
    events = task_events(chorus, task_id)
    task = wait_until(lambda: (t := chorus.http.get(f"/v1/tasks/{task_id}").json())["state"] in TERMINAL_STATES and t,
                      15, message=f"task {task_id} to end")
    return batch, task, events


def test_tool_loop_as_queued_tasks(chorus: Chorus, fake_upstream: FakeUpstream):
    tag = unique_tag()
    batch, task, events = run_batch(chorus, {
        "messages": [user(f"What's the weather like in Paris today? {tag}")],
        "tools": [WEATHER_TOOL], "tool_choice": "auto",
    })
    conversation_id = batch["conversation_id"]
    assert task["state"] == "SUCCESS", task
    result = task["result"]
    assert result["finish_reason"] == "tool_calls", result
    calls = result.get("tool_calls")
    assert calls and len(calls) == 1, result
    call = calls[0]
    assert call["type"] == "function" and CALL_ID.fullmatch(call["id"]), call
    assert call["function"] == {"name": "get_weather", "arguments": compact({"city": "city_0"})}
    assert result["conversation_id"] == conversation_id
    sent = upstream_request(fake_upstream, tag)
    assert sent["tools"] == [WEATHER_TOOL] and sent["tool_choice"] == "auto"

    tool_events = [data for kind, data in events if kind == "tool_calls"]
    assert tool_events, f"no tool_calls event among {[kind for kind, _ in events]}"
    assert accumulate_tool_calls([d for data in tool_events for d in data["data"]]) == calls

    results = [{"role": "tool", "tool_call_id": call["id"], "content": "sunny-21C"}]
    second_batch, second, _ = run_batch(chorus, {
        "messages": results, "conversation_id": conversation_id, "tools": [WEATHER_TOOL],
    })
    assert second_batch["conversation_id"] == conversation_id
    assert second["state"] == "SUCCESS", second
    assert second["result"]["content"] == f"tool results: {call['id']}=sunny-21C"
    assert second["result"]["finish_reason"] == "stop"

    sent = upstream_request(fake_upstream, tag)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"] == calls
    assert sent[2]["tool_call_id"] == call["id"] and sent[2]["content"] == "sunny-21C"

    rows = stored(chorus, conversation_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
    assert rows[1]["tool_calls"] == calls
    assert rows[2]["tool_call_id"] == call["id"]
    assert rows[3]["content"] == f"tool results: {call['id']}=sunny-21C"


# --------------------------------------------------------------------------------------------
# 11: structured outputs

FORECAST_SCHEMA = {
    "name": "forecast",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "rain": {"type": "boolean"}},
        "required": ["city", "days", "rain"],
        "additionalProperties": False,
    },
}
JSON_CASES = {
    "json_object": ({"type": "json_object"}, lambda text: compact({"echo": text})),
    "json_schema": ({"type": "json_schema", "json_schema": FORECAST_SCHEMA},
                    lambda text: compact({"city": "city_0", "days": 0, "rain": True})),
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_response_format(chorus: Chorus, fake_upstream: FakeUpstream, complete: Caller, case: str):
    response_format, expected = JSON_CASES[case]
    tag = unique_tag()
    prompt = f"Give the forecast as JSON. {tag}"
    reply = complete(chat_body([{"role": "system", "content": "You output JSON."}, user(prompt)],
                               response_format=response_format))
    assert reply.text == expected(prompt)
    json.loads(reply.text)
    assert reply.finish_reason == "stop"
    assert upstream_request(fake_upstream, tag)["response_format"] == response_format
    rows = assert_stored_once(chorus, reply, ["user", "assistant"])
    assert rows[1]["content"] == reply.text


class Forecast(BaseModel):
    city: str
    days: int


def test_sdk_parse_with_a_pydantic_model(fake_upstream: FakeUpstream, client: OpenAI):
    tag = unique_tag()
    completion = client.chat.completions.parse(
        model="fake", messages=[user(f"Forecast for Paris. {tag}")], response_format=Forecast)
    message = completion.choices[0].message
    assert message.parsed == Forecast(city="city_0", days=0)
    assert message.refusal is None
    sent = upstream_request(fake_upstream, tag)["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Forecast", sent


# --------------------------------------------------------------------------------------------
# 12, 13, 14, 15, 18: other request fields and response members


def test_logprobs(fake_upstream: FakeUpstream, complete: Caller):
    tag = unique_tag()
    reply = complete(chat_body([user(f"Say three tokens. {tag} [[fake tokens=3]]")], logprobs=True, top_logprobs=2))
    assert reply.text == answer(3)
    tokens = [f"t{i} " for i in range(3)]
    assert reply.logprobs == [
        {"token": t, "logprob": -0.5, "bytes": list(t.encode()),
         "top_logprobs": [{"token": t, "logprob": -0.5, "bytes": list(t.encode())},
                          {"token": "alt1", "logprob": -2.0, "bytes": list(b"alt1")}]}
        for t in tokens
    ]
    if complete.via == "raw" and not complete.stream:
        assert reply.bodies[0]["choices"][0]["logprobs"]["refusal"] is None
    sent = upstream_request(fake_upstream, tag)
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)


LIMIT_CASES = {
    "stop_list": ({"stop": ["t3", "never"]}, "t0 t1 t2 ", "stop"),
    "stop_string": ({"stop": "t2"}, "t0 t1 ", "stop"),
    "max_completion_tokens": ({"max_completion_tokens": 2}, "t0 t1 ", "length"),
    "max_tokens": ({"max_tokens": 3}, "t0 t1 t2 ", "length"),
}


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_stop_and_token_limits(chorus: Chorus, fake_upstream: FakeUpstream, complete: Caller, case: str):
    fields, expected, finish_reason = LIMIT_CASES[case]
    tag = unique_tag()
    reply = complete(chat_body([user(f"Count. {tag} [[fake tokens=6]]")], **fields))
    assert (reply.text, reply.finish_reason) == (expected, finish_reason)
    sent = upstream_request(fake_upstream, tag)
    assert {key: sent.get(key) for key in fields} == fields
    rows = assert_stored_once(chorus, reply, ["user", "assistant"])
    assert rows[1]["content"] == expected


SAMPLING_FIELDS = {
    "seed": 42,
    "temperature": 0.7,
    "top_p": 0.9,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "logit_bias": {"50256": -100},
    "user": "user-1234",
    "metadata": {"k": "v"},
    "service_tier": "auto",
}


def test_sampling_and_metadata_fields_are_forwarded(fake_upstream: FakeUpstream, complete: Caller):
    tag = unique_tag()
    extra = {"stream_options": {"include_usage": True}} if complete.stream else {}
    reply = complete(chat_body([user(f"Tell me a joke. {tag} [[fake tokens=2]]")], **SAMPLING_FIELDS, **extra))
    assert reply.text == answer(2)
    sent = upstream_request(fake_upstream, tag)
    assert {key: sent.get(key) for key in SAMPLING_FIELDS} == SAMPLING_FIELDS
    assert "store" not in sent and "conversation_id" not in sent
    # The upstream reports service_tier "default" for "auto", and a fingerprint.
    reported = [reply.finish_body] + ([reply.bodies[-1]] if reply.stream else [])
    for body in reported:
        assert (body.get("service_tier"), body.get("system_fingerprint")) == ("default", "fp_fake"), body


def test_refusal(complete: Caller):
    reply = complete(chat_body([user(f"Help me with something bad. {unique_tag()} [[fake refusal=1]]")]))
    assert reply.refusal == REFUSAL
    assert reply.text == ""
    if not reply.stream:
        assert reply.content is None, "a refusal has content null"
    assert reply.finish_reason == "stop"


def test_usage_details(complete: Caller):
    extra = {"stream_options": {"include_usage": True}} if complete.stream else {}
    reply = complete(chat_body([user(f"Think first. {unique_tag()} [[fake reasoning=2 tokens=3]]")], **extra))
    assert reply.text == answer(3) and reply.reasoning == reasoning_text(2)
    usage = reply.usage
    assert usage is not None, "no usage"
    if reply.stream:
        assert reply.bodies[-1]["choices"] == [] and reply.bodies[-1]["usage"] == usage
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


# --------------------------------------------------------------------------------------------
# 16: store false; n > 1


def test_store_false_stores_nothing(chorus: Chorus, fake_upstream: FakeUpstream, complete: Caller):
    tag = unique_tag()
    before = chorus.counts()
    reply = complete(chat_body([user(f"Do not keep this. {tag} [[fake tokens=3]]")], store=False))
    assert reply.text == answer(3)
    assert "x-conversation-id" not in reply.headers
    assert all("conversation_id" not in body for body in reply.bodies)
    assert chorus.counts() == before, "store: false must store no conversation and no message"
    assert not conversations_mentioning(chorus, tag)
    sent = upstream_request(fake_upstream, tag)
    assert "store" not in sent and "conversation_id" not in sent


@STREAMED
def test_n_above_one_is_rejected(chorus: Chorus, openai_schemas: OpenAISchemas, stream: bool):
    before = chorus.counts()
    r = chorus.http.post("/v1/chat/completions", json=chat_body(
        [user(f"Two answers please. {unique_tag()} [[fake tokens=2]]")], n=2, stream=stream))
    assert r.status_code == 400, r.text
    openai_schemas.assert_valid("ErrorResponse", r.json())
    assert r.json()["error"]["param"] == "n"
    assert chorus.counts() == before
