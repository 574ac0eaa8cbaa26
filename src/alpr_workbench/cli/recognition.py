"""The recognition commands: ``recognize`` and ``ingest-frames``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alpr_workbench.cli._common import _fail, console, err
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import polars as pl

    from alpr_workbench.client import Client
    from alpr_workbench.recognition.tracks import Track


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
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Keep running: store new frames as they appear in the "
                     "folder (a camera uploading), until Ctrl-C or SIGTERM."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, max=3600.0,
                     help="With --watch: seconds between looks at the folder."),
    ] = 5.0,
    no_vote: Annotated[
        bool,
        typer.Option("--no-vote", help="Store one read per plate per frame, instead of one "
                     "read per vehicle: by default the reads of one plate in consecutive "
                     "frames (at most 2 s apart, same or similar text, similar place) vote, "
                     "and one read with the voted text and its frame count is stored."),
    ] = False,
    session_file: Session = None,
) -> None:
    """Read the plates in a camera's frames here, then store them through the service.

    Recognition runs in this process (the models ship with the package; no key is needed).
    The reads go to the service as the signed-in user (``alpr-workbench login`` first; the
    ingest needs an administrator), which adds the camera's network and place from its
    cameras table, stores them, matches them against the hotlists and audits the ingest.

    Several frames of one vehicle vote (unless ``--no-vote``): the frames, in capture-time
    order, go through :class:`alpr_workbench.recognition.tracks.FrameTracker`, and one read
    per track is stored, with the voted text, its confidence and ``frame_count``.
    ``--min-confidence`` applies to each frame's reading, before the vote.

    With ``--watch`` the command keeps running and stores each new frame once it is complete
    (its size unchanged across two looks; hidden files and ``.part``/``.tmp`` names are left
    alone); a frame that cannot be read is reported and skipped. When the service cannot be
    reached, or has signed the session out (a restart does; sign in again), it retries with
    back-off; Ctrl-C or SIGTERM stops it with a summary.
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
    if watch:
        if not folder.is_dir():
            raise _fail(WorkbenchError(f"{folder}: --watch needs a folder"))
        raise typer.Exit(_watch_frames(
            folder, camera=camera, time_from=time_from, min_confidence=min_confidence,
            recognizer=Recognizer.load(threads=threads), interval=interval,
            session_file=session_file, vote=not no_vote,
        ))
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
    readings = reads.height
    reads = _one_read_per_vehicle(reads) if not no_vote else _one_frame_each(reads)
    totals = {"rows_received": 0, "rows_added": 0, "rows_already_stored": 0, "hits_added": 0}

    def upload(client: Client) -> None:
        for offset in range(0, reads.height, _BATCH_ROWS):
            batch = write_reads_csv(reads.slice(offset, _BATCH_ROWS))
            answer = client.ingest(batch, source=str(folder), camera=camera)
            for key in totals:
                totals[key] += int(answer[key])

    if reads.height:
        as_session_user(session_file, upload)
    voted = "" if no_vote else f" (one per vehicle, from {readings:,} frame reading(s))"
    console.print(
        f"{escape(str(folder))}: {totals['rows_received']:,} plate(s) read at or above "
        f"{min_confidence:.0%} confidence{voted}, {totals['rows_added']:,} stored, "
        f"{totals['rows_already_stored']:,} already stored; {totals['hits_added']:,} new "
        "hit(s). Every hit needs a person's confirmation."
    )
    if failed:
        err.print(f"[bold red]{len(failed)} file(s) could not be read[/]; the others were stored.")
        raise typer.Exit(1)


def _one_read_per_vehicle(reads: pl.DataFrame) -> pl.DataFrame:
    """Per-frame reads of one camera voted into one read per vehicle (``frame_count`` set)."""
    from alpr_workbench.recognition.tracks import vote_reads

    return vote_reads(reads).select(reads.columns)


def _closed_reads(tracks: list[Track]) -> list[pl.DataFrame]:
    """The voted reads of closed tracks, as one upload frame (none for no track)."""
    from alpr_workbench.recognition.pipeline import CAMERA_COLUMNS
    from alpr_workbench.recognition.tracks import tracks_to_frame
    from alpr_workbench.schema import load_table

    if not tracks:
        return []
    schema = {c: t for c, t in load_table("reads").polars_schema.items()
              if c not in CAMERA_COLUMNS}
    return [tracks_to_frame(tracks, schema)]


def _one_frame_each(reads: pl.DataFrame) -> pl.DataFrame:
    """Per-frame reads kept as they are (``--no-vote``): each read is one frame's."""
    import polars as pl

    return reads.with_columns(pl.lit(1, dtype=pl.Int32).alias("frame_count"))


#: Longest wait between two tries to reach the service (``--watch``).
_MAX_BACKOFF_S = 60.0
#: Names a camera or a copy tool gives a file it is still writing.
_PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart")


def _complete_frames(folder: Path, sizes: dict[Path, tuple[int, int]]) -> list[Path]:
    """Frames whose size and modified time are as at the last look (``sizes``, updated)."""
    from alpr_workbench.recognition.infer import IMAGE_SUFFIXES

    now: dict[Path, tuple[int, int]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        entries = []
    for path in entries:
        name = path.name.lower()
        if (name.startswith(".") or name.endswith(_PARTIAL_SUFFIXES)
                or path.suffix.lower() not in IMAGE_SUFFIXES):
            continue
        try:
            st = path.stat()
        except OSError:
            continue  # vanished between the listing and now
        if path.is_file() and st.st_size > 0:
            now[path] = (st.st_size, st.st_mtime_ns)
    ready = [p for p, sig in now.items() if sizes.get(p) == sig]
    sizes.clear()
    sizes.update(now)
    return ready


def _watch_frames(
    folder: Path,
    *,
    camera: str,
    time_from: str,
    min_confidence: float,
    recognizer: Any,
    interval: float,
    session_file: Path | None,
    vote: bool = True,
) -> int:
    """``ingest-frames --watch``: the loop; returns the exit code (0, or 1 if a frame failed).

    With ``vote``, each frame's reads go through a :class:`FrameTracker`; a track is sent
    once a later frame comes more than ``TRACK_MAX_GAP`` after it (capture time), once no new
    frame has arrived for that long (wall time), or when the watch stops. A frame counts as
    stored once no open track holds it and its reads were sent.
    """
    import signal
    import time

    import polars as pl
    from rich.markup import escape

    from alpr_workbench.client import ServiceError, connect
    from alpr_workbench.ingest import write_reads_csv
    from alpr_workbench.recognition.pipeline import recognize_frames
    from alpr_workbench.recognition.tracks import TRACK_MAX_GAP, FrameTracker

    tracker = FrameTracker() if vote else None
    quiet_s = TRACK_MAX_GAP.total_seconds()
    last_new = time.monotonic()
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def pause(seconds: float) -> None:
        end = time.monotonic() + seconds
        while not stopping and time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    totals = {"rows_received": 0, "rows_added": 0, "rows_already_stored": 0, "hits_added": 0}
    sizes: dict[Path, tuple[int, int]] = {}
    done: set[tuple[str, int, int]] = set()  # (name, size, mtime): sent or reported
    waiting: list[tuple[str, int, int]] = []  # read, not yet stored
    unsent: list[pl.DataFrame] = []
    frames_stored = failed = 0
    backoff = interval
    refused: ServiceError | None = None

    def send() -> None:
        nonlocal unsent
        with connect(session_file=session_file) as client:
            while unsent:
                batch = pl.concat(unsent)
                head = batch.head(_BATCH_ROWS)
                if head.height:
                    answer = client.ingest(write_reads_csv(head), source=str(folder),
                                           camera=camera)
                    for key in totals:
                        totals[key] += int(answer[key])
                unsent = [batch.slice(_BATCH_ROWS)] if batch.height > _BATCH_ROWS else []

    err.print(f"Watching {escape(str(folder))} for frames of camera {escape(camera)} "
              f"(every {interval:g} s); Ctrl-C or SIGTERM stops.")
    try:
        while not stopping:
            for path in _complete_frames(folder, sizes):
                st_key = (path.name, *sizes[path])
                if stopping or st_key in done or st_key in waiting:
                    continue
                problems: list[str] = []

                def note(_path: Path, why: str, out: list[str] = problems) -> None:
                    out.append(why)

                try:
                    reads = recognize_frames(
                        path, camera_id=camera, recognizer=recognizer, time_from=time_from,
                        min_confidence=min_confidence, on_error=note,
                    )
                except WorkbenchError as exc:
                    problems.append(str(exc))
                if problems:
                    failed += 1
                    done.add(st_key)
                    err.print(f"[bold red]unreadable:[/] {escape(str(path))}: "
                              f"{escape(problems[0][:300])}")
                    continue
                waiting.append(st_key)
                last_new = time.monotonic()
                if tracker is None:
                    unsent.append(_one_frame_each(reads))
                else:
                    unsent.extend(_closed_reads(tracker.feed(reads)))
            if tracker is not None and tracker.open_tracks and (
                    time.monotonic() - last_new >= quiet_s):
                unsent.extend(_closed_reads(tracker.close()))
            held = {ref for track in (tracker.open_tracks if tracker else [])
                    for ref in track.frame_refs}
            ready = [k for k in waiting if str(folder / k[0]) not in held]
            if unsent or ready:
                try:
                    send()
                except ServiceError as exc:
                    if exc.status in (0, 401) or exc.status >= 500:
                        why = ("the service signed this session out (a restart does): run "
                               "`alpr-workbench login` again" if exc.status == 401
                               else f"cannot reach the service ({exc.detail[:200]})")
                        err.print(f"[yellow]{escape(why)}; {len(waiting)} frame(s) wait; "
                                  f"retrying in {backoff:g} s[/]")
                        pause(backoff)
                        backoff = min(backoff * 2, _MAX_BACKOFF_S)
                        continue
                    refused = exc
                    break
                console.print(f"{len(ready)} new frame(s) stored: {totals['rows_added']:,} "
                              "read(s) stored so far")
                done.update(ready)
                frames_stored += len(ready)
                waiting[:] = [k for k in waiting if k not in ready]
                backoff = interval
            pause(interval)
        if tracker is not None and refused is None and (tracker.open_tracks or unsent):
            unsent.extend(_closed_reads(tracker.close()))  # the watch stops
            try:
                send()
            except ServiceError as exc:
                err.print(f"[yellow]the last vehicles' reads were not stored: "
                          f"{escape(str(exc)[:200])}[/]")
            else:
                frames_stored += len(waiting)
                done.update(waiting)
                waiting.clear()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if refused is not None:
        err.print(f"[bold red]error:[/] {escape(str(refused))}")
    console.print(
        f"{escape(str(folder))}: stopped watching. {frames_stored:,} frame(s) stored: "
        f"{totals['rows_received']:,} plate(s) read at or above {min_confidence:.0%} "
        f"confidence, {totals['rows_added']:,} stored, {totals['rows_already_stored']:,} already "
        f"stored; {totals['hits_added']:,} new hit(s)."
        + (f" {len(waiting)} frame(s) read but not stored." if waiting else "")
    )
    if failed:
        err.print(f"[bold red]{failed} file(s) could not be read[/]; the others were stored.")
    return 2 if refused is not None else (1 if failed or waiting else 0)
