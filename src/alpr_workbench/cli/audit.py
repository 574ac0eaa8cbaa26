"""The ``audit`` commands: the tamper-evident audit log and the annual audit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alpr_workbench.cli._common import DataDir, _fail, _home, console, err
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Check the whole hash chain; name the first bad record (exit 1) if any.

    Also names any ingest whose "started" record has no outcome (its writer was killed),
    with whether its reads are in the store. An operator tool, run as the service account:
    it needs the key-store secret, is refused while the service runs, and leaves an
    ``operator`` audit record naming the OS account. Users ask the service
    (``/v1/admin/audit/verify``).
    """
    from rich.markup import escape

    from alpr_workbench.governance.audit_log import AuditLogError
    from alpr_workbench.governance.operator import operator_run
    from alpr_workbench.ingest import interrupted_ingests

    interrupted = []
    try:
        with operator_run(_home(data_dir), "audit verify") as run:
            report = run.audit.verify()
            if report.ok:
                interrupted = interrupted_ingests(run.audit.events(), run.store.reads.batch_ids())
            result = (
                f"intact: {report.records} records; {len(interrupted)} interrupted ingest(s)"
                if report.ok else f"damaged: {report.problem}"
            )
            try:
                run.record(result)
            except WorkbenchError:
                if report.ok:
                    raise
                # A damaged log refuses appends: the damage is still reported (exit 1).
    except AuditLogError as exc:  # e.g. the log was deleted: tampering, never "intact"
        err.print(f"[bold red]audit log damaged:[/] {exc}")
        raise typer.Exit(code=1) from exc
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if not report.ok:
        err.print(f"[bold red]audit log damaged:[/] {report.problem}")
        raise typer.Exit(code=1)
    for ingest in interrupted:
        err.print(f"[yellow]interrupted:[/] {escape(ingest.describe())}")
    console.print(f"Audit log intact: {report.records:,} records, hash chain verifies.")


@audit_app.command("digest")
def audit_digest(
    year: Annotated[int, typer.Option("--year", help="Calendar year (UTC).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the signed digest here.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign the year's digest with Ed25519; anyone can check it with the public key alone.

    An operator tool, run as the service account (it needs the key-store secret; refused
    while the service runs); it leaves an ``operator`` audit record naming the OS account.
    """
    from alpr_workbench.governance.operator import operator_run

    try:
        with operator_run(_home(data_dir), "audit digest") as run:
            digest = run.audit.digest(year)
            run.record(f"signed the {year} digest ({digest.records} records)",
                       details={"year": year})
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
    """Verify the log, then sign a checkpoint (kept in <home>/audit/checkpoints/); publish it.

    An operator tool, run as the service account (it needs the key-store secret; refused
    while the service runs); it leaves an ``operator`` audit record naming the OS account.
    Signed-in auditors and administrators ask the service (``/v1/admin/audit/checkpoint``).
    """
    from alpr_workbench.governance.operator import operator_run

    try:
        with operator_run(_home(data_dir), "audit checkpoint") as run:
            checkpoint = run.audit.checkpoint()
            run.record(f"signed a checkpoint at record {checkpoint.seq}")
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
    session_file: Session = None,
) -> None:
    """Import a vendor's exported search log into the audit log, as the signed-in user.

    Through the service (``alpr-workbench login`` first; ``import_vendor_audit``); every row
    is accounted for.
    """
    from alpr_workbench.cli._session import as_session_user

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise _fail(WorkbenchError(f"cannot read {file}: {exc}")) from exc
    done = as_session_user(
        session_file, lambda c: c.import_vendor_audit(raw, organization=organization)
    )
    console.print(
        f"{file.name}: {done['format']}, {done['rows_read']:,} rows read, "
        f"{done['imported']:,} imported ({done['new']:,} new), "
        f"{done['rejected']:,} rejected."
    )
    for line, reason in done["rejections"][:20]:
        err.print(f"  line {line}: {reason}")


@audit_app.command("vendor")
def audit_vendor(
    files: Annotated[
        list[Path], typer.Argument(help="Vendor search-audit CSV exports (one or more).")
    ],
    out: Annotated[Path, typer.Option("--out", help="HTML report to write (mode 0600).")],
    agency: Annotated[
        list[str] | None,
        typer.Option(
            "--agency",
            help="Agency of each file, in order (repeat it; default: the file's organization "
            "column when it names one agency, else the file name).",
        ),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            help="Flag windows starting more whole days than this before the search "
            "(default: the department's default retention).",
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="Zone of local days and off-hours (default: policy's)."),
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv-out", help="Also write every finding as CSV.")
    ] = None,
    show_plates: Annotated[
        bool, typer.Option("--show-plates", help="Show plates in full instead of masked.")
    ] = False,
) -> None:
    """Audit vendor search-audit exports on their own (no data directory, no session).

    Every check whose columns the export has: reasons, prohibited purposes, case numbers,
    lookback past retention, scope, off-hours bursts, per-user volume, outside searchers.
    Exit 0 when every check that ran passed, 1 when any failed, 2 for unusable input.
    """
    import zoneinfo

    from alpr_workbench.config import DepartmentSettings
    from alpr_workbench.policy import load_policy
    from alpr_workbench.reports.vendor_audit import write_vendor_audit

    try:
        policy = load_policy()
        days = retention_days if retention_days is not None else DepartmentSettings().retention_days
        low, high = policy.retention_days_range
        if not low <= days <= high:
            raise WorkbenchError(f"--retention-days {days} is outside {low}..{high}")
        if timezone is not None:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise WorkbenchError(f"unknown --timezone {timezone!r}") from exc
        audits = write_vendor_audit(
            files, out=out, policy=policy, retention_days=days, agencies=agency or (),
            timezone=timezone, csv_out=csv_out, show_plates=show_plates,
        )  # fmt: skip
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    failed = 0
    for result in audits:
        console.print(
            f"{result.name} ({result.agency}, {result.format}): {result.rows_read:,} rows, "
            f"{result.searches:,} searches"
        )
        for check in result.checks:
            if check.passed is None:
                console.print(f"  [dim]{check.check_id}: not run, {check.not_run}[/]")
            elif not check.passed:
                failed += 1
                console.print(
                    f"  [red]{check.check_id}[/] ({check.rule or 'rows'}) {check.title}: "
                    f"{check.n_offending:,} offending"
                )
    console.print(f"Report written to {out} (mode 0600)")
    if csv_out is not None:
        console.print(f"Findings written to {csv_out} (mode 0600)")
    if failed:
        err.print(f"[bold red]{failed} check(s) failed[/]")
        raise typer.Exit(code=1)
    console.print("Every check that ran passed.")


def default_report_folder(session_file: Path | None) -> Path:
    """Where ``audit report`` writes by default: ``reports/`` beside the session file.

    A private folder (mode 0700) in the user's own configuration, never the current folder.
    """
    from alpr_workbench.client import default_session_file

    return (session_file or default_session_file()).expanduser().parent / "reports"


@audit_app.command("report")
def audit_report(
    year: Annotated[int, typer.Option("--year", help="Calendar year to audit (UTC).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file to write (default: reports/ beside the session file, mode 0700).",
        ),
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print it to PDF (Chromium).")] = False,
    show_plates: Annotated[
        bool,
        typer.Option(
            "--show-plates",
            help="Show plates in full instead of masked (auditors only; audited).",
        ),
    ] = False,
    session_file: Session = None,
) -> None:
    """The annual audit: every docs/policy.md check, offending rows, signed digest.

    Through the service, as the signed-in user (``audit`` or ``administer``; whole plates
    ``audit`` only, audited); the report is written here with mode 0600. Imported vendor
    logs are audited in their own section (``vendor-*`` checks). Like a linter: exit 0 when
    every check that applies passes, 1 when any fails (the report is written all the same),
    2 for unusable input, 3 when refused.
    """
    from alpr_workbench._fsutil import atomic_write_bytes
    from alpr_workbench.cli.reports import _refusable

    html, checks = _refusable(
        session_file, lambda c: c.audit_report(year, show_plates=show_plates)
    )
    if out is None:
        folder = default_report_folder(session_file)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        target = folder / f"alpr-audit-{year}.html"
    else:
        target = out
    try:
        atomic_write_bytes(target, html, mode=0o600)
    except OSError as exc:
        raise _fail(WorkbenchError(f"cannot write {target}: {exc}")) from exc
    table = Table(title=f"Annual audit {year}")
    for column in ("check", "title", "result", "flagged"):
        table.add_column(column)
    for check_id, title, passed, flagged in checks:
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "n/a"}[passed]
        table.add_row(str(check_id), str(title), verdict, str(flagged))
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
    raise typer.Exit(code=_report_exit_code(checks))


def _report_exit_code(checks: list[list[object]]) -> int:
    """Print the one-line verdict of ``audit report`` and return its exit status (0 or 1)."""
    applicable = [c for c in checks if c[2] is not None]
    failed = [str(c[0]) for c in applicable if c[2] is False]
    if not failed:
        console.print(f"All {len(applicable)} applicable checks passed: exit status 0.")
        return 0
    err.print(
        f"[bold red]{len(failed)} of {len(applicable)} applicable checks failed[/] "
        f"({', '.join(failed)}): exit status 1, because a check failed (the report was "
        "written all the same)."
    )
    return 1
