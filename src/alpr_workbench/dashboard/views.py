"""Thin views of :class:`~alpr_workbench.dashboard.state.DashboardState` (docs/conventions.md §13).

Each view draws one part of the state and holds no logic of its own beyond formatting.
Charts and maps are Bokeh figures (through Panel) whose data sources are updated in place
when the state changes. Maps draw the city outline, grid cells and camera points in
longitude/latitude, so they work offline; with ``tiles=True`` they switch to web-mercator
and add OpenStreetMap tiles underneath (needs the network, off by default).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import panel as pn
import param
import polars as pl
from panel.viewable import Viewer

from alpr_workbench.dashboard.auth import (
    DashboardRefused,
    dashboard_pages,
    dashboard_user_problem,
)
from alpr_workbench.dashboard.hits import HitQueuePage, HitQueueState, HitService
from alpr_workbench.dashboard.state import DashboardSource, DashboardState
from alpr_workbench.governance.gate import SearchRefused
from alpr_workbench.governance.registry import get_user

__all__ = [
    "AuditHealthPanel",
    "CameraMap",
    "DashboardApp",
    "FilterControls",
    "ImpactPanel",
    "KpiCards",
    "RecoveryMap",
    "TrendView",
    "create_app",
]

_ACCENT = "#1f4e79"
_PRESETS: tuple[tuple[str, int | None], ...] = (
    ("Last day", 1),
    ("Last 7 days", 7),
    ("Last 30 days", 30),
    ("Last 90 days", 90),
    ("All stored days", None),
)


# Characters that HTML or Markdown would read as markup, as numeric character references.
_MARKUP_CHARS = {c: f"&#{ord(c)};" for c in "&<>\"'`|[]()*_\\#!~{}"}


def _text(value: Any) -> str:
    """A user-controlled value as literal text inside an HTML or Markdown pane.

    Examples
    --------
    >>> _text("<img src=x onerror=alert(1)> | [x](javascript:y)")
    '&#60;img src=x onerror=alert&#40;1&#41;&#62; &#124; &#91;x&#93;&#40;javascript:y&#41;'
    """
    return "".join(_MARKUP_CHARS.get(c, c) for c in str(value))


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.0f}"


def _pct(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "n/a"
    if low is None or high is None:
        return f"{value:.1f} %"
    return f"{value:.1f} % ({low:.1f}–{high:.1f})"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _count(value: Any) -> str:
    return "n/a" if value is None else f"{int(value):,}"


# Web-mercator, for tiles only (EPSG:3857); offline maps stay in lon/lat.
def _mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.radians(lon) * 6_378_137.0
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6_378_137.0
    return x, y


class _StateView(Viewer):
    state = param.ClassSelector(class_=DashboardState, doc="The session's state.")


class FilterControls(_StateView):
    """Period (from, to, presets) and networks."""

    def __panel__(self) -> pn.viewable.Viewable:
        state = self.state
        start = pn.widgets.DatePicker.from_param(
            state.param.start,
            label="From (UTC)",
            start=state.first_day,
            end=state.last_day,
            sizing_mode="stretch_width",
        )
        end = pn.widgets.DatePicker.from_param(
            state.param.end,
            label="To (UTC)",
            start=state.first_day,
            end=state.last_day,
            sizing_mode="stretch_width",
        )
        buttons = []
        for label, days in _PRESETS:
            button = pn.widgets.Button(label=label, color="light", sizing_mode="stretch_width")
            button.on_click(lambda _event, d=days: state.set_last_days(d))
            buttons.append(button)
        networks = pn.widgets.MultiChoice.from_param(
            state.param.network_ids,
            label="Networks (none chosen = all)",
            options=state.network_choices,
            sizing_mode="stretch_width",
        )
        stored = pn.pane.Markdown(
            f"Stored days: {state.first_day} .. {state.last_day}", styles={"color": "#555"}
        )
        message = pn.pane.Alert(
            pn.bind(lambda m: _text(m or ""), state.param.message),
            alert_type="warning",
            visible=pn.bind(bool, state.param.message),
        )
        return pn.Column(start, end, *buttons, networks, stored, message)


class KpiCards(_StateView):
    """Efficacy at a glance: recoveries, value, arrests, cases, hits, rates, cost."""

    def _card(self, title: str, fmt: Callable[[dict[str, Any]], str]) -> pn.indicators.String:
        return pn.indicators.String(
            label=title,
            value=pn.bind(fmt, self.state.param.figures),
            default_color=_ACCENT,
            font_size="30pt",
            title_size="11pt",
            width=230,
            css_classes=["kpi"],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        cards = [
            self._card("Vehicles recovered", lambda f: _count(f.get("recoveries"))),
            self._card("Value recovered", lambda f: _money(f.get("recovered_value_usd"))),
            self._card("Arrests", lambda f: _count(f.get("arrests"))),
            self._card("Cases cleared", lambda f: _count(f.get("cases_cleared"))),
            self._card("Hotlist hits", lambda f: _count(f.get("hits"))),
            self._card(
                "Confirmed-hit rate",
                lambda f: _pct(f.get("confirmed_hit_rate_pct")),
            ),
            self._card("Misread rate", lambda f: _pct(f.get("misread_rate_pct"))),
            self._card("Cost per recovery", lambda f: _money(f.get("cost_per_recovery_usd"))),
        ]
        note = pn.pane.Markdown(
            pn.bind(self._note, self.state.param.figures), styles={"color": "#555"}
        )
        return pn.Column(pn.FlexBox(*cards), note, sizing_mode="stretch_width")

    @staticmethod
    def _note(f: dict[str, Any]) -> str:
        if not f:
            return ""
        conf = (f.get("confirmed_hit_rate_low_pct"), f.get("confirmed_hit_rate_high_pct"))
        mis = (f.get("misread_rate_low_pct"), f.get("misread_rate_high_pct"))
        ci = (
            f"95 % intervals: confirmed-hit rate {_pct(conf[0])}–{_pct(conf[1])}, "
            f"misread rate {_pct(mis[0])}–{_pct(mis[1])} "
            f"(of {_count(f.get('dispositioned_hits'))} decided hits). "
        )
        return (
            f"**{f['start']} .. {f['end']}** ({_days(f['period_days'])}): "
            f"{_count(f.get('reads'))} reads, hit rate {_pct(f.get('hit_rate_pct'))}. {ci}"
            f"Cost per recovery uses the prorated budget {_money(f.get('budget_prorated_usd'))}."
        )


class TrendView(_StateView):
    """Reads, hits and outcomes over the period (per day, week or month)."""

    _SERIES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
        ("Reads", (("reads", "#7f7f7f"),)),
        ("Hotlist hits", (("hits", "#ff7f0e"), ("confirmed", "#2ca02c"))),
        ("Recoveries and arrests", (("recoveries", _ACCENT), ("arrests", "#d62728"))),
    )

    @staticmethod
    def _data(frame: pl.DataFrame) -> dict[str, Any]:
        data: dict[str, Any] = {
            "x": frame["period_start"].cast(pl.Datetime("ms")).to_numpy(),
            "label": frame["period_start"].cast(pl.String).to_list(),
        }
        for col in ("reads", "hits", "confirmed", "recoveries", "arrests"):
            data[col] = frame[col].to_numpy()
        return data

    def __panel__(self) -> pn.viewable.Viewable:
        from bokeh.models import ColumnDataSource, DataRange1d, HoverTool, NumeralTickFormatter
        from bokeh.plotting import figure

        state = self.state
        source = ColumnDataSource(self._data(state.trend_frame))
        x_range = DataRange1d()
        unit = {"1d": "day", "1w": "week", "1mo": "month"}
        figures = []
        for title, series in self._SERIES:
            fig = figure(
                title=f"{title} per {unit.get(state.trend_every, 'period')}",
                x_axis_type="datetime",
                x_range=x_range,
                height=230,
                width=400,
                sizing_mode="stretch_width",
                tools="pan,box_zoom,reset,save",
                toolbar_location=None,
            )
            fig.y_range.start = 0
            fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
            for col, color in series:
                label = {"legend_label": col} if len(series) > 1 else {}
                fig.line("x", col, source=source, color=color, line_width=2, **label)
                fig.scatter("x", col, source=source, color=color, size=5)
            fig.add_tools(
                HoverTool(
                    tooltips=[("period from", "@label")] + [(c, f"@{c}{{0,0}}") for c, _ in series]
                )
            )
            if fig.legend:
                fig.legend.location = "top_left"
                fig.legend.background_fill_alpha = 0.6
            figures.append(fig)

        def update(_event: Any = None) -> None:
            every = unit.get(state.trend_every, "period")
            for fig, (title, _) in zip(figures, self._SERIES, strict=True):
                fig.title.text = f"{title} per {every}"
            source.data = self._data(state.trend_frame)

        state.param.watch(update, ["trend_frame"])
        return pn.Row(
            *(pn.pane.Bokeh(f, sizing_mode="stretch_width") for f in figures),
            sizing_mode="stretch_width",
        )


class _MapView(_StateView):
    """A Bokeh map of the city in lon/lat (offline) or web-mercator with tiles (online)."""

    tiles = param.Boolean(default=False, doc="Draw OpenStreetMap tiles (needs the network).")

    def _xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        return _mercator(lon, lat) if self.tiles else (lon, lat)

    def _rings(self, frame: pl.DataFrame) -> dict[str, list[np.ndarray]]:
        xs, ys = [], []
        for lon, lat in zip(frame["lon"].to_list(), frame["lat"].to_list(), strict=True):
            x, y = self._xy(lon, lat)
            xs.append(x)
            ys.append(y)
        return {"xs": xs, "ys": ys}

    def _figure(self, title: str) -> Any:
        from bokeh.models import WMTSTileSource
        from bokeh.plotting import figure

        outline = self.state.outline
        lat0 = float(outline["lat"].mean())
        dx = float(outline["lon"].max() - outline["lon"].min()) * math.cos(math.radians(lat0))
        dy = float(outline["lat"].max() - outline["lat"].min())
        width = 620
        height = int(width * max(0.4, min(2.5, dy / dx))) if dx else width
        x, y = self._xy(outline["lon"].to_numpy(), outline["lat"].to_numpy())
        pad_x, pad_y = 0.03 * (x.max() - x.min()), 0.03 * (y.max() - y.min())
        fig = figure(
            title=title,
            width=width,
            height=height,
            sizing_mode="scale_width",
            x_range=(x.min() - pad_x, x.max() + pad_x),
            y_range=(y.min() - pad_y, y.max() + pad_y),
            tools="pan,wheel_zoom,box_zoom,reset,save",
            toolbar_location="above",
            x_axis_label=None if self.tiles else "longitude",
            y_axis_label=None if self.tiles else "latitude",
        )
        if self.tiles:
            fig.add_tile(
                WMTSTileSource(
                    url="https://tile.openstreetmap.org/{Z}/{X}/{Y}.png",
                    attribution="© OpenStreetMap contributors",
                )
            )
            fig.axis.visible = False
        fig.grid.visible = False
        return fig

    def _outline(self, fig: Any) -> None:
        outline = self.state.outline
        x, y = self._xy(outline["lon"].to_numpy(), outline["lat"].to_numpy())
        fig.line(x, y, line_color="black", line_width=2)


class RecoveryMap(_MapView):
    """Stolen-vehicle recoveries per grid cell over the city outline (a heat map)."""

    def _data(self, cells: pl.DataFrame) -> dict[str, Any]:
        counts = cells["recoveries"].to_numpy()
        return {
            **self._rings(cells),
            "recoveries": counts,
            "alpha": np.where(counts > 0, 0.85, 0.15),
        }

    def __panel__(self) -> pn.viewable.Viewable:
        from bokeh.models import (
            BasicTicker,
            ColorBar,
            ColumnDataSource,
            HoverTool,
            LinearColorMapper,
            NumeralTickFormatter,
        )
        from bokeh.palettes import Reds9

        cells = self.state.recovery_cells
        source = ColumnDataSource(self._data(cells))
        mapper = LinearColorMapper(palette=list(reversed(Reds9)), low=0, high=1)
        fig = self._figure("Stolen-vehicle recoveries per 400 m cell")
        fig.patches(
            "xs",
            "ys",
            source=source,
            fill_color={"field": "recoveries", "transform": mapper},
            fill_alpha="alpha",
            line_color="#c8c8c8",
            line_width=0.4,
        )
        self._outline(fig)
        fig.add_tools(HoverTool(tooltips=[("recoveries", "@recoveries")]))
        fig.add_layout(
            ColorBar(
                color_mapper=mapper,
                title="recoveries",
                width=10,
                ticker=BasicTicker(min_interval=1),
                formatter=NumeralTickFormatter(format="0"),
            ),
            "right",
        )
        pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width")

        def update(cells: pl.DataFrame) -> None:
            mapper.high = max(1, int(cells["recoveries"].max() or 0))
            source.data = self._data(cells)

        update(cells)
        self.state.param.watch(lambda e: update(e.new), "recovery_cells")
        return pane


class CameraMap(_MapView):
    """Cameras over the city outline, sized by reads, on the camera-coverage grid."""

    def _data(self, cams: pl.DataFrame) -> dict[str, Any]:
        x, y = self._xy(cams["lon"].to_numpy(), cams["lat"].to_numpy())
        reads = cams["reads"].to_numpy().astype(float)
        top = reads.max() if len(reads) and reads.max() > 0 else 1.0
        return {
            "x": x,
            "y": y,
            "camera": cams["name"].to_list(),
            "network": cams["network_name"].to_list(),
            "reads": cams["reads"].to_numpy(),
            "size": 6 + 14 * np.sqrt(reads / top),
        }

    def __panel__(self) -> pn.viewable.Viewable:
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.palettes import Category10_10
        from bokeh.transform import factor_cmap

        state = self.state
        cover = state.coverage_cells
        fig = self._figure(
            f"Cameras by reads; {state.coverage_share_pct:.0f} % of the city within 300 m"
        )
        fig.patches(
            "xs",
            "ys",
            source=ColumnDataSource(
                {
                    **self._rings(cover),
                    "covered": np.where(cover["is_covered"].to_numpy(), "#cfe3f3", "#f6f6f6"),
                }
            ),
            fill_color="covered",
            fill_alpha=0.8,
            line_color="#dddddd",
            line_width=0.3,
        )
        self._outline(fig)
        names = sorted(state.source.tables().networks["name"].to_list())
        points = ColumnDataSource(self._data(state.camera_points))
        glyph = fig.scatter(
            "x",
            "y",
            source=points,
            size="size",
            line_color="white",
            fill_color=factor_cmap("network", Category10_10[: max(3, len(names))], names),
            legend_field="network",
        )
        fig.add_tools(
            HoverTool(
                renderers=[glyph],
                tooltips=[("camera", "@camera"), ("network", "@network"), ("reads", "@reads{0,0}")],
            )
        )
        legend = fig.legend[0]
        legend.orientation = "horizontal"
        legend.label_text_font_size = "8pt"
        legend.click_policy = "hide"
        fig.add_layout(legend, "below")
        pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width")
        state.param.watch(lambda e: setattr(points, "data", self._data(e.new)), "camera_points")
        return pane


class ImpactPanel(_StateView):
    """The harms beside the efficacy: reads never matched, misread stops, refused searches."""

    @staticmethod
    def _text(f: dict[str, Any]) -> str:
        if not f:
            return ""
        return "\n".join(
            [
                "| Impact | Period |",
                "|---|---:|",
                f"| Reads never matched to a hotlist | {_pct(f.get('reads_never_matched_pct'))} |",
                f"| Stops on misread hits | {_count(f.get('misread_stops'))} |",
                f"| Stops without an arrest | {_count(f.get('stops_without_arrest'))} |",
                f"| Searches refused by the gate | {_count(f.get('searches_refused'))} "
                f"of {_count(f.get('searches'))} |",
                f"| Reads from private networks | {_pct(f.get('private_network_reads_pct'))} |",
                f"| Distinct vehicles read (all networks) | {_count(f.get('unique_vehicles'))} |",
                f"| Camera evenness (1 − Gini) | {_ratio(f.get('camera_evenness'))} |",
            ]
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "### Impact",
            pn.pane.Markdown(pn.bind(self._text, self.state.param.figures)),
            sizing_mode="stretch_width",
        )


class AuditHealthPanel(_StateView):
    """Flags from the latest audit checks."""

    @staticmethod
    def _text(frame: pl.DataFrame | None) -> str:
        if frame is None or frame.is_empty():
            return "No audit checks have run."
        lines = ["| | Check | Flagged | Detail |", "|---|---|---:|---|"]
        for row in frame.iter_rows(named=True):
            mark = {
                True: "<span style='color:#2a7d2a'>pass</span>",
                False: "<b style='color:#c00'>FAIL</b>",
                None: "<span style='color:#555'>info</span>",
            }[row["passed"]]
            lines.append(
                f"| {mark} | {_text(row['title'])} | {row['flagged']:,} | "
                f"{_text(row.get('detail') or '')} |"
            )
        return "\n".join(lines)

    def __panel__(self) -> pn.viewable.Viewable:
        button = pn.widgets.Button(label="Run checks again", color="light", width=160)
        button.on_click(lambda _event: self.state.refresh_audit_health())
        return pn.Column(
            "### Audit health",
            pn.pane.Markdown(pn.bind(self._text, self.state.param.audit_health)),
            button,
            sizing_mode="stretch_width",
        )


class DashboardApp(_StateView):
    """The page body: KPIs, trends, maps, impact and audit health for one state."""

    tiles = param.Boolean(default=False, doc="OpenStreetMap tiles under the maps (online only).")

    def header(self) -> pn.viewable.Viewable:
        """Who is logged in, with a log-out link."""
        return _header(self.state.full_name, self.state.role)

    def sidebar(self) -> pn.viewable.Viewable:
        """The filters."""
        return FilterControls(state=self.state)

    def __panel__(self) -> pn.viewable.Viewable:
        state = self.state
        banner = pn.pane.Markdown(
            "Aggregates only: this page never shows a plate, a read or a hit. "
            "Every figure comes from the gate's audited read summary.",
            styles={"color": "#555", "font-size": "90%"},
        )
        return pn.Column(
            banner,
            KpiCards(state=state),
            TrendView(state=state),
            pn.Row(
                RecoveryMap(state=state, tiles=self.tiles),
                CameraMap(state=state, tiles=self.tiles),
                sizing_mode="stretch_width",
            ),
            pn.Row(ImpactPanel(state=state), AuditHealthPanel(state=state)),
            sizing_mode="stretch_width",
        )

    def template(self, *, title: str = "ALPR program: efficacy and impact") -> Any:
        """The full page (Panel template) with header, sidebar and body."""
        return pn.template.BootstrapTemplate(
            title=title,
            sidebar=[self.sidebar()],
            main=[self],
            header=[self.header()],
            header_background=_ACCENT,
            sidebar_width=280,
        )


def _header(full_name: str, role: str) -> pn.viewable.Viewable:
    name, role = html.escape(full_name), html.escape(role.replace("_", " "))
    return pn.pane.HTML(
        f"<span style='color:white'>{name} ({role})"
        " · <a style='color:white' href='./logout'>Log out</a></span>"
    )


def _refusal_page(reason: str) -> Any:
    return pn.template.BootstrapTemplate(
        title="ALPR program dashboard",
        main=[
            pn.pane.Alert(
                f"**Access refused:** {_text(reason)}. <a href='./logout'>Log out</a>",
                alert_type="danger",
            )
        ],
        header_background=_ACCENT,
    )


def create_app(
    source: DashboardSource,
    *,
    user_id: str | None = None,
    tiles: bool = False,
    default_days: int | None = 30,
    hit_service: HitService | None = None,
) -> Any:
    """Build the page for one session, for the logged-in user (``pn.state.user``).

    The app checks the user's role and standing itself, whatever the login page did: a
    refused user gets an explanation and nothing else. Each role gets only the pages its
    permissions allow (:func:`~alpr_workbench.dashboard.auth.dashboard_pages`): the program's
    aggregates (``view_aggregates``) and the hit queue (``work_hits``, which acts through
    ``hit_service``, the service as the signed-in user).

    Parameters
    ----------
    source
        The server's shared source.
    user_id
        Override the logged-in user (tests, benchmarks); default ``pn.state.user``.
    tiles
        OpenStreetMap tiles under the maps (needs the network).
    default_days
        Initial period, in days back from the last stored day (None: all).
    hit_service
        The service acting with the user's own session (``alpr-workbench serve`` gives it);
        without it the hit queue says that it needs the service.

    Returns
    -------
    panel.template.BaseTemplate
        Call ``.servable()`` on it.
    """
    who = (user_id if user_id is not None else pn.state.user) or ""
    problem = dashboard_user_problem(source.store, who, policy=source.policy)
    user = get_user(source.store, who) if problem is None else None
    if problem is not None or user is None:
        return _refusal_page(problem or "unknown user")
    pages = dashboard_pages(user.role, policy=source.policy)
    tabs: list[tuple[str, Any]] = []
    sidebar: list[Any] = []
    program: DashboardState | None = None
    if "program" in pages:
        try:
            program = DashboardState(source=source, user_id=who, default_days=default_days)
        except (DashboardRefused, SearchRefused) as exc:
            if pages == ["program"]:
                return _refusal_page(exc.reason)
            tabs.append(("Program", _alert(f"The program page is not available: {exc.reason}")))
        else:
            app = DashboardApp(state=program, tiles=tiles)
            tabs.append(("Program", app))
            sidebar.append(app.sidebar())
    if "hits" in pages:
        if hit_service is None:
            tabs.append(("Hit queue", _alert(
                "The hit queue works through the workbench service: open the dashboard that "
                "`alpr-workbench serve` serves.")))
        else:
            hits = HitQueueState(service=hit_service, home=source.home,
                                 show_efficacy=program is not None)
            if program is not None:
                # A recorded decision or outcome moves the program's figures too.
                hits.param.watch(lambda _e, p=program: p.refresh(), "changes")
            tabs.append(("Hit queue", HitQueuePage(state=hits)))
    main = tabs[0][1] if len(tabs) == 1 else pn.Tabs(*tabs, dynamic=False)
    title = ("ALPR program: efficacy and impact" if "hits" not in pages
             else "ALPR Workbench: program and hit queue" if program is not None
             else "ALPR Workbench: hit queue")
    return pn.template.BootstrapTemplate(
        title=title,
        sidebar=sidebar,
        main=[main],
        header=[_header(user.full_name, user.role)],
        header_background=_ACCENT,
        sidebar_width=280,
    )


def _alert(text: str) -> Any:
    return pn.pane.Alert(_text(text), alert_type="warning")
