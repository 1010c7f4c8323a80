"""Raw responses validate against the official OpenAI schemas; every response has X-Request-Id."""

from __future__ import annotations

import copy
import json
import socket
import time

import httpx
import pytest

from conftest import Chorus, OpenAISchemas, answer, stream_chat, unique_tag, user_body


def test_the_translated_schemas_are_not_vacuous(openai_schemas: OpenAISchemas):
    """Guards the validator itself: a broken response must be rejected."""
    good = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "hi", "refusal": None}}],
    }
    openai_schemas.assert_valid("CreateChatCompletionResponse", good)
    for mutate in (
        lambda r: r["choices"][0].pop("logprobs"),                        # required
        lambda r: r["choices"][0]["message"].pop("refusal"),              # required (nullable)
        lambda r: r["choices"][0].__setitem__("finish_reason", "done"),   # not in the enum
        lambda r: r.__setitem__("created", "yesterday"),                  # wrong type
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        assert openai_schemas.errors("CreateChatCompletionResponse", bad), f"accepted an invalid response: {bad}"
    assert openai_schemas.errors("ErrorResponse", {"error": {"message": "m", "type": "t"}}), \
        "an error without param and code must be rejected"


def test_non_streamed_response_matches_schema(chorus: Chorus, openai_schemas: OpenAISchemas):
    r = chorus.http.post("/v1/chat/completions", json=user_body(f"{unique_tag()} [[fake tokens=4 reasoning=2]]"))
    assert r.status_code == 200, r.text
    assert r.headers.get("x-request-id")
    assert r.headers.get("x-conversation-id")
    body = r.json()
    openai_schemas.assert_valid("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == answer(4)
    assert body["conversation_id"] == r.headers["x-conversation-id"]


@pytest.mark.parametrize("directive", ["tokens=5", "tokens=3 reasoning=2", "tokens=3 reasoning=2 think_tags=1",
                                       "tokens=4 comments=1"])
def test_every_stream_chunk_matches_schema(chorus: Chorus, openai_schemas: OpenAISchemas, directive: str):
    result = stream_chat(
        chorus,
        user_body(f"{unique_tag()} [[fake {directive}]]", stream_options={"include_usage": True}),
    )
    assert result.status_code == 200
    assert result.headers.get("x-request-id")
    assert result.done, f"stream did not end with [DONE]: {result.events[-3:]}"
    chunks = result.chunks
    assert len(chunks) >= 3
    for chunk in chunks:
        openai_schemas.assert_valid("CreateChatCompletionStreamResponse", chunk)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 3


def test_models_list_matches_schema(chorus: Chorus, openai_schemas: OpenAISchemas):
    r = chorus.http.get("/v1/models")
    assert r.status_code == 200
    assert r.headers.get("x-request-id")
    body = r.json()
    openai_schemas.assert_valid("ListModelsResponse", body)
    assert sorted(m["id"] for m in body["data"]) == ["fake", "fake-quick"]
    one = chorus.http.get("/v1/models/fake")
    assert one.status_code == 200
    openai_schemas.assert_valid("Model", one.json())
    missing = chorus.http.get("/v1/models/nope")
    assert missing.status_code == 404
    openai_schemas.assert_valid("ErrorResponse", missing.json())


ERROR_CASES = {
    "malformed_json": (400, lambda c: c.http.post("/v1/chat/completions", content=b"{not json",
                                                   headers={"content-type": "application/json"})),
    "missing_messages": (400, lambda c: c.http.post("/v1/chat/completions", json={"model": "fake"})),
    "unknown_model": (404, lambda c: c.http.post("/v1/chat/completions", json=user_body("hi", model="nope"))),
    "unknown_conversation": (404, lambda c: c.http.get("/v1/conversations/conv_doesnotexist")),
    "upstream_500": (502, lambda c: c.http.post("/v1/chat/completions",
                                                 json=user_body(f"{unique_tag()} [[fake status=500]]"))),
    "upstream_500_streamed": (502, lambda c: c.http.post("/v1/chat/completions",
                                                          json=user_body(f"{unique_tag()} [[fake status=500]]", stream=True))),
    # fake-quick: first_token 1 s.
    "upstream_stall_streamed": (504, lambda c: c.http.post("/v1/chat/completions", json=user_body(
        f"{unique_tag()} [[fake stall_first=2]]", model="fake-quick", stream=True))),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_bodies_match_schema(chorus: Chorus, openai_schemas: OpenAISchemas, case: str):
    status, call = ERROR_CASES[case]
    r: httpx.Response = call(chorus)
    assert r.status_code == status, r.text
    assert r.headers.get("content-type", "").startswith("application/json")
    assert r.headers.get("x-request-id"), "error responses must carry X-Request-Id too"
    body = r.json()
    openai_schemas.assert_valid("ErrorResponse", body)
    assert body["error"]["message"]


def test_incoming_request_id_is_echoed(chorus: Chorus):
    for method, path, kwargs in (
        ("GET", "/v1/models", {}),
        ("GET", "/healthz", {}),
        ("POST", "/v1/chat/completions", {"json": user_body(f"{unique_tag()} [[fake tokens=1]]")}),
        ("POST", "/v1/chat/completions", {"json": {"model": "fake"}}),  # an error
    ):
        rid = f"e2e-{unique_tag()}"
        r = chorus.http.request(method, path, headers={"X-Request-Id": rid}, **kwargs)
        assert r.headers.get("x-request-id") == rid, f"{method} {path}: {r.status_code} {dict(r.headers)}"


def test_generated_request_ids_are_unique(chorus: Chorus):
    ids = {chorus.http.get("/healthz").headers.get("x-request-id") for _ in range(5)}
    assert None not in ids and len(ids) == 5


def read_http_response(sock: socket.socket, timeout: float = 20) -> tuple[str, bytes]:
    """Reads one HTTP/1.1 response (Content-Length or chunked) from a raw socket."""
    deadline = time.monotonic() + timeout
    data = b""

    def more() -> None:
        nonlocal data
        assert time.monotonic() < deadline, f"incomplete response: {data[:300]!r}"
        piece = sock.recv(65536)
        assert piece, f"connection closed in the middle of a response: {data[:300]!r}"
        data += piece

    while b"\r\n\r\n" not in data:
        more()
    head, rest = data.split(b"\r\n\r\n", 1)
    head_text = head.decode()
    fields = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
              for line in head_text.split("\r\n")[1:]}
    if "content-length" in fields:
        data = rest
        while len(data) < int(fields["content-length"]):
            more()
        return head_text, data
    assert fields.get("transfer-encoding", "").lower() == "chunked", head_text
    data = rest
    while not (data.endswith(b"\r\n0\r\n\r\n") or data == b"0\r\n\r\n"):
        more()
    return head_text, data


def test_streamed_response_connection_reuse(chorus: Chorus):
    """HTTP/1.1 keep-alive after a streamed answer: the connection either stays usable for the
    next request, or the response says `Connection: close`. A server that closes silently makes
    keep-alive clients (httpx, the openai SDK with max_retries=0) fail their NEXT request with
    "Server disconnected without sending a response"."""
    from urllib.parse import urlparse
    url = urlparse(chorus.url)
    body = json.dumps(user_body(f"{unique_tag()} [[fake tokens=3]]", stream=True)).encode()
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: chorus\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {chorus.api_key}\r\n".encode()
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head, payload = read_http_response(sock)
        assert head.startswith("HTTP/1.1 200"), head
        assert b"[DONE]" in payload
        if "connection: close" in head.lower():
            return  # announced: a client will not reuse the connection
        time.sleep(0.2)  # give a silent close time to happen, as it would between two requests
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: chorus\r\n\r\n")
        try:
            second_head, _ = read_http_response(sock)
        except (AssertionError, ConnectionError) as error:
            raise AssertionError(
                "chorus closed the keep-alive connection after a streamed response without sending "
                f"`Connection: close` (the next request on it got no answer: {error})") from None
        assert second_head.startswith("HTTP/1.1 200"), second_head
