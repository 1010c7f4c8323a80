"""`logging.format: json` end to end: a real `chorus serve` logs one JSON object per line on
standard error, and the lines written for a request or a task name its `request_id` / `task_id`
(from the task-local context, whichever logger writes them). Tracing is off here, so no line has
a `trace_id` (test_tracing.py checks it with tracing on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import Chorus, FakeUpstream, fake_model_yaml, start_chorus, unique_tag, wait_until


@pytest.fixture
def json_chorus(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path: Path) -> Iterator[Chorus]:
    instance = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url),
                            config={"logging": {"format": "json", "level": "debug"}})
    try:
        yield instance
    finally:
        instance.close()
        instance.process.stop()


def log_lines(chorus: Chorus) -> list[dict[str, Any]]:
    lines = []
    for number, line in enumerate(chorus.process.stderr_path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"stderr line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(entry, dict), line
        assert {"ts", "level", "label", "msg"} <= entry.keys(), entry
        lines.append(entry)
    return lines


def test_request_and_task_lines_are_json_with_their_ids(json_chorus: Chorus):
    response = json_chorus.chat(f"{unique_tag()} logged chat [[fake tokens=3]]", stream=True)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]

    r = json_chorus.http.post("/v1/batches", json={"prompt": f"{unique_tag()} logged task [[fake tokens=3]]", "models": ["fake"]})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_ids"][0]
    wait_until(lambda: json_chorus.http.get(f"/v1/tasks/{task_id}").json()["state"] == "SUCCESS", 30,
               message=f"task {task_id} to succeed")

    def finished(key: str, value: str) -> list[dict[str, Any]]:
        return [line for line in log_lines(json_chorus) if line["msg"] == "upstream call finished" and line.get(key) == value]
    # The engine's shared logger wrote these: the ids come from the request's and the task's context.
    for_request = wait_until(lambda: finished("request_id", request_id), 10, message=f"a line for {request_id}")
    assert for_request[0]["model"] == "fake" and "task_id" not in for_request[0], for_request
    for_task = wait_until(lambda: finished("task_id", task_id), 10, message=f"a line for {task_id}")
    assert for_task[0]["model"] == "fake" and "request_id" not in for_task[0], for_task
    lines = log_lines(json_chorus)
    assert not [line for line in lines if "trace_id" in line], "no trace ids with tracing off"
