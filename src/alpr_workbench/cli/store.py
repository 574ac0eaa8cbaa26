"""The store commands: ``demo``, ``purge``, ``verify`` and ``ingest``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alpr_workbench.cli._common import DataDir, _fail, _home, console, err
from alpr_workbench.cli.dashboard import _serve
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from alpr_workbench.client import Client


def demo(
    data_dir: DataDir = None,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Days of traffic to simulate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic city.")] = 7,
    scale: Annotated[float, typer.Option(min=0.001, max=10.0, help="Traffic multiplier.")] = 1.0,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Start the service (and dashboard) after."),
    ] = True,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="The service's port (loopback).")
    ] = 8443,
    end_date: Annotated[
        str | None, typer.Option("--end-date", help="Last simulated day (default: yesterday).")
    ] = None,
    frames: Annotated[
        int,
        typer.Option(
            "--frames",
            min=0,
            max=10_000,
            help="Reads of the last day that the recognition models read from rendered frames.",
        ),
    ] = 24,
    retention_days: Annotated[
        int,
        typer.Option(
            "--retention-days",
            help="Retention signed into a new store's department settings (default 30).",
        ),
    ] = 30,
    key_root: Annotated[
        str,
        typer.Option(
            "--key-root",
            help="A new store's key root: 'file' or 'softhsm' (a SoftHSM2 token in the data "
            "directory; a purge then reaches every key-store copy).",
        ),
    ] = "file",
) -> None:
    """Build the synthetic city (the embedded default) in an encrypted data directory.

    Then make it serveable: the service's certificate and one demo account per role, with
    the exact commands to enrol, sign in and search; then run the service (loopback, TLS)
    until interrupted, unless ``--no-serve``. Demo mode is not for real data.
    """
    from alpr_workbench.demo import build_demo

    home = _home(data_dir)
    try:
        last_day = dt.date.fromisoformat(end_date) if end_date else None
    except ValueError as exc:
        raise _fail(WorkbenchError(f"--end-date {end_date!r} is not a date (YYYY-MM-DD)")) from exc

    from alpr_workbench.governance.operator import operator_lock, operator_run

    console.print(f"Building the synthetic city in [bold]{home}[/] ({days} days, seed {seed})")
    try:
        # An operator tool: it holds the data directory (refused while its service runs) and
        # leaves an ``operator`` audit record; the lock is let go before the service starts.
        (home / "store").mkdir(parents=True, exist_ok=True, mode=0o700)
        with operator_lock(home, "demo"), Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("Encrypting and storing reads (days)", total=days)
            summary = build_demo(
                home,
                days=days,
                seed=seed,
                scale=scale,
                end_date=last_day,
                recognized_frames=frames,
                retention_days=retention_days,
                on_progress=lambda done, total: progress.update(task, completed=done),
                key_root=key_root,
            )
            with operator_run(home, "demo", locked=True) as run:
                run.record(
                    f"built the synthetic city: {summary.start_date}..{summary.end_date}, "
                    f"{summary.reads_added} reads added",
                    details={"days": days, "seed": seed, "scale": scale},
                )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    table = Table(title="Synthetic city built", show_header=False)
    for label, value in [
        ("Period", f"{summary.start_date} .. {summary.end_date}"),
        ("Networks / cameras", f"{summary.networks} / {summary.cameras}"),
        ("Reads stored (added now)", f"{summary.reads_stored:,} ({summary.reads_added:,})"),
        ("Hotlist hits", f"{summary.hits:,}"),
        ("Vehicles recovered", f"{summary.recoveries}"),
        ("Users / cases", f"{summary.users} / {summary.cases}"),
        ("Searches logged", f"{summary.searches:,}"),
        ("Improper items planted for the audit", f"{summary.planted_improper}"),
        (
            "Reads from rendered frames (read exactly)",
            f"{summary.recognized_frames} ({summary.recognized_exact})",
        ),
    ]:
        table.add_row(label, value)
    console.print(table)
    from alpr_workbench.cli._demo import demo_sign_in, serve_demo

    if summary.example_search:
        console.print("Try a case-gated search (it is audited), signed in as a demo user:")
    ready = demo_sign_in(home, port=port)
    if summary.passphrase_file is not None:
        console.print(
            f"[yellow]Demo mode:[/] the key store passphrase was generated at random and kept in "
            f"{summary.passphrase_file} (mode 0600). Demo mode is not for real data: for real "
            "data set ALPR_WORKBENCH_PASSPHRASE (or ALPR_WORKBENCH_KEK) before creating a store."
        )
    if serve and ready:
        try:
            serve_demo(home, port=port)
        except WorkbenchError as exc:
            raise _fail(exc) from exc
    elif serve:
        _serve(home, port=5006, address="127.0.0.1", show=False, tiles=False)


def purge(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Purge relative to this date (YYYY-MM-DD; default today, UTC)."
        ),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(min=1, max=3650, help="A longer retention than configured (never shorter)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the days and reads it would shred; shred none.")
    ] = False,
    session_file: Session = None,
) -> None:
    """Crypto-shred every day of reads older than the retention period (legal holds stay).

    Through the service, as the signed-in user (``alpr-workbench login`` first; ``purge``).
    """
    from alpr_workbench.cli._session import as_session_user

    try:
        day = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise _fail(WorkbenchError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")) from exc
    done = as_session_user(
        session_file, lambda c: c.purge(as_of=day, retention_days=retention_days, dry_run=dry_run)
    )
    if done["dry_run"]:
        table = Table(
            title=f"Dry run: days older than {done['retention_days']} days before {done['as_of']}"
        )
        table.add_column("day")
        table.add_column("reads", justify="right")
        for when, reads in done["days"]:
            table.add_row(when, f"{reads:,}")
        console.print(table)
        console.print(
            f"{len(done['days'])} day(s), {done['reads']:,} reads would be shredded; "
            "nothing was shredded."
        )
        return
    days = done["days_purged"]
    console.print(
        f"Purged {len(days)} day(s) older than {done['retention_days']} days before "
        f"{done['as_of']}: {done['rows_destroyed']:,} reads crypto-shredded "
        f"({done['rows_kept_under_hold']:,} kept under {len(done['hold_ids'])} legal hold(s))."
    )
    if days:
        console.print(f"Days: {days[0]} .. {days[-1]}")
    if done.get("warning"):
        err.print(f"[bold yellow]WARNING:[/] {done['warning']}")


def verify(data_dir: DataDir = None) -> None:
    """Check the store's index, every manifest and every file; exit non-zero on any problem.

    A day or table whose manifest is missing, emptied, altered, moved, swapped or an older
    copy is named; so is an index older than the key store's witness. Purged days are not
    missing: the purge removed them from the index. An ingest whose "started" audit record
    has no outcome (its writer was killed) is named too, with whether its reads are stored.

    An operator tool, run as the service account: it needs the key-store secret, is refused
    while the service runs (it holds the data directory), and leaves an ``operator`` audit
    record naming the OS account that ran it.
    """
    from rich.markup import escape

    from alpr_workbench.governance.operator import operator_run
    from alpr_workbench.ingest import interrupted_ingests

    try:
        with operator_run(_home(data_dir), "verify") as run:
            problems = run.store.verify()
            interrupted = []
            if not problems:
                interrupted = interrupted_ingests(run.audit.events(), run.store.reads.batch_ids())
                days, holds = len(run.store.reads.days()), len(run.store.reads.hold_ids())
            result = (
                f"{len(problems)} problem(s): {problems[0]}" if problems
                else f"store sound: {days} day partition(s), {holds} legal hold(s); "
                f"{len(interrupted)} interrupted ingest(s)"
            )
            run.record(result)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    for problem in problems:
        err.print(f"[red]{escape(problem)}[/]")
    if problems:
        raise typer.Exit(code=1)
    for ingest in interrupted:
        err.print(f"[yellow]interrupted:[/] {escape(ingest.describe())}")
    console.print(
        f"Store sound: {days} day partition(s), {holds} legal hold(s); the index, every "
        "manifest and every file authenticate."
    )


def ingest(
    file: Annotated[
        Path,
        typer.Argument(help="CSV of reads: columns as in data_schema/reads, or a vendor's read "
                       "export (see --profile)."),
    ],
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="The export's read profile (read_profiles.yaml), e.g. "
                     "openalpr_webserver_group; default: recognised from the header."),
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option("--camera", help="Camera id of every read, for an export that names no "
                     "camera (as in the cameras table)."),
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option("--time-zone", help="Zone of export times that carry no offset (e.g. "
                     "America/Los_Angeles), where the profile declares none."),
    ] = None,
    session_file: Session = None,
) -> None:
    """Store reads from a camera or vendor CSV export and match them against the hotlists.

    A file in the reads layout (data_schema/reads.yaml) goes as it is. A vendor's read export is
    first mapped to that layout by its profile (``--profile``, or the one profile its header
    matches); a file with any bad line is refused whole, naming every bad line. The camera's
    network and place come from the service's cameras table. Through the service, as the
    signed-in user (``alpr-workbench login`` first).
    """
    import csv
    import io

    import polars as pl

    from alpr_workbench.cli._session import as_session_user
    from alpr_workbench.ingest import write_reads_csv
    from alpr_workbench.read_profiles import is_reads_layout, map_reads_export

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise _fail(WorkbenchError(f"cannot read {file}: {exc}")) from exc
    first = raw.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[:1]
    header = next(csv.reader(io.StringIO(first[0])), []) if first else []
    totals = {"rows_received": 0, "rows_added": 0, "rows_already_stored": 0, "hits_added": 0}
    if profile is None and time_zone is None and is_reads_layout(header):
        r = as_session_user(session_file, lambda c: c.ingest(raw, source=str(file),
                                                              camera=camera))
        totals = {k: int(r[k]) for k in totals}
        mapped_by = ""
    else:
        try:
            chosen, reads = map_reads_export(file, profile=profile, camera_id=camera,
                                             time_zone=time_zone)
        except WorkbenchError as exc:
            raise _fail(exc) from exc
        mapped_by = f" (mapped by profile {chosen.name})"

        def upload(client: Client) -> None:
            cameras = sorted(set(reads.get_column("camera_id").to_list()))
            known = set(client.cameras().get_column("camera_id").to_list())
            unknown = [c for c in cameras if c not in known]
            if unknown:  # refuse the whole file before any camera's reads are stored
                raise WorkbenchError(
                    f"{file}: camera(s) not in the cameras table: "
                    f"{', '.join(repr(c) for c in unknown[:10])}; nothing was stored"
                )
            for cam in cameras:
                part = reads.filter(pl.col("camera_id") == cam)
                for offset in range(0, part.height, _BATCH_ROWS):
                    batch = write_reads_csv(part.slice(offset, _BATCH_ROWS))
                    answer = client.ingest(batch, source=str(file), camera=cam)
                    for key in totals:
                        totals[key] += int(answer[key])

        if reads.height:
            try:
                as_session_user(session_file, upload)
            except WorkbenchError as exc:
                raise _fail(exc) from exc
    console.print(
        f"{file.name}{mapped_by}: {totals['rows_received']:,} reads, "
        f"{totals['rows_added']:,} stored, {totals['rows_already_stored']:,} already stored; "
        f"{totals['hits_added']:,} new hit(s)."
    )


#: Reads per upload of a mapped export: each request stays far below the service's CSV limit.
_BATCH_ROWS = 5_000
