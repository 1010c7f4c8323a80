"""Conversations: history rebuilt from the database, the conversation API, and rejected requests
that store nothing."""

from __future__ import annotations

import json

import pytest

from conftest import Chorus, FakeUpstream, answer, reasoning_text, stream_chat, unique_tag, user_body


def test_second_turn_carries_the_first_as_history(chorus: Chorus, fake_upstream: FakeUpstream):
    tag = unique_tag()
    first = chorus.chat(f"first {tag} [[fake echo=1]]")
    assert first.status_code == 200, first.text
    conversation_id = first.headers["x-conversation-id"]
    assert first.json()["conversation_id"] == conversation_id
    first_answer = first.json()["choices"][0]["message"]["content"]
    assert first_answer == f"echo: 1 | first {tag}"

    second = chorus.chat(f"second {tag} [[fake echo=1]]", conversation_id=conversation_id)
    assert second.status_code == 200, second.text
    assert second.headers["x-conversation-id"] == conversation_id
    # The fake saw three messages: the first user turn, the stored answer, the new user turn.
    assert second.json()["choices"][0]["message"]["content"] == f"echo: 3 | second {tag}"

    upstream_body = fake_upstream.requests(1)[-1]
    messages = upstream_body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == f"first {tag} [[fake echo=1]]"
    assert messages[1]["content"] == first_answer
    assert messages[2]["content"] == f"second {tag} [[fake echo=1]]"
    assert upstream_body["model"] == "fake-model"
    assert "conversation_id" not in upstream_body, "the Chorus extension must not leak upstream"

    # A streamed third turn also rebuilds history from the database.
    third = stream_chat(chorus, user_body(f"third {tag} [[fake echo=1]]", conversation_id=conversation_id))
    assert third.done
    assert third.content.strip() == f"echo: 5 | third {tag}"

    rows = chorus.query("SELECT role, seq FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,))
    assert [r["role"] for r in rows] == ["user", "assistant"] * 3
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)


def test_client_sent_history_is_combined_with_stored_history(chorus: Chorus, fake_upstream: FakeUpstream):
    """A system message from the client still reaches the model on a later turn."""
    tag = unique_tag()
    first = chorus.chat(f"hello {tag} [[fake tokens=2]]")
    conversation_id = first.headers["x-conversation-id"]
    r = chorus.http.post("/v1/chat/completions", json={
        "model": "fake",
        "conversation_id": conversation_id,
        "messages": [{"role": "system", "content": f"be brief {tag}"},
                     {"role": "user", "content": f"again {tag} [[fake echo=1]]"}],
    })
    assert r.status_code == 200, r.text
    sent = fake_upstream.requests(1)[-1]["messages"]
    assert sent[-1] == {"role": "user", "content": f"again {tag} [[fake echo=1]]"}
    assert {"role": "assistant", "content": answer(2)} in [{"role": m["role"], "content": m["content"]} for m in sent]
    assert any(m["role"] == "system" and m["content"] == f"be brief {tag}" for m in sent)


def test_unknown_conversation_is_404_and_stores_nothing(chorus: Chorus, fake_upstream: FakeUpstream):
    before = chorus.counts()
    requests_before = fake_upstream.stats()["requests"]
    for stream in (False, True):
        r = chorus.http.post("/v1/chat/completions", json=user_body(
            f"{unique_tag()} [[fake tokens=2]]", conversation_id="conv_nosuchconversation", stream=stream))
        assert r.status_code == 404, r.text
        assert r.json()["error"]["message"]
    assert chorus.counts() == before
    assert fake_upstream.stats()["requests"] == requests_before, "a rejected request must not reach the model"


def test_history_endpoint_and_separate_reasoning(chorus: Chorus):
    tag = unique_tag()
    r = chorus.chat(f"think {tag} [[fake tokens=3 reasoning=2]]")
    assert r.status_code == 200, r.text
    conversation_id = r.headers["x-conversation-id"]
    streamed = stream_chat(chorus, user_body(f"tags {tag} [[fake tokens=2 reasoning=3 think_tags=1]]",
                                                  conversation_id=conversation_id))
    assert streamed.done

    history = chorus.http.get(f"/v1/conversations/{conversation_id}/history")
    assert history.status_code == 200
    body = history.json()
    assert body["object"] == "list" and body["conversation_id"] == conversation_id
    items = body["data"]
    assert [m["role"] for m in items] == ["user", "assistant", "user", "assistant"]
    assert items[0]["content"] == f"think {tag} [[fake tokens=3 reasoning=2]]"
    assert items[1]["content"] == answer(3)
    assert items[1]["reasoning_content"] == reasoning_text(2)
    assert items[1]["status"] == "complete"
    assert items[1]["model"] == "fake"
    assert items[1]["metadata"].get("finish_reason") == "stop"
    assert items[3]["content"] == answer(2)
    assert items[3]["reasoning_content"] == reasoning_text(3)
    assert all(m["id"] for m in items) and len({m["id"] for m in items}) == 4

    rows = chorus.query(
        "SELECT role, content, reasoning, status, turn_id FROM messages WHERE conversation_id = ? ORDER BY seq",
        (conversation_id,))
    assistant = [row for row in rows if row["role"] == "assistant"]
    assert [(a["content"], a["reasoning"]) for a in assistant] == [
        (answer(3), reasoning_text(2)),
        (answer(2), reasoning_text(3)),
    ]
    for a in assistant:
        assert "<think" not in a["content"] and "r0" not in a["content"]
        assert a["status"] == "complete"
    # One user and one assistant row per turn, linked by turn_id.
    assert rows[0]["turn_id"] == rows[1]["turn_id"] and rows[2]["turn_id"] == rows[3]["turn_id"]
    assert rows[0]["turn_id"] != rows[2]["turn_id"]


def test_list_patch_delete(chorus: Chorus):
    tag = unique_tag()
    r = chorus.chat(f"list me {tag} [[fake tokens=2]]")
    conversation_id = r.headers["x-conversation-id"]

    listing = chorus.http.get("/v1/conversations")
    assert listing.status_code == 200
    ids = [c["id"] for c in listing.json()["data"]]
    assert conversation_id in ids

    one = chorus.http.get(f"/v1/conversations/{conversation_id}")
    assert one.status_code == 200
    assert one.json()["id"] == conversation_id and one.json()["model"] == "fake"

    patched = chorus.http.patch(f"/v1/conversations/{conversation_id}", json={"title": f"renamed {tag}"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == f"renamed {tag}"
    assert chorus.http.get(f"/v1/conversations/{conversation_id}").json()["title"] == f"renamed {tag}"
    assert chorus.query("SELECT title FROM conversations WHERE id = ?", (conversation_id,))[0]["title"] == f"renamed {tag}"

    assert len(chorus.query("SELECT id FROM messages WHERE conversation_id = ?", (conversation_id,))) == 2
    deleted = chorus.http.delete(f"/v1/conversations/{conversation_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json().get("deleted") is True
    assert chorus.http.get(f"/v1/conversations/{conversation_id}").status_code == 404
    assert chorus.http.get(f"/v1/conversations/{conversation_id}/history").status_code == 404
    assert conversation_id not in [c["id"] for c in chorus.http.get("/v1/conversations").json()["data"]]
    assert chorus.query("SELECT id FROM conversations WHERE id = ?", (conversation_id,)) == []
    assert chorus.query("SELECT id FROM messages WHERE conversation_id = ?", (conversation_id,)) == []
    assert chorus.http.delete(f"/v1/conversations/{conversation_id}").status_code == 404
    assert chorus.http.patch("/v1/conversations/conv_nosuchconversation", json={"title": "x"}).status_code == 404


BAD_REQUESTS = {
    "malformed_json": (400, b'{"model": "fake", "messages": ['),
    "missing_model": (400, {"messages": [{"role": "user", "content": "hi"}]}),
    "missing_messages": (400, {"model": "fake"}),
    "messages_not_an_array": (400, {"model": "fake", "messages": "hi"}),
    "empty_messages": (400, {"model": "fake", "messages": []}),
    "bad_role": (400, {"model": "fake", "messages": [{"role": "wizard", "content": "hi"}]}),
    "unknown_model": (404, {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_store_nothing(chorus: Chorus, fake_upstream: FakeUpstream, case: str, stream: bool):
    status, body = BAD_REQUESTS[case]
    if isinstance(body, dict):
        payload = json.dumps({**body, "stream": True} if stream else body).encode()
    else:
        payload = body
    before = chorus.counts()
    requests_before = fake_upstream.stats()["requests"]
    r = chorus.http.post("/v1/chat/completions", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"]
    if case == "unknown_model":
        assert error["code"] == "model_not_found"
    assert chorus.counts() == before, "a rejected request must not store anything"
    assert fake_upstream.stats()["requests"] == requests_before, "a rejected request must not reach the model"


def test_history_is_limited_to_the_last_n_messages(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path):
    """`conversations.history_messages: 3`: the model sees only the last three stored messages."""
    from conftest import fake_model_yaml, start_chorus
    small = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url), history_messages=3)
    try:
        tag = unique_tag()
        first = small.chat(f"one {tag} [[fake tokens=1]]")
        conversation_id = first.headers["x-conversation-id"]
        assert small.chat(f"two {tag} [[fake tokens=2]]", conversation_id=conversation_id).status_code == 200
        third = small.chat(f"three {tag} [[fake echo=1]]", conversation_id=conversation_id)
        assert third.status_code == 200, third.text
        assert third.json()["choices"][0]["message"]["content"] == f"echo: 3 | three {tag}"
        sent = fake_upstream.requests(1)[-1]["messages"]
        assert [(m["role"], m["content"]) for m in sent] == [
            ("user", f"two {tag} [[fake tokens=2]]"),
            ("assistant", answer(2)),
            ("user", f"three {tag} [[fake echo=1]]"),
        ]
        # Everything is still stored; only what is sent is limited.
        assert len(small.query("SELECT id FROM messages WHERE conversation_id = ?", (conversation_id,))) == 6
    finally:
        small.close()
        small.process.stop()
