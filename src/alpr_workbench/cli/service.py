"""The service commands (issue #15): init, enroll, login, logout, whoami.

``serve`` (cli/dashboard.py) starts the service: its data API and the dashboard, or the API
alone with ``--no-dashboard``; it is the one command that runs the service.
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
    key_root: Annotated[
        str,
        typer.Option(
            "--key-root",
            help="Where the key root lives: 'file' (keystore.json) or 'pkcs11' (a token; a "
            "purge then reaches every copy of the key store). PIN: ALPR_WORKBENCH_PKCS11_PIN "
            "or ALPR_WORKBENCH_PKCS11_PIN_FILE.",
        ),
    ] = "file",
    pkcs11_module: Annotated[
        str, typer.Option("--pkcs11-module", help="The PKCS#11 module (library) path.")
    ] = "/usr/lib/softhsm/libsofthsm2.so",
    pkcs11_token: Annotated[
        str | None, typer.Option("--pkcs11-token", help="Label of the token (--key-root pkcs11).")
    ] = None,
) -> None:
    """Create an empty store, its key store, the TLS certificate and the first administrator."""
    from alpr_workbench.keys_pkcs11 import Pkcs11Config
    from alpr_workbench.service.initialize import init_workbench

    root = None
    if key_root == "pkcs11":
        if not pkcs11_token:
            raise _fail(WorkbenchError("--key-root pkcs11 needs --pkcs11-token LABEL"))
        root = Pkcs11Config(token_label=pkcs11_token, module=pkcs11_module)
    elif key_root != "file":
        raise _fail(WorkbenchError(f"--key-root must be 'file' or 'pkcs11', not {key_root!r}"))
    try:
        result = init_workbench(_home(data_dir), admin_user, admin_name, key_root=root)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Store created in {result.home}")
    if root is None:
        console.print(
            "Key root: keys/keystore.json. A purge does not reach older copies of that file: "
            "destroy them too (or use --key-root pkcs11)."
        )
    else:
        console.print(f"Key root: PKCS#11 token {root.token_label!r} ({root.module})")
    console.print(f"Service certificate (give it to clients): {result.certfile}")
    console.print(
        f"One-time enrolment code for {result.admin_user_id} (shown once): "
        f"{result.enrolment_code}"
    )


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


def login(url: Url, ca: Ca, user: Annotated[str | None, typer.Option("--user")] = None,
          session_file: Session = None,
          oidc: Annotated[bool, typer.Option(
              "--oidc", help="Sign in through the department's identity provider (OpenID "
              "Connect): open the printed URL, then paste the one-time code it shows.")] = False,
          ) -> None:
    """Sign in (password and authenticator code, or --oidc); the session is saved with mode 0600."""
    from alpr_workbench.client import Client

    if oidc:
        if user is not None:
            raise _fail(WorkbenchError("--oidc takes no --user: the identity provider says who"))
        _login_oidc(url, ca, session_file)
        return
    if user is None:
        raise _fail(WorkbenchError("give --user (or --oidc to use your identity provider)"))
    password = typer.prompt("Password", hide_input=True)
    totp = typer.prompt("Authenticator code")
    try:
        client = Client.login(url, user, password, totp.strip(), ca, session_file=session_file)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    client.close()
    console.print(f"Signed in as {client.user_id}; session saved to {client.session_file}")


def _login_oidc(url: str, ca: Path, session_file: Path | None) -> None:
    """``login --oidc``: start the flow, print its URL, redeem the pasted one-time code.

    The one-time code works only with this run's flow secret, once, for two minutes
    (docs/decisions/0006-oidc-sign-in.md).
    """
    import json

    import httpx

    from alpr_workbench._fsutil import atomic_write_bytes
    from alpr_workbench.client import _http, _raise_for, default_session_file

    ca_pem = Path(ca).read_text()
    try:
        with _http(url, ca_pem) as http:
            started = http.get("/v1/oidc/start")
            _raise_for(started)
            flow = started.json()
            console.print("Open this address in your browser and sign in:")
            print(flow["authorization_url"], flush=True)  # one line, never wrapped
            code = typer.prompt("One-time code shown after sign-in").strip()
            answer = http.post("/v1/oidc/redeem",
                               json={"flow_secret": flow["flow_secret"], "code": code})
            _raise_for(answer)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise _fail(WorkbenchError(f"cannot reach the service: {exc}")) from exc
    doc = answer.json()
    path = Path(session_file) if session_file is not None else default_session_file()
    payload = {"url": url, "token": doc["token"], "user_id": doc["user_id"], "ca_pem": ca_pem,
               "expires_at": doc["expires_at"]}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(path, json.dumps(payload, indent=1).encode(), mode=0o600)
    console.print(f"Signed in as {doc['user_id']}; session saved to {path}")


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
