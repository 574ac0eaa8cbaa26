"""The recognition commands: ``recognize`` and ``ingest-frames``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alpr_workbench.cli._common import DataDir, _fail, _open, console, err
from alpr_workbench.errors import WorkbenchError


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
