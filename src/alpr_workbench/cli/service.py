"""The service commands (issue #15): init, service, enroll, login, logout, whoami.

``serve`` (cli/dashboard.py) starts the service with its data API and the dashboard;
``service`` is the API-only form of it, kept for scripts.
The other commands are clients: they hold a session token, never a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alpr_workbench.cli._common import DataDir, _fail, _home, console
from alpr_workbench.errors import WorkbenchError

Url = Annotated[str, typer.Option("--url", help="The service, e.g. https://127.0.0.1:8443.")]
Ca = Annotated[Path, typer.Option("--ca", help="The service's certificate, to pin.")]
Session = Annotated[
    Path | None,
    typer.Option("--session-file", help="Default: ~/.config/alpr-workbench/session.json."),
]


def init(
    admin_user: Annotated[str, typer.Option("--admin-user", help="First administrator's id.")],
    admin_name: Annotated[str, typer.Option("--admin-name", help="Their full name.")],
    data_dir: DataDir = None,
) -> None:
    """Create an empty store, its key store, the TLS certificate and the first administrator."""
    from alpr_workbench.service.initialize import init_workbench

    try:
        result = init_workbench(_home(data_dir), admin_user, admin_name)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Store created in {result.home}")
    console.print(f"Service certificate (give it to clients): {result.certfile}")
    console.print(
        f"One-time enrolment code for {result.admin_user_id} (shown once): "
        f"{result.enrolment_code}"
    )


def service(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8443,
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback host.")] = False,
    secret_file: Annotated[
        Path | None, typer.Option(help="File holding the key-store passphrase.")
    ] = None,
) -> None:
    """Run the service's data API only (no dashboard); `serve` runs both."""
    from alpr_workbench.service.run import run_service

    try:
        run_service(_home(data_dir), host=host, port=port, allow_remote=allow_remote,
                    secret_file=secret_file)
    except WorkbenchError as exc:
        raise _fail(exc) from exc


def enroll(
    url: Url,
    ca: Ca,
    user: Annotated[str, typer.Option("--user", help="Your user id.")],
    code: Annotated[str, typer.Option("--code", help="Your one-time enrolment code.")],
) -> None:
    """Use an enrolment code: choose a password, get your authenticator (TOTP) secret."""
    from alpr_workbench.client import Client

    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        result = Client.enroll(url, user, code, password, ca)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"TOTP secret: {result.totp_secret}")
    console.print(f"otpauth URI: {result.otpauth_uri}")
    import segno

    segno.make(result.otpauth_uri).terminal(compact=True)


def login(url: Url, ca: Ca, user: Annotated[str, typer.Option("--user")],
          session_file: Session = None) -> None:
    """Sign in (password and authenticator code); the session is saved with mode 0600."""
    from alpr_workbench.client import Client

    password = typer.prompt("Password", hide_input=True)
    totp = typer.prompt("Authenticator code")
    try:
        client = Client.login(url, user, password, totp.strip(), ca, session_file=session_file)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    client.close()
    console.print(f"Signed in as {client.user_id}; session saved to {client.session_file}")


def logout(session_file: Session = None) -> None:
    """End the saved session on the service."""
    from alpr_workbench.client import connect

    try:
        connect(session_file=session_file).logout()
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print("Signed out")


def whoami(session_file: Session = None) -> None:
    """Show who the saved session belongs to, as the service sees it."""
    from alpr_workbench.client import connect

    try:
        with connect(session_file=session_file) as client:
            me = client.whoami()
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"{me['user_id']} ({me['role']}, {me['organization']})")
