"""What ``alpr-workbench demo`` does after the city is built: accounts, sign-in, the service.

Kept apart from ``cli/store.py`` so the demo's service part has one home.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from alpr_workbench.cli._common import console, err
from alpr_workbench.errors import WorkbenchError


def demo_sign_in(home: Path, *, port: int) -> bool:
    """Issue the demo accounts and print, per role, how to enrol, sign in and search.

    Returns
    -------
    bool
        True when the store is ready to serve (a demo store with its accounts).
    """
    from alpr_workbench.demo import prepare_demo_service

    try:
        prepared = prepare_demo_service(home)
    except WorkbenchError as exc:
        err.print(f"[yellow]No demo service accounts:[/] {exc}")
        return False
    url = f"https://127.0.0.1:{port}"
    ca = shlex.quote(str(prepared.certfile))
    console.print(
        f"\n[bold]Sign in to the workbench service[/] ({url}; certificate {prepared.certfile}). "
        "Each code works once, for 72 hours; `enroll` asks for a new password and shows the "
        "authenticator (TOTP) secret that `login` then asks a code of. Demo mode is not for "
        "real data: these are synthetic users of a synthetic city."
    )
    for account in prepared.accounts:
        typer.echo(f"\n# {account.role.replace('_', ' ')}: {account.user_id}")
        typer.echo(
            f"alpr-workbench enroll --url {url} --ca {ca} --user {account.user_id} "
            f"--code {account.enrolment_code}"
        )
        typer.echo(f"alpr-workbench login --url {url} --ca {ca} --user {account.user_id}")
        if account.search is not None:
            typer.echo("alpr-workbench search " + shlex.join(account.search))
        else:
            typer.echo("alpr-workbench whoami   # no open case of theirs to search in")
    typer.echo("")
    return True


def serve_demo(home: Path, *, port: int) -> None:
    """Run the service in the foreground (loopback, TLS): the data API on ``port``.

    The command-staff dashboard runs in the same process, on the next port.
    """
    from alpr_workbench.service.run import run_service

    dashboard_port = port + 1
    console.print(
        f"Starting the service on https://127.0.0.1:{port} and the dashboard on "
        f"https://127.0.0.1:{dashboard_port} (Ctrl-C to stop)"
    )
    run_service(home, port=port, dashboard_port=dashboard_port)
