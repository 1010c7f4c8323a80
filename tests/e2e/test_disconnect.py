"""A streaming client that goes away mid-answer: Chorus cancels the upstream call and saves the
partial answer once, with reason `client_disconnected`."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlparse

import httpx
import pytest

from conftest import Chorus, FakeUpstream, answer, fake_model_yaml, start_chorus, unique_tag, user_body, wait_until

FULL = answer(200)
PROMPT_DIRECTIVE = "[[fake tokens=200 rate=20]]"

CLIENT_SCRIPT = textwrap.dedent("""
    import json, sys
    import httpx
    url, body, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
    headers = {"content-type": "application/json", "authorization": "Bearer " + api_key}
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", url, content=body, headers=headers) as r:
            print("STATUS", r.status_code, r.headers.get("x-conversation-id"), flush=True)
            for line in r.iter_lines():
                if line.startswith("data:"):
                    print("DATA", line[5:].strip(), flush=True)
""")


def content_of(event: str) -> str:
    if event == "[DONE]":
        return ""
    chunk = json.loads(event)
    return "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])


def killed_subprocess_client(chorus: Chorus, prompt: str) -> tuple[str, str]:
    """Runs a separate Python client, reads a few content chunks from it, then SIGKILLs it."""
    body = json.dumps(user_body(prompt, stream=True))
    child = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, chorus.base_url + "/chat/completions", body, chorus.api_key],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        status_line = child.stdout.readline().split()
        assert status_line[:2] == ["STATUS", "200"], f"{status_line} {child.stderr.read() if child.poll() is not None else ''}"
        conversation_id = status_line[2]
        received = ""
        content_chunks = 0
        deadline = time.monotonic() + 20
        while content_chunks < 3:
            assert time.monotonic() < deadline, "the client got no content chunks"
            line = child.stdout.readline()
            assert line, f"the client ended early: {child.stderr.read()}"
            if line.startswith("DATA "):
                text = content_of(line[5:].strip())
                if text:
                    received += text
                    content_chunks += 1
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    return conversation_id, received


def reset_socket_client(chorus: Chorus, prompt: str) -> tuple[str, str]:
    """A raw HTTP/1.1 client that reads a few events, then resets the connection (RST)."""
    url = urlparse(chorus.url)
    body = json.dumps(user_body(prompt, stream=True)).encode()
    sock = socket.create_connection((url.hostname, url.port), timeout=20)
    try:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: chorus\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {chorus.api_key}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        data = b""
        deadline = time.monotonic() + 20
        while data.count(b'"content":"t') < 3:
            assert time.monotonic() < deadline, f"no content from chorus: {data[:500]!r}"
            piece = sock.recv(65536)
            assert piece, f"chorus closed the connection: {data[:500]!r}"
            data += piece
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        assert head.startswith("HTTP/1.1 200"), head
        conversation_id = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                               if line.lower().startswith("x-conversation-id:"))
        received = "".join(
            content_of(line[5:].strip()) for line in data.decode("utf-8", "replace").split("\n")
            if line.startswith("data:") and line.rstrip().endswith("}")
        )
    finally:
        # SO_LINGER 0: close() sends RST at once, like a crashed client host.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return conversation_id, received


@pytest.fixture
def own_chorus(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path) -> Chorus:
    """A Chorus of its own: if a disconnect brings it down, no other test is affected."""
    instance = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url))
    yield instance
    instance.close()
    instance.process.stop()


@pytest.mark.parametrize("client", [killed_subprocess_client, reset_socket_client], ids=["sigkill", "rst"])
def test_client_disconnect_saves_partial_and_cancels_upstream(own_chorus: Chorus, fake_upstream: FakeUpstream, client):
    chorus = own_chorus
    aborted_before = fake_upstream.stats()["streams_aborted_by_client"]
    conversation_id, received = client(chorus, f"{unique_tag()} {PROMPT_DIRECTIVE}")
    assert received and FULL.startswith(received)

    def partial_row():
        rows = chorus.assistant_rows(conversation_id)
        return rows if rows and rows[0]["status"] == "partial" else None

    rows = wait_until(partial_row, timeout=8, message="the partial assistant row after the disconnect")
    assert len(rows) == 1, [dict(r) for r in rows]
    row = rows[0]
    metadata = json.loads(row["metadata"])
    assert metadata.get("partial") is True, metadata
    assert metadata.get("reason") == "client_disconnected", metadata
    assert row["content"], "the text streamed before the disconnect is kept"
    assert FULL.startswith(row["content"]), row["content"]
    assert len(row["content"]) < len(FULL), "generation must stop, not run to the end"
    assert row["content"].startswith(received) or received.startswith(row["content"])

    # The upstream request was closed by Chorus (not left running to completion).
    wait_until(lambda: fake_upstream.stats()["streams_aborted_by_client"] > aborted_before, timeout=5,
               message="the fake upstream to see its stream aborted by Chorus")

    # Still exactly one assistant row a moment later (no late 'complete' or second write).
    time.sleep(0.5)
    rows = chorus.assistant_rows(conversation_id)
    assert len(rows) == 1 and rows[0]["status"] == "partial"

    # And Chorus itself is unharmed: it still answers.
    try:
        after = chorus.chat(f"{unique_tag()} [[fake tokens=2]]")
    except httpx.TransportError as error:
        try:
            chorus.process.proc.wait(timeout=15)  # a crash report takes a few seconds to write
        except subprocess.TimeoutExpired:
            pass
        fatal = [line for line in chorus.process.stderr_text().splitlines() if "Fatal error" in line or "crashed" in line]
        raise AssertionError(
            f"chorus stopped answering after a client disconnect ({error!r}); exit status "
            f"{chorus.process.proc.poll()}; {fatal}\n" + chorus.process.describe()) from None
    assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"] == answer(2)
