"""From image files to results: the ``recognize`` command and camera frames to reads.

Capture time of a frame (used by :func:`frames_to_reads`): the first ``YYYYMMDDTHHMMSS``
(optionally with ``Z`` and/or milliseconds ``.fff``/``_fff``) or ``YYYY-MM-DDTHH-MM-SS`` in the
file name, read as UTC — e.g. ``cam07_20260301T081502Z.jpg``. A file without one gets its
modification time (UTC), which copying can change; name files by capture time when it matters.
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

__all__ = ["capture_time_of", "frames_to_reads", "reads_from_rendered_frames", "recognize_cli"]

_STAMP = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[-:]?(\d{2})[-:]?(\d{2})(?:[._](\d{1,6}))?"
)


def capture_time_of(path: Path) -> dt.datetime:
    """Capture time (UTC) from the file name, else from the file's modification time.

    Examples
    --------
    >>> capture_time_of(Path("cam07_20260301T081502Z.jpg"))
    datetime.datetime(2026, 3, 1, 8, 15, 2, tzinfo=datetime.timezone.utc)
    """
    m = _STAMP.search(path.name)
    if m:
        y, mo, d, h, mi, s, frac = m.groups()
        try:
            micro = int((frac or "0").ljust(6, "0")[:6])
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro,
                               tzinfo=dt.UTC)
        except ValueError:
            pass  # digits that only look like a time stamp
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)


def _read_id(camera_id: str, path: Path, digest: str, k: int) -> str:
    h = hashlib.sha256(f"{camera_id}\0{path.name}\0{digest}\0{k}".encode()).hexdigest()
    return f"rec:{h[:40]}"


def frames_to_reads(
    folder: str | Path,
    *,
    camera_id: str,
    network_id: str,
    lat: float,
    lon: float,
    recognizer: Recognizer | None = None,
    min_confidence_pct: float = 0.0,
    on_error: Callable[[Path, str], None] | None = None,
) -> pl.DataFrame:
    """Turn a folder of camera frames into reads that conform to ``data_schema/reads.yaml``.

    Each plate found becomes one read with ``source="recognition"``, the detector's box, the
    reader's confidence (percent) and alternatives, and ``image_ref`` = the frame's path.
    ``read_id`` is derived from the camera, the file name, the file's content hash and the
    plate's rank, so ingesting the same folder twice stores nothing new. Unreadable files are
    skipped (reported through ``on_error``).

    Parameters
    ----------
    folder
        Folder of frames (not searched recursively) or a single image file.
    camera_id, network_id, lat, lon
        The camera that took the frames.
    recognizer
        Loaded :class:`Recognizer`; the shipped models when ``None``.
    min_confidence_pct
        Readings below this confidence are not turned into reads.
    on_error
        Called with ``(path, message)`` for each file that could not be read.

    Returns
    -------
    polars.DataFrame
        Validated reads, ready for :func:`alpr_workbench.ingest.ingest_reads`.
    """
    from alpr_workbench.schema import empty_frame, validate_frame

    rec = recognizer or Recognizer.load()
    rows: list[dict[str, Any]] = []
    for path in iter_image_files([folder]):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            readings = rec.recognize(load_image(path))
        except (WorkbenchError, OSError) as exc:
            if on_error is not None:
                on_error(path, str(exc))
            continue
        captured = capture_time_of(path)
        for k, r in enumerate(readings):
            conf_pct = r.confidence * 100
            if not re.fullmatch(r"[A-Z0-9]{1,8}", r.text) or conf_pct < min_confidence_pct:
                continue
            assert r.box is not None
            x, y, w, h = r.box
            rows.append({
                "read_id": _read_id(camera_id, path, digest, k),
                "camera_id": camera_id,
                "network_id": network_id,
                "captured_at": captured,
                "plate": r.text,
                "plate_state": r.state,
                "confidence_pct": conf_pct,
                "alternate_plates": [t for t, _ in r.candidates[1:]],
                "box_x_px": x,
                "box_y_px": y,
                "box_w_px": w,
                "box_h_px": h,
                "image_ref": str(path),
                "lat": float(lat),
                "lon": float(lon),
                "source": "recognition",
            })
    if not rows:
        return empty_frame("reads")
    frame = pl.DataFrame(rows, schema_overrides={
        "plate_state": pl.String, "alternate_plates": pl.List(pl.String),
    })
    return validate_frame("reads", frame)


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
