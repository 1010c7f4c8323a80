"""Upstream failures: partial answers are saved once, with the reason; clients see an error event."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import Chorus, SSEResult, answer, stream_chat, unique_tag, user_body, wait_until


def assert_single_partial(chorus: Chorus, conversation_id: str, content: str, reason: str | None = None) -> dict:
    rows = chorus.assistant_rows(conversation_id)
    assert len(rows) == 1, f"expected exactly one assistant row, found {[dict(r) for r in rows]}"
    row = rows[0]
    assert row["status"] == "partial", dict(row)
    assert row["content"] == content
    metadata = json.loads(row["metadata"])
    assert metadata.get("partial") is True, metadata
    assert isinstance(metadata.get("error"), dict) and metadata["error"].get("message"), metadata
    if reason is not None:
        assert metadata.get("reason") == reason, metadata
    else:
        assert metadata.get("reason"), metadata
    # The user message was committed before the call, and is still there, complete.
    users = chorus.query("SELECT status, turn_id FROM messages WHERE conversation_id = ? AND role = 'user'",
                         (conversation_id,))
    assert [u["status"] for u in users] == ["complete"]
    assert users[0]["turn_id"] == row["turn_id"]
    return metadata


def assert_stream_ended_with_error(result: SSEResult, content: str) -> dict:
    assert result.status_code == 200
    assert not result.done, "a failed stream must not end with [DONE]"
    assert result.events, "no events at all"
    last = json.loads(result.events[-1])
    assert "error" in last, f"the last event should be an error, got {result.events[-1]}"
    assert last["error"]["message"] and last["error"]["type"]
    assert result.content == content
    return last["error"]


@pytest.mark.parametrize("fault", ["error_after=3", "disconnect_after=3"])
def test_mid_stream_failure_saves_one_partial(chorus: Chorus, fault: str):
    result = stream_chat(chorus, user_body(f"{unique_tag()} [[fake tokens=8 {fault}]]"))
    conversation_id = result.headers["x-conversation-id"]
    error = assert_stream_ended_with_error(result, answer(3))
    metadata = assert_single_partial(chorus, conversation_id, answer(3))
    assert metadata["error"]["code"] == error.get("code")
    # The history endpoint reports it the same way.
    history = chorus.http.get(f"/v1/conversations/{conversation_id}/history").json()["data"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["status"] == "partial"
    assert history[1]["content"] == answer(3)
    assert history[1]["metadata"]["partial"] is True


def test_upstream_http_error_before_tokens_saves_an_empty_partial(chorus: Chorus):
    prompt = f"{unique_tag()} [[fake status=503]]"
    r = chorus.chat(prompt, stream=True)
    assert r.status_code == 502, r.text
    rows = chorus.query("SELECT conversation_id FROM messages WHERE role = 'user' AND content = ?", (prompt,))
    assert len(rows) == 1, "the user message is committed before the upstream call"
    assert_single_partial(chorus, rows[0]["conversation_id"], "")


def test_first_token_timeout_saves_an_empty_partial(chorus: Chorus):
    # fake-quick's first_token is 1 s; the fake sends nothing for 2 s (Chorus may retry first).
    prompt = f"{unique_tag()} [[fake stall_first=2 tokens=2]]"
    r = chorus.chat(prompt, stream=True, model="fake-quick")
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "upstream_timeout_first_token"
    rows = chorus.query("SELECT conversation_id FROM messages WHERE role = 'user' AND content = ?", (prompt,))
    assert len(rows) == 1
    assert_single_partial(chorus, rows[0]["conversation_id"], "", reason="upstream_timeout_first_token")


def test_malformed_chunk_is_skipped_and_the_answer_completes(chorus: Chorus):
    result = stream_chat(chorus, user_body(f"{unique_tag()} [[fake tokens=5 malformed_after=2]]"))
    assert result.status_code == 200
    assert result.done, f"the stream should survive a malformed upstream chunk: {result.events[-2:]}"
    assert result.errors == []
    # What we observe: the fake inserts an extra broken event (`data: {"id": broken`) after the
    # second token; it replaces no token. Chorus skips that event alone, so no token is lost and
    # nothing of the broken event reaches the client.
    assert result.content == answer(5)
    assert not any("broken" in e for e in result.events)
    conversation_id = result.headers["x-conversation-id"]
    rows = chorus.assistant_rows(conversation_id)
    assert len(rows) == 1
    assert rows[0]["status"] == "complete"
    assert rows[0]["content"] == answer(5)


def test_between_token_stall_times_out(chorus: Chorus):
    # between_tokens is 2 s; the fake stops for 5 s after two tokens.
    result = stream_chat(chorus, user_body(f"{unique_tag()} [[fake tokens=6 stall_after=2 stall=5]]"))
    conversation_id = result.headers["x-conversation-id"]
    error = assert_stream_ended_with_error(result, answer(2))
    assert error.get("code") == "upstream_timeout_between_tokens", error
    assert_single_partial(chorus, conversation_id, answer(2), reason="upstream_timeout_between_tokens")


def test_long_stream_is_checkpointed_then_completed(chorus: Chorus):
    tag = unique_tag()
    prompt = f"{tag} [[fake tokens=30 rate=10]]"
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = stream_chat(chorus, user_body(prompt))
        except BaseException as error:  # surfaced below
            box["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    try:
        def streaming_row():
            rows = chorus.query(
                "SELECT m.conversation_id, m.status, m.content FROM messages m JOIN messages u "
                "ON u.turn_id = m.turn_id AND u.role = 'user' "
                "WHERE m.role = 'assistant' AND u.content = ?", (prompt,))
            return [dict(r) for r in rows if r["status"] == "streaming"]

        checkpoints = wait_until(streaming_row, timeout=10, interval=0.05,
                                 message="a 'streaming' checkpoint row while the answer streams")
        checkpoint = checkpoints[0]
        assert checkpoint["content"], "a checkpoint holds the text so far"
        assert answer(30).startswith(checkpoint["content"])
        assert checkpoint["content"] != answer(30)
    finally:
        thread.join(timeout=30)
    assert "error" not in box, box.get("error")
    result: SSEResult = box["result"]
    assert result.done
    assert result.content == answer(30)
    rows = chorus.assistant_rows(checkpoint["conversation_id"])
    assert len(rows) == 1, [dict(r) for r in rows]
    assert rows[0]["status"] == "complete"
    assert rows[0]["content"] == answer(30)
    assert json.loads(rows[0]["metadata"]).get("partial") in (None, False)
