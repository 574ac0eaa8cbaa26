"""Several frames of one vehicle vote: per-frame plate reads grouped into tracks, one read each.

A fixed camera sees each car in several consecutive frames. :func:`vote_reads` (a whole
folder) and :class:`FrameTracker` (frames as they arrive, ``ingest-frames --watch``) group the
per-frame reads of :func:`alpr_workbench.recognition.pipeline.recognize_frames` into
**tracks**, one per vehicle, and turn each track into one read.

The rule (constants declared once, below):

* Only reads of the **same camera** are ever grouped, frame after frame in capture-time order
  (ties by the frame's name). A track takes at most one read from each frame, so two plates
  in one frame are always two vehicles.
* A read extends an open track when it comes at most :data:`TRACK_MAX_GAP` after the track's
  last frame, and either reads **exactly the same text** as a frame of the track (wherever the
  plate is: a car moves far between frames), or reads a text at most
  :data:`TRACK_MAX_TEXT_EDITS` edits from one of the track's texts **and** its box centre lies
  within :data:`TRACK_MAX_CENTRE_SHIFT` of the wider box's width from the track's last box.
  When several reads and tracks qualify, exact texts pair first, then the nearest boxes.
* A track closes when a later frame of its camera comes more than :data:`TRACK_MAX_GAP` after
  its last frame (or at the end of the input, or when the caller closes it).

The vote of a closed track: each frame votes for its text with its confidence. The text with
the highest summed confidence wins (ties: more frames, then the single surest frame, then
alphabetical order). Only a text some frame read can win (no per-character vote: that could
make up a plate no frame saw). The read then carries:

* ``confidence_pct``: the winning text's summed confidence divided by the number of frames:
  the mean confidence when every frame agrees, lowered by each frame that read otherwise;
* ``frame_count``: the number of frames in the track;
* the **best frame** of the winning text (its surest reading; ties, the earliest) for
  everything else: ``captured_at``, the box, ``image_ref``, the state;
* ``alternate_plates``: the other texts the frames read (by their votes), then the best
  frame's own alternatives;
* ``read_id``: a one-frame track keeps its frame's read id (so it is the read a run without
  voting stores); a longer track gets ``trk:`` and a hash of its frames' read ids, so
  ingesting the same frames again stores nothing new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from alpr_workbench.termmatch import within_edits

__all__ = [
    "TRACK_MAX_CENTRE_SHIFT",
    "TRACK_MAX_GAP",
    "TRACK_MAX_TEXT_EDITS",
    "FrameTracker",
    "Track",
    "tracks_to_frame",
    "vote_reads",
]

#: Longest time between two consecutive frames of one track.
TRACK_MAX_GAP = dt.timedelta(seconds=2)
#: Farthest a similar (not identical) reading's box centre may lie from the track's last box
#: centre, as a fraction of the wider box's width (half a plate: two plates side by side
#: stay apart).
TRACK_MAX_CENTRE_SHIFT = 0.5
#: Most edits (insertions, deletions, substitutions, swaps) between a reading and one of the
#: track's texts for the reading to join the track.
TRACK_MAX_TEXT_EDITS = 2
#: Most alternative texts the voted read keeps.
_MAX_ALTERNATES = 8


@dataclass
class Track:
    """One vehicle's reads in consecutive frames of one camera.

    Attributes
    ----------
    camera_id
        The camera.
    reads
        The per-frame reads (rows of ``data_schema/reads.yaml`` as dicts), in frame order.
    """

    camera_id: str
    reads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_at(self) -> dt.datetime:
        """Capture time of the track's first frame."""
        return _time(self.reads[0])

    @property
    def last_at(self) -> dt.datetime:
        """Capture time of the track's last frame."""
        return _time(self.reads[-1])

    @property
    def frame_refs(self) -> set[str]:
        """The ``image_ref`` of every frame in the track."""
        return {str(r.get("image_ref")) for r in self.reads}

    def vote(self) -> dict[str, Any]:
        """The track's one read: the voted text and its best frame (see the module's rule).

        Returns
        -------
        dict
            A read (the columns of the frames' reads, with ``frame_count``).
        """
        votes: dict[str, list[float]] = {}
        for read in self.reads:
            votes.setdefault(read["plate"], []).append(_confidence(read))
        ranked = sorted(votes, key=lambda t: (-sum(votes[t]), -len(votes[t]), -max(votes[t]), t))
        winner = ranked[0]
        best = min(
            (r for r in self.reads if r["plate"] == winner),
            key=lambda r: (-_confidence(r), _time(r)),
        )
        alternates: list[str] = []
        for text in [*ranked[1:], *(best.get("alternate_plates") or [])]:
            if text != winner and text not in alternates:
                alternates.append(text)
        out = dict(best)
        out["confidence_pct"] = sum(votes[winner]) / len(self.reads)
        out["alternate_plates"] = alternates[:_MAX_ALTERNATES]
        out["frame_count"] = len(self.reads)
        if len(self.reads) > 1:
            ids = "\0".join(sorted(str(r["read_id"]) for r in self.reads))
            digest = hashlib.sha256(f"{self.camera_id}\0{ids}".encode()).hexdigest()
            out["read_id"] = f"trk:{digest[:40]}"
        return out


def _time(read: dict[str, Any]) -> dt.datetime:
    value = read["captured_at"]
    if not isinstance(value, dt.datetime):
        raise TypeError(f"captured_at must be a datetime, got {type(value).__name__}")
    return value


def _confidence(read: dict[str, Any]) -> float:
    return float(read.get("confidence_pct") or 0.0)


def _centre_shift(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Distance between the two reads' box centres in wider-box widths (inf without boxes)."""
    keys = ("box_x_px", "box_y_px", "box_w_px", "box_h_px")
    if any(r.get(k) is None for r in (a, b) for k in keys):
        return math.inf
    ax, ay, aw, ah = (float(a[k]) for k in keys)
    bx, by, bw, bh = (float(b[k]) for k in keys)
    width = max(aw, bw, 1.0)
    return math.hypot((ax + aw / 2) - (bx + bw / 2), (ay + ah / 2) - (by + bh / 2)) / width


class FrameTracker:
    """Groups per-frame reads into tracks as frames arrive (see the module's rule).

    Feed reads in batches (:meth:`feed`, a batch may hold several frames and cameras); each
    call returns the tracks it closed. :meth:`close` closes the rest.

    Parameters
    ----------
    max_gap
        Longest time between two consecutive frames of one track.
    max_centre_shift
        Farthest a similar reading's box centre may move, in wider-box widths.
    max_text_edits
        Most edits between a similar reading and one of the track's texts.

    Examples
    --------
    >>> import datetime as dt
    >>> t0 = dt.datetime(2026, 3, 1, 8, 15, tzinfo=dt.UTC)
    >>> reads = [{"read_id": f"r{i}", "camera_id": "cam-1", "plate": p, "image_ref": f"f{i}",
    ...           "captured_at": t0 + dt.timedelta(seconds=i), "confidence_pct": 90.0,
    ...           "box_x_px": 100 + 5 * i, "box_y_px": 50, "box_w_px": 120, "box_h_px": 60}
    ...          for i, p in enumerate(["7ABC123", "7A8C123", "7ABC123"])]
    >>> tracker = FrameTracker()
    >>> tracker.feed(reads)
    []
    >>> [(r["plate"], r["frame_count"], r["confidence_pct"])
    ...  for r in (t.vote() for t in tracker.close())]
    [('7ABC123', 3, 60.0)]
    """

    def __init__(
        self,
        *,
        max_gap: dt.timedelta = TRACK_MAX_GAP,
        max_centre_shift: float = TRACK_MAX_CENTRE_SHIFT,
        max_text_edits: int = TRACK_MAX_TEXT_EDITS,
    ) -> None:
        if max_gap < dt.timedelta(0):
            raise ValueError(f"max_gap {max_gap} must not be negative")
        if not max_centre_shift >= 0:
            raise ValueError(f"max_centre_shift {max_centre_shift!r} must not be negative")
        if max_text_edits < 0:
            raise ValueError(f"max_text_edits {max_text_edits!r} must not be negative")
        self.max_gap = max_gap
        self.max_centre_shift = max_centre_shift
        self.max_text_edits = max_text_edits
        self._open: dict[str, list[Track]] = {}

    @property
    def open_tracks(self) -> list[Track]:
        """The tracks still open, camera by camera."""
        return [t for camera in sorted(self._open) for t in self._open[camera]]

    def feed(self, reads: Iterable[dict[str, Any]] | pl.DataFrame) -> list[Track]:
        """Add reads (any frames, any cameras); return the tracks this closed, oldest first.

        Parameters
        ----------
        reads
            Per-frame reads: dicts or a frame with ``read_id``, ``camera_id``,
            ``captured_at``, ``plate``, ``confidence_pct``, ``image_ref`` and the box.

        Returns
        -------
        list of Track
            The tracks a later frame closed (their last frame more than ``max_gap`` before
            a newer frame of their camera).
        """
        rows = list(reads.iter_rows(named=True) if isinstance(reads, pl.DataFrame) else reads)
        rows.sort(key=lambda r: (str(r["camera_id"]), _time(r), str(r.get("image_ref"))))
        closed: list[Track] = []
        frame: list[dict[str, Any]] = []
        for row in rows:
            if frame and _frame_key(row) != _frame_key(frame[0]):
                closed.extend(self._add_frame(frame))
                frame = []
            frame.append(row)
        if frame:
            closed.extend(self._add_frame(frame))
        return sorted(closed, key=lambda t: (t.first_at, t.camera_id))

    def close(self) -> list[Track]:
        """Close every open track (the input ended, or the watcher stops); return them."""
        closed = self.open_tracks
        self._open.clear()
        return sorted(closed, key=lambda t: (t.first_at, t.camera_id))

    def _add_frame(self, frame: list[dict[str, Any]]) -> list[Track]:
        camera = str(frame[0]["camera_id"])
        at = _time(frame[0])
        tracks = self._open.setdefault(camera, [])
        closed = [t for t in tracks if at - t.last_at > self.max_gap]
        live = [t for t in tracks if t not in closed]
        candidates: list[tuple[int, float, int, int]] = []
        for ti, track in enumerate(live):
            if track.last_at > at or _frame_key(track.reads[-1]) == _frame_key(frame[0]):
                continue  # a frame older than the track's end, or the same frame: never joins
            texts = {r["plate"] for r in track.reads}
            for ri, read in enumerate(frame):
                shift = _centre_shift(track.reads[-1], read)
                if read["plate"] in texts:
                    candidates.append((0, shift, ti, ri))
                elif shift <= self.max_centre_shift and any(
                    within_edits(read["plate"], t, self.max_text_edits) for t in texts
                ):
                    candidates.append((1, shift, ti, ri))
        taken_tracks: set[int] = set()
        taken_reads: set[int] = set()
        for _, _, ti, ri in sorted(candidates):
            if ti in taken_tracks or ri in taken_reads:
                continue
            live[ti].reads.append(frame[ri])
            taken_tracks.add(ti)
            taken_reads.add(ri)
        for ri, read in enumerate(frame):
            if ri not in taken_reads:
                live.append(Track(camera_id=camera, reads=[read]))
        self._open[camera] = live
        return closed


def _frame_key(read: dict[str, Any]) -> tuple[str, dt.datetime, str]:
    return (str(read["camera_id"]), _time(read), str(read.get("image_ref")))


def vote_reads(
    reads: pl.DataFrame,
    *,
    max_gap: dt.timedelta = TRACK_MAX_GAP,
    max_centre_shift: float = TRACK_MAX_CENTRE_SHIFT,
    max_text_edits: int = TRACK_MAX_TEXT_EDITS,
) -> pl.DataFrame:
    """One read per track of per-frame reads (see the module's rule for grouping and vote).

    Parameters
    ----------
    reads
        Per-frame reads, e.g. from
        :func:`alpr_workbench.recognition.pipeline.recognize_frames` (any cameras).
    max_gap, max_centre_shift, max_text_edits
        The grouping rule (:data:`TRACK_MAX_GAP`, :data:`TRACK_MAX_CENTRE_SHIFT`,
        :data:`TRACK_MAX_TEXT_EDITS` by default).

    Returns
    -------
    polars.DataFrame
        The columns of ``reads`` (with ``frame_count`` added if absent), one row per track,
        ordered by the track's first frame.
    """
    tracker = FrameTracker(max_gap=max_gap, max_centre_shift=max_centre_shift,
                           max_text_edits=max_text_edits)
    tracks = tracker.feed(reads)
    tracks += tracker.close()
    return tracks_to_frame(tracks, reads.schema)


def tracks_to_frame(tracks: Iterable[Track], schema: pl.Schema | dict[str, Any]) -> pl.DataFrame:
    """The voted reads of ``tracks`` as a frame with ``schema`` (plus ``frame_count``).

    Parameters
    ----------
    tracks
        Closed tracks.
    schema
        Columns and types of the per-frame reads.

    Returns
    -------
    polars.DataFrame
        One row per track, in the order given.
    """
    full = dict(schema)
    if "frame_count" not in full:
        full["frame_count"] = pl.Int32()
    rows = [{c: voted.get(c) for c in full} for voted in (t.vote() for t in tracks)]
    return pl.DataFrame(rows, schema=full) if rows else pl.DataFrame(schema=full)
