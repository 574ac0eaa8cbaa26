"""From image files to results: the ``recognize`` command and camera frames to reads.

Capture time of a frame (:func:`capture_time_of`, chosen with ``time_from``) comes from one of:

* ``"exif"``: the image's EXIF ``DateTimeOriginal`` (with ``OffsetTimeOriginal`` when the
  camera wrote one, else read as UTC) and ``SubSecTimeOriginal``;
* ``"name"``: the first ``YYYYMMDDTHHMMSS`` (optionally with ``Z`` and/or milliseconds
  ``.fff``/``_fff``) or ``YYYY-MM-DDTHH-MM-SS`` in the file name, read as UTC — e.g.
  ``cam07_20260301T081502Z.jpg``;
* ``"name:<strftime pattern>"``: the first part of the file name that fits the pattern (e.g.
  ``name:IMG_%d%m%Y-%H%M%S``), read as UTC unless the pattern has ``%z``;
* ``"auto"`` (the default): EXIF, else the built-in name stamp;
* ``"mtime"``: the file's modification time, which copying changes — only when the operator
  asks for it.

A frame whose time cannot be found is an error naming the file, never a silent guess.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.recognition.infer import (
    Recognizer,
    iter_image_files,
    load_image,
    recognize_paths,
)

__all__ = [
    "CAMERA_COLUMNS",
    "DEFAULT_MIN_CONFIDENCE",
    "capture_time_of",
    "check_time_from",
    "frames_to_reads",
    "reads_from_rendered_frames",
    "recognize_cli",
    "recognize_frames",
]

#: Plates read below this confidence (0–1) are not stored by ``ingest-frames`` unless the
#: operator gives ``--min-confidence`` (the policy declares no threshold of its own).
DEFAULT_MIN_CONFIDENCE = 0.5
#: Columns of a read that describe the camera, filled from the ``cameras`` table (by the
#: service, for ``ingest-frames``), never by the recognizer.
CAMERA_COLUMNS = ("network_id", "lat", "lon")

_STAMP = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[-:]?(\d{2})[-:]?(\d{2})(?:[._](\d{1,6}))?"
)
# strftime directives a file-name pattern may use, as regular expressions.
_DIRECTIVES = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{1,2}", "d": r"\d{1,2}", "H": r"\d{1,2}",
    "I": r"\d{1,2}", "M": r"\d{1,2}", "S": r"\d{1,2}", "f": r"\d{1,6}", "j": r"\d{1,3}",
    "p": r"[AaPp][Mm]", "b": r"[A-Za-z]{3}", "B": r"[A-Za-z]{3,9}",
    "z": r"(?:[Zz]|[+-]\d{2}:?\d{2})", "%": "%",
}
_EXIF_IFD, _DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL = 0x8769, 0x9003, 0x9011, 0x9291


def check_time_from(time_from: str) -> str:
    """Check a ``time_from`` choice (see the module's docstring); return it.

    Raises
    ------
    WorkbenchError
        For an unknown choice, or a ``name:`` pattern without a date and a time of day.

    Examples
    --------
    >>> check_time_from("name:cam_%Y%m%d-%H%M%S")
    'name:cam_%Y%m%d-%H%M%S'
    >>> check_time_from("ctime")
    Traceback (most recent call last):
    ...
    alpr_workbench.errors.WorkbenchError: unknown time source 'ctime': give auto, exif, ...
    """
    if time_from in ("auto", "exif", "name", "mtime"):
        return time_from
    if time_from.startswith("name:"):
        _name_pattern(time_from[5:])
        return time_from
    raise WorkbenchError(
        f"unknown time source {time_from[:60]!r}: give auto, exif, name, "
        "name:<strftime pattern> (e.g. name:cam_%Y%m%d-%H%M%S) or mtime"
    )


def _name_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression that finds ``pattern`` (strftime directives) in a file name."""
    parts: list[str] = []
    used: set[str] = set()
    i = 0
    while i < len(pattern):
        if pattern[i] != "%":
            parts.append(re.escape(pattern[i]))
            i += 1
            continue
        code = pattern[i + 1] if i + 1 < len(pattern) else ""
        if code not in _DIRECTIVES:
            raise WorkbenchError(
                f"time pattern {pattern[:60]!r}: %{code} is not supported (use "
                f"{' '.join('%' + c for c in _DIRECTIVES if c != '%')})"
            )
        parts.append(f"({_DIRECTIVES[code]})" if code != "%" else "%")
        used.add(code)
        i += 2
    day = "j" in used or ("d" in used and bool(used & {"m", "b", "B"}))
    date = bool(used & {"Y", "y"}) and day
    if not date or not (used & {"H", "I"}) or "M" not in used:
        raise WorkbenchError(
            f"time pattern {pattern[:60]!r} must give the date and the time of day "
            "(at least %Y, %m, %d, %H and %M)"
        )
    return re.compile("".join(parts))


def _time_from_name(path: Path) -> dt.datetime | None:
    m = _STAMP.search(path.name)
    if m:
        y, mo, d, h, mi, s, frac = m.groups()
        try:
            micro = int((frac or "0").ljust(6, "0")[:6])
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro,
                               tzinfo=dt.UTC)
        except ValueError:
            pass  # digits that only look like a time stamp
    return None


def _time_from_pattern(path: Path, pattern: str) -> dt.datetime | None:
    m = _name_pattern(pattern).search(path.name)
    if m is None:
        return None
    text = m.group(0)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+0000"
    try:
        value = dt.datetime.strptime(text, pattern)  # noqa: DTZ007 - zone set below
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _time_from_exif(path: Path) -> dt.datetime | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            exif = image.getexif().get_ifd(_EXIF_IFD)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
    raw = exif.get(_DATETIME_ORIGINAL)
    if not isinstance(raw, str):
        return None
    try:
        value = dt.datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007
    except ValueError:
        return None
    subsec = str(exif.get(_SUBSEC_ORIGINAL, "")).strip("\x00 ").strip()
    if subsec.isdigit():
        value = value.replace(microsecond=int(subsec.ljust(6, "0")[:6]))
    offset = str(exif.get(_OFFSET_ORIGINAL, "")).strip("\x00 ").strip()
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", offset)
    if m is None:
        return value.replace(tzinfo=dt.UTC)
    sign = 1 if m.group(1) == "+" else -1
    zone = dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    return value.replace(tzinfo=zone).astimezone(dt.UTC)


def capture_time_of(path: Path, time_from: str = "auto") -> dt.datetime:
    """Capture time (UTC) of a frame, from where ``time_from`` says (see the module's docstring).

    Parameters
    ----------
    path
        The frame.
    time_from
        ``"auto"`` (EXIF, else the name stamp), ``"exif"``, ``"name"``,
        ``"name:<strftime pattern>"`` or ``"mtime"``.

    Returns
    -------
    datetime.datetime
        Timezone-aware, UTC.

    Raises
    ------
    WorkbenchError
        Naming the file, when the chosen source gives no time (never a silent fallback).

    Examples
    --------
    >>> capture_time_of(Path("cam07_20260301T081502Z.jpg"), "name")
    datetime.datetime(2026, 3, 1, 8, 15, 2, tzinfo=datetime.timezone.utc)
    >>> capture_time_of(Path("IMG_01032026-081502.jpg"), "name:IMG_%d%m%Y-%H%M%S")
    datetime.datetime(2026, 3, 1, 8, 15, 2, tzinfo=datetime.timezone.utc)
    """
    check_time_from(time_from)
    found: dt.datetime | None
    if time_from == "mtime":
        return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    if time_from == "exif":
        found, looked = _time_from_exif(path), "no EXIF DateTimeOriginal"
    elif time_from == "name":
        found, looked = _time_from_name(path), "no time stamp (YYYYMMDDTHHMMSS) in its name"
    elif time_from == "auto":
        found = _time_from_exif(path) or _time_from_name(path)
        looked = "no EXIF DateTimeOriginal and no time stamp (YYYYMMDDTHHMMSS) in its name"
    else:
        found = _time_from_pattern(path, time_from[5:])
        looked = f"its name does not fit the pattern {time_from[5:][:60]!r}"
    if found is None:
        raise WorkbenchError(
            f"{path}: no capture time: {looked}; give --time-from exif, "
            "--time-from name:<strftime pattern>, or (knowing that copying changes it) "
            "--time-from mtime"
        )
    return found


def _read_id(camera_id: str, path: Path, digest: str, k: int) -> str:
    h = hashlib.sha256(f"{camera_id}\0{path.name}\0{digest}\0{k}".encode()).hexdigest()
    return f"rec:{h[:40]}"


def recognize_frames(
    folder: str | Path,
    *,
    camera_id: str,
    recognizer: Recognizer | None = None,
    time_from: str = "auto",
    min_confidence: float = 0.0,
    on_error: Callable[[Path, str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Read the plates in a camera's frames: reads without the camera's network and place.

    Each plate found becomes one read with ``source="recognition"``, the detector's box, the
    reader's confidence (percent) and alternatives, and ``image_ref`` = the frame's path.
    ``read_id`` is derived from the camera, the file name, the file's content hash and the
    plate's rank, so ingesting the same folder twice stores nothing new. Every frame's capture
    time is found first (:func:`capture_time_of`), so a frame without one stops the run
    before anything is recognized. Unreadable files are skipped (reported through
    ``on_error``). The columns :data:`CAMERA_COLUMNS` are left out: they come from the
    ``cameras`` table of the store (the service fills them).

    Parameters
    ----------
    folder
        Folder of frames (not searched recursively) or a single image file.
    camera_id
        The camera that took the frames.
    recognizer
        Loaded :class:`Recognizer`; the shipped models when ``None``.
    time_from
        Where each frame's capture time comes from (see :func:`capture_time_of`).
    min_confidence
        Readings below this confidence (0–1) are not turned into reads.
    on_error
        Called with ``(path, message)`` for each file that could not be read.
    on_progress
        Called with ``(frames done, frames in all)`` after each frame.

    Returns
    -------
    polars.DataFrame
        The reads' columns of ``data_schema/reads.yaml`` but :data:`CAMERA_COLUMNS`.

    Raises
    ------
    WorkbenchError
        For a bad ``time_from`` or ``min_confidence``, or a readable frame without a capture
        time (naming it).
    """
    from alpr_workbench.schema import load_table

    check_time_from(time_from)
    if not 0.0 <= min_confidence <= 1.0:
        raise WorkbenchError(f"min_confidence {min_confidence!r} must lie between 0 and 1")
    paths = iter_image_files([folder])
    times: dict[Path, dt.datetime] = {}
    for path in paths:
        try:
            times[path] = capture_time_of(path, time_from)
        except WorkbenchError:
            try:
                load_image(path)
            except (WorkbenchError, OSError):
                continue  # unreadable: reported below, with the reason
            raise
        except OSError:
            continue  # e.g. a file that vanished: reported below
    rec = recognizer or Recognizer.load()
    rows: list[dict[str, Any]] = []
    for done, path in enumerate(paths, start=1):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            readings = rec.recognize(load_image(path))
            captured = times[path] if path in times else capture_time_of(path, time_from)
        except (WorkbenchError, OSError) as exc:
            if on_error is not None:
                on_error(path, str(exc))
            readings = []
        for k, r in enumerate(readings):
            if not re.fullmatch(r"[A-Z0-9]{1,8}", r.text) or r.confidence < min_confidence:
                continue
            assert r.box is not None
            x, y, w, h = r.box
            rows.append({
                "read_id": _read_id(camera_id, path, digest, k),
                "camera_id": camera_id,
                "captured_at": captured,
                "plate": r.text,
                "plate_state": r.state,
                "confidence_pct": r.confidence * 100,
                "alternate_plates": [t for t, _ in r.candidates[1:]],
                "box_x_px": x,
                "box_y_px": y,
                "box_w_px": w,
                "box_h_px": h,
                "image_ref": str(path),
                "source": "recognition",
            })
        if on_progress is not None:
            on_progress(done, len(paths))
    spec = load_table("reads")
    schema = {c: t for c, t in spec.polars_schema.items() if c not in CAMERA_COLUMNS}
    frame = pl.DataFrame(rows, schema={c: schema[c] for c in rows[0]}) if rows else None
    if frame is None:
        return pl.DataFrame(schema=schema)
    return frame.select(
        [pl.col(c) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
         for c, t in schema.items()]
    )


def frames_to_reads(
    folder: str | Path,
    *,
    camera_id: str,
    network_id: str,
    lat: float,
    lon: float,
    recognizer: Recognizer | None = None,
    min_confidence_pct: float = 0.0,
    time_from: str = "auto",
    on_error: Callable[[Path, str], None] | None = None,
) -> pl.DataFrame:
    """Turn a folder of camera frames into reads that conform to ``data_schema/reads.yaml``.

    :func:`recognize_frames`, with the camera's network and place given here.

    Parameters
    ----------
    folder
        Folder of frames (not searched recursively) or a single image file.
    camera_id, network_id, lat, lon
        The camera that took the frames.
    recognizer
        Loaded :class:`Recognizer`; the shipped models when ``None``.
    min_confidence_pct
        Readings below this confidence (percent) are not turned into reads.
    time_from
        Where each frame's capture time comes from (see :func:`capture_time_of`).
    on_error
        Called with ``(path, message)`` for each file that could not be read.

    Returns
    -------
    polars.DataFrame
        Validated reads, ready for :func:`alpr_workbench.ingest.ingest_reads`.
    """
    from alpr_workbench.schema import empty_frame, load_table, validate_frame

    reads = recognize_frames(
        folder, camera_id=camera_id, recognizer=recognizer, time_from=time_from,
        min_confidence=min_confidence_pct / 100, on_error=on_error,
    )
    if reads.is_empty():
        return empty_frame("reads")
    placed = reads.with_columns(
        pl.lit(network_id).alias("network_id"),
        pl.lit(float(lat)).alias("lat"),
        pl.lit(float(lon)).alias("lon"),
    ).select(load_table("reads").columns)
    return validate_frame("reads", placed)


def recognize_cli(
    paths: Iterable[str | Path],
    *,
    crops: bool = False,
    as_json: bool = True,
    models_dir: str | Path | None = None,
    top_k: int = 5,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Body of ``alpr-workbench recognize IMAGE_OR_DIR... [--crops] [--json]``.

    Prints one line per image: with ``as_json`` a JSON object
    ``{"image", "plates": [{"text", "confidence", "box", "candidates", ...}], "ms"}`` (a file
    that cannot be read gets ``{"image", "plates": [], "error"}``); otherwise a short text line.
    The run always goes on to the next file.

    Parameters
    ----------
    paths
        Image files and/or folders (folders are not searched recursively).
    crops
        Treat each image as an already cropped plate (skip detection).
    as_json
        JSON lines instead of text.
    models_dir
        Folder with the weights (``*.onnx`` and/or ``*.pt``); the shipped models when ``None``.
    top_k
        Most candidates per plate.
    threads
        CPU threads of the models: ONNX Runtime's intra-op threads, or torch's when the
        weights run on torch (``None`` leaves the default).
    echo
        Where lines go.

    Returns
    -------
    int
        Exit status: 0 when every file was read, 1 when some could not be.
    """
    rec = Recognizer.load(models_dir, threads=threads)
    if threads is not None and rec.backend == "torch":  # torch is imported only for torch
        import torch

        torch.set_num_threads(threads)
    failed = 0
    for result in recognize_paths(paths, recognizer=rec, crops=crops, top_k=top_k):
        failed += "error" in result
        if as_json:
            echo(json.dumps(result))
        elif "error" in result:
            echo(f"{result['image']}: ERROR {result['error']}")
        else:
            plates = ", ".join(
                f"{p['text']} ({p['confidence'] * 100:.0f} %)" for p in result["plates"]
            ) or "no plate"
            echo(f"{result['image']}: {plates}  [{result['ms']:.0f} ms]")
    return 1 if failed else 0


def reads_from_rendered_frames(
    sample: pl.DataFrame,
    *,
    seed: int,
    recognizer: Recognizer | None = None,
    size: tuple[int, int] = (720, 1280),
) -> tuple[pl.DataFrame, int]:
    """Render a camera frame for each read of ``sample`` and let the model read it.

    This is how the demo makes a share of the synthetic city's reads come from the
    recognition models: each sampled read's plate is drawn on a car in a synthetic 720p
    street frame (see :func:`alpr_workbench.recognition.synth_plates.render_scene`), the
    frames go through :func:`frames_to_reads` exactly as a camera's frames would, and the
    model's reads replace the sample. The frames are discarded afterwards (``image_ref`` names
    them ``synthetic-frame:…``); a misread stays a misread, as it would in the field.

    Parameters
    ----------
    sample
        Reads (``data_schema/reads.yaml``) whose plates to draw; ``captured_at``,
        ``camera_id``, ``network_id``, ``lat`` and ``lon`` carry over.
    seed
        Seed of the rendering.
    recognizer
        Loaded :class:`Recognizer`; the shipped models when ``None``.
    size
        Frame ``(height, width)``.

    Returns
    -------
    tuple[polars.DataFrame, int]
        The model's reads and how many sampled plates it read exactly (first plate of the
        frame equal to the drawn one).
    """
    import tempfile

    import numpy as np
    from PIL import Image

    from alpr_workbench.recognition.synth_plates import render_scene
    from alpr_workbench.schema import empty_frame

    rec = recognizer or Recognizer.load()
    rng = np.random.default_rng([seed, 7])
    frames: list[pl.DataFrame] = []
    exact = 0
    with tempfile.TemporaryDirectory(prefix="alpr-frames-") as tmp:
        for row in sample.sort("captured_at", "read_id").iter_rows(named=True):
            folder = Path(tmp) / row["read_id"].replace(":", "_")
            folder.mkdir()
            scene = render_scene(rng, size=size, plate_width=(90.0, 200.0),
                                 plates=[(row["plate"], row["plate_state"] or "XX")])
            stamp = row["captured_at"].strftime("%Y%m%dT%H%M%SZ")
            path = folder / f"{row['camera_id']}_{stamp}.jpg"
            Image.fromarray(scene.image).save(path, quality=90)
            reads = frames_to_reads(path, camera_id=row["camera_id"],
                                    network_id=row["network_id"], lat=row["lat"],
                                    lon=row["lon"], recognizer=rec)
            if reads.height:
                exact += reads["plate"][0] == row["plate"]
                frames.append(reads.with_columns(
                    pl.lit(f"synthetic-frame:{path.name}").alias("image_ref")
                ))
    if not frames:
        return empty_frame("reads"), 0
    return pl.concat(frames), exact
