"""The client commands of the `chorus` binary against a real `chorus serve` (and, for dead letters,
a real gateway + workers over Redis and PostgreSQL), with the fake upstream: `chorus key`,
`chorus task`, `chorus dlq`, and `chorus chat` both piped and in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (Chorus, FakeUpstream, answer, fake_model_yaml, start_chorus, unique_tag, wait_until)
from distributed import (  # noqa: F401 - fixtures are found by name in this module
    Cluster,
    cluster,
    postgres_server,
    redis_server,
)


def run_cli(chorus_bin: str, url: str, api_key: str | None, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs `chorus ARGS` with CHORUS_URL and CHORUS_API_KEY set (stdin piped, so not a terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CHORUS_URL", "CHORUS_API_KEY", "NO_COLOR")}
    env["CHORUS_URL"] = url
    if api_key:
        env["CHORUS_API_KEY"] = api_key
    return subprocess.run([chorus_bin, *args], input=input if input is not None else "", capture_output=True,
                          text=True, timeout=timeout, env=env)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args} exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# chorus key


def test_key_create_list_revoke(chorus_bin: str, chorus: Chorus):
    name = f"cli-{unique_tag()}"
    created = json.loads(ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "key", "create", "--name", name,
                                    "--scopes", "chat,keys", "--json")))
    assert created["name"] == name and created["key"].startswith("sk-chorus-"), created
    assert created["scopes"] == ["chat", "keys"], created

    # The new key works, and lists itself (a key lists its owner's keys).
    listed = json.loads(ok(run_cli(chorus_bin, chorus.url, created["key"], "key", "list", "--json")))
    ids = [k["id"] for k in listed["data"]]
    assert created["id"] in ids and chorus.admin_key_id in ids, listed
    assert all("key" not in k for k in listed["data"]), "a listed key must not carry its secret"
    table = ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "key", "list"))
    assert table.splitlines()[0].split()[:3] == ["ID", "NAME", "PREFIX"], table
    row = next(line for line in table.splitlines() if line.startswith(created["id"]))
    assert name in row and "active" in row and "chat,keys" in row, row

    # Text output of create: the secret on its own line.
    plain = run_cli(chorus_bin, chorus.url, chorus.api_key, "key", "create", "--name", name + "-2")
    secret_lines = [line for line in ok(plain).splitlines() if line.startswith("sk-chorus-")]
    assert len(secret_lines) == 1, plain.stdout
    assert "shown once" in plain.stderr

    revoked = ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "key", "revoke", created["id"]))
    assert f"revoked key {created['id']}" in revoked
    # The revoked key is refused: the server's message, a non-zero exit.
    refused = run_cli(chorus_bin, chorus.url, created["key"], "key", "list")
    assert refused.returncode != 0
    assert "HTTP 401" in refused.stderr, refused.stderr
    listed = json.loads(ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "key", "list", "--json")))
    assert next(k for k in listed["data"] if k["id"] == created["id"])["revoked_at"] is not None

    # Another's (or an unknown) key: the server's 404 message.
    missing = run_cli(chorus_bin, chorus.url, chorus.api_key, "key", "revoke", "key_nope")
    assert missing.returncode != 0 and "key_nope" in missing.stderr and "HTTP 404" in missing.stderr, missing.stderr


def test_cli_without_a_server_fails_clearly(chorus_bin: str):
    done = run_cli(chorus_bin, "http://127.0.0.1:9", None, "key", "list")
    assert done.returncode != 0
    assert "cannot reach Chorus at http://127.0.0.1:9" in done.stderr, done.stderr


# --------------------------------------------------------------------------------------------
# chorus task


def test_task_submit_watch_with_progress(chorus_bin: str, chorus: Chorus):
    tag = unique_tag()
    first = chorus.chat(f"{tag} export me [[fake tokens=3]]")
    assert first.status_code == 200, first.text
    conversation_id = first.json()["conversation_id"]

    # submit --json, then watch --json: the events (progress with current/total), then the task.
    submitted = json.loads(ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "task", "submit", "conversation.export",
                                      "--param", f"conversation_id={conversation_id}", "--json")))
    assert submitted["state"] == "PENDING" and submitted["type"] == "conversation.export", submitted
    lines = json_lines(ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "task", "watch", submitted["id"], "--json")))
    *events, task = lines
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
    assert any(e["type"] == "progress" and e["data"]["total"] == 2 for e in events), events
    assert events[-1]["type"] == "finish", events
    assert task["id"] == submitted["id"] and task["state"] == "SUCCESS", task
    assert f"{tag} export me" in task["result"]["content"]

    # Text: submit --watch prints the id, a progress bar line per change (not a terminal), the state
    # and the result.
    out = ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "task", "submit", "conversation.export",
                     "--params", json.dumps({"conversation_id": conversation_id, "format": "json"}), "--watch"))
    lines = out.splitlines()
    assert lines[0].startswith("task_"), out
    assert any(line.startswith("[") and line.endswith("2/2 100%") for line in lines), out
    assert "SUCCESS" in lines, out
    assert json.loads(lines[-1])["format"] == "json", out

    # A bad submission: the server's message and a non-zero exit.
    bad = run_cli(chorus_bin, chorus.url, chorus.api_key, "task", "submit", "no.such.type")
    assert bad.returncode != 0 and "Unknown task type 'no.such.type'" in bad.stderr, bad.stderr


def test_task_cancel_and_watch_of_a_cancelled_task(chorus_bin: str, chorus: Chorus):
    r = chorus.http.post("/v1/batches", json={"prompt": f"{unique_tag()} long [[fake tokens=400 rate=20]]",
                                              "models": ["fake"]})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_ids"][0]
    watcher = subprocess.Popen([chorus_bin, "task", "watch", task_id, "--url", chorus.url, "--api-key", chorus.api_key],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: chorus.http.get(f"/v1/tasks/{task_id}").json()["state"] in ("STARTED", "PROGRESS"), 20,
                   message="the task to start")
        out = ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "task", "cancel", task_id))
        assert out.startswith(task_id), out
        stdout, stderr = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    # Watch streamed the answer's start, then ended non-zero with the state and the error.
    assert watcher.returncode == 1, (stdout, stderr)
    assert stdout.startswith("t0 "), stdout
    assert "CANCELLED" in stdout.splitlines(), stdout
    assert "cancelled" in stderr.lower(), stderr
    cancelled = json.loads(ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "task", "cancel", task_id, "--json")))
    assert cancelled["state"] == "CANCELLED", cancelled


# --------------------------------------------------------------------------------------------
# chorus chat, piped


def test_chat_piped_prints_only_the_answers(chorus_bin: str, chorus: Chorus):
    tag = unique_tag()
    question_1 = f"{tag} one [[fake tokens=4 reasoning=3]]"
    question_2 = f"{tag} two [[fake tokens=2]]"
    done = run_cli(chorus_bin, chorus.url, chorus.api_key, "chat", "--model", "fake",
                   input=f"{question_1}\n\n{question_2}\n")
    # One line per question: the answer only (no thinking, prompt, colour or banner).
    assert ok(done) == answer(4) + "\n" + answer(2) + "\n", repr(done.stdout)
    assert "\x1b" not in done.stdout
    # Both questions went into one conversation, each answered once.
    rows = chorus.query("SELECT conversation_id FROM messages WHERE role = 'user' AND content IN (?, ?)",
                        (question_1, question_2))
    assert len(rows) == 2 and rows[0]["conversation_id"] == rows[1]["conversation_id"], [dict(r) for r in rows]
    conversation_id = rows[0]["conversation_id"]

    # --conversation continues it: the model gets the earlier turns.
    question_3 = f"{tag} three [[fake tokens=1]]"
    ok(run_cli(chorus_bin, chorus.url, chorus.api_key, "chat", "--model", "fake", "--conversation", conversation_id,
               input=question_3 + "\n"))
    contents = [r["content"] for r in chorus.query(
        "SELECT content FROM messages WHERE conversation_id = ? AND role = 'user' ORDER BY seq", (conversation_id,))]
    assert contents == [question_1, question_2, question_3], contents

    # Several models and no --model when piped: a clear error.
    chooser = run_cli(chorus_bin, chorus.url, chorus.api_key, "chat", input="hello\n")
    assert chooser.returncode != 0 and "--model" in chooser.stderr, chooser.stderr
    # An unknown model: the server's message, non-zero.
    unknown = run_cli(chorus_bin, chorus.url, chorus.api_key, "chat", "--model", "nope", input="hello\n")
    assert unknown.returncode != 0 and "nope" in unknown.stderr, unknown.stderr


# --------------------------------------------------------------------------------------------
# chorus chat in a real terminal (tmux)


class Tmux:
    def __init__(self, name: str):
        self.name = name

    def pane(self, escapes: bool = False) -> str:
        done = subprocess.run(["tmux", "capture-pane", "-p", "-J", *(["-e"] if escapes else []), "-t", self.name, "-S", "-200"],
                              capture_output=True, text=True, timeout=10)
        return done.stdout if done.returncode == 0 else ""

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def type(self, text: str) -> None:
        self.send("-l", text)
        self.send("Enter")

    def pid(self) -> int:
        done = subprocess.run(["tmux", "display-message", "-p", "-t", self.name, "#{pane_pid}"],
                              capture_output=True, text=True, timeout=10)
        return int(done.stdout.strip())

    def exit_status(self, pid: int) -> int | None:
        """The program's exit status once it ended, None while it runs. Read from the process
        itself while it waits for tmux to reap it (which can take a while), else from the pane
        (which remains)."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                return int(fields[-1]) >> 8   # exit_code, as waitpid reports it
            return None
        except (FileNotFoundError, ProcessLookupError):
            pass
        done = subprocess.run(["tmux", "display-message", "-p", "-t", self.name, "#{pane_dead} #{pane_dead_status}"],
                              capture_output=True, text=True, timeout=10)
        dead, _, status = done.stdout.strip().partition(" ")
        return int(status) if dead == "1" and status else None

    def alive(self, pid: int) -> bool:
        return self.exit_status(pid) is None

    def wait_for(self, predicate, message: str, timeout: float = 30) -> str:
        seen = ""

        def check() -> bool:
            nonlocal seen
            seen = self.pane()
            return predicate(seen)
        try:
            wait_until(check, timeout, interval=0.1, message=message)
        except AssertionError as error:
            raise AssertionError(f"{error}\nthe terminal shows:\n{seen}") from None
        return seen

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=10)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_chat_in_a_terminal(chorus_bin: str, chorus: Chorus, tmp_path: Path):
    term = Tmux(f"chorus-chat-{secrets.token_hex(4)}")
    # No --model: the server has two, so the chat asks which. The program runs with no shell
    # around it (a shell in the same process group would get the Ctrl-Cs too), and its pane
    # remains when it ends, for its exit status.
    command = ["env", "-u", "NO_COLOR", f"CHORUS_URL={chorus.url}", f"CHORUS_API_KEY={chorus.api_key}", chorus_bin, "chat"]
    subprocess.run(["tmux", "new-session", "-d", "-s", term.name, "-x", "200", "-y", "50", *command], check=True, timeout=10)
    subprocess.run(["tmux", "set-option", "-t", term.name, "remain-on-exit", "on"], check=True, timeout=10)
    try:
        screen = term.wait_for(lambda s: "model [1-2]:" in s, "the model choice")
        number = next(line.split(".")[0].strip() for line in screen.splitlines() if line.strip().endswith(". fake"))
        term.type(number)
        term.wait_for(lambda s: "fake> " in s, "the prompt")
        pid = term.pid()      # env ran the program in its place
        tag = unique_tag()

        # Streaming, with thinking (dimmed: the pane shows its text) before the answer.
        term.type(f"{tag} hi [[fake tokens=5 reasoning=2]]")
        screen = term.wait_for(lambda s: answer(5).strip() in s and s.count("fake> ") >= 2, "the first answer")
        assert "r0 r1" in screen, screen
        # The thinking is dimmed (SGR 2), the answer is not.
        coloured = term.pane(escapes=True)
        assert re.search(r"\x1b\[([0-9;]*;)?2m[^\x1b]*r0 r1", coloured), repr(coloured)
        assert not re.search(r"\x1b\[([0-9;]*;)?2m[^\x1b]*t0 t1", coloured), repr(coloured)
        first_conversation = next(line.split("conversation ")[1].rstrip(")").strip()
                                  for line in screen.splitlines() if line.startswith("(conversation conv_"))

        # Ctrl-C stops a slow answer, not the program.
        slow = f"{tag} slow [[fake tokens=400 rate=10]]"
        term.type(slow)
        term.wait_for(lambda s: "t3 " in s.split(slow, 1)[-1], "the slow answer to stream")
        term.send("C-c")
        screen = term.wait_for(lambda s: "(stopped)" in s, "the answer to stop")
        assert "t399" not in screen
        assert term.alive(pid), "Ctrl-C during an answer must not end the program"
        term.wait_for(lambda s: s.rstrip().endswith("fake>"), "the prompt after stopping")

        # /model switches; /history shows this conversation with each answer's model.
        term.type("/model fake-quick")
        term.wait_for(lambda s: "(model fake-quick)" in s and "fake-quick> " in s, "the model switch")
        term.type(f"{tag} quick [[fake tokens=3]]")
        term.wait_for(lambda s: s.count(answer(3).strip()) >= 1 and s.rstrip().endswith("fake-quick>"), "the answer of fake-quick")
        term.type("/history")
        screen = term.wait_for(lambda s: "fake-quick: " + answer(3).strip() in s, "the history")
        assert f"user: {tag} hi" in screen and f"user: {tag} slow" in screen, screen

        # /new starts another conversation.
        term.type("/new")
        term.wait_for(lambda s: "(new conversation)" in s, "/new")
        term.type(f"{tag} fresh [[fake tokens=2]]")
        screen = term.wait_for(lambda s: s.count("(conversation conv_") >= 2, "the new conversation's id")
        conversations = [line.split("conversation ")[1].rstrip(")").strip()
                         for line in screen.splitlines() if line.startswith("(conversation conv_")]
        assert conversations[0] == first_conversation and conversations[-1] != first_conversation, conversations
        # The stopped answer is saved as a partial one, in the first conversation (once the server
        # has seen the client leave).
        def statuses() -> list[str]:
            rows = chorus.query("SELECT status FROM messages WHERE conversation_id = ? AND role = 'assistant'",
                                (first_conversation,))
            return sorted(r["status"] for r in rows)
        wait_until(lambda: statuses() == ["complete", "complete", "partial"], 20,
                   message=f"a partial and two complete answers in {first_conversation}")
        partial = chorus.query("SELECT metadata FROM messages WHERE conversation_id = ? AND status = 'partial'",
                               (first_conversation,))[0]
        assert json.loads(partial["metadata"])["reason"] == "client_disconnected", dict(partial)

        # Ctrl-C at the prompt quits.
        term.wait_for(lambda s: s.rstrip().endswith("fake-quick>"), "the prompt")
        term.send("C-c")
        term.wait_for(lambda s: not term.alive(pid), "chorus chat to exit after Ctrl-C at the prompt", timeout=10)
        assert term.exit_status(pid) == 130
    finally:
        term.kill()


# --------------------------------------------------------------------------------------------
# chorus dlq: embedded (SQLite, in-process queue)


def wait_task_state(http: httpx.Client, task_id: str, states: set[str], timeout: float = 45) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        last = http.get(f"/v1/tasks/{task_id}").json()
        return last.get("state") in states
    wait_until(check, timeout, interval=0.1, message=f"task {task_id} in {sorted(states)}; last {last}")
    return last


def test_dead_letters_embedded(chorus_bin: str, fake_upstream: FakeUpstream, tmp_path: Path):
    """A task abandoned by its (only) worker: `chorus serve` killed mid-task and restarted with
    `max_attempts: 1` dead-letters it; `chorus dlq` shows, replays (the task then succeeds) and purges."""
    config = {"tasks": {"max_attempts": 1, "lease_seconds": 1, "requeue_after_seconds": 1}}
    models = fake_model_yaml(fake_upstream.base_url)
    first = start_chorus(chorus_bin, tmp_path, models, config=config)
    try:
        tokens = 30
        r = first.http.post("/v1/batches", json={"prompt": f"{unique_tag()} abandoned [[fake tokens={tokens} rate=6]]",
                                                 "models": ["fake"]})
        assert r.status_code == 202, r.text
        task_id = r.json()["task_ids"][0]
        wait_task_state(first.http, task_id, {"STARTED", "PROGRESS"})
        first.process.proc.send_signal(signal.SIGKILL)
        first.process.proc.wait(timeout=10)
    finally:
        first.close()
    chorus = start_chorus(chorus_bin, tmp_path, models, config=config, admin_password=first.admin_password,
                          name="chorus-restarted")
    try:
        url, key = chorus.url, chorus.api_key
        failed = wait_task_state(chorus.http, task_id, {"FAILURE", "SUCCESS"})
        assert failed["state"] == "FAILURE", failed

        listed = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "list", "--json")))["data"]
        assert len(listed) == 1 and listed[0]["task_id"] == task_id and listed[0]["queue"] == "fake", listed
        letter_id = listed[0]["id"]
        table = ok(run_cli(chorus_bin, url, key, "dlq", "list"))
        assert letter_id in table and "claimed 1 times without finishing" in table, table

        shown = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "show", letter_id, "--json")))
        assert shown["payload"] == f"task_id={task_id}", shown
        assert shown["reason"] == "claimed 1 times without finishing", shown
        assert shown["task"]["state"] == "FAILURE" and shown["task"]["error"]["message"], shown
        text = ok(run_cli(chorus_bin, url, key, "dlq", "show", letter_id))
        assert "task state:  FAILURE" in text and "task error:" in text, text

        # Replay: a fresh attempt that succeeds; the dead letter is gone; the audit log has it.
        replayed = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "replay", letter_id, "--json")))
        assert replayed["id"] == letter_id and replayed["task"]["id"] == task_id, replayed
        assert replayed["task"]["state"] == "PENDING" and replayed["task"]["attempts"] == 0, replayed
        watched = run_cli(chorus_bin, url, key, "task", "watch", task_id)
        assert ok(watched).startswith(answer(tokens)), watched.stdout
        done = chorus.http.get(f"/v1/tasks/{task_id}").json()
        assert done["state"] == "SUCCESS" and done["attempts"] == 1 and done["result"]["content"] == answer(tokens), done
        rows = chorus.query("SELECT content, status FROM messages WHERE role = 'assistant' AND turn_id = ?", (task_id,))
        assert [(r["content"], r["status"]) for r in rows] == [(answer(tokens), "complete")], [dict(r) for r in rows]
        assert json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "list", "--json")))["data"] == []
        unsaid = chorus.http.delete("/v1/admin/dead-letters")
        assert unsaid.status_code == 400 and "all=true" in unsaid.json()["error"]["message"], unsaid.text
        again = run_cli(chorus_bin, url, key, "dlq", "replay", letter_id)
        assert again.returncode != 0 and "HTTP 404" in again.stderr, again.stderr
        audit = chorus.http.get("/v1/admin/audit", params={"limit": 100}).json()["data"]
        assert any(e["path"] == f"/v1/admin/dead-letters/{letter_id}/replay" and e["status"] == 200 for e in audit), audit
    finally:
        chorus.close()
        chorus.process.stop()


# --------------------------------------------------------------------------------------------
# chorus dlq: distributed (gateway + workers, Redis Streams, PostgreSQL)


def test_dead_letters_distributed(chorus_bin: str, cluster: Cluster):
    """A worker killed mid-task with `max_attempts: 1`: the other worker dead-letters the task;
    `chorus dlq replay` queues it again and it succeeds; delete and purge empty the queue."""
    cluster.write_config()
    cluster.config_path.write_text(cluster.config_path.read_text().replace("tasks:\n", "tasks:\n  max_attempts: 1\n", 1))
    cluster.start(gateways=1, workers=("w1", "w2"))
    (g1,) = cluster.gateways
    cluster.wait_workers_registered({"w1", "w2"})
    url, key = g1.url, cluster.api_key
    tokens = 30
    submitted = g1.submit_batch(f"{unique_tag()} abandoned [[fake tokens={tokens} rate=6]]", ["fake-a"])
    task_id = submitted["task_ids"][0]
    wait_until(lambda: cluster.task_row(task_id)["status"] in ("STARTED", "PROGRESS"), 20, message="the task to start")
    holder = cluster.task_row(task_id)["worker_id"]
    cluster.kill_worker(holder)
    failed = g1.wait_task(task_id, timeout=45)
    assert failed["state"] == "FAILURE", failed

    letters = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "list", "--queue", "fake-a", "--json")))["data"]
    assert [l["task_id"] for l in letters] == [task_id], letters
    letter = letters[0]
    dead_stream = cluster.redis.cli("XRANGE", cluster.dead_key("fake-a"), "-", "+")
    assert letter["entry_id"] in dead_stream, dead_stream
    shown = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "show", letter["id"], "--json")))
    assert task_id in shown["payload"] and shown["task"]["state"] == "FAILURE", shown

    out = ok(run_cli(chorus_bin, url, key, "dlq", "replay", letter["id"]))
    assert f"task {task_id} is PENDING again" in out, out
    # The fresh attempt's events (a new sequence on the Redis event stream) carry the whole answer.
    events = json_lines(ok(run_cli(chorus_bin, url, key, "task", "watch", task_id, "--json")))[:-1]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
    assert "".join(e["token"] for e in events if e["type"] == "answer") == answer(tokens), events
    done = g1.wait_task(task_id, timeout=45)
    assert done["state"] == "SUCCESS" and done["attempts"] == 1, done
    assert done["result"]["content"] == answer(tokens), done
    assert cluster.query("SELECT * FROM sys_dead_letters") == []
    # The Redis copy went with it.
    assert letter["entry_id"] not in cluster.redis.cli("XRANGE", cluster.dead_key("fake-a"), "-", "+")

    # Purge: one by id, then all (malformed entries, dead-lettered by the workers).
    for _ in range(3):
        cluster.redis.cli("XADD", cluster.queue_key("fake-a"), "*", "junk", "1")
    wait_until(lambda: len(cluster.query("SELECT * FROM sys_dead_letters")) == 3, 20, message="3 dead letters")
    letters = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "list", "--json")))["data"]
    refused = run_cli(chorus_bin, url, key, "dlq", "replay", letters[0]["id"])
    assert refused.returncode != 0 and "names no task" in refused.stderr and "HTTP 409" in refused.stderr, refused.stderr
    assert ok(run_cli(chorus_bin, url, key, "dlq", "purge", letters[0]["id"])) == "deleted 1 dead letter(s)\n"
    assert len(cluster.query("SELECT * FROM sys_dead_letters")) == 2
    nothing = run_cli(chorus_bin, url, key, "dlq", "purge")
    assert nothing.returncode != 0, nothing
    purged = json.loads(ok(run_cli(chorus_bin, url, key, "dlq", "purge", "--all", "--json")))
    assert purged["deleted"] == 2, purged
    assert cluster.query("SELECT * FROM sys_dead_letters") == []
    assert cluster.redis.cli("XRANGE", cluster.dead_key("fake-a"), "-", "+").strip() == ""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_task_watch_in_a_terminal_redraws_its_progress_bar(chorus_bin: str, chorus: Chorus):
    tag = unique_tag()
    first = chorus.chat(f"{tag} bar [[fake tokens=2]]")
    assert first.status_code == 200, first.text
    conversation_id = first.json()["conversation_id"]
    term = Tmux(f"chorus-task-{secrets.token_hex(4)}")
    command = ["env", f"CHORUS_URL={chorus.url}", f"CHORUS_API_KEY={chorus.api_key}", chorus_bin, "task", "submit",
               "conversation.export", "--param", f"conversation_id={conversation_id}", "--watch"]
    subprocess.run(["tmux", "new-session", "-d", "-s", term.name, "-x", "200", "-y", "50", *command], check=True, timeout=10)
    subprocess.run(["tmux", "set-option", "-t", term.name, "remain-on-exit", "on"], check=True, timeout=10)
    try:
        screen = term.wait_for(lambda s: "SUCCESS" in s and "## assistant (fake)" in s, "the export to end")
        # One bar, drawn over itself until the end; the markdown result as text after the state.
        bars = [line for line in screen.splitlines() if line.startswith("[")]
        assert len(bars) == 1 and bars[0].endswith("2/2 100%"), screen
        assert f"# {tag} bar" in screen.split("SUCCESS", 1)[1], screen
    finally:
        term.kill()
