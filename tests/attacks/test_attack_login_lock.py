"""Sign-ins do not queue behind searches (issue #15: "login takes the exclusive lock").

Sign-in, enrolment and sign-out took the service's exclusive lock, so each waited for every
search in flight and held back every search while it hashed a password (argon2id, memory-hard):
anonymous callers spreading wrong passwords over many addresses could stall all searches. They
now share the lock like searches (the account store and session table serialise their own
writes); administrative changes still run alone. A search is held in flight here by holding
the shared lock the way a search does; each sign-in request must still be answered.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.app import create_app
from alpr_workbench.service.tls import tls_files
from alpr_workbench.store import Store
from service_fixtures import PASSPHRASE, build_home, serve_in_thread


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("login-lock") / "home"
    _, cert = build_home(home)
    store = Store.open(home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        app = create_app(store, audit=log)
        files = tls_files(home)
        running = serve_in_thread(
            lambda port: app, ssl_certfile=str(files.certfile), ssl_keyfile=str(files.keyfile),
            log_level="warning", access_log=False)
        try:
            yield app.state.service, f"https://127.0.0.1:{running.port}", cert
        finally:
            running.stop()


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v1/login", {"user_id": "t.analyst", "password": "not the password", "totp": "000000"},
     401),
    ("/v1/enroll", {"user_id": "t.other", "code": "not-a-code", "new_password": "x" * 20}, 400),
])
def test_a_sign_in_is_answered_while_a_search_is_in_flight(served, path, body, status):
    svc, url, cert = served
    with svc.lock.shared(), httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(cert)), timeout=15
    ) as http:
        answered = http.post(path, json=body)  # waited for the search to end before the fix
    assert answered.status_code == status and answered.json()["event_id"]
