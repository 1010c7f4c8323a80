"""The OpenAPI document at /openapi.json: valid OpenAPI 3.1, and true of the running server.

One `chorus serve` of its own (the fuzzing creates users, roles, conversations and tasks, which
would disturb the shared instance), with the model `fake` on the fake upstream, signed in as the
administrator with an API key. schemathesis generates requests from the document for every
operation (a bounded number each) and checks every answer: no 5xx, a documented status code and
content type, a body and headers that match the documented schema.

Needs `openapi-spec-validator` and `schemathesis` (scripts/setup.sh), and for the page's browser
test Debian's `chromium` and `chromium-driver` (scripts/setup.sh --with-browser), as
test_web_page.py does.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

from conftest import ADMIN_EMAIL, REPO_ROOT, Chorus, fake_model_yaml, start_chorus, unique_tag, wait_until

try:
    import schemathesis
    from hypothesis import HealthCheck, Phase, settings  # schemathesis brings hypothesis
    from schemathesis.checks import ignored_auth, not_a_server_error, unsupported_method
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
except ImportError as missing:  # a failure, not a skip: scripts/setup.sh installs it
    pytest.fail(f"{missing}: run scripts/setup.sh", pytrace=False)

# Examples per operation: about 45 operations, so about a thousand requests and the checks' own
# (under a minute on two cores; the budget is two or three). CHORUS_OPENAPI_EXAMPLES=500 searches harder,
# with new random examples on each run.
EXAMPLES_PER_OPERATION = int(os.environ.get("CHORUS_OPENAPI_EXAMPLES", "20"))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance,
          # Each operation that the document says needs a credential refuses the request sent
          # again without one (AccessPolicy keeps every route closed unless listed).
          ignored_auth,
          # A documented path with a method it does not list answers 405 with `Allow`.
          unsupported_method]

CHROMEDRIVER = "/usr/bin/chromedriver"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Operations left out of fuzzing, each for a reason:
EXCLUDED_OPERATIONS = {
    # WebSockets: the answer to a good request is the 101 upgrade, and then frames, which an HTTP
    # fuzzer cannot follow (tests/e2e/test_auth.py, test_distributed.py and test_skillspace.py
    # cover them).
    "followTaskOverWebSocket",
    "skillSpaceFollowTask",
}

# A declared command job (`POST /v1/tasks` with type `command`): it reports progress, prints a
# line and leaves an artifact, so that a command task, its events and its artifacts are fuzzed.
REPORT_SCRIPT = (
    "import os, sys\n"
    "print('PROGRESS 1/2', flush=True)\n"
    "print('writing the report', flush=True)\n"
    "open(os.path.join(os.environ['CHORUS_TASK_OUTPUT'], 'report.txt'), 'w').write(sys.argv[1])\n"
    "print('PROGRESS 2/2', flush=True)\n"
)
COMMANDS = {"report": {"argv": [sys.executable, "-c", REPORT_SCRIPT, "{title}"],
                       "params": {"title": {"type": "string", "pattern": "^[a-z ]{1,40}$", "default": "report"}}}}

# The document's source, read at collection time so that each operation is a test of its own;
# test_the_served_document_is_valid_openapi_3_1 checks that the server serves exactly this.
DOCUMENT_PATH = REPO_ROOT / "Sources" / "ChorusHTTP" / "OpenAPI" / "openapi.yaml"
schema = schemathesis.openapi.from_path(str(DOCUMENT_PATH)).exclude(operation_id=list(EXCLUDED_OPERATIONS))


# Open registration and no sign-in limit: the fuzzer's registrations and sign-ins get real answers,
# not 403 and 429 only. SkillSpace's routes answer with the fake model (without one, a 503).
# `max_attempts: 1`: a task whose worker died is dead-lettered at once (see `api`).
API_CONFIG = {"auth": {"registration": "open"}, "limits": {"login_attempts_per_minute": 0},
              "skillspace": {"model": "fake"},
              "tasks": {"commands": COMMANDS, "max_attempts": 1, "requeue_after_seconds": 1}}
DEAD_LETTERS = 3


@pytest.fixture(scope="module")
def api(chorus_bin: str, fake_upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chorus]:
    """The server, with DEAD_LETTERS dead letters: a first server is killed while it answers as
    many chat tasks, and the server restarted on its data gives them up (`dead_tasks`)."""
    workdir = tmp_path_factory.mktemp("chorus-openapi")
    models = fake_model_yaml(fake_upstream.base_url)
    first = start_chorus(chorus_bin, workdir, models, name="chorus-killed",
                         config={**API_CONFIG, "tasks": {**API_CONFIG["tasks"], "lease_seconds": 1}})
    try:
        tasks = []
        for _ in range(DEAD_LETTERS):
            r = first.http.post("/v1/batches", json={"prompt": f"{unique_tag()} abandoned [[fake tokens=60 rate=5]]", "models": ["fake"]})
            assert r.status_code == 202, r.text
            tasks.append(r.json()["task_ids"][0])
        wait_until(lambda: all(first.http.get(f"/v1/tasks/{task}").json()["state"] in ("STARTED", "PROGRESS") for task in tasks),
                   30, message="the doomed tasks run")
        first.process.proc.send_signal(signal.SIGKILL)
        first.process.proc.wait(timeout=10)
    finally:
        first.close()
    instance = start_chorus(chorus_bin, workdir, models, config=API_CONFIG, admin_password=first.admin_password)
    try:
        wait_until(lambda: len(instance.http.get("/v1/admin/dead-letters").json()["data"]) == DEAD_LETTERS, 30,
                   message=f"{DEAD_LETTERS} dead letters")
        instance.dead_tasks = tasks  # type: ignore[attr-defined]
        yield instance
    finally:
        instance.close()
        instance.process.stop()


@pytest.fixture(scope="module")
def known(api: Chorus) -> dict[str, str]:
    """Objects that exist, so that the fuzzer also reaches the answers about a real object (random
    ids only ever find 404s): a conversation, a batch and its task, a file, a user that is not the
    administrator, a second API key of the administrator (not the one the requests carry)."""
    http = api.http
    chat = http.post("/v1/chat/completions", json={"model": "fake", "messages": [{"role": "user", "content": "hello"}]})
    assert chat.status_code == 200, chat.text
    doomed = http.post("/v1/chat/completions", json={"model": "fake", "messages": [{"role": "user", "content": "bye"}]})
    assert doomed.status_code == 200, doomed.text
    batch = http.post("/v1/batches", json={"models": ["fake"], "prompt": "hi", "conversation_id": chat.json()["conversation_id"]})
    assert batch.status_code == 202, batch.text
    upload = http.post("/v1/files", files={"file": ("notes.txt", b"some notes", "text/plain")})
    assert upload.status_code == 200, upload.text
    user = http.post("/v1/admin/users", json={"email": "fuzz-target@example.com", "password": "a-long-password"})
    assert user.status_code == 201, user.text
    key = http.post("/v1/api-keys", json={"name": "fuzz-target"})
    assert key.status_code == 201, key.text
    job = http.post("/v1/tasks", json={"type": "command", "params": {"name": "report", "title": "fuzzing"}})
    assert job.status_code == 202, job.text
    wait_until(lambda: http.get(f"/v1/tasks/{job.json()['id']}").json()["state"] == "SUCCESS", timeout=30,
               message="the command task succeeds")
    artifacts = http.get(f"/v1/tasks/{job.json()['id']}/artifacts").json()["data"]
    assert [artifact["name"] for artifact in artifacts] == ["report.txt"], artifacts
    letters = [letter["id"] for letter in http.get("/v1/admin/dead-letters").json()["data"]]
    assert len(letters) == DEAD_LETTERS, letters
    return {
        "/v1/conversations/{id}": chat.json()["conversation_id"],
        "DELETE /v1/conversations/{id}": doomed.json()["conversation_id"],
        "/v1/conversations/{id}/history": chat.json()["conversation_id"],
        "/v1/batches/{id}": batch.json()["batch_id"],
        "/v1/tasks/{id}": batch.json()["task_ids"][0],
        "/v1/tasks/{id}/events": batch.json()["task_ids"][0],
        "/v1/tasks/{id}/cancel": batch.json()["task_ids"][0],
        "/v1/tasks/{id}/artifacts": job.json()["id"],
        "/v1/tasks/{id}/artifacts/{name}": job.json()["id"],
        "/api/tasks/status/{task_id}/": job.json()["id"],
        "/v1/models/{id}": "fake",
        "/v1/admin/users/{id}": user.json()["id"],
        "/v1/api-keys/{id}": key.json()["id"],
        # One dead letter each to show, to delete and to replay.
        "GET /v1/admin/dead-letters/{id}": letters[0],
        "DELETE /v1/admin/dead-letters/{id}": letters[1],
        "/v1/admin/dead-letters/{id}/replay": letters[2],
        "/web/{path}": "style.css",
        "file": upload.json()["id"],
        "password": api.admin_password,
    }


# How many examples of each operation ran so far (for `steer`).
TURNS: dict[str, int] = {}


def steer(case, known: dict[str, str], turn: int) -> None:
    """Every other example of an operation is pointed at a real object (and a chat at the real
    model), so the successful answers are checked too; the rest stay as generated."""
    if case.operation.label == "DELETE /v1/admin/dead-letters" and case.query and case.query.get("all") == "true":
        # Purging them all would leave nothing for the operations on one dead letter (which
        # come after it); one queue's purge is fuzzed instead (test_cli.py purges them all).
        del case.query["all"]
        case.query["queue"] = "no-such-queue"
    if turn % 2:
        return
    path_id = "path" if case.operation.path == "/web/{path}" else "task_id" if "{task_id}" in case.operation.path else "id"
    target = known.get(case.operation.label) or known.get(case.operation.path)
    if target and case.path_parameters and path_id in case.path_parameters:
        case.path_parameters[path_id] = target
        if case.operation.path == "/v1/tasks/{id}/artifacts/{name}":
            case.path_parameters["name"] = "report.txt"
    if case.headers:
        # A key the fuzzer repeats with another body is rightly refused (422); not on these turns.
        case.headers.pop("Idempotency-Key", None)
    if isinstance(case.body, dict):
        if case.operation.path.endswith("/chat/completions"):
            # The JSON body names one model, the Async-Chat form a list.
            case.body["model"] = "fake"
            if "conversation_id" in case.body:
                case.body["conversation_id"] = known["/v1/conversations/{id}"]
        elif case.operation.path == "/v1/auth/login":
            case.body.update(email=ADMIN_EMAIL, password=known["password"])
        elif case.operation.path == "/v1/tasks":
            if turn % 4:
                case.body.update(type="command", params={"name": "report"})
            else:
                case.body.update(type="conversation.export", params={"conversation_id": known["/v1/conversations/{id}"], "format": "json"})
        elif case.operation.path == "/api/tasks/submit/":
            case.body.clear()
            case.body.update(task_type="report", title="submitted")
        elif case.operation.path == "/v1/batches":
            case.body["models"] = ["fake"]
            case.body.pop("regenerate", None)
            case.body["conversation_id"] = known["/v1/conversations/{id}"]
            case.body["files"] = [known["file"]]


def test_the_served_document_is_valid_openapi_3_1(api: Chorus) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    response = httpx.get(api.url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"
    # What is fuzzed below is what is served.
    assert document == yaml.safe_load(DOCUMENT_PATH.read_text("utf-8"))
    # The credentials are described as the server checks them.
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert (schemes["sessionCookie"]["in"], schemes["sessionCookie"]["name"]) == ("cookie", "chorus_session")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")
    # Served without credentials, revalidated with its ETag.
    again = httpx.get(api.url + "/openapi.json", headers={"If-None-Match": response.headers["etag"]}, timeout=10)
    assert again.status_code == 304


def test_the_docs_page_renders_the_document_from_chorus_itself(api: Chorus) -> None:
    page = httpx.get(api.url + "/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/web/js/docs.js">' in page.text
    script = httpx.get(api.url + "/web/js/docs.js", timeout=10)
    assert script.status_code == 200 and "/openapi.json" in script.text


def test_the_docs_page_lists_every_operation_in_a_browser(api: Chorus, tmp_path: Path) -> None:
    """The page in headless Chromium under its CSP: every operation is listed, one opens from the
    address with its body and responses, and the console shows no error (a CSP refusal is one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    if not os.access(CHROMEDRIVER, os.X_OK) or not shutil.which("chromium"):
        pytest.fail("chromium and chromium-driver are not installed: run scripts/setup.sh --with-browser", pytrace=False)
    document = yaml.safe_load(DOCUMENT_PATH.read_text("utf-8"))
    operations = sum(1 for item in document["paths"].values() for method in item if method in HTTP_METHODS)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(api.url + "/docs#op-createChatCompletion")
        try:
            wait_until(lambda: len(driver.find_elements(By.CSS_SELECTOR, "details.op")) == operations, timeout=15,
                       message=f"{operations} operations listed")
        except AssertionError as error:
            raise AssertionError(f"{error}\nlisted: {len(driver.find_elements(By.CSS_SELECTOR, 'details.op'))}; "
                                 f"console: {driver.get_log('browser')}") from None
        opened = driver.find_element(By.ID, "op-createChatCompletion")
        assert opened.get_attribute("open") is not None
        text = opened.text
        assert "Request body" in text and "text/event-stream" in text and "ChatCompletionEvent" in text
        assert driver.find_element(By.ID, "schema-Error").is_displayed()
        driver.save_screenshot(str(tmp_path / "docs.png"))
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    # The same examples on every run of the default size: a failure here is reproducible.
    derandomize="CHORUS_OPENAPI_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_answers_as_documented(case, api: Chorus, known: dict[str, str]) -> None:
    turn = TURNS[case.operation.label] = TURNS.get(case.operation.label, -1) + 1
    steer(case, known, turn)
    # The administrator's API key: every operation is allowed, so the answers are the real ones,
    # not 403s. Operations that need no credential ignore it.
    case.call_and_validate(base_url=api.url, headers=api.auth_headers, checks=CHECKS, timeout=30)

