"""A real service over a data directory (demo or init) with users signed in, for CLI tests.

Setting up is the test's side: it holds the store's secret (like ``build_home``), adds users
and issues their enrolment codes. Everything the tests then do as a user goes through the
service, with the session file ``alpr-workbench login`` would have saved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import polars as pl
from typer.testing import CliRunner, Result

from alpr_workbench.cli import app
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.registry import get_user, user_problem
from alpr_workbench.policy import load_policy
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.service.tls import make_loopback_certificate, tls_files
from alpr_workbench.store import Store
from service_fixtures import PASSWORD, Service, enroll_and_login, start_service

runner = CliRunner()
_TITLES = {"administrator": "IT Administrator", "auditor": "Auditor", "analyst": "Crime Analyst",
           "supervisor": "Sergeant"}


def build_demo_home(home: Path, *, end: dt.date | None = None, days: int = 2) -> Path:
    """A small demo city in ``home`` (no service, no frames), ending yesterday by default."""
    end = end or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    result = runner.invoke(
        app,
        [
            "demo", "--data-dir", str(home), "--days", str(days), "--scale", "0.05",
            "--no-serve", "--frames", "0", "--end-date", end.isoformat(),
        ],
    )
    assert result.exit_code == 0, result.output
    return home


def said(result: Result) -> str:
    """A command's output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def events(home: Path, event_type: str) -> pl.DataFrame:
    """The audit log's events of one type (read with the store's secret, as a test may)."""
    store = Store.open(home)
    return AuditLog.open(home, store.keystore).events().filter(
        pl.col("event_type") == event_type
    )


def serve(home: Path, *, passphrase: str | None = None) -> Service:
    """Start the real service over ``home`` (a demo store's passphrase file by default)."""
    cert = tls_files(home).certfile
    if not cert.is_file():
        make_loopback_certificate(home)
    return start_service(home, "", cert, passphrase=passphrase)


def add_users(home: Path, roles: dict[str, str], *, passphrase: str | None = None) -> None:
    """Add users in good standing (user id -> role), as the store's owner would."""
    store = Store.open(home, passphrase=passphrase)
    users = store.tables.read("users")
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"user_id": u, "full_name": f"Test {u}", "role": role,
         "organization": "Burbank Police Department", "organization_type": "ca_local_agency",
         "job_title": _TITLES.get(role, "Detective"), "is_active": True, "approved_by": "setup",
         "approved_at": now - dt.timedelta(days=3), "trained_at": now - dt.timedelta(days=3)}
        for u, role in roles.items()
    ]
    frame = pl.DataFrame(rows).with_columns(
        [pl.lit(None).alias(c) for c in users.columns if c not in rows[0]]
    ).select(users.columns).cast(dict(users.schema))
    store.tables.append("users", frame)


def member(home: Path, role: str, *, passphrase: str | None = None) -> str:
    """A user of ``role`` in good standing."""
    store, now = Store.open(home, passphrase=passphrase), dt.datetime.now(dt.UTC)
    users = store.tables.read("users").filter(pl.col("role") == role)["user_id"]
    return next(
        u for u in users if user_problem(get_user(store, u), policy=load_policy(), now=now) is None
    )


def sign_in(service: Service, user_ids: Iterable[str], folder: Path, *,
            passphrase: str | None = None) -> dict[str, Path]:
    """Enrol and sign in each user; return their saved session files."""
    store = Store.open(service.home, passphrase=passphrase)
    accounts = AccountStore(service.home, store.keystore)
    sessions = {}
    for user_id in user_ids:
        code = accounts.issue_enrolment(user_id, issued_by="test-setup")
        client = enroll_and_login(service, user_id, code, folder / f"{user_id}.json")
        client.close()
        sessions[user_id] = folder / f"{user_id}.json"
    return sessions


def as_user(session: Path, *args: str) -> Result:
    """Run ``alpr-workbench ARGS`` with ``session``'s saved session (no --user anywhere)."""
    return runner.invoke(app, list(args), env={"ALPR_WORKBENCH_SESSION": str(session)})


__all__ = ["PASSWORD", "ServedHomes", "add_users", "as_user", "member", "serve", "sign_in"]


class ServedHomes:
    """Services over test homes, started on first use, with a session per user.

    A user the service will not enrol (unknown, federal, separated...) gets no session: the
    command then runs with a session file that does not exist, as such a user would have to.
    """

    def __init__(self) -> None:
        self._served: dict[Path, tuple[Service, dict[str, Path]]] = {}

    def run(self, home: Path, user: str, *args: str) -> Result:
        """Run ``alpr-workbench ARGS`` signed in as ``user`` to ``home``'s service."""
        from alpr_workbench.client import ServiceError

        if home not in self._served:
            self._served[home] = (serve(home), {})
        service, sessions = self._served[home]
        if user not in sessions:
            try:
                sessions[user] = sign_in(service, [user], home.parent)[user]
            except ServiceError:
                sessions[user] = home.parent / f"{user}.no-session.json"
        return runner.invoke(app, [*args, "--session-file", str(sessions[user])])

    def stop(self, home: Path) -> None:
        """Stop ``home``'s service, if one was started."""
        from service_fixtures import stop_service

        served = self._served.pop(home, None)
        if served is not None:
            stop_service(served[0])
