"""The ``serve`` command: the workbench service, its data API and the dashboard, one process.

Since issue #15 the dashboard is served by the service process (the only holder of the keys)
and signs users in with the service's accounts (password and authenticator code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alpr_workbench.cli._common import DataDir, _fail, _home
from alpr_workbench.errors import WorkbenchError

ServePort = Annotated[int, typer.Option(min=1, max=65535, help="Port of the data API.")]
DashboardPort = Annotated[
    int, typer.Option(min=0, max=65535, help="Port of the dashboard (0 picks a free one).")
]
Host = Annotated[str, typer.Option(help="Address to listen on (loopback).")]
AllowRemote = Annotated[bool, typer.Option(help="Allow a non-loopback host.")]
SecretFile = Annotated[
    Path | None, typer.Option(help="File holding the key-store passphrase.")
]


def _serve(
    home: Path,
    *,
    port: int = 8443,
    address: str = "127.0.0.1",
    show: bool = False,
    tiles: bool = False,
    dashboard_port: int | None = 8444,
    allow_remote: bool = False,
    secret_file: Path | None = None,
    read_cache_mb: int | None = None,
    flight_port: int = 0,
) -> None:
    """Run the service (API, and the dashboard unless ``dashboard_port`` is None)."""
    from alpr_workbench.service.run import run_service

    run_service(
        home,
        host=address,
        port=port,
        allow_remote=allow_remote,
        secret_file=secret_file,
        dashboard_port=dashboard_port,
        tiles=tiles,
        show=show,
        read_cache_mb=read_cache_mb,
        flight_port=flight_port,
    )


def serve(
    data_dir: DataDir = None,
    host: Host = "127.0.0.1",
    port: ServePort = 8443,
    dashboard_port: DashboardPort = 8444,
    dashboard: Annotated[
        bool, typer.Option(help="Serve the dashboard too (--no-dashboard: the data API only).")
    ] = True,
    allow_remote: AllowRemote = False,
    secret_file: SecretFile = None,
    show: Annotated[bool, typer.Option(help="Open a browser on the dashboard.")] = False,
    tiles: Annotated[bool, typer.Option(help="Online map tiles (off: works offline).")] = False,
    read_cache_mb: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Memory (MiB) for decrypted day files, so repeated searches skip decryption; "
            "0: off. Default 1024.",
        ),
    ] = None,
    flight_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535,
            help="Port for search results over Arrow Flight (gRPC, TLS); 0 picks a free one, "
            "which the API tells clients.",
        ),
    ] = 0,
) -> None:
    """Run the workbench service: the only holder of the keys; data API and dashboard (HTTPS).

    Users sign in with their workbench account (password and authenticator code); the
    dashboard shows each user in good standing the pages the role's permissions allow (the
    program's aggregates; the hit queue for those who work hits).
    """
    try:
        _serve(
            _home(data_dir),
            port=port,
            address=host,
            show=show,
            tiles=tiles,
            dashboard_port=dashboard_port if dashboard else None,
            allow_remote=allow_remote,
            secret_file=secret_file,
            read_cache_mb=read_cache_mb,
            flight_port=flight_port,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
