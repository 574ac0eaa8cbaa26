"""Geographic aggregation: cameras, hits and outcomes as points, heat and coverage grids.

geopandas and shapely are imported inside the functions, so ``import alpr_workbench.analytics``
stays light. Everything works offline (no tiles, no downloads): inputs and outputs are in
WGS84 (EPSG:4326); distances and cells are computed in the UTM zone of the data (for Burbank,
EPSG:32611), estimated from the bundled PROJ database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.schema import load_table

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

__all__ = [
    "cameras_gdf",
    "city_outline",
    "coverage_grid",
    "coverage_share",
    "heat_grid",
    "hits_gdf",
    "outcomes_gdf",
]

WGS84 = "EPSG:4326"


def _points(frame: pl.DataFrame, *, lat: str = "lat", lon: str = "lon") -> gpd.GeoDataFrame:
    import geopandas as gpd

    frame = frame.filter(pl.col(lat).is_not_null() & pl.col(lon).is_not_null())
    pdf = frame.to_pandas()
    geometry = gpd.points_from_xy(frame[lon].to_numpy(), frame[lat].to_numpy(), crs=WGS84)
    return gpd.GeoDataFrame(pdf, geometry=geometry, crs=WGS84)


def cameras_gdf(cameras: pl.DataFrame) -> gpd.GeoDataFrame:
    """Cameras as points (EPSG:4326), with their other columns.

    Examples
    --------
    >>> import polars as pl
    >>> cams = pl.DataFrame({"camera_id": ["a"], "lat": [34.18], "lon": [-118.31]})
    >>> cameras_gdf(cams).geometry.iloc[0].wkt
    'POINT (-118.31 34.18)'
    """
    return _points(cameras)


def outcomes_gdf(
    outcomes: pl.DataFrame, *, outcome_type: str | None = "recovery"
) -> gpd.GeoDataFrame:
    """Outcomes of one type (``None``: all) as points (EPSG:4326); rows without a place dropped.

    Examples
    --------
    >>> import polars as pl
    >>> out = pl.DataFrame({"outcome_type": ["stop", "recovery"], "lat": [34.1, 34.2],
    ...     "lon": [-118.3, None]})
    >>> len(outcomes_gdf(out)), len(outcomes_gdf(out, outcome_type="stop"))
    (0, 1)
    """
    if outcome_type is not None:
        outcomes = outcomes.filter(pl.col("outcome_type") == outcome_type)
    return _points(outcomes)


def hits_gdf(hits: pl.DataFrame, cameras: pl.DataFrame) -> gpd.GeoDataFrame:
    """Hits located at their camera (EPSG:4326); plate columns are left out.

    Hits whose camera is unknown are dropped.

    Examples
    --------
    >>> import polars as pl
    >>> cams = pl.DataFrame({"camera_id": ["a"], "lat": [34.18], "lon": [-118.31]})
    >>> hits = pl.DataFrame({"hit_id": ["h1", "h2"], "camera_id": ["a", "zz"],
    ...     "read_plate": ["7ABC123", "7ABC124"]})
    >>> g = hits_gdf(hits, cams)
    >>> len(g), "read_plate" in g.columns
    (1, False)
    """
    personal = set(load_table("hits").personal_columns)
    keep = [c for c in hits.columns if c not in personal and c not in ("lat", "lon")]
    located = hits.select(keep).join(
        cameras.select("camera_id", "lat", "lon"), on="camera_id", how="inner"
    )
    return _points(located)


def _metric_crs(geom: BaseGeometry) -> Any:
    import geopandas as gpd

    return gpd.GeoSeries([geom], crs=WGS84).estimate_utm_crs()


def city_outline(cameras: pl.DataFrame, *, buffer_m: float = 800) -> BaseGeometry:
    """A data-driven outline of the city: the convex hull of the cameras, buffered.

    Parameters
    ----------
    cameras
        Frame with ``lat`` and ``lon``.
    buffer_m
        Buffer around the hull, in metres.

    Returns
    -------
    shapely.Polygon
        In EPSG:4326.

    Raises
    ------
    WorkbenchError
        If there is no camera with a location.

    Examples
    --------
    >>> import polars as pl
    >>> cams = pl.DataFrame({"lat": [34.15, 34.20, 34.18], "lon": [-118.35, -118.30, -118.28]})
    >>> outline = city_outline(cams)
    >>> outline.geom_type, all(outline.contains(p) for p in cameras_gdf(cams).geometry)
    ('Polygon', True)
    """
    pts = cameras_gdf(cameras)
    if pts.empty:
        raise WorkbenchError("city_outline needs at least one camera with a location")
    crs = _metric_crs(pts.union_all().centroid)
    hull = pts.to_crs(crs).union_all().convex_hull.buffer(buffer_m)
    import geopandas as gpd

    return gpd.GeoSeries([hull], crs=crs).to_crs(WGS84).iloc[0]


def _as_points(points: Any) -> gpd.GeoSeries:
    import geopandas as gpd

    if isinstance(points, pl.DataFrame):
        return _points(points).geometry
    series = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if series.crs is None:
        series = series.set_crs(WGS84)
    return series


def _cells(outline_m: BaseGeometry, cell_m: float, shape: Literal["square", "hex"]) -> np.ndarray:
    """Cells (metric CRS) on a regular lattice that together cover ``outline_m``."""
    import shapely

    if cell_m <= 0:
        raise WorkbenchError("cell_m must be positive")
    minx, miny, maxx, maxy = outline_m.bounds
    if shape == "square":
        xs = np.arange(np.floor(minx / cell_m) * cell_m, maxx, cell_m)
        ys = np.arange(np.floor(miny / cell_m) * cell_m, maxy, cell_m)
        gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
        cells = shapely.box(gx, gy, gx + cell_m, gy + cell_m)
    elif shape == "hex":
        # Pointy-top hexagons, cell_m across the flats (= distance between neighbour centres).
        r = cell_m / np.sqrt(3)
        dy = 1.5 * r
        ys = np.arange(miny - r, maxy + r + dy, dy)
        xs = np.arange(minx - cell_m, maxx + cell_m, cell_m)
        mx, my = np.meshgrid(xs, ys)
        mx = mx + (np.arange(len(ys)) % 2)[:, None] * cell_m / 2
        gx, gy = mx.ravel(), my.ravel()
        angles = np.deg2rad(30 + 60 * np.arange(6))
        ring = np.stack(
            [gx[:, None] + r * np.cos(angles), gy[:, None] + r * np.sin(angles)], axis=-1
        )
        cells = shapely.polygons(ring)
    else:
        raise WorkbenchError(f"unknown cell shape {shape!r}; use 'square' or 'hex'")
    shapely.prepare(outline_m)
    kept: np.ndarray = cells[shapely.intersects(outline_m, cells)]
    return kept


def _grid(
    outline: BaseGeometry, cell_m: float, shape: Literal["square", "hex"]
) -> tuple[Any, BaseGeometry, np.ndarray]:
    import geopandas as gpd

    crs = _metric_crs(outline.centroid)
    outline_m = gpd.GeoSeries([outline], crs=WGS84).to_crs(crs).iloc[0]
    return crs, outline_m, _cells(outline_m, cell_m, shape)


def heat_grid(
    points: Any,
    *,
    outline: BaseGeometry,
    cell_m: float = 400,
    shape: Literal["square", "hex"] = "hex",
) -> gpd.GeoDataFrame:
    """Count points per cell of a regular grid covering ``outline``.

    Parameters
    ----------
    points
        GeoDataFrame or GeoSeries of points (no CRS: EPSG:4326 assumed), or a Polars frame
        with ``lat`` and ``lon``.
    outline
        Area to cover, EPSG:4326 (e.g. :func:`city_outline`). Points outside it are not
        counted.
    cell_m
        Side of a square, or distance across the flats of a hexagon, in metres.
    shape
        ``"hex"`` or ``"square"``.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id``, ``count`` and the cell geometry (EPSG:4326), one row per cell that
        touches the outline. A point on a shared edge counts once. ``count`` sums to the
        number of points inside the outline.

    Examples
    --------
    >>> import polars as pl
    >>> cams = pl.DataFrame({"lat": [34.15, 34.20, 34.18], "lon": [-118.35, -118.30, -118.28]})
    >>> grid = heat_grid(cameras_gdf(cams), outline=city_outline(cams), cell_m=1000)
    >>> int(grid["count"].sum())
    3
    """
    import geopandas as gpd
    import shapely

    crs, outline_m, cells = _grid(outline, cell_m, shape)
    pts = np.asarray(_as_points(points).to_crs(crs).values)
    pts = pts[shapely.covers(outline_m, pts)] if len(pts) else pts
    counts = np.zeros(len(cells), dtype=np.int64)
    if len(pts) and len(cells):
        tree = shapely.STRtree(cells)
        p_idx, c_idx = tree.query(pts, predicate="intersects")
        order = np.lexsort((c_idx, p_idx))
        p_idx, c_idx = p_idx[order], c_idx[order]
        _, first = np.unique(p_idx, return_index=True)
        counts = np.bincount(c_idx[first], minlength=len(cells)).astype(np.int64)
    return gpd.GeoDataFrame(
        {"cell_id": np.arange(len(cells), dtype=np.int64), "count": counts},
        geometry=gpd.GeoSeries(cells, crs=crs),
        crs=crs,
    ).to_crs(WGS84)


def coverage_grid(
    cameras_gdf: gpd.GeoDataFrame,
    *,
    outline: BaseGeometry,
    cell_m: float = 400,
    radius_m: float = 300,
    shape: Literal["square", "hex"] = "hex",
) -> gpd.GeoDataFrame:
    """Distance from each cell to the nearest camera, and whether a camera covers it.

    Parameters
    ----------
    cameras_gdf
        Camera points (from :func:`cameras_gdf`).
    outline
        Area to cover, EPSG:4326.
    cell_m, shape
        Grid, as in :func:`heat_grid`.
    radius_m
        A cell is covered when its centre lies within ``radius_m`` of a camera.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id``, ``distance_m`` (centre to nearest camera; infinite without cameras),
        ``is_covered``, ``area_in_outline_m2`` (the part of the cell inside the outline) and
        the geometry (EPSG:4326).

    Examples
    --------
    >>> import polars as pl
    >>> cams = pl.DataFrame({"lat": [34.15, 34.20, 34.18], "lon": [-118.35, -118.30, -118.28]})
    >>> grid = coverage_grid(cameras_gdf(cams), outline=city_outline(cams), radius_m=500)
    >>> bool(grid["is_covered"].any()), bool(grid["is_covered"].all())
    (True, False)
    """
    import geopandas as gpd
    import shapely

    crs, outline_m, cells = _grid(outline, cell_m, shape)
    cams = np.asarray(_as_points(cameras_gdf).to_crs(crs).values)
    distance = np.full(len(cells), np.inf)
    if len(cams) and len(cells):
        tree = shapely.STRtree(cams)
        (c_idx, _), dist = tree.query_nearest(
            shapely.centroid(cells), return_distance=True, all_matches=False
        )
        distance[c_idx] = dist
    return gpd.GeoDataFrame(
        {
            "cell_id": np.arange(len(cells), dtype=np.int64),
            "distance_m": distance,
            "is_covered": distance <= radius_m,
            "area_in_outline_m2": shapely.area(shapely.intersection(cells, outline_m)),
        },
        geometry=gpd.GeoSeries(cells, crs=crs),
        crs=crs,
    ).to_crs(WGS84)


def coverage_share(
    cameras_gdf: gpd.GeoDataFrame, *, outline: BaseGeometry, radius_m: float = 300
) -> float:
    """Share of the outline's area within ``radius_m`` of a camera (exact, not gridded).

    :func:`coverage_grid` approximates the same figure cell by cell; the area-weighted share
    of its covered cells converges to this as ``cell_m`` shrinks.

    Returns
    -------
    float
        Between 0 and 1; 0 without cameras.

    Examples
    --------
    >>> import polars as pl
    >>> cams = pl.DataFrame({"lat": [34.15, 34.20, 34.18], "lon": [-118.35, -118.30, -118.28]})
    >>> outline = city_outline(cams)
    >>> a = coverage_share(cameras_gdf(cams), outline=outline, radius_m=300)
    >>> b = coverage_share(cameras_gdf(cams), outline=outline, radius_m=1000)
    >>> 0 < a < b < 1
    True
    """
    import geopandas as gpd
    import shapely

    crs = _metric_crs(outline.centroid)
    outline_m = gpd.GeoSeries([outline], crs=WGS84).to_crs(crs).iloc[0]
    cams = np.asarray(_as_points(cameras_gdf).to_crs(crs).values)
    if not len(cams) or outline_m.area == 0:
        return 0.0
    covered = shapely.union_all(shapely.buffer(cams, radius_m)).intersection(outline_m)
    return float(min(1.0, covered.area / outline_m.area))
