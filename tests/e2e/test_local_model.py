"""The real local model: Chorus starts llama.cpp's `llama-server` with SmolLM2-135M, streams a
real answer, stores it, and stops the server on shutdown."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from conftest import start_chorus, stream_chat, wait_until

PROMPT = "What is the capital of France? Answer in one word."


def required_file(env_name: str, executable: bool = False) -> str:
    value = os.environ.get(env_name)
    if not value:
        pytest.fail(f"{env_name} is not set: the local-model test needs it (run scripts/setup.sh, "
                    f"which installs llama-server and the SmolLM2 GGUF)", pytrace=False)
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{env_name}={value} does not exist (run scripts/setup.sh)", pytrace=False)
    if executable and not os.access(path, os.X_OK):
        pytest.fail(f"{env_name}={value} is not executable", pytrace=False)
    return str(path.resolve())


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def cmdline(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def is_running(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"  # a zombie has exited


def test_local_model_streams_stores_and_stops(chorus_bin: str, tmp_path: Path):
    server_binary = required_file("LLAMA_SERVER_BIN", executable=True)
    model_path = required_file("CHORUS_LOCAL_MODEL")
    models_yaml = (
        "  local:\n"
        "    provider: local\n"
        f"    model_path: {model_path}\n"
        f"    server_binary: {server_binary}\n"
        "    context_size: 2048\n"
        "    parallel: 2\n"
        "    timeouts: {connect: 10, first_token: 60, between_tokens: 30, total: 120}\n"
    )
    chorus = start_chorus(chorus_bin, tmp_path, models_yaml)
    stopped = False
    llama_pids: list[int] = []
    try:
        # The supervisor spawns llama-server as a child of chorus, with the model file.
        def llama_children():
            return [p for p in child_pids(chorus.process.pid) if model_path in cmdline(p)]

        llama_pids[:] = wait_until(llama_children, timeout=30, interval=0.1,
                                message="chorus to start llama-server with the model")
        assert any(Path(cmdline(p)[0]).name.startswith("llama-server") or cmdline(p)[0] == server_binary
                   for p in llama_pids), [cmdline(p) for p in llama_pids]

        models = httpx.get(chorus.base_url + "/models", headers=chorus.auth_headers, timeout=10).json()
        assert "local" in [m["id"] for m in models["data"]]

        # The first request may arrive while the model is still loading: it waits for it.
        result = stream_chat(chorus, {
            "model": "local",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 16,
            "temperature": 0,
        })
        assert result.status_code == 200, f"status {result.status_code}\n" + chorus.process.describe()
        assert result.errors == [], result.errors
        assert result.done, f"the stream must end with [DONE]: {result.events[-3:]}"
        content_chunks = [c for c in result.chunks
                          if any((ch.get("delta") or {}).get("content") for ch in c.get("choices") or [])]
        assert len(content_chunks) >= 1, result.events
        text = result.content
        assert text.strip(), "the model answered nothing"
        finish = [ch.get("finish_reason") for c in result.chunks for ch in c.get("choices") or []
                  if ch.get("finish_reason")]
        assert finish and finish[-1] in ("stop", "length"), finish

        conversation_id = result.headers["x-conversation-id"]
        rows = chorus.assistant_rows(conversation_id)
        assert len(rows) == 1, [dict(r) for r in rows]
        row = rows[0]
        assert row["status"] == "complete", dict(row)
        assert row["model"] == "local"
        assert row["content"] == text, (row["content"], text)
        assert json.loads(row["metadata"]).get("partial") in (None, False)

        # The OpenAI SDK's tool loop against the real model: SmolLM2's chat template has no tools,
        # so llama-server would answer as if the request had none. Chorus says so instead, as a
        # 400 naming the reason, and stores nothing.
        from openai import BadRequestError, OpenAI
        sdk = OpenAI(base_url=chorus.base_url, api_key=chorus.api_key, max_retries=0, timeout=60)
        counts = chorus.counts()
        weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
        try:
            with pytest.raises(BadRequestError) as raised:
                sdk.chat.completions.create(model="local", messages=[{"role": "user", "content": "Weather in Paris?"}],
                                            tools=[weather], tool_choice="required", max_tokens=32)
        finally:
            sdk.close()
        assert raised.value.code == "tools_not_supported" and raised.value.param == "tools", raised.value
        assert "chat template" in str(raised.value), raised.value
        assert chorus.counts() == counts

        # SIGTERM chorus: it must stop the llama-server it started.
        chorus.close()
        status = chorus.process.stop(timeout=30)
        stopped = True
        assert status == 0, f"chorus exited with {status} on SIGTERM\n" + chorus.process.describe()
        deadline = time.monotonic() + 10
        while any(is_running(p) for p in llama_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [p for p in llama_pids if is_running(p)]
        assert not survivors, f"llama-server still running after chorus stopped: {[cmdline(p) for p in survivors]}"
    finally:
        if not stopped:
            chorus.close()
            chorus.process.stop()
        for pid in llama_pids:  # never leave a server this test caused behind, even on failure
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
