"""Configuration: bad files fail fast naming the key; `chorus models`; environment overrides."""

from __future__ import annotations

import os
import secrets
import socket
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from conftest import (FakeUpstream, ManagedProcess, admin_credentials, answer, auth_headers, chorus_config_yaml,
                      fake_model_yaml, start_chorus, stream_chat, unique_tag, user_body)


def write_config(tmp_path: Path, models_yaml: str) -> Path:
    path = tmp_path / "chorus.yaml"
    path.write_text(chorus_config_yaml(tmp_path / "data", models_yaml))
    return path


def test_bogus_provider_fails_naming_the_key(chorus_bin: str, tmp_path: Path):
    config = write_config(tmp_path, (
        "  fake:\n"
        "    provider: bogus\n"
        "    base_url: http://127.0.0.1:9/v1\n"
    ))
    result = subprocess.run([chorus_bin, "serve", "--config", str(config), "--port", "0"],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "models.fake.provider" in output, output
    assert "listening on" not in result.stdout


def test_unknown_key_fails_naming_the_key(chorus_bin: str, tmp_path: Path, fake_upstream: FakeUpstream):
    config = write_config(tmp_path, fake_model_yaml(fake_upstream.base_url) + "    temperatur: 3\n")
    result = subprocess.run([chorus_bin, "serve", "--config", str(config), "--port", "0"],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode != 0
    assert "models.fake.temperatur" in result.stdout + result.stderr


def test_models_command_lists_the_configured_models(chorus_bin: str, tmp_path: Path, fake_upstream: FakeUpstream):
    config = write_config(tmp_path, fake_model_yaml(fake_upstream.base_url, "fake")
                          + fake_model_yaml(fake_upstream.base_url, "second-model"))
    result = subprocess.run([chorus_bin, "models", "--config", str(config)],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fake" in result.stdout
    assert "second-model" in result.stdout
    assert "models.fake" not in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_port_environment_override(chorus_bin: str, tmp_path: Path, fake_upstream: FakeUpstream):
    config = write_config(tmp_path, fake_model_yaml(fake_upstream.base_url))
    file_port = free_port()
    config.write_text(config.read_text() + f"http:\n  port: {file_port}\n")  # the environment wins over this
    port = free_port()
    assert port != file_port
    admin_password = secrets.token_urlsafe(18)
    env = {**os.environ, "CHORUS_HTTP_PORT": str(port), "CHORUS_ADMIN_PASSWORD": admin_password}
    process = ManagedProcess(f"chorus-env-{unique_tag()}", [chorus_bin, "serve", "--config", str(config)],
                             tmp_path, env=env, cwd=tmp_path)
    try:
        url = process.listening_url("chorus listening on ")
        assert url == f"http://127.0.0.1:{port}"
        r = httpx.get(url + "/healthz", timeout=10)
        assert r.status_code == 200
        api_key = admin_credentials(url, admin_password).api_key
        models = httpx.get(url + "/v1/models", headers=auth_headers(api_key), timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["fake"]
    finally:
        assert process.stop() == 0, "chorus should exit cleanly on SIGTERM\n" + process.describe()


def test_http_backlog_sizes_the_accept_queue(chorus_bin: str, tmp_path: Path, fake_upstream: FakeUpstream):
    """`http.backlog` is the listening socket's accept queue (`ss` shows it as Send-Q), so a burst of
    connections larger than Hummingbird's default of 256 is queued instead of losing SYNs."""
    chorus = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url), config={"http": {"backlog": 1000}},
                          sign_in=False)
    try:
        port = chorus.url.rsplit(":", 1)[1]
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=10, check=True)
        rows = [line.split() for line in listening.stdout.splitlines() if line.strip()]
        assert rows, listening.stdout
        # State, Recv-Q, Send-Q (the backlog), local address, peer address.
        assert [row[2] for row in rows] == ["1000"], listening.stdout
    finally:
        assert chorus.process.stop() == 0, chorus.process.describe()


def raw_connection(url: str) -> socket.socket:
    """A bare TCP connection to Chorus, for connections that send nothing or half a request."""
    parsed = urlparse(url)
    return socket.create_connection((parsed.hostname, parsed.port), timeout=10)


def test_sigterm_closes_connections_that_sent_no_request(chorus_bin: str, tmp_path: Path, fake_upstream: FakeUpstream):
    """A connection that has sent nothing, or half a request head (a browser's preconnect, a slow
    client), does not keep Chorus from stopping; a stream in progress still ends with `[DONE]`."""
    chorus = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url))
    silent = raw_connection(chorus.url)
    partial = raw_connection(chorus.url)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: chorus\r\n")
    stream_events: list[str] = []
    with httpx.Client(base_url=chorus.url, timeout=30) as client:
        body = {"model": "fake", "stream": True,
                "messages": [{"role": "user", "content": "Count. [[fake tokens=20 rate=10]]"}]}
        with client.stream("POST", "/v1/chat/completions", json=body, headers=chorus.auth_headers) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            stream_events += [next(line for line in lines if line.startswith("data:"))]
            started = time.monotonic()
            chorus.process.proc.send_signal(signal.SIGTERM)
            stream_events += [line for line in lines if line.startswith("data:")]
        status = chorus.process.stop(timeout=15)
        stopped_after = time.monotonic() - started
    for connection in (silent, partial):
        connection.settimeout(5)
        assert connection.recv(1) == b"", "an idle connection should be closed at shutdown"
        connection.close()
    assert status == 0, f"chorus exited with {status} (-9: killed after not stopping within 15 s)"
    assert stopped_after < 10, f"chorus took {stopped_after:.1f} s to stop"
    assert stream_events[-1] == "data: [DONE]", stream_events[-3:]
    assert len(stream_events) >= 20


def test_idle_timeout_closes_silent_connections_but_not_a_quiet_stream(chorus_bin: str, tmp_path: Path,
                                                                       fake_upstream: FakeUpstream):
    """`http.idle_timeout_seconds`: a connection that sends no request (new, or kept alive after
    an answer) is closed after it; a stream whose tokens come further apart than that is not cut."""
    chorus = start_chorus(chorus_bin, tmp_path, fake_model_yaml(fake_upstream.base_url),
                          config={"http": {"idle_timeout_seconds": 1}})
    try:
        opened = time.monotonic()
        silent = raw_connection(chorus.url)
        kept_alive = raw_connection(chorus.url)
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: chorus\r\n\r\n")
        assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200")
        # Two tokens 1.6 s apart on a connection with a 1 s idle timeout.
        result = stream_chat(chorus, user_body("Slowly. [[fake tokens=2 rate=0.625]]"))
        assert result.status_code == 200 and result.done, result.events[-3:]
        assert result.content == answer(2)
        for connection in (silent, kept_alive):
            assert connection.recv(4096) == b"", "an idle connection should have been closed"
            connection.close()
        assert time.monotonic() - opened < 8
    finally:
        chorus.process.stop()
