"""Configuration: bad files fail fast naming the key; `chorus models`; environment overrides."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path

import httpx

from conftest import (FakeUpstream, ManagedProcess, admin_credentials, auth_headers, chorus_config_yaml,
                      fake_model_yaml, start_chorus, unique_tag)


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
