"""The admin console in the chat page (`#/admin`), driven in a real headless Chromium.

One `chorus serve` (accounts on, invite-only registration, `tasks.max_attempts: 1`) with three
models on the fake upstream (`priced` has a price, for the usage section). Before the browser starts, two tasks are left behind by a
`chorus serve` killed mid-answer; the restarted server dead-letters them, so the console has
dead letters to inspect, replay and purge. One browser for the module, as in
test_web_page.py (whose page helpers this reuses); screenshots of every step go to the folder
printed at the start (`admin console screenshots: …`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_EMAIL, Chorus, answer, bearer_session, create_api_key, fake_model_yaml, login, start_chorus, unique_tag, wait_until
from test_web_page import CHROMEDRIVER, DESKTOP, PHONE, ChatPage, tid, webdriver

if webdriver is not None:
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

TASK_CONFIG = {"auth": {"registration": "invite"},
               "tasks": {"max_attempts": 1, "lease_seconds": 1, "requeue_after_seconds": 1}}
ABANDONED_TOKENS = 30
USER_PASSWORD = "a-long-user-password"
# Dollars per million tokens: high, so that a few tokens cost whole cents.
PRICED_MODEL = "    price: {prompt_per_million: 1000, completion_per_million: 2000}\n"


def wait_task(http: httpx.Client, task_id: str, states: set[str], timeout: float = 45) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        last = http.get(f"/v1/tasks/{task_id}").json()
        return last.get("state") in states
    wait_until(check, timeout, interval=0.1, message=f"task {task_id} in {sorted(states)}; last {last}")
    return last


@pytest.fixture(scope="module")
def admin_chorus(chorus_bin: str, fake_upstream, tmp_path_factory: pytest.TempPathFactory):
    """The server, with two dead-lettered tasks (one per model): `dead_tasks`."""
    workdir = tmp_path_factory.mktemp("admin-chorus")
    models = (fake_model_yaml(fake_upstream.base_url) + fake_model_yaml(fake_upstream.base_url, "fake2")
              + fake_model_yaml(fake_upstream.base_url, "priced") + PRICED_MODEL)
    first = start_chorus(chorus_bin, workdir, models, config=TASK_CONFIG)
    try:
        tasks = []
        for model in ("fake", "fake2"):
            r = first.http.post("/v1/batches", json={
                "prompt": f"{unique_tag()} abandoned [[fake tokens={ABANDONED_TOKENS} rate=6]]", "models": [model]})
            assert r.status_code == 202, r.text
            tasks.append(r.json()["task_ids"][0])
        for task_id in tasks:
            wait_task(first.http, task_id, {"STARTED", "PROGRESS"})
        first.process.proc.send_signal(signal.SIGKILL)
        first.process.proc.wait(timeout=10)
    finally:
        first.close()
    instance = start_chorus(chorus_bin, workdir, models, config=TASK_CONFIG, admin_password=first.admin_password,
                            name="chorus-restarted")
    try:
        for task_id in tasks:
            assert wait_task(instance.http, task_id, {"FAILURE", "SUCCESS"})["state"] == "FAILURE"
        wait_until(lambda: len(instance.http.get("/v1/admin/dead-letters").json()["data"]) == 2, 20,
                   message="two dead letters")
        instance.dead_tasks = tasks  # type: ignore[attr-defined]
        yield instance
    finally:
        instance.close()
        instance.process.stop()


@pytest.fixture(scope="module")
def page(admin_chorus: Chorus, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    if webdriver is None:
        pytest.fail("selenium is not installed: run scripts/setup.sh", pytrace=False)
    if not os.access(CHROMEDRIVER, os.X_OK) or not shutil.which("chromium"):
        pytest.fail("chromium and chromium-driver are not installed: run scripts/setup.sh", pytrace=False)
    shots = tmp_path_factory.mktemp("admin-console-screenshots")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nadmin console screenshots: {shots}", flush=True)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--force-color-profile=srgb", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        console = ChatPage(driver, admin_chorus.url, shots, admin_chorus.admin_password)
        console.viewport(DESKTOP)
        yield console
    finally:
        driver.quit()


def create_user(chorus: Chorus, role: str = "user") -> dict[str, Any]:
    email = f"console-{unique_tag()}@example.com"
    r = chorus.http.post("/v1/admin/users", json={"email": email, "password": USER_PASSWORD, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


def ready(page: ChatPage) -> None:
    """Signed in as the administrator, on the chat or the console (so that a test also runs alone)."""
    if not page.d.current_url.startswith(page.url):
        page.d.get(page.url + "/")
    page.one(f'{tid("prompt")}, {tid("email")}, {tid("admin-console")}')
    if page.all(tid("email")):
        page.sign_in()


def open_section(page: ChatPage, name: str) -> Any:
    """The console's section `name`, opened from its tab (the console from the sidebar first)."""
    ready(page)
    if not page.all(tid("admin-console")) or not page.one(tid("admin-console"), visible=False).is_displayed():
        page.one(tid("nav-console"), visible=False)
        page.js("document.querySelector('[data-testid=\"nav-console\"]').click()")
        page.one(tid("admin-console"))
    # Notifications of earlier steps stay a few seconds and may cover a control: dismissed first.
    page.js("document.querySelectorAll('[data-testid=\"toast\"]').forEach((t) => t.remove())")
    page.one(tid(f"admin-tab-{name}")).click()
    return page.one(tid(f"admin-view-{name}"))


def row(page: ChatPage, testid: str, timeout: float = 15, **attrs: str) -> Any:
    selector = tid(testid) + "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in attrs.items())
    return page.one(selector, timeout=timeout)


def cell(page: ChatPage, row_el: Any, column: str) -> str:
    return page.js("return arguments[0].querySelector(`[data-col=\"${arguments[1]}\"]`).textContent", row_el, column)


def confirm(page: ChatPage) -> str:
    """Confirms the open dialog; returns its text."""
    dialog = page.one("dialog[open]")
    text = dialog.text
    page.one(tid("confirm")).click()
    page.wait(lambda: not page.all("dialog[open]"), 5, "the dialog to close")
    return text


# --------------------------------------------------------------------------------------------


def test_only_administrators_see_the_console(admin_chorus: Chorus, page: ChatPage):
    user = create_user(admin_chorus)
    page.d.get(page.url + "/")
    page.sign_in(user["email"], USER_PASSWORD)
    assert page.all(tid("nav-console")) == [], "a normal user has no console in the navigation"
    page.d.get(page.url + "/#/admin/users")
    page.one(tid("prompt"))
    time.sleep(0.5)  # the console module would have loaded by now
    assert page.all(tid("admin-console")) == [], "nor at its address"
    page.shot("user-without-console")
    # The API refuses the user anyway.
    assert page.cookie_client().get("/v1/admin/users").status_code == 403
    page.one(tid("sign-out")).click()
    page.one(tid("email"))

    page.sign_in()
    page.one(tid("nav-console")).click()
    page.one(tid("admin-console"))
    assert page.d.current_url.endswith("#/admin")
    page.one(tid("admin-view-users"))
    tabs = [el.text for el in page.all(".admin-tab")]
    assert tabs == ["Users", "API keys", "Roles", "Invites", "Workers", "Queues", "Dead letters", "Deployments", "Usage", "Audit log"], tabs
    assert page.one(tid("nav-console")).get_attribute("aria-current") == "page"
    assert not page.one(tid("prompt"), visible=False).is_displayed(), "the console takes the chat's place"
    page.shot("admin-console")
    # Back to the chat and again.
    page.one(tid("nav-chat")).click()
    page.one(tid("prompt"))
    assert not page.one(tid("admin-console"), visible=False).is_displayed()
    assert page.js_errors() == []


def test_create_a_user_change_its_role_and_disable_it(admin_chorus: Chorus, page: ChatPage):
    view = open_section(page, "users")
    email = f"made-in-console-{unique_tag()}@example.com"
    view.find_element(By.CSS_SELECTOR, tid("new-user-email")).send_keys(email)
    view.find_element(By.CSS_SELECTOR, tid("new-user-name")).send_keys("<b>Made</b> in the console")
    view.find_element(By.CSS_SELECTOR, tid("new-user-password")).send_keys("short")
    view.find_element(By.CSS_SELECTOR, tid("create-user")).click()
    assert "8" in page.one(".admin-form .form-error").text, "a short password is refused with a reason"
    view.find_element(By.CSS_SELECTOR, tid("new-user-password")).clear()
    view.find_element(By.CSS_SELECTOR, tid("new-user-password")).send_keys(USER_PASSWORD)
    page.shot("create-user-form")
    view.find_element(By.CSS_SELECTOR, tid("create-user")).click()
    user_row = row(page, "admin-user", email=email)
    # Text from the server stays text.
    assert cell(page, user_row, "name") == "<b>Made</b> in the console"
    assert user_row.find_elements(By.TAG_NAME, "b") == []
    made = next(u for u in admin_chorus.http.get("/v1/admin/users", params={"limit": 500}).json()["data"] if u["email"] == email)
    assert made["role"] == "user" and not made["disabled"]
    assert login(admin_chorus.url, email, USER_PASSWORD).status_code == 200
    page.shot("user-created")

    Select(user_row.find_element(By.CSS_SELECTOR, tid("user-role"))).select_by_value("admin")
    wait_until(lambda: admin_chorus.http.get(f"/v1/admin/users/{made['id']}").json()["role"] == "admin", 10,
               message="the role change saved")
    page.wait(lambda: Select(row(page, "admin-user", email=email).find_element(By.CSS_SELECTOR, tid("user-role")))
              .first_selected_option.get_attribute("value") == "admin", 10, "the table to show the new role")
    page.shot("user-role-changed")

    row(page, "admin-user", email=email).find_element(By.CSS_SELECTOR, tid("user-toggle")).click()
    disabled_row = row(page, "admin-user", email=email, disabled="true")
    assert "disabled" in cell(page, disabled_row, "status")
    assert admin_chorus.http.get(f"/v1/admin/users/{made['id']}").json()["disabled"] is True
    assert login(admin_chorus.url, email, USER_PASSWORD).status_code in (401, 403), "a disabled user cannot sign in"
    assert disabled_row.find_element(By.CSS_SELECTOR, tid("user-toggle")).text == "Enable"
    page.shot("user-disabled")
    # The last administrator cannot be disabled: the answer says why.
    me = next(u for u in admin_chorus.http.get("/v1/admin/users", params={"limit": 500}).json()["data"] if u["email"] == ADMIN_EMAIL)
    row(page, "admin-user", id=me["id"]).find_element(By.CSS_SELECTOR, tid("user-toggle")).click()
    page.wait(lambda: any("your own account" in t.text for t in page.all(tid("toast"))), 10, "the refusal, in words")
    assert admin_chorus.http.get(f"/v1/admin/users/{me['id']}").json()["disabled"] is False


def test_revoke_another_users_key(admin_chorus: Chorus, page: ChatPage):
    user = create_user(admin_chorus)
    token = bearer_session(admin_chorus.url, user["email"], USER_PASSWORD)
    key = create_api_key(admin_chorus.url, token, name="laptop <script>")
    other = create_api_key(admin_chorus.url, token, name="kept")
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert httpx.get(admin_chorus.url + "/v1/models", headers=headers, timeout=10).status_code == 200

    open_section(page, "users")
    row(page, "admin-user", email=user["email"]).find_element(By.CSS_SELECTOR, tid("user-keys")).click()
    page.one(tid("admin-view-keys"))
    page.wait(lambda: Select(page.one(tid("keys-user"))).first_selected_option.get_attribute("value") == user["id"], 10,
              "the keys of the user picked")
    key_row = row(page, "admin-key", id=key["id"])
    assert cell(page, key_row, "name") == "laptop <script>"
    assert {el.get_attribute("data-user") for el in page.all(tid("admin-key"))} == {user["id"]}
    page.shot("user-keys")
    key_row.find_element(By.CSS_SELECTOR, tid("key-revoke")).click()
    text = confirm(page)
    assert "laptop <script>" in text and user["email"] in text
    page.wait(lambda: not page.all(f'{tid("admin-key")}[data-id="{key["id"]}"]'), 10, "the revoked key to leave the list")
    assert httpx.get(admin_chorus.url + "/v1/models", headers=headers, timeout=10).status_code == 401
    assert httpx.get(admin_chorus.url + "/v1/models", headers={"Authorization": f"Bearer {other['key']}"}, timeout=10).status_code == 200
    # Shown again with the revoked ones; every user's keys with "All users".
    page.one(tid("keys-revoked")).click()
    assert "revoked" in cell(page, row(page, "admin-key", id=key["id"]), "status")
    Select(page.one(tid("keys-user"))).select_by_value("")
    wait_until(lambda: len({el.get_attribute("data-user") for el in page.all(tid("admin-key"))}) >= 2, 10,
               message="keys of several users")
    page.shot("key-revoked")


def test_roles_and_an_invite_shown_once(admin_chorus: Chorus, page: ChatPage):
    view = open_section(page, "roles")
    assert row(page, "admin-role", name="admin") and row(page, "admin-role", name="user")
    name = f"viewer-{unique_tag()}"
    view.find_element(By.CSS_SELECTOR, tid("new-role-name")).send_keys(name)
    for box in page.all(tid("new-role-permission")):
        if box.get_attribute("value") not in ("chat",) and box.is_selected():
            box.click()
    view.find_element(By.CSS_SELECTOR, tid("create-role")).click()
    assert cell(page, row(page, "admin-role", name=name), "permissions") == "chat"
    roles = {r["name"]: r for r in admin_chorus.http.get("/v1/admin/roles").json()["data"]}
    assert roles[name]["permissions"] == ["chat"]
    page.shot("role-created")

    view = open_section(page, "invites")
    page.wait(lambda: Select(page.one(tid("invite-role"))).options, 10, "the roles")
    Select(page.one(tid("invite-role"))).select_by_value(name)
    view.find_element(By.CSS_SELECTOR, tid("create-invite")).click()
    code = page.one(tid("invite-code")).get_attribute("value")
    assert code.startswith("inv_")
    page.shot("invite-created")
    email = f"invited-{unique_tag()}@example.com"
    r = httpx.post(admin_chorus.url + "/v1/auth/register", json={"email": email, "password": USER_PASSWORD, "invite_code": code}, timeout=10)
    assert r.status_code == 201 and r.json()["role"] == name, r.text


def test_workers_with_their_tasks_and_live_queues(admin_chorus: Chorus, page: ChatPage):
    r = admin_chorus.http.post("/v1/batches", json={"prompt": f"{unique_tag()} slow [[fake tokens=60 rate=6]]", "models": ["fake"]})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_ids"][0]
    wait_task(admin_chorus.http, task_id, {"STARTED", "PROGRESS"})

    open_section(page, "workers")
    worker = row(page, "admin-worker", id="embedded")
    assert "ago" in cell(page, worker, "heartbeat")
    assert "fake" in cell(page, worker, "queues")
    # The task the worker holds now, found by a refresh.
    row(page, "worker-task", id=task_id, timeout=10)
    page.shot("workers")

    open_section(page, "queues")
    queues = {el.get_attribute("data-queue") for el in page.wait(lambda: page.all(tid("admin-queue")), 10, "queues")}
    assert {"fake", "fake2", "_tasks"} <= queues, queues
    for column in ("depth", "pending", "lag", "pending_tasks"):
        assert cell(page, row(page, "admin-queue", queue="fake"), column).isdigit()
    first = page.one(tid("live-stamp")).text
    page.wait(lambda: page.one(tid("live-stamp")).text not in ("", first), 15, "the queues to refresh by themselves")
    page.shot("queues")
    admin_chorus.http.post(f"/v1/tasks/{task_id}/cancel")


def test_inspect_and_replay_a_dead_letter(admin_chorus: Chorus, page: ChatPage):
    replayed_task = admin_chorus.dead_tasks[0]  # type: ignore[attr-defined]
    open_section(page, "dead-letters")
    letter = row(page, "dead-letter", task=replayed_task)
    letter_id = letter.get_attribute("data-id")
    assert "claimed 1 times without finishing" in cell(page, letter, "reason")
    letter.find_element(By.CSS_SELECTOR, tid("dead-letter-inspect")).click()
    detail = page.one(tid("dead-letter-detail"))
    page.wait(lambda: page.all(tid("dead-letter-payload")), 10, "the dead letter's detail")
    assert page.one(tid("dead-letter-payload")).text == f"task_id={replayed_task}"
    assert page.one(tid("dead-letter-task-state")).text == "FAILURE"
    assert "message" in page.one(tid("dead-letter-error")).text
    assert page.js("return document.activeElement === arguments[0]", detail), "the detail takes the focus"
    page.shot("dead-letter-inspected")

    page.one(tid("dead-letter-replay")).click()
    page.wait(lambda: page.one(tid("dead-letter-task-state")).text == "SUCCESS (replayed)", 60, "the replayed task to succeed")
    assert page.one(tid("dead-letter-error")).text == "none"
    done = admin_chorus.http.get(f"/v1/tasks/{replayed_task}").json()
    assert done["state"] == "SUCCESS" and done["result"]["content"] == answer(ABANDONED_TOKENS), done
    page.wait(lambda: not page.all(f'{tid("dead-letter")}[data-id="{letter_id}"]'), 10, "the replayed letter to leave the list")
    assert letter_id not in [d["id"] for d in admin_chorus.http.get("/v1/admin/dead-letters").json()["data"]]
    page.shot("dead-letter-replayed")


def test_purge_dead_letters_after_confirming(admin_chorus: Chorus, page: ChatPage):
    left = admin_chorus.dead_tasks[1]  # type: ignore[attr-defined]
    open_section(page, "dead-letters")
    row(page, "dead-letter", task=left)
    # One queue's: the other queue has none left (its letter was replayed).
    page.wait(lambda: len(Select(page.one(tid("dead-letters-queue"))).options) > 1, 10, "the queues")
    Select(page.one(tid("dead-letters-queue"))).select_by_value("fake")
    page.wait(lambda: "No dead letters" in page.one(tid("admin-view-dead-letters")).text, 10, "none in fake")
    assert not page.one(tid("dead-letters-purge"), visible=False).is_displayed(), "nothing to purge"
    Select(page.one(tid("dead-letters-queue"))).select_by_value("")
    row(page, "dead-letter", task=left)
    page.one(tid("dead-letters-purge")).click()
    dialog = page.one("dialog[open]")
    assert "Purge all 1 dead letter(s)?" in dialog.text
    page.shot("purge-confirmation")
    dialog.find_element(By.XPATH, ".//button[text()='Cancel']").click()
    page.wait(lambda: not page.all("dialog[open]"), 5, "the dialog to close")
    assert len(admin_chorus.http.get("/v1/admin/dead-letters").json()["data"]) == 1, "cancelled: nothing purged"

    page.one(tid("dead-letters-purge")).click()
    confirm(page)
    page.wait(lambda: not page.all(tid("dead-letter")), 10, "an empty list")
    assert "No dead letters" in page.one(tid("admin-view-dead-letters")).text
    assert admin_chorus.http.get("/v1/admin/dead-letters").json()["data"] == []
    assert admin_chorus.http.get(f"/v1/tasks/{left}").json()["state"] == "FAILURE", "a purged letter's task stays failed"
    page.shot("purged")


def test_filter_the_audit_log(admin_chorus: Chorus, page: ChatPage):
    me = next(u for u in admin_chorus.http.get("/v1/admin/users", params={"limit": 500}).json()["data"] if u["email"] == ADMIN_EMAIL)
    view = open_section(page, "audit")
    page.wait(lambda: page.all(tid("audit-entry")), 10, "audit entries")

    Select(page.one(tid("audit-method"))).select_by_value("PATCH")
    path = page.one(tid("audit-path"))
    path.send_keys("/v1/admin/users")
    page.one(tid("audit-apply")).click()
    page.wait(lambda: page.all(tid("audit-entry")) and all(
        e.get_attribute("data-method") == "PATCH" for e in page.all(tid("audit-entry"))), 10, "only PATCH entries")
    entries = page.all(tid("audit-entry"))
    assert all(e.get_attribute("data-path").startswith("/v1/admin/users/") for e in entries)
    assert len(entries) >= 2, "the role change and the disabling, made in the console"
    page.shot("audit-by-action")

    Select(page.one(tid("audit-user"))).select_by_value(me["id"])
    Select(page.one(tid("audit-method"))).select_by_value("")
    path.clear()
    page.one(tid("audit-apply")).click()
    page.wait(lambda: {e.get_attribute("data-user") for e in page.all(tid("audit-entry"))} == {me["id"]}, 10,
              "only the administrator's entries")
    assert any(e.get_attribute("data-path").endswith("/replay") for e in page.all(tid("audit-entry")))
    page.shot("audit-by-user")

    # A window that starts in the future holds nothing; one that ended before now holds the rest.
    page.js("""const set = (el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); };
        const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
        set(document.querySelector('[data-testid="audit-since"]'), local(new Date(Date.now() + 3600000)));""")
    page.one(tid("audit-apply")).click()
    page.wait(lambda: "No entries match" in view.text, 10, "no entries after now")
    page.shot("audit-by-time")
    page.one(tid("audit-clear")).click()
    page.wait(lambda: len({e.get_attribute("data-user") for e in page.all(tid("audit-entry"))}) >= 2, 10,
              "every user's entries again")
    # The same filters on the API, with the times in seconds.
    now = time.time()
    assert admin_chorus.http.get("/v1/admin/audit", params={"since": now + 3600}).json()["data"] == []
    assert admin_chorus.http.get("/v1/admin/audit", params={"until": now, "user_id": me["id"]}).json()["data"]
    bad = admin_chorus.http.get("/v1/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since", bad.text


def test_deployments(admin_chorus: Chorus, page: ChatPage):
    open_section(page, "deployments")
    for model in ("fake", "fake2"):
        deployment = row(page, "admin-deployment", model=model)
        assert cell(page, deployment, "state") == "closed"
        assert cell(page, deployment, "error_rate").endswith("%")
    page.shot("deployments")
    page.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        table_background = page.js("return getComputedStyle(document.querySelector('.admin-table th')).backgroundColor")
        rgb = [int(x) for x in table_background[table_background.index("(") + 1:table_background.index(")")].split(",")[:3]]
        assert sum(rgb) < 200, f"the console follows a dark system theme: {table_background}"
        page.shot("deployments-dark")
    finally:
        page.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})


def usage_rows(page: ChatPage, **attrs: str) -> list[Any]:
    selector = tid("admin-usage") + "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())
    return page.all(selector)


def number(text: str) -> float:
    return float(text.replace("$", "").replace(",", "").replace(" ms", ""))


def test_usage_by_day_model_and_user_with_cost(admin_chorus: Chorus, page: ChatPage):
    me = next(u for u in admin_chorus.http.get("/v1/admin/users", params={"limit": 500}).json()["data"] if u["email"] == ADMIN_EMAIL)
    user = create_user(admin_chorus)
    token = bearer_session(admin_chorus.url, user["email"], USER_PASSWORD)
    # The administrator: two turns on the priced model and one on an unpriced one; the user: one.
    for model in ("priced", "priced", "fake2"):
        r = admin_chorus.chat(f"{unique_tag()} usage [[fake tokens=5]]", model=model)
        assert r.status_code == 200, r.text
    r = httpx.post(admin_chorus.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                   json={"model": "priced", "messages": [{"role": "user", "content": f"{unique_tag()} mine [[fake tokens=5]]"}]})
    assert r.status_code == 200, r.text
    api = {(g["model"], g["user_id"]): g for g in admin_chorus.http.get(
        "/v1/admin/usage", params={"group_by": "model,user"}).json()["data"]}
    assert api[("priced", me["id"])]["requests"] == 2 and api[("priced", user["id"])]["requests"] == 1, api
    cost = api[("priced", me["id"])]["cost"]
    assert cost and cost > 0.01, f"the priced model's turns cost cents: {api}"
    today = time.strftime("%Y-%m-%d", time.gmtime())

    view = open_section(page, "usage")
    assert [b.is_selected() for b in (page.one(tid(f"usage-group-{d}")) for d in ("day", "model", "user", "key"))] == \
        [True, True, True, False], "by day, model and user at first"
    mine = row(page, "admin-usage", model="priced", user=me["id"])
    assert cell(page, mine, "day") == today
    assert cell(page, mine, "user") == ADMIN_EMAIL, "a user id is shown as the email"
    assert cell(page, mine, "requests") == "2"
    shown = cell(page, mine, "cost")
    assert shown.startswith("$") and abs(number(shown) - cost) <= cost * 0.05, (shown, cost)
    theirs = row(page, "admin-usage", model="priced", user=user["id"])
    assert cell(page, theirs, "user") == user["email"] and cell(page, theirs, "requests") == "1"
    unpriced = row(page, "admin-usage", model="fake2", user=me["id"])
    assert cell(page, unpriced, "cost") == "—", "a model without a price has no cost"
    total = page.one(tid("admin-usage-total"))
    rows = usage_rows(page)
    assert cell(page, total, "requests") == f"{sum(int(number(cell(page, r, 'requests'))) for r in rows):,}"
    assert cell(page, total, "day") == "Total"
    page.shot("usage")

    # One user's usage only.
    Select(page.one(tid("usage-user"))).select_by_value(user["id"])
    page.one(tid("usage-apply")).click()
    page.wait(lambda: {r.get_attribute("data-user") for r in usage_rows(page)} == {user["id"]}, 10, "only the user's rows")
    Select(page.one(tid("usage-user"))).select_by_value("")

    # By model alone (a new grouping shows at once): the priced model's three turns in one row.
    page.one(tid("usage-group-day")).click()
    page.one(tid("usage-group-user")).click()
    page.wait(lambda: usage_rows(page) and all(r.get_attribute("data-user") == "" for r in usage_rows(page)), 10, "rows by model")
    priced = row(page, "admin-usage", model="priced")
    assert cell(page, priced, "requests") == "3"
    assert [th.text for th in view.find_elements(By.CSS_SELECTOR, "thead th")][:2] == ["Model", "Requests"]
    page.shot("usage-by-model")

    # A range that ends before it starts is refused; one that starts tomorrow holds nothing.
    def set_day(testid: str, day: str) -> None:
        page.js("""const el = document.querySelector(`[data-testid="${arguments[0]}"]`); el.value = arguments[1];
            el.dispatchEvent(new Event('input', {bubbles: true}));""", testid, day)
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    set_day("usage-from", tomorrow)
    page.one(tid("usage-apply")).click()
    assert "before" in page.one(f'{tid("admin-view-usage")} .form-error').text, "To is still today"
    set_day("usage-to", time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400)))
    page.one(tid("usage-apply")).click()
    page.wait(lambda: "No usage" in view.text and not usage_rows(page), 10, "no usage from tomorrow")
    assert not page.one(f'{tid("admin-view-usage")} .form-error', visible=False).is_displayed()
    page.shot("usage-empty")
    assert page.js_errors() == []


def test_console_on_a_phone_and_by_keyboard(admin_chorus: Chorus, page: ChatPage):
    page.viewport(PHONE)
    try:
        page.d.get(page.url + "/#/admin/queues")
        page.one(tid("admin-view-queues"))
        row(page, "admin-queue", queue="fake")
        width = page.js("return window.innerWidth")
        assert page.js("return document.documentElement.scrollWidth") <= width, "nothing sticks out sideways"
        console_box = page.one(tid("admin-console")).rect
        assert console_box["x"] == 0 and console_box["width"] == width, f"the console fills the screen: {console_box}"
        tabs = page.one(".admin-tabs").rect
        assert tabs["x"] >= 0 and tabs["x"] + tabs["width"] <= width, tabs
        page.shot("phone-queues")
        page.one('.admin-top button[aria-label="Open sidebar"]').click()
        sidebar = page.one("#sidebar", visible=False)
        page.wait(lambda: page.js("return arguments[0].getBoundingClientRect().left", sidebar) >= 0, 5, "the sidebar to open")
        time.sleep(0.3)
        page.shot("phone-sidebar")
        page.one('button[aria-label="Close sidebar"]').click()
        open_section(page, "users")
        page.shot("phone-users")
        open_section(page, "usage")
        page.one(tid("admin-usage-total"))
        assert page.js("return document.documentElement.scrollWidth") <= width, "the usage table scrolls inside its box"
        page.shot("phone-usage")
    finally:
        page.viewport(DESKTOP)

    # Every control has a name, and the tabs are reached and followed with the keyboard.
    page.d.get(page.url + "/#/admin/users")
    page.wait(lambda: page.all(tid("admin-user")), 10, "users")
    for section in ("users", "dead-letters", "audit", "roles", "usage"):
        open_section(page, section)
        page.wait(lambda: not page.all(".admin-loading"), 10, "the section to load")
        unnamed = page.js("""return [...document.querySelectorAll('.admin button, .admin input, .admin select, .admin a[href]')]
            .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim() || el.closest('label')))
            .map((el) => el.outerHTML.slice(0, 80))""")
        assert unnamed == [], f"every control of {section} has a name: {unnamed}"
    tab = page.one(tid("admin-tab-queues"))
    page.js("arguments[0].focus()", tab)
    tab.send_keys(Keys.ENTER)
    page.one(tid("admin-view-queues"))
    assert page.d.current_url.endswith("#/admin/queues")
    assert page.js_errors() == []
