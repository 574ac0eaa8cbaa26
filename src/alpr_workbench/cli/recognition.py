"""The recognition commands: ``recognize`` and ``ingest-frames``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alpr_workbench.cli._common import _fail, console, err
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from alpr_workbench.client import Client


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


#: Reads per upload: each request stays far below the service's CSV limit.
_BATCH_ROWS = 5_000


def ingest_frames(
    folder: Annotated[Path, typer.Argument(help="Folder of frames from one camera.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera id (as in the cameras table).")],
    time_from: Annotated[
        str,
        typer.Option(
            "--time-from",
            help="Capture time of each frame: auto (EXIF DateTimeOriginal, else a "
            "YYYYMMDDTHHMMSS stamp in the name), exif, name, name:<strftime pattern> "
            "(e.g. name:cam_%Y%m%d-%H%M%S; UTC unless %z), or mtime (the file's modified "
            "time, which copying changes: only when you know it is right). A frame "
            "without a time stops the run.",
        ),
    ] = "auto",
    min_confidence: Annotated[
        float | None,
        typer.Option(
            "--min-confidence", min=0.0, max=1.0,
            help="Store only plates read with at least this confidence, 0-1 (default: the "
            "recognition pipeline's DEFAULT_MIN_CONFIDENCE, 0.5).",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, max=64, help="CPU threads.")] = 2,
    session_file: Session = None,
) -> None:
    """Read the plates in a camera's frames here, then store them through the service.

    Recognition runs in this process (the models ship with the package; no key is needed).
    The reads go to the service as the signed-in user (``alpr-workbench login`` first; the
    ingest needs an administrator), which adds the camera's network and place from its
    cameras table, stores them, matches them against the hotlists and audits the ingest.
    """
    from rich.markup import escape

    from alpr_workbench.cli._session import as_session_user
    from alpr_workbench.ingest import write_reads_csv
    from alpr_workbench.recognition import Recognizer
    from alpr_workbench.recognition.pipeline import (
        DEFAULT_MIN_CONFIDENCE,
        check_time_from,
        recognize_frames,
    )

    if min_confidence is None:
        min_confidence = DEFAULT_MIN_CONFIDENCE
    try:
        check_time_from(time_from)
        if not folder.exists():
            raise WorkbenchError(f"{folder}: no such folder or file")
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    as_session_user(session_file, lambda c: c.whoami())  # signed in? say so before the work
    failed: list[tuple[Path, str]] = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("reading frames", total=None)
            reads = recognize_frames(
                folder,
                camera_id=camera,
                recognizer=Recognizer.load(threads=threads),
                time_from=time_from,
                min_confidence=min_confidence,
                on_error=lambda path, why: failed.append((path, why)),
                on_progress=lambda done, total: progress.update(task, completed=done,
                                                                total=total),
            )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    for path, why in failed:
        err.print(f"[bold red]unreadable:[/] {escape(str(path))}: {escape(why[:300])}")
    totals = {"rows_received": 0, "rows_added": 0, "rows_already_stored": 0, "hits_added": 0}

    def upload(client: Client) -> None:
        for offset in range(0, reads.height, _BATCH_ROWS):
            batch = write_reads_csv(reads.slice(offset, _BATCH_ROWS))
            answer = client.ingest(batch, source=str(folder), camera=camera)
            for key in totals:
                totals[key] += int(answer[key])

    if reads.height:
        as_session_user(session_file, upload)
    console.print(
        f"{escape(str(folder))}: {totals['rows_received']:,} plate(s) read at or above "
        f"{min_confidence:.0%} confidence, {totals['rows_added']:,} stored, "
        f"{totals['rows_already_stored']:,} already stored; {totals['hits_added']:,} new "
        "hit(s). Every hit needs a person's confirmation."
    )
    if failed:
        err.print(f"[bold red]{len(failed)} file(s) could not be read[/]; the others were stored.")
        raise typer.Exit(1)
