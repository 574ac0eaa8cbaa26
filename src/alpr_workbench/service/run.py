"""Start the service: uvicorn over TLS, loopback unless the operator says otherwise.

The key-encryption secret comes from the service's own environment
(``ALPR_WORKBENCH_PASSPHRASE`` or ``ALPR_WORKBENCH_KEK``) or from a file the operator names
(``--secret-file``), never from a client. Run it as ``alpr-workbench service`` or
``python -m alpr_workbench.service``.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

from alpr_workbench.errors import WorkbenchError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "check_bind_host", "main", "run_service"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443


def check_bind_host(host: str, *, allow_remote: bool = False) -> None:
    """Refuse a non-loopback address unless ``allow_remote`` is given.

    Raises
    ------
    WorkbenchError
        For an address other clients could reach, without ``allow_remote``.

    Examples
    --------
    >>> check_bind_host("127.0.0.1"), check_bind_host("localhost")
    (None, None)
    >>> check_bind_host("0.0.0.0")
    Traceback (most recent call last):
    ...
    alpr_workbench.errors.WorkbenchError: refusing to listen on 0.0.0.0: ...
    """
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise WorkbenchError(
            f"refusing to listen on {host}: it is not a loopback address; give "
            "--allow-remote (and a certificate for that name) to serve other machines"
        )


def _read_secret(secret_file: Path | None) -> str | None:
    if secret_file is None:
        return None
    text = Path(secret_file).read_text().strip()
    if not text:
        raise WorkbenchError(f"{secret_file} is empty")
    return text


def run_service(
    home: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    secret_file: Path | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> None:
    """Open the store with the service's secret and serve the API until interrupted.

    Parameters
    ----------
    home
        The data directory (made by ``alpr-workbench init``).
    host, port
        Where to listen (default ``127.0.0.1:8443``).
    allow_remote
        Allow a non-loopback ``host``.
    secret_file
        A file holding the key-store passphrase (otherwise the environment's).
    certfile, keyfile
        The operator's certificate and key (default: the one made at init).

    Raises
    ------
    WorkbenchError
        For a refused host, a missing certificate, or a store that does not open.
    """
    check_bind_host(host, allow_remote=allow_remote)
    from alpr_workbench.service.tls import tls_files

    if (certfile is None) != (keyfile is None):
        raise WorkbenchError("give both --certfile and --keyfile, or neither")
    files = tls_files(home)
    cert = Path(certfile) if certfile is not None else files.certfile
    key = Path(keyfile) if keyfile is not None else files.keyfile
    if not cert.is_file() or not key.is_file():
        raise WorkbenchError(f"no TLS certificate at {cert}: run `alpr-workbench init` first")

    import uvicorn

    from alpr_workbench.service.app import create_app
    from alpr_workbench.store import Store

    store = Store.open(Path(home), passphrase=_read_secret(secret_file))
    app = create_app(store)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    print(f"alpr-workbench service on https://{host}:{port} (certificate {cert})", flush=True)
    uvicorn.Server(config).run()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alpr_workbench.service --data-dir D [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog="alpr_workbench.service", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--secret-file", type=Path)
    parser.add_argument("--certfile", type=Path)
    parser.add_argument("--keyfile", type=Path)
    args = parser.parse_args(argv)
    try:
        run_service(
            args.data_dir,
            host=args.host,
            port=args.port,
            allow_remote=args.allow_remote,
            secret_file=args.secret_file,
            certfile=args.certfile,
            keyfile=args.keyfile,
        )
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
