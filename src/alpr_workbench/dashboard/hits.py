"""The dashboard's hit queue (issue #16, item 3): work a new hit from alert to outcome.

For the roles holding ``work_hits``. The page lists the new (pending) hits of the signed-in
user's networks (time in the department's zone, camera, plate, rounded confidence, category,
confusable-character warnings); choosing one shows the read, the entry it matched and the crop
image when ``image_ref`` names a readable image. The person decides *correct*, *wrong state*,
*misread* or *not actionable*; only after *correct* do the entry's actionable details and the
outcome form (stop, recovery with value, arrest, case cleared) appear.

The dashboard runs on Panel threads, outside the service's lock, so this page never calls a
governance function: every step goes **through the service API** with the signed-in user's
own session token (the dashboard's cookie holds it), as an
:class:`~alpr_workbench.client.Client` (a :class:`HitService`). The service checks the user's
standing and permission and audits each step with that user
(``docs/decisions/0003-service-boundary.md``). :class:`HitQueueState` holds the page's state
and its actions (one call per callback); :class:`HitQueuePage` only draws it.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import panel as pn
import param
import polars as pl
from panel.viewable import Viewer

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.hit_workflow import DECISIONS
from alpr_workbench.hotlist import OUTCOME_TYPES

__all__ = [
    "DECISION_LABELS",
    "MAX_CROP_BYTES",
    "OUTCOME_LABELS",
    "QUEUE_COLUMNS",
    "HitQueuePage",
    "HitQueueState",
    "HitService",
    "connect_hit_service",
    "queue_table",
    "read_crop",
]

#: The buttons of the decision, in order: label -> the service's decision (``DECISIONS``).
DECISION_LABELS: dict[str, str] = {
    "Correct": "correct",
    "Wrong state": "wrong_state",
    "Misread": "misread",
    "Not actionable": "not_actionable",
}
#: The outcome form's choices: label -> the service's outcome type (``OUTCOME_TYPES``).
OUTCOME_LABELS: dict[str, str] = {
    "Stop": "stop",
    "Recovery (with value)": "recovery",
    "Arrest": "arrest",
    "Case cleared": "case_cleared",
}
#: The queue table's columns, in order.
QUEUE_COLUMNS: tuple[str, ...] = (
    "hit_id", "time", "camera", "plate", "listed_plate", "confidence", "category", "warnings",
)
#: A crop image larger than this is not shown (bytes).
MAX_CROP_BYTES = 8 * 1024 * 1024
# Image kinds the page shows, by their first bytes.
_MAGIC: tuple[tuple[bytes, str], ...] = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"))

assert set(DECISION_LABELS.values()) == set(DECISIONS), "one label per decision"
assert set(OUTCOME_LABELS.values()) == set(OUTCOME_TYPES), "one label per outcome type"


class HitService(Protocol):
    """The service's hit workflow as the page uses it (:class:`~alpr_workbench.client.Client`)."""

    def hit_queue(self, *, limit: int = ...) -> dict[str, Any]:
        """``hits`` (list of dicts) and ``timezone``."""
        ...

    def show_hit(self, hit_id: str) -> dict[str, Any]:
        """``hit`` (with ``outcomes`` and ``is_actionable``) and ``timezone``."""
        ...

    def confirm_hit(self, hit_id: str, decision: str, *, note: str = ...) -> dict[str, Any]:
        """Record a decision; ``disposition`` and ``is_actionable``."""
        ...

    def record_hit_outcome(self, hit_id: str, outcome_type: str, *,
                           value_usd: float | None = ...,
                           case_number: str | None = ...) -> str:
        """Record an outcome; its id."""
        ...

    def efficacy_tables(self) -> dict[str, Any]:
        """The efficacy report (``figures``)."""
        ...

    def close(self) -> None:
        """Close the connection (the session itself stays until sign-out or expiry)."""
        ...


def connect_hit_service(url: str, token: str, ca_pem: str, *, user_id: str | None = None
                        ) -> HitService:
    """A client of the service acting with the session ``token`` (the signed-in user's).

    Parameters
    ----------
    url
        The service's API (``https://127.0.0.1:8443``).
    token
        The session token the dashboard's cookie holds.
    ca_pem
        The service's certificate (PEM), pinned: TLS is always verified.
    user_id
        Whose session it is (for messages only; the service takes the user from the token).

    Returns
    -------
    HitService
        A :class:`~alpr_workbench.client.Client`; close it when the page's session ends.
    """
    from alpr_workbench.client import Client

    return Client(url, token, ca_pem, user_id=user_id)


def _local(value: Any, zone: str) -> str:
    """An ISO time from the service, in the department's time zone (minutes)."""
    if not value:
        return ""
    when = dt.datetime.fromisoformat(str(value))
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _confidence(value: Any) -> str:
    return "" if value is None else f"{float(value):.0f} %"


def queue_table(hits: Sequence[Mapping[str, Any]], *, timezone: str) -> pl.DataFrame:
    """The queue as the page shows it: one row per hit, :data:`QUEUE_COLUMNS`, all text.

    Parameters
    ----------
    hits
        The service's ``hits`` (:meth:`HitService.hit_queue`).
    timezone
        The department's time zone (IANA name), for the times.

    Returns
    -------
    polars.DataFrame
        Times in ``timezone``, confidence rounded to whole percent, warnings joined.

    Examples
    --------
    >>> hit = {"hit_id": "h1", "captured_at": "2026-07-04T19:30:00+00:00",
    ...        "camera_id": "cam-1", "camera_name": "Olive & 5th", "read_plate": "7OA5",
    ...        "listed_plate": "70A5", "confidence_pct": 87.46, "category": "stolen_vehicle",
    ...        "confusable_warnings": ["position 2: read 'O', listed '0' (confusable)"]}
    >>> row = queue_table([hit], timezone="America/Los_Angeles").row(0, named=True)
    >>> row["time"], row["camera"], row["confidence"]
    ('2026-07-04 12:30 PDT', 'Olive & 5th', '87 %')
    """
    rows = [
        {
            "hit_id": str(hit.get("hit_id", "")),
            "time": _local(hit.get("captured_at"), timezone),
            "camera": str(hit.get("camera_name") or hit.get("camera_id") or ""),
            "plate": str(hit.get("read_plate") or ""),
            "listed_plate": str(hit.get("listed_plate") or ""),
            "confidence": _confidence(hit.get("confidence_pct")),
            "category": str(hit.get("category") or ""),
            "warnings": "; ".join(str(w) for w in hit.get("confusable_warnings") or []),
        }
        for hit in hits
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(QUEUE_COLUMNS, pl.String))


def read_crop(image_ref: str | None, *, home: Path | None = None) -> tuple[bytes | None, str]:
    """The crop image ``image_ref`` points at, when it is a readable PNG or JPEG.

    ``image_ref`` comes from stored reads (a vendor's export, a recognizer's frame path), so it
    is never trusted: only a regular file inside ``home`` (the data directory), reached without
    any symbolic link or ``..`` on the way, at most :data:`MAX_CROP_BYTES`, that starts like a
    PNG or a JPEG is shown. A relative reference is taken inside ``home``; an absolute one must
    name a file inside it.

    Parameters
    ----------
    image_ref
        The read's image reference (None or empty: there is none).
    home
        The data directory (None: no reference is read).

    Returns
    -------
    tuple
        The image's bytes (None when it is not shown) and what to say about it.

    Examples
    --------
    >>> read_crop(None)
    (None, 'no image for this read')
    >>> read_crop("frames/2026-01-01/cam-001/000001.jpg")[1]
    "no readable image at 'frames/2026-01-01/cam-001/000001.jpg'"
    """
    if not image_ref:
        return None, "no image for this read"
    none = f"no readable image at {image_ref[:200]!r}"
    if home is None:
        return None, none
    try:
        parts = _parts_inside(Path(image_ref), Path(home))
        data = None if parts is None else _read_beneath(Path(home).resolve(), parts)
    except (OSError, ValueError):
        return None, none
    if data is None:
        return None, none
    if len(data) > MAX_CROP_BYTES or not any(data.startswith(m) for m, _ in _MAGIC):
        return None, none
    return data, f"image {image_ref[:200]}"


def _parts_inside(path: Path, home: Path) -> tuple[str, ...] | None:
    """The components of ``path`` below ``home``, or None when it is not inside it."""
    if path.is_absolute():
        # The data directory as given and as resolved (it may sit under a linked folder).
        for root in (Path(os.path.abspath(home)), home.resolve()):
            if path.is_relative_to(root):
                path = path.relative_to(root)
                break
        else:
            return None
    parts = path.parts
    if not parts or any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def _read_beneath(root: Path, parts: tuple[str, ...]) -> bytes | None:
    """Read ``root/parts`` one component at a time, following no symbolic link at all.

    Each folder is opened relative to the one before it with ``O_NOFOLLOW``, and the file is
    read from the descriptor that was checked, so nothing swapped in between the check and the
    read (a link, a FIFO, a larger file) is read instead.
    """
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, nofollow | os.O_DIRECTORY)
    try:
        for name in parts[:-1]:
            inner = os.open(name, nofollow | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        leaf = os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        info = os.fstat(leaf)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CROP_BYTES:
            return None
        with os.fdopen(leaf, "rb", closefd=False) as fh:
            return fh.read(MAX_CROP_BYTES + 1)
    finally:
        os.close(leaf)


def _problem(exc: Exception) -> str:
    """A refusal or failure of the service, in words for the page."""
    detail = getattr(exc, "detail", None) or str(exc)
    status = getattr(exc, "status", None)
    if status == 0:
        return f"The service could not be reached: {detail}"
    if status == 401:
        return f"Your session has ended ({detail}): sign in again."
    return f"The service refused: {detail}"


class HitQueueState(param.Parameterized):
    """One session's hit queue, the chosen hit and what the person did, via the service.

    Every action is one call to the service (:class:`HitService`) as the signed-in user; a
    refusal or failure becomes :attr:`message`, in words, and changes nothing else.

    Parameters
    ----------
    service
        The service, acting with the signed-in user's session.
    home
        The data directory (relative image references are read inside it).
    show_efficacy
        Also fetch the efficacy figures (roles with ``view_aggregates``).
    """

    service = param.Parameter(constant=True, doc="The service (a HitService).")
    home = param.ClassSelector(class_=Path, default=None, allow_None=True, constant=True)
    show_efficacy = param.Boolean(default=False, constant=True)

    timezone = param.String(default="UTC", doc="The department's time zone.")
    hits = param.List(default=[], doc="The queue as the service sent it.")
    queue = param.ClassSelector(class_=pl.DataFrame, doc="The queue as shown (queue_table).")
    selected = param.String(default="", doc="The chosen hit ('' for none).")
    hit = param.Dict(default={}, doc="The chosen hit as the service shows it.")
    crop = param.Parameter(default=None, doc="The crop image's bytes, or None.")
    crop_note = param.String(default="", doc="What there is to say about the image.")
    figures = param.Dict(default={}, doc="Efficacy figures from the service.")
    message = param.String(default="", doc="The last refusal or failure, in words.")
    notice = param.String(default="", doc="What the last action did, in words.")
    changes = param.Integer(default=0, doc="Decisions and outcomes recorded in this session.")

    def __init__(self, *, service: HitService, home: Path | None = None,
                 show_efficacy: bool = False, **params: Any) -> None:
        super().__init__(service=service, home=None if home is None else Path(home),
                         show_efficacy=show_efficacy,
                         queue=queue_table([], timezone="UTC"), **params)
        self.refresh()

    # -- actions (one per callback) ------------------------------------------------------
    def refresh(self) -> None:
        """Fetch the queue (and the efficacy figures) again."""
        try:
            doc = self.service.hit_queue()
            figures = self._figures()
        except WorkbenchError as exc:
            self.message = _problem(exc)
            return
        zone = str(doc.get("timezone") or "UTC")
        hits = list(doc.get("hits") or [])
        self.param.update(timezone=zone, hits=hits, queue=queue_table(hits, timezone=zone),
                          figures=figures, message="")

    def select(self, hit_id: str) -> None:
        """Show one hit (its read, entry, warnings, image; actionable fields once confirmed)."""
        if not hit_id:
            self.param.update(selected="", hit={}, crop=None, crop_note="", message="")
            return
        try:
            doc = self.service.show_hit(hit_id)
        except WorkbenchError as exc:
            self.message = _problem(exc)
            return
        hit = dict(doc.get("hit") or {})
        crop, note = read_crop(hit.get("image_ref"), home=self.home)
        self.param.update(selected=hit_id, hit=hit, crop=crop, crop_note=note,
                          timezone=str(doc.get("timezone") or self.timezone), message="")

    def decide(self, decision: str, note: str = "") -> None:
        """Record the person's decision on the chosen hit, then show it again."""
        if not self.selected:
            self.message = "Choose a hit first."
            return
        try:
            done = self.service.confirm_hit(self.selected, decision, note=note)
        except WorkbenchError as exc:
            self.message = _problem(exc)
            return
        tail = ("it is actionable now" if done.get("is_actionable")
                else "it is not actionable")
        self._after_change(f"Recorded: {done.get('disposition')}; {tail}.")

    def record_outcome(self, outcome_type: str, *, value_usd: float | None = None,
                       case_number: str | None = None) -> None:
        """Record an outcome of the chosen (confirmed) hit, then show it again."""
        if not self.selected:
            self.message = "Choose a hit first."
            return
        try:
            outcome_id = self.service.record_hit_outcome(
                self.selected, outcome_type, value_usd=value_usd,
                case_number=(case_number or "").strip() or None)
        except WorkbenchError as exc:
            self.message = _problem(exc)
            return
        self._after_change(f"Recorded {outcome_type.replace('_', ' ')} ({outcome_id}).")

    # -- helpers -------------------------------------------------------------------------
    def _figures(self) -> dict[str, Any]:
        if not self.show_efficacy:
            return {}
        return dict(self.service.efficacy_tables().get("figures") or {})

    def _after_change(self, notice: str) -> None:
        hit_id = self.selected
        self.refresh()
        self.select(hit_id)
        self.param.update(notice=notice, changes=self.changes + 1)


# -- the view -------------------------------------------------------------------------------
_FIELDS: tuple[tuple[str, str], ...] = (
    ("disposition", "Status"),
    ("read_plate", "Plate read"),
    ("read_plate_state", "State read"),
    ("confidence_pct", "Confidence"),
    ("captured_at", "Time"),
    ("camera_name", "Camera"),
    ("listed_plate", "Plate listed"),
    ("plate_state", "State listed"),
    ("match_tier", "Match"),
    ("priority", "Priority"),
    ("hotlist_source", "Hotlist"),
    ("category", "Category"),
    ("vehicle_color", "Colour"),
    ("vehicle_make", "Make"),
    ("vehicle_model", "Model"),
)
_ACTIONABLE_FIELDS: tuple[tuple[str, str], ...] = (
    ("reason", "Reason listed"),
    ("originating_agency", "Originating agency"),
    ("originating_case_number", "Originating case"),
    ("theft_date", "Theft date"),
    ("vin", "VIN"),
    ("disposition_by", "Confirmed by"),
)


def _cell(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table_html(frame: pl.DataFrame, labels: Mapping[str, str]) -> str:
    head = "".join(f"<th>{_cell(labels.get(c, c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table class='hits'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _banner(text: str, colour: str) -> str:
    return f"<div style='background:{colour};padding:0.5em 1em'>{_cell(text)}</div>"


def _pairs_html(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table class='hit'>{body}</table>"


class HitQueuePage(Viewer):
    """Draws a :class:`HitQueueState`: the queue, the chosen hit, decisions and outcomes."""

    state = param.ClassSelector(class_=HitQueueState, doc="The session's hit queue.")

    _LABELS = {"hit_id": "Hit", "time": "Time", "camera": "Camera", "plate": "Plate read",
               "listed_plate": "Plate listed", "confidence": "Confidence",
               "category": "Category", "warnings": "Confusable characters"}

    @classmethod
    def _queue(cls, queue: pl.DataFrame, zone: str) -> str:
        if queue.is_empty():
            return "<p>No new hits to work.</p>"
        labels = {**cls._LABELS, "time": f"Time ({zone})"}
        return _table_html(queue, labels)

    @staticmethod
    def _details(hit: dict[str, Any], zone: str) -> str:
        if not hit:
            return "<p>Choose a hit to see it.</p>"
        rows: list[tuple[str, Any]] = []
        for key, label in _FIELDS:
            value = hit.get(key)
            if key == "captured_at":
                value = _local(value, zone)
            elif key == "confidence_pct":
                value = _confidence(value)
            rows.append((label, value))
        for warning in hit.get("confusable_warnings") or []:
            rows.append(("Warning", warning))
        if hit.get("is_actionable"):
            rows += [(label, hit.get(key)) for key, label in _ACTIONABLE_FIELDS]
        for out in hit.get("outcomes") or []:
            value = out.get("value_usd")
            rows.append(("Outcome", f"{out.get('outcome_type')} at "
                         f"{_local(out.get('occurred_at'), zone)}"
                         + (f", value ${value:,.0f}" if value is not None else "")
                         + (f", case {out['case_number']}" if out.get("case_number") else "")))
        tail = ("" if hit.get("is_actionable") else
                "<p><b>Not actionable until a person confirms it correct against the "
                "image.</b></p>")
        return f"<h4>Hit {_cell(hit.get('hit_id'))}</h4>{_pairs_html(rows)}{tail}"

    @staticmethod
    def _image(crop: bytes | None, note: str) -> pn.viewable.Viewable:
        if crop is None:
            return pn.pane.HTML(f"<p style='color:#555'>{_cell(note or 'no image')}</p>")
        if crop.startswith(b"\x89PNG"):
            return pn.pane.PNG(crop, width=320)
        return pn.pane.JPG(crop, width=320)

    @staticmethod
    def _figures(figures: dict[str, Any]) -> str:
        if not figures:
            return ""
        value = figures.get("recovered_value_usd")
        return (
            f"Efficacy (from the service): {figures.get('recoveries', 0):,} recoveries, "
            f"{'n/a' if value is None else f'${value:,.0f}'} recovered, "
            f"{figures.get('arrests', 0):,} arrests, "
            f"{figures.get('confirmed_hits', 0):,} confirmed hits."
        )

    def __panel__(self) -> pn.viewable.Viewable:
        state = self.state
        choose = pn.widgets.Select(label="Hit", sizing_mode="stretch_width")

        def options(hits: list[dict[str, Any]]) -> None:
            table = queue_table(hits, timezone=state.timezone)
            opts = {"(choose a hit)": ""}
            for row in table.iter_rows(named=True):
                opts[f"{row['time']} · {row['plate']} · {row['camera']} · {row['hit_id']}"] = (
                    row["hit_id"])
            if state.selected and state.selected not in opts.values():
                # The hit being worked left the queue (decided): keep it chosen.
                opts[f"{state.selected} (decided)"] = state.selected
            choose.options = opts
            choose.value = state.selected

        options(state.hits)
        state.param.watch(lambda e: options(e.new), "hits")
        choose.param.watch(lambda e: state.select(e.new), "value")
        refresh = pn.widgets.Button(label="Refresh the queue", color="light")
        refresh.on_click(lambda _e: state.refresh())

        note = pn.widgets.TextInput(label="Note (kept in the audit log)", max_length=500,
                                    sizing_mode="stretch_width")
        decisions = []
        for label, decision in DECISION_LABELS.items():
            button = pn.widgets.Button(label=label, color="primary"
                                       if decision == "correct" else "default")
            button.on_click(lambda _e, d=decision: state.decide(d, note.value))
            decisions.append(button)

        kind = pn.widgets.Select(label="Outcome", options=OUTCOME_LABELS)
        value = pn.widgets.FloatInput(label="Vehicle value (USD, recovery only)", value=None,
                                      start=0)
        case = pn.widgets.TextInput(label="Department case number", max_length=80)
        record = pn.widgets.Button(label="Record outcome", color="primary")
        record.on_click(lambda _e: state.record_outcome(
            kind.value, value_usd=value.value, case_number=case.value))
        actionable = pn.bind(lambda h: bool(h.get("is_actionable")), state.param.hit)
        outcome_form = pn.Column("#### Outcome", kind, value, case, record, visible=actionable)
        chosen = pn.bind(bool, state.param.selected)

        return pn.Column(
            pn.pane.Markdown(
                "New hotlist hits of your networks. A hit is a lead, not evidence: compare the "
                "read with the image and the entry before deciding. Every step is audited "
                "with your name.", styles={"color": "#555"}),
            pn.pane.HTML(pn.bind(_banner, state.param.message, "#f8d7da"),
                         visible=pn.bind(bool, state.param.message), css_classes=["hit-error"],
                         sizing_mode="stretch_width"),
            pn.pane.HTML(pn.bind(_banner, state.param.notice, "#d1e7dd"),
                         visible=pn.bind(bool, state.param.notice), css_classes=["hit-notice"],
                         sizing_mode="stretch_width"),
            pn.pane.HTML(pn.bind(lambda f: _cell(self._figures(f)), state.param.figures)),
            pn.pane.HTML(pn.bind(self._queue, state.param.queue, state.param.timezone),
                         sizing_mode="stretch_width"),
            pn.Row(choose, refresh),
            pn.Row(
                pn.pane.HTML(pn.bind(self._details, state.param.hit, state.param.timezone),
                             sizing_mode="stretch_width"),
                pn.bind(self._image, state.param.crop, state.param.crop_note),
            ),
            pn.Column(note, pn.Row(*decisions), visible=chosen),
            outcome_form,
            sizing_mode="stretch_width",
        )
