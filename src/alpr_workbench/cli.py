"""The ``alpr-workbench`` command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alpr_workbench.errors import WorkbenchError

app = typer.Typer(
    help="ALPR Workbench: an auditable workbench for a license plate reader program.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $ALPR_WORKBENCH_HOME)."),
]


def _home(data_dir: Path | None) -> Path:
    from alpr_workbench.config import default_home

    return data_dir if data_dir is not None else default_home()


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


@app.command()
def demo(
    data_dir: DataDir = None,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Days of traffic to simulate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic city.")] = 7,
    scale: Annotated[float, typer.Option(min=0.001, max=10.0, help="Traffic multiplier.")] = 1.0,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboard.")] = True,
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
) -> None:
    """Build the synthetic city (the embedded default) in an encrypted data directory."""
    from alpr_workbench.demo import build_demo

    home = _home(data_dir)
    try:
        last_day = dt.date.fromisoformat(end_date) if end_date else None
    except ValueError as exc:
        raise _fail(WorkbenchError(f"--end-date {end_date!r} is not a date (YYYY-MM-DD)")) from exc

    console.print(f"Building the synthetic city in [bold]{home}[/] ({days} days, seed {seed})")
    try:
        with Progress(
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
    if summary.example_search:
        console.print(f"Try a case-gated search (it is audited):\n  {summary.example_search}")
    if summary.passphrase_file is not None:
        console.print(
            f"[yellow]Demo mode:[/] the key store passphrase was generated at random and kept in "
            f"{summary.passphrase_file} (mode 0600). Demo mode is not for real data: for real "
            "data set ALPR_WORKBENCH_PASSPHRASE (or ALPR_WORKBENCH_KEK) before creating a store."
        )
    if serve:
        _serve(home, port=5006, address="127.0.0.1", show=False, tiles=False)


@app.command()
def purge(
    data_dir: DataDir = None,
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
    user: Annotated[str | None, typer.Option("--user", help="Acting administrator.")] = None,
) -> None:
    """Crypto-shred every day of reads older than the retention period (legal holds stay)."""
    from alpr_workbench.governance.admin import PurgePlan, plan_purge, purge_expired
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.policy import load_policy

    now = dt.datetime.now(dt.UTC)
    try:
        day = dt.date.fromisoformat(as_of) if as_of else now.date()
    except ValueError as exc:
        raise _fail(WorkbenchError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")) from exc
    try:
        store, audit = _open(data_dir)
        action = plan_purge if dry_run else purge_expired
        done = action(
            store,
            audit.append,
            actor=current_username(user),
            as_of=day,
            retention_days=retention_days,
            policy=load_policy(),
            now=now,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if isinstance(done, PurgePlan):
        plan = done
        table = Table(
            title=f"Dry run: days older than {plan.retention_days} days before {plan.as_of}"
        )
        table.add_column("day")
        table.add_column("reads", justify="right")
        for when, reads in plan.days:
            table.add_row(when.isoformat(), f"{reads:,}")
        console.print(table)
        console.print(
            f"{len(plan.days)} day(s), {plan.reads:,} reads would be shredded; "
            "nothing was shredded."
        )
        return
    report = done
    console.print(
        f"Purged {len(report.days_purged)} day(s) older than {report.retention_days} days before "
        f"{report.as_of}: {report.rows_destroyed:,} reads crypto-shredded "
        f"({report.rows_kept_under_hold:,} kept under {len(report.hold_ids)} legal hold(s))."
    )
    if report.days_purged:
        console.print(f"Days: {report.days_purged[0]} .. {report.days_purged[-1]}")


@app.command()
def verify(data_dir: DataDir = None) -> None:
    """Check the store's index, every manifest and every file; exit non-zero on any problem.

    A day or table whose manifest is missing, emptied, altered, moved, swapped or an older
    copy is named; so is an index older than the key store's witness. Purged days are not
    missing: the purge removed them from the index.
    """
    from rich.markup import escape

    from alpr_workbench.store import Store

    try:
        store = Store.open(_home(data_dir))
        problems = store.verify()
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    for problem in problems:
        err.print(f"[red]{escape(problem)}[/]")
    if problems:
        raise typer.Exit(code=1)
    console.print(
        f"Store sound: {len(store.reads.days())} day partition(s), "
        f"{len(store.reads.hold_ids())} legal hold(s); the index, every manifest and every "
        "file authenticate."
    )


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()


# -- governance -----------------------------------------------------------------------------
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
grants_app = typer.Typer(help="Sharing grants between networks.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(grants_app, name="grants")


def _open(data_dir: Path | None):  # noqa: ANN202 - returns (store, audit log)
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.store import Store

    home = _home(data_dir)
    store = Store.open(home)
    return store, AuditLog.open(home, store.keystore)


def _parse_time(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(WorkbenchError(f"{option} {text!r} is not an ISO date or time")) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@app.command()
def search(
    case: Annotated[str, typer.Option("--case", help="Case number, e.g. BPD-2026-000123.")],
    reason: Annotated[str, typer.Option("--reason", help="Reason code from the policy list.")],
    reason_text: Annotated[str | None, typer.Option("--reason-text", help="Free text.")] = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Exact plate.")] = None,
    pattern: Annotated[
        str | None, typer.Option("--pattern", help="Partial plate: ? one character, * any run.")
    ] = None,
    time_from: Annotated[
        str | None, typer.Option("--from", help="Window start (ISO, UTC).")
    ] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Window end (ISO, UTC).")] = None,
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="Camera id (repeat).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user (default: you).")] = None,
    approved_by: Annotated[
        str | None,
        typer.Option("--approved-by", help="Supervisor approving more rows than the cap."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per read.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Search reads inside a case; refused (exit 3) unless the policy allows it.

    A result larger than the policy's ``max_rows`` is cut, and says so; a supervisor other
    than the searcher may approve a larger one (``--approved-by``, audited with the search).
    """
    from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest
    from alpr_workbench.governance.registry import current_username

    try:
        request = SearchRequest(
            case_number=case,
            reason_code=reason,
            reason_text=reason_text,
            plate=plate,
            plate_pattern=pattern,
            window_from=_parse_time(time_from, "--from"),
            window_to=_parse_time(time_to, "--to"),
            camera_ids=tuple(camera or ()),
            approved_by=approved_by,
        )
        store, audit = _open(data_dir)
        result = Gate(store, audit).search(current_username(user), request)
    except SearchRefused as exc:
        err.print(f"[bold red]refused:[/] {exc.reason} (audit record {exc.event_id})")
        raise typer.Exit(code=3) from exc
    except (WorkbenchError, ValueError) as exc:
        raise _fail(exc) from exc
    display_limit = 200
    shown_rows = result.rows.height if as_json else min(result.rows.height, display_limit)
    if shown_rows < result.total_rows:
        why = (
            "the policy's row limit; a supervisor may approve more with --approved-by"
            if result.truncated
            else "the display limit; use --json for all"
        )
        err.print(f"[bold yellow]showing {shown_rows:,} of {result.total_rows:,} reads[/] ({why})")
    if as_json:
        for row in result.rows.iter_rows(named=True):
            typer.echo(json.dumps(row, default=str))
        return
    table = Table(
        title=f"{result.total_rows} read(s) — case {result.case_number} "
        f"(audit record {result.event_id})"
    )
    shown = [
        c
        for c in (
            "captured_at",
            "plate",
            "plate_state",
            "camera_id",
            "network_id",
            "confidence_pct",
        )
        if c in result.rows.columns
    ]
    for column in shown:
        table.add_column(column)
    for row in result.rows.select(shown).head(display_limit).iter_rows():
        table.add_row(*(str(v) for v in row))
    console.print(table)


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Check the whole hash chain; name the first bad record (exit 1) if any."""
    from alpr_workbench.governance.audit_log import AuditLogError

    try:
        _, audit = _open(data_dir)
        report = audit.verify()
    except AuditLogError as exc:  # e.g. the log was deleted: tampering, never "intact"
        err.print(f"[bold red]audit log damaged:[/] {exc}")
        raise typer.Exit(code=1) from exc
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if not report.ok:
        err.print(f"[bold red]audit log damaged:[/] {report.problem}")
        raise typer.Exit(code=1)
    console.print(f"Audit log intact: {report.records:,} records, hash chain verifies.")


@audit_app.command("digest")
def audit_digest(
    year: Annotated[int, typer.Option("--year", help="Calendar year (UTC).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the signed digest here.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign the year's digest with Ed25519; anyone can check it with the public key alone."""
    try:
        _, audit = _open(data_dir)
        digest = audit.digest(year)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    text = digest.to_json()
    if out is not None:
        out.write_text(text + "\n")
        console.print(f"Signed digest for {year} ({digest.records:,} records) written to {out}")
    else:
        typer.echo(text)


@audit_app.command("verify-digest")
def audit_verify_digest(
    digest_file: Annotated[Path, typer.Argument(help="A digest written by `audit digest`.")],
    public_key: Annotated[
        Path,
        typer.Option(
            "--public-key",
            help="The department's published public key (PEM), obtained independently of the "
            "digest (never the key the digest itself carries).",
        ),
    ],
    log: Annotated[
        Path | None, typer.Option("--log", help="Encrypted log file to recompute.")
    ] = None,
) -> None:
    """Verify a signed digest with the department's published public key (no secrets needed)."""
    from alpr_workbench.governance.audit_log import SignedDigest, verify_digest

    try:
        digest = SignedDigest.from_json(digest_file.read_text())
        ok = verify_digest(digest, public_key.read_text(), log_path=log)
    except (OSError, ValueError, WorkbenchError) as exc:
        raise _fail(WorkbenchError(f"cannot read digest: {exc}")) from exc
    if not ok:
        err.print("[bold red]digest does NOT verify[/]")
        raise typer.Exit(code=1)
    console.print(f"Digest for {digest.year} verifies ({digest.records:,} records).")


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="Also write it here.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Verify the log, then sign a checkpoint (kept in <home>/audit/checkpoints/); publish it."""
    try:
        _, audit = _open(data_dir)
        checkpoint = audit.checkpoint()
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    text = checkpoint.to_json()
    if out is not None:
        out.write_text(text + "\n")
        console.print(f"Signed checkpoint at record {checkpoint.seq:,} written to {out}")
    else:
        typer.echo(text)


@audit_app.command("verify-checkpoint")
def audit_verify_checkpoint(
    checkpoint_file: Annotated[Path, typer.Argument(help="A published signed checkpoint.")],
    public_key: Annotated[
        Path,
        typer.Option("--public-key", help="The log's public key (PEM), obtained independently."),
    ],
    log: Annotated[
        Path | None, typer.Option("--log", help="Records file (or home) to check it against.")
    ] = None,
) -> None:
    """Check a published checkpoint with the public key alone (exit 1 if it does not verify)."""
    from alpr_workbench.governance.audit_log import SignedCheckpoint, verify_checkpoint

    try:
        checkpoint = SignedCheckpoint.from_json(checkpoint_file.read_text())
        ok = verify_checkpoint(checkpoint, public_key.read_text(), log_path=log)
    except (OSError, ValueError, WorkbenchError) as exc:
        raise _fail(WorkbenchError(f"cannot check the checkpoint: {exc}")) from exc
    if not ok:
        where = "" if log is None else f" against {log}"
        err.print(f"[bold red]checkpoint does NOT verify{where}[/]")
        raise typer.Exit(code=1)
    console.print(f"Checkpoint at record {checkpoint.seq:,} verifies.")


@audit_app.command("import-vendor")
def audit_import_vendor(
    file: Annotated[Path, typer.Argument(help="Vendor search-audit CSV export.")],
    organization: Annotated[
        str | None, typer.Option(help="Organization, when the file does not name it.")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting auditor.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Import a vendor's exported search log into the audit log; every row is accounted for."""
    from alpr_workbench.governance.admin import import_vendor_audit
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.vendor_import import read_vendor_audit
    from alpr_workbench.policy import load_policy

    try:
        imported = read_vendor_audit(file, organization=organization)
        store, audit = _open(data_dir)
        fresh = import_vendor_audit(
            store,
            audit,
            imported,
            actor=current_username(user),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(
        f"{file.name}: {imported.format}, {imported.rows_read:,} rows read, "
        f"{imported.events.height:,} imported ({fresh:,} new), "
        f"{imported.rejected.height:,} rejected."
    )
    for line, reason in imported.rejected.select("line", "reason").head(20).iter_rows():
        err.print(f"  line {line}: {reason}")


@grants_app.command("list")
def grants_list(data_dir: DataDir = None) -> None:
    """List every sharing grant, in force or revoked."""
    try:
        store, _ = _open(data_dir)
        grants = store.tables.read("sharing_grants")
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    table = Table(title="Sharing grants")
    shown = [
        "grant_id",
        "network_id",
        "recipient_org",
        "recipient_type",
        "scope",
        "approved_by",
        "review_by_date",
        "revoked_at",
    ]
    for column in shown:
        table.add_column(column)
    for row in grants.select(shown).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@grants_app.command("add")
def grants_add(
    network: Annotated[str, typer.Option(help="Network being shared.")],
    recipient: Annotated[str, typer.Option(help="Receiving organization.")],
    approved_by: Annotated[str, typer.Option(help="Who approved it at the owner.")],
    basis: Annotated[str, typer.Option(help="Legal or contractual basis.")],
    review_by: Annotated[str, typer.Option(help="Review date (YYYY-MM-DD).")],
    scope: Annotated[
        str, typer.Option(help="search, hotlist_alerts or search_and_alerts")
    ] = "search",
    recipient_type: Annotated[
        str | None,
        typer.Option(help="Expected type (checked against the registry of known agencies)."),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Record an owner's grant to a known agency; federal, out-of-state, private are refused."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import add_grant
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        grant_id = add_grant(
            store,
            audit.append,
            actor=current_username(user),
            network_id=network,
            recipient_org=recipient,
            recipient_type=recipient_type,
            scope=scope,
            approved_by=approved_by,
            basis=basis,
            review_by_date=dt.date.fromisoformat(review_by),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except (WorkbenchError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"Grant {grant_id} recorded and audited.")


@grants_app.command("revoke")
def grants_revoke(
    grant_id: Annotated[str, typer.Argument(help="Grant to revoke.")],
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a grant; it stops applying on the next query."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import revoke_grant
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        revoke_grant(
            store,
            audit.append,
            actor=current_username(user),
            grant_id=grant_id,
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Grant {grant_id} revoked.")


@grants_app.command("add-agency")
def grants_add_agency(
    name: Annotated[str, typer.Option(help="The agency's official name.")],
    organization_type: Annotated[
        str, typer.Option(help="ca_local_agency, ca_state_agency, federal, out_of_state, private")
    ],
    state: Annotated[str, typer.Option(help="Two-letter state (US for a federal body).")],
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add an agency to the department's registry of known agencies (audited)."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import add_agency
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        add_agency(
            store,
            audit.append,
            actor=current_username(user),
            name=name,
            organization_type=organization_type,
            state=state,
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"{name} added to the registry of known agencies ({organization_type}).")


settings_app = typer.Typer(
    help="The department's signed settings (retention).", no_args_is_help=True
)
app.add_typer(settings_app, name="settings")


@settings_app.command("show")
def settings_show(data_dir: DataDir = None) -> None:
    """Show the department's settings (a tampered or removed file is an error)."""
    from alpr_workbench.governance.admin import configured_retention_days
    from alpr_workbench.store import Store

    try:
        days = configured_retention_days(Store.open(_home(data_dir)))
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Retention: {days} days")


@settings_app.command("set")
def settings_set(
    retention_days: Annotated[
        int,
        typer.Option("--retention-days", help="Days a read is kept (within the policy's range)."),
    ],
    user: Annotated[str | None, typer.Option("--user", help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change the retention period; needs the ``configure`` permission (audited)."""
    from alpr_workbench.governance.admin import set_retention_days
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        old = set_retention_days(
            store,
            audit.append,
            actor=current_username(user),
            retention_days=retention_days,
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Retention changed from {old} to {retention_days} days (audited).")


keys_app = typer.Typer(help="Master keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Rotate every master key; data files are not rewritten (audited)."""
    from alpr_workbench.governance.admin import rotate_master_keys
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        files = rotate_master_keys(
            store,
            audit.append,
            actor=current_username(user),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Master keys rotated; {files:,} files re-wrapped, no data rewritten.")


@grants_app.command("snapshot")
def grants_snapshot(
    user: Annotated[str | None, typer.Option(help="Acting user (a daily job).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Record today's sharing settings in the audit log; exit 1 if they drifted."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import snapshot_sharing

    try:
        store, audit = _open(data_dir)
        changes = audit.events().filter(pl.col("event_type") == "sharing_change")
        drift = snapshot_sharing(
            store, audit.append, changes, actor=current_username(user), now=dt.datetime.now(dt.UTC)
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if drift:
        err.print(f"[bold red]sharing drift:[/] {drift}")
        raise typer.Exit(code=1)
    console.print("Sharing settings recorded; no drift from the audited changes.")


@app.command()
def efficacy(
    time_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user (default: you).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Efficacy and impact, measured together: recoveries, hits, misreads, cost and harms."""
    from alpr_workbench.governance import SearchRefused, current_username
    from alpr_workbench.reports import build_efficacy_report

    try:
        start = dt.date.fromisoformat(time_from) if time_from else None
        end = dt.date.fromisoformat(time_to) if time_to else None
    except ValueError as exc:
        raise _fail(WorkbenchError(f"dates must be YYYY-MM-DD: {exc}")) from exc
    try:
        store, audit = _open(data_dir)
        report = build_efficacy_report(
            store, audit, user_id=current_username(user), start=start, end=end
        )
    except SearchRefused as exc:
        err.print(f"[bold red]refused:[/] {exc.reason}")
        raise typer.Exit(code=3) from exc
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    figures = report.to_dict()
    if as_json:
        typer.echo(json.dumps(figures, default=str))
        return
    table = Table(title=f"Efficacy and impact, {report.start} .. {report.end}", show_header=False)
    for key, value in figures.items():
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"[dim]{report.staff_hours_assumption}[/]")


hotlist_app = typer.Typer(
    help="Hotlists: stolen-vehicle lists, NCIC extracts, custom lists.", no_args_is_help=True
)
app.add_typer(hotlist_app, name="hotlist")


@hotlist_app.command("import")
def hotlist_import(
    file: Annotated[Path, typer.Argument(help="Hotlist CSV (state stolen list or NCIC extract).")],
    source: Annotated[str, typer.Option("--source", help="state_stolen or ncic.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the list.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Load a hotlist; never-alert categories (immigration) are dropped and counted (audited)."""
    from alpr_workbench.governance import current_username
    from alpr_workbench.governance.admin import import_hotlist
    from alpr_workbench.hotlist import read_hotlist_csv
    from alpr_workbench.policy import load_policy

    try:
        imported = read_hotlist_csv(file, source=source, name=name)
        store, audit = _open(data_dir)
        loaded = import_hotlist(
            store,
            audit.append,
            imported,
            actor=current_username(user),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    dropped = sum(imported.dropped.values())
    console.print(
        f"{file.name}: {imported.rows_read:,} rows read, {loaded.entries_loaded:,} entries "
        f"loaded into {loaded.hotlist_id}, {loaded.entries_removed:,} entries removed (of "
        f"{loaded.entries_replaced:,} it held); {dropped:,} never-alert record(s) dropped"
        + (f" ({', '.join(f'{k}: {v}' for k, v in imported.dropped.items())})" if dropped else "")
    )


def _hotlist_action(data_dir: Path | None, user: str | None, action: str, **kwargs: object):  # noqa: ANN202
    """Run one audited admin hotlist function as ``user`` (refusals exit non-zero)."""
    from alpr_workbench.governance import admin, current_username
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        return getattr(admin, action)(
            store, audit.append, actor=current_username(user), policy=load_policy(),
            now=dt.datetime.now(dt.UTC), **kwargs,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc


@hotlist_app.command("create")
def hotlist_create(
    name: Annotated[str, typer.Option("--name", help="Name of the custom list.")],
    case: Annotated[str, typer.Option("--case", help="The case it supports.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the list exists.")],
    expires: Annotated[str, typer.Option("--expires", help="When it stops alerting (ISO).")],
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a custom list tied to a case; needs ``manage_hotlists`` (audited)."""
    hotlist_id = _hotlist_action(
        data_dir, user, "create_hotlist", name=name, case_number=case, reason=reason,
        expires_at=_parse_time(expires, "--expires"),
    )
    console.print(f"Custom list created: {hotlist_id}")


@hotlist_app.command("add")
def hotlist_add(
    hotlist_id: Annotated[str, typer.Argument(help="A custom list.")],
    plate: Annotated[str, typer.Option("--plate", help="Plate to add.")],
    plate_state: Annotated[str | None, typer.Option("--state", help="Plate state.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Default: the list's.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add a plate to a custom list; needs ``manage_hotlists`` (audited)."""
    entry_id = _hotlist_action(
        data_dir, user, "add_hotlist_entry", hotlist_id=hotlist_id, plate=plate,
        plate_state=plate_state, reason=reason,
    )
    console.print(f"Entry added: {entry_id}")


@hotlist_app.command("change")
def hotlist_change(
    entry_id: Annotated[str, typer.Argument(help="The entry.")],
    field_values: Annotated[
        list[str], typer.Option("--set", help="FIELD=VALUE (repeatable; changeable fields only).")
    ],
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change fields of an entry; needs ``manage_hotlists`` (audited, before and after)."""
    changes = dict(item.split("=", 1) for item in field_values if "=" in item)
    if len(changes) != len(field_values):
        raise _fail(WorkbenchError("--set takes FIELD=VALUE"))
    _hotlist_action(data_dir, user, "change_hotlist_entry", entry_id=entry_id, changes=changes)
    console.print(f"Entry {entry_id} changed.")


@hotlist_app.command("delete")
def hotlist_delete(
    entry_id: Annotated[str, typer.Argument(help="The entry.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. vehicle recovered).")],
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Delete an entry; needs ``manage_hotlists`` (audited with the entry as it was)."""
    _hotlist_action(data_dir, user, "delete_hotlist_entry", entry_id=entry_id, reason=reason)
    console.print(f"Entry {entry_id} deleted.")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV of reads (columns as in data_schema/reads).")],
    data_dir: DataDir = None,
) -> None:
    """Store reads from a camera or vendor CSV export and match them against the hotlists."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.ingest import ingest_csv

    try:
        store, audit = _open(data_dir)
        result = ingest_csv(store, file, audit_append=audit.append, actor=current_username())
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    r = result.report
    console.print(
        f"{file.name}: {r.rows_received:,} reads, {r.rows_added:,} stored, "
        f"{r.rows_already_stored:,} already stored; {result.hits_added:,} new hit(s)."
    )


@audit_app.command("report")
def audit_report(
    year: Annotated[int, typer.Option("--year", help="Calendar year to audit (UTC).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default: <data dir>/reports/)."),
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print it to PDF (Chromium).")] = False,
    show_plates: Annotated[
        bool,
        typer.Option(
            "--show-plates",
            help="Show plates in full instead of masked (auditors only; audited).",
        ),
    ] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="Acting user (needed with --show-plates).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The annual audit: every docs/policy.md check, offending rows, signed digest."""
    from alpr_workbench.governance import current_username
    from alpr_workbench.reports.audit_report import default_report_path, write_audit_report

    try:
        store, audit = _open(data_dir)
        target = out or default_report_path(store.home, year)
        results = write_audit_report(
            store,
            audit,
            year=year,
            out=out,
            show_plates=show_plates,
            user_id=current_username(user) if show_plates else None,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"Annual audit {year}")
    for column in ("check", "title", "result", "flagged"):
        table.add_column(column)
    for r in results:
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "n/a"}[r.passed]
        table.add_row(r.check_id, r.title, verdict, str(r.offending.height))
    console.print(table)
    plates = "plates shown in full (audited)" if show_plates else "plates masked"
    console.print(f"Report written to {target} (mode 0600, {plates})")
    if pdf:
        from alpr_workbench.reports.pdf import html_to_pdf

        try:
            written = html_to_pdf(target, target.with_suffix(".pdf"))
        except WorkbenchError as exc:
            raise _fail(exc) from exc
        console.print(f"PDF written to {written} (mode 0600)")


@app.command()
def transparency(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "transparency.html"
    ),
    user: Annotated[str | None, typer.Option("--user", help="Acting user (aggregates).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO time (default: now).")] = None,
    portal_dir: Annotated[
        Path | None,
        typer.Option(
            "--portal-dir",
            help="Published portal figures: the flock_portal_metrics folder or a figures CSV "
            "(default: the California figures shipped with the package).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The public transparency page: policy, counts (small ones suppressed), access, digest."""
    from alpr_workbench.governance import current_username
    from alpr_workbench.reports import write_transparency

    try:
        store, audit = _open(data_dir)
        data = write_transparency(
            store,
            audit,
            user_id=current_username(user),
            out=out,
            as_of=_parse_time(as_of, "--as-of"),
            portal_dir=portal_dir,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Transparency page for the 30 days to {data.as_of:%Y-%m-%d} written to {out}")


def _serve(
    home: Path, *, port: int, address: str, show: bool, tiles: bool, reset_passwords: bool = False
) -> None:
    from alpr_workbench.dashboard import serve_dashboard
    from alpr_workbench.reports import audit_health

    def full_checks() -> pl.DataFrame:
        store, audit = _open(home)
        return audit_health(store, audit)

    console.print("Starting the command-staff dashboard (Ctrl-C to stop)...")
    serve_dashboard(
        home,
        port=port,
        address=address,
        show=show,
        tiles=tiles,
        reset_passwords=reset_passwords,
        out=console.print,
        audit_health=full_checks,
    )


@app.command()
def serve(
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = 5006,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    show: Annotated[bool, typer.Option(help="Open a browser.")] = False,
    tiles: Annotated[bool, typer.Option(help="Online map tiles (off: works offline).")] = False,
    reset_passwords: Annotated[
        bool, typer.Option(help="Issue new one-time passwords to every allowed user.")
    ] = False,
) -> None:
    """Serve the command-staff dashboard (command staff, auditors, administrators only)."""
    try:
        _serve(
            _home(data_dir),
            port=port,
            address=address,
            show=show,
            tiles=tiles,
            reset_passwords=reset_passwords,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc


@app.command()
def recognize(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders of images.")],
    crops: Annotated[bool, typer.Option("--crops", help="Images are plate crops.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
    models: Annotated[Path | None, typer.Option("--models", help="Weights folder.")] = None,
    threads: Annotated[int, typer.Option(min=1, max=64, help="CPU threads.")] = 2,
) -> None:
    """Read plates in photos (or crops); a bad file gets an error line and the run goes on."""
    from alpr_workbench.recognition.pipeline import recognize_cli

    raise typer.Exit(
        recognize_cli(paths, crops=crops, as_json=as_json, models_dir=models, threads=threads)
    )


@app.command("ingest-frames")
def ingest_frames(
    folder: Annotated[Path, typer.Argument(help="Folder of frames from one camera.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera id (as in the cameras table).")],
    data_dir: DataDir = None,
) -> None:
    """Turn a camera's frames into reads with the recognizer, store them and match them."""
    import polars as pl
    from rich.markup import escape

    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.ingest import ingest_reads
    from alpr_workbench.recognition import Recognizer
    from alpr_workbench.recognition.pipeline import frames_to_reads

    try:
        store, audit = _open(data_dir)
        cameras = store.tables.read("cameras").filter(pl.col("camera_id") == camera)
        if cameras.is_empty():
            raise WorkbenchError(f"unknown camera {camera!r}")
        cam = cameras.row(0, named=True)
        failed: list[tuple[Path, str]] = []
        reads = frames_to_reads(
            folder,
            camera_id=camera,
            network_id=cam["network_id"],
            lat=cam["lat"],
            lon=cam["lon"],
            recognizer=Recognizer.load(),
            on_error=lambda path, why: failed.append((path, why)),
        )
        result = ingest_reads(
            store, reads, audit_append=audit.append, actor=current_username(), source=str(folder)
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    for path, why in failed:
        err.print(f"[bold red]unreadable:[/] {escape(str(path))}: {escape(why[:300])}")
    console.print(
        f"{folder}: {result.report.rows_added:,} reads stored, "
        f"{result.hits_added:,} new hit(s). Every hit needs a person's confirmation."
    )
    if failed:
        err.print(f"[bold red]{len(failed)} file(s) could not be read[/]; the others were stored.")
        raise typer.Exit(1)
