"""Attacks on ``alpr-workbench search`` as a client of the service (issue #15).

Each test is the attack, run against a real service process over a demo city: the command
line must not let anyone choose who is searching (no ``--user``, no ``ALPR_WORKBENCH_USER``),
and a stolen, forged, revoked or damaged session file must fail clearly, never fall back to
searching in-process.
"""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.store import Store
from demo_service_fixtures import start_demo_service
from service_fixtures import stop_service

runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("search-attack") / "home"
    built = runner.invoke(
        app, ["demo", "--data-dir", str(home), "--days", "2", "--scale", "0.05", "--no-serve",
              "--frames", "0"]  # rendered frames play no part in these attacks
    )
    assert built.exit_code == 0, built.output
    running = start_demo_service(home)
    yield running
    stop_service(running.service)


@pytest.fixture(scope="module")
def analyst(served, tmp_path_factory):
    session = tmp_path_factory.mktemp("analyst") / "session.json"
    return served.sign_in("analyst", session), session


def _arg(args: tuple[str, ...], name: str) -> str:
    return args[args.index(name) + 1]


def _search(session, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["search", "--session-file", str(session), *args], env=env)


def _event_id(output: str) -> str:
    found = re.search(r"audit record (evt-[\w-]+)", " ".join(output.split()))
    assert found is not None, output
    return found.group(1)


def _audited(served, event_id: str) -> dict[str, object]:
    store = Store.open(served.service.home)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events().filter(pl.col("event_id") == event_id)
    assert events.height == 1
    return events.row(0, named=True)


def test_search_as_someone_else_with_user_is_not_an_option(served, analyst):
    account, session = analyst
    victim = served.accounts["investigator"]
    env = {"ALPR_WORKBENCH_SESSION": str(session),  # the attacker's own session
           "ALPR_WORKBENCH_HOME": str(served.service.home)}  # fmt: skip
    result = runner.invoke(app, ["search", "--user", victim.user_id, *victim.search], env=env)
    assert result.exit_code == 2 and "No such option: --user" in result.output
    assert "read(s)" not in result.output


def test_alpr_workbench_user_in_the_environment_changes_nothing(served, analyst):
    account, session = analyst
    victim = served.accounts["investigator"]
    case = _arg(victim.search, "--case")
    store = Store.open(served.service.home)
    cases = store.tables.read("cases").filter(pl.col("case_number") == case)
    assert account.user_id not in cases["assigned_user_ids"][0]  # the victim's case only
    env = {"ALPR_WORKBENCH_USER": victim.user_id}
    stolen = _search(session, *victim.search, env=env)
    assert stolen.exit_code == 3 and "not assigned" in stolen.output
    assert _audited(served, _event_id(stolen.output))["user_id"] == account.user_id
    own = _search(session, *account.search, env=env)
    assert own.exit_code == 0, own.output
    row = _audited(served, _event_id(own.output))
    assert row["user_id"] == account.user_id and row["outcome"] == "allowed"


def test_a_forged_session_token_is_refused_clearly(served, analyst, tmp_path):
    account, session = analyst
    forged = json.loads(session.read_text())
    forged["token"] = "A" * 43
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    result = _search(forged_file, *account.search)
    assert result.exit_code == 2
    assert "forged" in result.output and "alpr-workbench login" in result.output
    assert "read(s)" not in result.output


def test_a_signed_out_session_file_is_refused_clearly(served, tmp_path):
    session = tmp_path / "session.json"
    account = served.sign_in("supervisor", session)
    kept = tmp_path / "kept.json"
    kept.write_text(session.read_text())  # a copy taken before signing out
    assert runner.invoke(app, ["logout", "--session-file", str(session)]).exit_code == 0
    assert account.search is not None
    result = _search(kept, *account.search)
    assert result.exit_code == 2
    assert "revoked" in result.output and "alpr-workbench login" in result.output


def test_a_damaged_or_missing_session_file_says_how_to_sign_in(analyst, tmp_path):
    account, _ = analyst
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    for path in (damaged, tmp_path / "missing.json"):
        result = _search(path, *account.search)
        assert result.exit_code == 2 and "alpr-workbench login" in result.output
        assert "read(s)" not in result.output


def test_a_signed_in_notebook_searches_only_as_the_session_user(served, analyst):
    from alpr_workbench.errors import WorkbenchError
    from alpr_workbench.governance.gate import SearchRefused
    from alpr_workbench.workspace import open_case_search, open_workspace

    account, session = analyst
    victim = served.accounts["investigator"]
    with open_workspace(served.service.home) as workspace:
        searcher = open_case_search(workspace, session_file=session)
        try:
            assert searcher.via_service and searcher.user == account.user_id
            with pytest.raises(WorkbenchError, match="searches run as"):
                searcher.act_as(victim.user_id)
            plate = _arg(account.search, "--plate")
            rows = searcher(case_number=_arg(account.search, "--case"),
                            reason_code=_arg(account.search, "--reason"), plate=plate)  # fmt: skip
            assert rows.height > 0 and set(rows["plate"]) == {plate}
            with pytest.raises(SearchRefused) as refused:
                searcher(case_number=_arg(victim.search, "--case"),
                         reason_code=_arg(victim.search, "--reason"), plate=plate)  # fmt: skip
            assert "not assigned" in refused.value.reason
            assert _audited(served, refused.value.event_id)["user_id"] == account.user_id
        finally:
            searcher.close()
