"""OpenID Connect sign-in (issue #15): a real test provider, the real service, the CLI.

The refusals (tampered tokens, unknown or disabled users, a higher role, replays) are attacks:
they live in ``tests/attacks/test_attack_oidc.py``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.client import connect
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.oidc import SECRET_ENV, load_oidc_config, role_problem
from alpr_workbench.store import Store
from oidc_fixtures import (
    CLIENT_SECRET,
    build_oidc_service,
    sign_in,
    stop_provider,
    write_oidc_config,
)
from service_fixtures import PASSPHRASE, stop_service

_SOURCES = (f"127.0.2.{n}" for n in itertools.count(10))
_POLICY_ROLES = {"analyst", "supervisor", "administrator"}


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    service, provider = build_oidc_service(tmp_path_factory.mktemp("oidc"))
    yield service, provider
    stop_service(service)
    stop_provider(provider)


def _events(service) -> pl.DataFrame:
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def test_sign_in_gives_a_working_session_as_the_mapped_user(oidc):
    service, provider = oidc
    attempt = sign_in(service, provider, next(_SOURCES))
    assert attempt.callback is not None and attempt.callback.status_code == 200
    assert attempt.callback.headers["cache-control"] == "no-store"
    assert attempt.redeem is not None and attempt.redeem.status_code == 200
    session = attempt.redeem.json()
    assert session["user_id"] == "t.analyst" and session["role"] == "analyst"
    with service.raw() as http:
        me = http.get("/v1/whoami", headers={"Authorization": f"Bearer {session['token']}"})
    assert me.status_code == 200 and me.json()["user_id"] == "t.analyst"

    events = _events(service).filter(pl.col("event_type") == "login")
    oidc_ok = events.filter(pl.col("query_json").str.contains('"service": "oidc"')
                            & (pl.col("outcome") == "allowed"))
    stages = {q.split('"stage": "')[1].split('"')[0] for q in oidc_ok["query_json"]}
    assert {"callback", "redeem"} <= stages and set(oidc_ok["user_id"]) == {"t.analyst"}


def test_the_authorization_url_carries_pkce_state_and_nonce(oidc):
    service, _ = oidc
    with service.raw(next(_SOURCES)) as http:
        started = http.get("/v1/oidc/start").json()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started["authorization_url"]).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43
    assert query["redirect_uri"].endswith("/v1/oidc/callback") and "openid" in query["scope"]
    assert len(started["flow_secret"]) >= 43


def test_cli_login_oidc_saves_a_session(oidc, tmp_path):
    """``alpr-workbench login --oidc``: print the URL, read the pasted one-time code."""
    service, provider = oidc
    session_file = tmp_path / "session.json"
    exe = Path(sys.executable).with_name("alpr-workbench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    cli = subprocess.Popen(
        [str(exe), "login", "--oidc", "--url", service.url, "--ca", str(service.cert),
         "--session-file", str(session_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "COLUMNS": "10000"},
    )
    assert cli.stdout is not None and cli.stdin is not None
    url = None
    for line in cli.stdout:
        if line.strip().startswith("https://"):
            url = line.strip()
            break
    assert url is not None, "the CLI printed no authorization URL"
    with provider.http() as browser:
        answer = browser.get(url)
    query = urllib.parse.urlsplit(answer.headers["location"]).query
    with service.raw() as http:
        page = http.get("/v1/oidc/callback", params=dict(urllib.parse.parse_qsl(query)))
    code = page.text.split('id="one-time-code">')[1].split("<")[0]
    out, _ = cli.communicate(code + "\n", timeout=60)
    assert cli.returncode == 0, out
    assert "Signed in as t.analyst" in out
    assert session_file.stat().st_mode & 0o777 == 0o600
    with connect(session_file=session_file) as client:
        assert client.whoami()["user_id"] == "t.analyst"


# The routes of a service without OIDC (404) are checked on tests/test_service.py's service:
# test_oidc_routes_answer_404_when_oidc_is_not_configured.


# -- the configuration ---------------------------------------------------------------------
class _FakeProvider:
    """Only what ``write_oidc_config`` reads (no server is needed to check the file)."""

    issuer = "https://idp.example.org/realms/pd"
    cert = Path(__file__)


def _home(tmp_path: Path) -> Path:
    (tmp_path / "service").mkdir(parents=True)
    return tmp_path


def test_config_is_read_and_validated(tmp_path):
    home = _home(tmp_path)
    write_oidc_config(home, _FakeProvider())
    config = load_oidc_config(home, roles=_POLICY_ROLES, environ={})
    assert config is not None and config.client_secret == CLIENT_SECRET
    assert config.roles["alpr-analysts"] == "analyst" and CLIENT_SECRET not in repr(config)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"issuer": "http://idp.example.org"}, "issuer must be an https URL"),
        ({"redirect_uri": "https://w.test/elsewhere"}, "redirect_uri must end in"),
        ({"client_id": ""}, "client_id must be a non-empty string"),
        ({"client_sercet_file": "x"}, "unknown setting"),
        ({"scopes": ["profile"]}, "including 'openid'"),
    ],
)
def test_a_wrong_config_is_an_error_naming_the_problem(tmp_path, changes, words):
    home = _home(tmp_path)
    write_oidc_config(home, _FakeProvider(), **changes)
    with pytest.raises(WorkbenchError, match=words):
        load_oidc_config(home, roles=_POLICY_ROLES, environ={})


def test_a_role_unknown_to_the_policy_is_refused(tmp_path):
    home = _home(tmp_path)
    write_oidc_config(home, _FakeProvider())
    with pytest.raises(WorkbenchError, match="not a policy role"):
        load_oidc_config(home, roles={"analyst"}, environ={})


def test_the_secret_file_must_be_private_and_the_environment_may_give_it(tmp_path):
    home = _home(tmp_path)
    path = write_oidc_config(home, _FakeProvider())
    (home / "service" / "oidc-client-secret").chmod(0o644)
    with pytest.raises(WorkbenchError, match="make it 0600"):
        load_oidc_config(home, roles=_POLICY_ROLES, environ={})
    path.write_text("\n".join(line for line in path.read_text().splitlines()
                              if not line.startswith("client_secret_file")) + "\n")
    with pytest.raises(WorkbenchError, match="no client secret"):
        load_oidc_config(home, roles=_POLICY_ROLES, environ={})
    config = load_oidc_config(home, roles=_POLICY_ROLES, environ={SECRET_ENV: "from env"})
    assert config is not None and config.client_secret == "from env"


def test_a_config_others_can_write_is_refused(tmp_path):
    home = _home(tmp_path)
    write_oidc_config(home, _FakeProvider()).chmod(0o666)
    with pytest.raises(WorkbenchError, match="not writable by group or others"):
        load_oidc_config(home, roles=_POLICY_ROLES, environ={})


def test_role_mapping_never_changes_a_role():
    assert role_problem(frozenset({"analyst"}), "analyst") is None
    assert "map to no workbench role" in str(role_problem(frozenset(), "analyst"))
    assert "several roles" in str(role_problem(frozenset({"analyst", "supervisor"}), "analyst"))
    assert "role 'analyst'" in str(role_problem(frozenset({"analyst"}), "supervisor"))
