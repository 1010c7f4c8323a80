"""Declared command jobs (`tasks.commands`), on `chorus serve` and on gateways + workers.

A job is a real process started by a real worker: the example fine-tuning script for progress and
artifacts, and a small probe script (written here) that records its pid and its child's pid, so
that a test can see that a cancel or a timeout leaves no process of the job's group behind, and
that a worker killed mid-job leaves the task failed or re-run as its declaration says.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import (Chorus, FakeUpstream, auth_headers, bearer_session, fake_model_yaml, start_chorus,
                      unique_tag, wait_until)
from distributed import (  # noqa: F401 - fixtures are found by name in this module
    Cluster,
    cluster,
    postgres_server,
    read_task_events,
    redis_server,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fine_tune.py"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELLED"}

# The probe: `probe.py MODE PIDS_DIR TAG`. It starts a child (`sleep`) in its own process group,
# writes both pids to PIDS_DIR/TAG.json, then:
#   sleep     prints PROGRESS and a tick every 0.2 s for up to 5 minutes;
#   stubborn  the same, ignoring SIGTERM (so only SIGKILL ends it, and its child);
#   once      the first run sleeps as `sleep` does; a later run (after a worker loss) finishes.
PROBE = r'''
import json, os, signal, subprocess, sys, time
mode, folder, tag = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
marker = os.path.join(folder, tag + ".started")
if mode == "once" and os.path.exists(marker):
    with open(os.path.join(os.environ["CHORUS_TASK_OUTPUT"], "second-run.txt"), "w") as f:
        f.write("ran again\n")
    print(json.dumps({"run": "second"}))
    sys.exit(0)
child = subprocess.Popen(["sleep", "300"])
with open(os.path.join(folder, tag + ".json.tmp"), "w") as f:
    json.dump({"pid": os.getpid(), "child": child.pid, "pgid": os.getpgid(0)}, f)
os.rename(os.path.join(folder, tag + ".json.tmp"), os.path.join(folder, tag + ".json"))
open(marker, "w").close()
try:
    print("PROGRESS 1/10", flush=True)
    for _ in range(1500):
        print("tick", flush=True)
        time.sleep(0.2)
finally:
    child.kill()
'''


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a container's init may never reap one)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class Deployment:
    """One shape of Chorus with the test commands declared; `http` is the administrator's."""

    def __init__(self, shape: str, workdir: Path):
        self.shape = shape
        self.workdir = workdir
        self.pids = workdir / "pids"
        self.pids.mkdir(parents=True, exist_ok=True)
        probe = workdir / "probe.py"
        probe.write_text(PROBE)
        self.url = ""
        self.api_key = ""

    def commands(self) -> dict[str, Any]:
        probe = [sys.executable, str(self.workdir / "probe.py"), "{mode}", str(self.pids), "{tag}"]
        probe_params = {"mode": {"type": "string", "enum": ["sleep", "stubborn", "once"]},
                        "tag": {"type": "string", "pattern": "^[a-z0-9]+$"}}
        return {
            "fine-tune": {
                "argv": [sys.executable, str(EXAMPLE), "--epochs", "{epochs}", "--data", "{dataset}",
                         "--epoch-seconds", "1"],
                "params": {"epochs": {"type": "integer", "minimum": 1, "maximum": 50},
                           "dataset": {"type": "string", "pattern": "^[a-z0-9_-]+$"}},
                "timeout_seconds": 600, "max_concurrency": 1, "on_worker_loss": "fail",
            },
            "probe": {"argv": probe, "params": probe_params, "grace_seconds": 1, "on_worker_loss": "fail"},
            "probe-retry": {"argv": probe, "params": probe_params, "grace_seconds": 1, "on_worker_loss": "retry"},
            "probe-timeout": {"argv": probe, "params": probe_params, "grace_seconds": 1, "timeout_seconds": 2},
        }

    @property
    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=auth_headers(self.api_key), timeout=30)

    def submit(self, name: str, **params: Any) -> httpx.Response:
        with self.http as client:
            return client.post("/v1/tasks", json={"type": "command", "params": {"name": name, **params}})

    def start_job(self, name: str, **params: Any) -> str:
        r = self.submit(name, **params)
        assert r.status_code == 202, f"POST /v1/tasks: {r.status_code} {r.text}"
        body = r.json()
        assert body["type"] == "command" and body["state"] == "PENDING", body
        return body["id"]

    def task(self, task_id: str) -> dict[str, Any]:
        with self.http as client:
            r = client.get(f"/v1/tasks/{task_id}")
        assert r.status_code == 200, f"GET /v1/tasks/{task_id}: {r.status_code} {r.text}"
        return r.json()

    def wait(self, task_id: str, states: set[str] = TERMINAL, timeout: float = 60) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.task(task_id)
            return last["state"] in states
        try:
            wait_until(check, timeout, interval=0.1, message=f"task {task_id} to reach {sorted(states)}")
        except AssertionError as error:
            raise AssertionError(f"{error}\nlast seen: {json.dumps(last)[:1500]}") from None
        return last

    def probe_pids(self, tag: str, timeout: float = 30) -> dict[str, int]:
        path = self.pids / f"{tag}.json"
        wait_until(path.exists, timeout, interval=0.05, message=f"the probe {tag} to start")
        return json.loads(path.read_text())

    def other_user(self) -> str:
        """A bearer session of a second, ordinary user."""
        email = f"jobs-{unique_tag()}@example.com"
        password = secrets.token_urlsafe(18)
        with self.http as client:
            r = client.post("/v1/admin/users", json={"email": email, "password": password, "role": "user"})
        assert r.status_code == 201, f"POST /v1/admin/users: {r.status_code} {r.text}"
        return bearer_session(self.url, email, password)

    def task_count(self) -> int:
        raise NotImplementedError

    def kill_runner(self, task_id: str) -> None:
        """SIGKILLs the process whose worker runs the task, and brings the shape back to life."""
        raise NotImplementedError

    def stop_runner(self, task_id: str) -> None:
        """SIGTERMs the process whose worker runs the task, waits for it to exit, and brings the
        shape back to life."""
        raise NotImplementedError

    def stop(self) -> None:
        pass


class Embedded(Deployment):
    def __init__(self, chorus_bin: str, fake: FakeUpstream, workdir: Path):
        super().__init__("serve", workdir)
        self.chorus_bin = chorus_bin
        self.fake = fake
        self.instance = self._start()

    def _start(self, admin_password: Any = None) -> Chorus:
        kwargs = {"admin_password": admin_password} if admin_password else {}
        instance = start_chorus(self.chorus_bin, self.workdir, fake_model_yaml(self.fake.base_url),
                                config={"tasks": {"lease_seconds": 2, "requeue_after_seconds": 1,
                                                  "commands": self.commands()}}, **kwargs)
        self.url, self.api_key = instance.url, instance.api_key
        return instance

    def task_count(self) -> int:
        return self.instance.query("SELECT COUNT(*) AS n FROM tasks")[0]["n"]

    def kill_runner(self, task_id: str) -> None:
        os.kill(self.instance.process.pid, signal.SIGKILL)
        self.instance.process.proc.wait(timeout=10)
        self.instance.close()
        # The same data folder: the restarted worker finds the task's lease passed and claims it again.
        self.instance = self._start(admin_password=self.instance.admin_password)

    def stop_runner(self, task_id: str) -> None:
        self.instance.process.proc.send_signal(signal.SIGTERM)
        self.instance.process.proc.wait(timeout=60)
        self.instance.close()
        self.instance = self._start(admin_password=self.instance.admin_password)

    def stop(self) -> None:
        self.instance.close()
        self.instance.process.stop()


class Distributed(Deployment):
    def __init__(self, cluster: Cluster, workdir: Path):
        super().__init__("gateway+workers", workdir)
        self.cluster = cluster
        original = cluster.write_config
        commands = self.commands()

        def write_config() -> None:
            original()
            text = cluster.config_path.read_text()
            cluster.config_path.write_text(text.replace("tasks:\n", f"tasks:\n  commands: {json.dumps(commands)}\n", 1))
        cluster.write_config = write_config  # type: ignore[method-assign]
        cluster.start(gateways=2, workers=("w1", "w2"))
        cluster.wait_workers_registered({"w1", "w2"})
        self.url, self.api_key = cluster.gateways[0].url, cluster.api_key

    def task_count(self) -> int:
        return self.cluster.query("SELECT COUNT(*) AS n FROM tasks")[0]["n"]

    def kill_runner(self, task_id: str) -> None:
        holder = self.cluster.task_row(task_id)["worker_id"]
        assert holder in ("w1", "w2"), holder
        self.cluster.kill_worker(holder)

    def stop_runner(self, task_id: str) -> None:
        holder = self.cluster.task_row(task_id)["worker_id"]
        assert holder in ("w1", "w2"), holder
        process = self.cluster.workers[holder]
        self.cluster.killed.add(process.pid)
        process.proc.send_signal(signal.SIGTERM)
        process.proc.wait(timeout=60)


@pytest.fixture(params=["serve", "distributed"])
def deployment(request: pytest.FixtureRequest, chorus_bin: str, fake_upstream: FakeUpstream,
               tmp_path: Path) -> Iterator[Deployment]:
    if request.param == "serve":
        instance: Deployment = Embedded(chorus_bin, fake_upstream, tmp_path / "serve")
    else:
        instance = Distributed(request.getfixturevalue("cluster"), tmp_path / "jobs")
    try:
        yield instance
    finally:
        instance.stop()
        # Whatever happened, leave no probe behind.
        for path in instance.pids.glob("*.json"):
            for pid in json.loads(path.read_text()).values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


# --------------------------------------------------------------------------------------------


def test_declared_job_reports_progress_and_artifacts(deployment: Deployment):
    task_id = deployment.start_job("fine-tune", epochs=3, dataset="demo")

    running = deployment.wait(task_id, {"PROGRESS"} | TERMINAL)
    assert running["state"] == "PROGRESS", running
    assert running["meta"]["total"] == 3 and 1 <= running["meta"]["current"] <= 3, running

    done = deployment.wait(task_id)
    assert done["state"] == "SUCCESS", done
    assert done["meta"] == {"current": 3, "total": 3}, done
    # The last JSON line the script printed.
    assert done["result"]["dataset"] == "demo" and done["result"]["epochs"] == 3, done
    assert done["result"]["artifacts"] == ["model.json", "metrics.csv"], done
    assert done["artifacts_url"] == f"/v1/tasks/{task_id}/artifacts", done

    events = [e.data for e in read_task_events(deployment.url, task_id)]
    progress = [e["data"] for e in events if e["type"] == "progress"]
    assert progress == [{"current": n, "total": 3} for n in (1, 2, 3)], progress
    lines = [e["token"] for e in events if e["type"] == "log" and e["data"]["stream"] == "stdout"]
    assert "fine-tuning on dataset 'demo' for 3 epochs" in lines, lines
    assert "PROGRESS 3/3" in lines, lines
    assert events[-1]["type"] == "finish" and events[-1]["data"] == done["result"], events[-1]

    with deployment.http as client:
        listing = client.get(done["artifacts_url"])
        assert listing.status_code == 200, listing.text
        artifacts = {a["name"]: a for a in listing.json()["data"]}
        assert set(artifacts) == {"model.json", "metrics.csv"}, artifacts
        assert artifacts["model.json"]["content_type"] == "application/json", artifacts
        metrics = client.get(f"/v1/tasks/{task_id}/artifacts/metrics.csv")
        assert metrics.status_code == 200, metrics.text
        assert metrics.text.startswith("epoch,loss\n1,") and len(metrics.text.splitlines()) == 4, metrics.text
        assert int(metrics.headers["content-length"]) == artifacts["metrics.csv"]["size"]
        assert metrics.headers["content-disposition"].startswith("attachment"), metrics.headers
        model = client.get(f"/v1/tasks/{task_id}/artifacts/model.json").json()
        assert model["dataset"] == "demo" and len(model["weights"]) == 8, model
        assert client.get(f"/v1/tasks/{task_id}/artifacts/nothing.bin").status_code == 404

    # Another user sees neither the task nor its artifacts.
    other = auth_headers(deployment.other_user())
    for path in (f"/v1/tasks/{task_id}", f"/v1/tasks/{task_id}/artifacts", f"/v1/tasks/{task_id}/artifacts/model.json"):
        r = httpx.get(deployment.url + path, headers=other, timeout=30)
        assert r.status_code == 404, f"{path} for another user: {r.status_code} {r.text}"


def test_only_declared_commands_with_valid_parameters_run(deployment: Deployment):
    before = deployment.task_count()
    r = deployment.submit("rm", path="/")
    assert r.status_code == 404, r.text
    assert "rm" in r.json()["error"]["message"]

    for params, param in [
        ({"epochs": 0, "dataset": "demo"}, "params.epochs"),
        ({"epochs": "3", "dataset": "demo"}, "params.epochs"),
        ({"dataset": "demo"}, "params.epochs"),
        ({"epochs": 3, "dataset": "demo; touch /tmp/owned"}, "params.dataset"),
        ({"epochs": 3, "dataset": "demo", "argv": ["sh", "-c", "id"]}, "params.argv"),
    ]:
        r = deployment.submit("fine-tune", **params)
        assert r.status_code == 400, f"{params}: {r.status_code} {r.text}"
        error = r.json()["error"]
        assert error["param"] == param and param in error["message"], (params, error)
    r = httpx.post(deployment.url + "/v1/tasks", json={"type": "command", "params": {"epochs": 3}},
                   headers=auth_headers(deployment.api_key), timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "params.name", r.text
    assert deployment.task_count() == before, "a refused job was stored"


def test_cancel_stops_the_whole_process_group(deployment: Deployment):
    tag = unique_tag()
    task_id = deployment.start_job("probe", mode="stubborn", tag=tag)
    pids = deployment.probe_pids(tag)
    assert alive(pids["pid"]) and alive(pids["child"]), pids
    # Its own process group (and session): a signal to it reaches nobody else.
    assert pids["pgid"] == pids["pid"], pids
    deployment.wait(task_id, {"PROGRESS"})

    with deployment.http as client:
        r = client.post(f"/v1/tasks/{task_id}/cancel")
    assert r.status_code == 200, r.text
    done = deployment.wait(task_id, timeout=30)
    assert done["state"] == "CANCELLED", done
    assert done["error"]["type"] == "cancelled", done
    # SIGTERM was ignored: the SIGKILL after the grace period ended the probe and its child.
    wait_until(lambda: not alive(pids["pid"]) and not alive(pids["child"]), 10, interval=0.1,
               message="the cancelled job's processes to be gone")
    events = [e.data for e in read_task_events(deployment.url, task_id)]
    assert events[-1]["type"] == "error" and events[-1]["data"]["type"] == "cancelled", events[-1]


def test_timeout_fails_the_job_and_stops_it(deployment: Deployment):
    tag = unique_tag()
    task_id = deployment.start_job("probe-timeout", mode="sleep", tag=tag)
    pids = deployment.probe_pids(tag)
    done = deployment.wait(task_id, timeout=30)
    assert done["state"] == "FAILURE", done
    assert done["error"]["code"] == "timeout", done
    assert "timeout" in done["error"]["message"], done
    wait_until(lambda: not alive(pids["pid"]) and not alive(pids["child"]), 10, interval=0.1,
               message="the timed-out job's processes to be gone")


@pytest.mark.parametrize("policy", ["fail", "retry"])
def test_worker_loss_follows_the_declaration(deployment: Deployment, policy: str):
    tag = unique_tag()
    name = "probe" if policy == "fail" else "probe-retry"
    task_id = deployment.start_job(name, mode="once", tag=tag)
    pids = deployment.probe_pids(tag)
    deployment.wait(task_id, {"PROGRESS"})

    deployment.kill_runner(task_id)

    done = deployment.wait(task_id, timeout=60)
    assert done["attempts"] == 2, done
    if policy == "fail":
        assert done["state"] == "FAILURE", done
        assert done["error"]["code"] == "worker_lost", done
    else:
        assert done["state"] == "SUCCESS", done
        assert done["result"] == {"run": "second"}, done
        with deployment.http as client:
            names = [a["name"] for a in client.get(f"/v1/tasks/{task_id}/artifacts").json()["data"]]
        assert names == ["second-run.txt"], names
    # The first run's process ends too (at its next line, its output pipe gone with its worker).
    wait_until(lambda: not alive(pids["pid"]) and not alive(pids["child"]), 15, interval=0.1,
               message="the lost run's processes to end")


def test_stopping_a_worker_stops_its_job_and_leaves_the_task_to_the_next(deployment: Deployment):
    """A graceful stop does not wait for a job (it may run for hours): the job's process group is
    torn down, and the task, as after a worker's death, is failed by the next claim
    (`on_worker_loss: fail`)."""
    tag = unique_tag()
    task_id = deployment.start_job("probe", mode="stubborn", tag=tag)
    pids = deployment.probe_pids(tag)
    deployment.wait(task_id, {"PROGRESS"})

    deployment.stop_runner(task_id)
    assert not alive(pids["pid"]) and not alive(pids["child"]), "the stopped worker left its job running"

    done = deployment.wait(task_id, timeout=60)
    assert done["state"] == "FAILURE" and done["error"]["code"] == "worker_lost", done
    assert done["attempts"] == 2, done


def test_skillspace_submits_and_polls_a_declared_job(deployment: Deployment):
    # Seed 001's polling flow: POST /api/tasks/submit/, then GET /api/tasks/status/{id}/ with Celery's states.
    with deployment.http as client:
        r = client.post("/api/tasks/submit/", json={"task_type": "fine-tune", "epochs": 2, "dataset": "demo"})
        assert r.status_code == 200, r.text
        task_id = r.json()["task_id"]
        seen: list[dict[str, Any]] = []

        def finished() -> bool:
            status = client.get(f"/api/tasks/status/{task_id}/")
            assert status.status_code == 200, status.text
            seen.append(status.json())
            return seen[-1]["state"] in ("SUCCESS", "FAILURE")
        wait_until(finished, timeout=60, interval=0.2)
        assert seen[-1]["state"] == "SUCCESS", seen[-1]
        assert seen[-1]["result"]["epochs"] == 2, seen[-1]
        assert any(s["state"] == "PROGRESS" and s["meta"]["total"] == 2 for s in seen), [s["state"] for s in seen]
        undeclared = client.post("/api/tasks/submit/", json={"task_type": "rm-rf", "path": "/"})
        assert undeclared.status_code == 404, undeclared.text
        assert undeclared.json()["code"] == 404, undeclared.json()
        invalid = client.post("/api/tasks/submit/", json={"task_type": "fine-tune", "epochs": 0, "dataset": "demo"})
        assert invalid.status_code == 400 and invalid.json()["code"] == 400, invalid.text
