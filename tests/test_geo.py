"""Geographic aggregation: points, outline, heat and coverage grids (offline, no tiles)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from alpr_workbench.analytics import (
    cameras_gdf,
    city_outline,
    coverage_grid,
    coverage_share,
    heat_grid,
    hits_gdf,
    outcomes_gdf,
)
from alpr_workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def cameras() -> pl.DataFrame:
    from alpr_workbench.synth import CityConfig, generate_city

    return generate_city(CityConfig(days=1, scale=0.01)).cameras


@pytest.fixture(scope="module")
def outline(cameras: pl.DataFrame):
    return city_outline(cameras)


def _random_points(outline, n: int = 2000, seed: int = 3) -> pl.DataFrame:
    """Points over a box somewhat larger than the outline, so some fall outside it."""
    minx, miny, maxx, maxy = outline.bounds
    rng = np.random.default_rng(seed)
    pad_x, pad_y = (maxx - minx) * 0.2, (maxy - miny) * 0.2
    return pl.DataFrame(
        {
            "lon": rng.uniform(minx - pad_x, maxx + pad_x, n),
            "lat": rng.uniform(miny - pad_y, maxy + pad_y, n),
        }
    )


def test_import_stays_light() -> None:
    code = (
        "import sys, alpr_workbench.analytics;"
        "print(','.join(m for m in ('geopandas', 'shapely', 'pyproj') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_points_frames(cameras: pl.DataFrame) -> None:
    g = cameras_gdf(cameras)
    assert len(g) == cameras.height
    assert g.crs.to_epsg() == 4326
    assert g.geometry.iloc[0].x == pytest.approx(cameras["lon"][0])
    assert set(cameras.columns) <= set(g.columns)


def test_hits_sit_at_their_camera_without_plates(cameras: pl.DataFrame) -> None:
    cam = cameras.row(0, named=True)
    hits = pl.DataFrame(
        {
            "hit_id": ["h1", "h2"],
            "camera_id": [cam["camera_id"], "no-such-camera"],
            "read_plate": ["7ABC123", "8XYZ999"],
            "listed_plate": ["7ABC123", "8XYZ999"],
            "disposition": ["confirmed", "misread"],
        }
    )
    g = hits_gdf(hits, cameras)
    assert g["hit_id"].tolist() == ["h1"]
    assert "read_plate" not in g.columns and "listed_plate" not in g.columns
    assert (g.geometry.iloc[0].x, g.geometry.iloc[0].y) == (cam["lon"], cam["lat"])


def test_outcomes_by_type() -> None:
    out = pl.DataFrame(
        {
            "outcome_type": ["recovery", "recovery", "stop", "arrest"],
            "lat": [34.18, None, 34.19, 34.2],
            "lon": [-118.3, -118.31, -118.32, -118.33],
        }
    )
    assert len(outcomes_gdf(out)) == 1  # the recovery without a place is dropped
    assert len(outcomes_gdf(out, outcome_type="stop")) == 1
    assert len(outcomes_gdf(out, outcome_type=None)) == 3


def test_outline_holds_every_camera_with_margin(cameras: pl.DataFrame, outline) -> None:
    g = cameras_gdf(cameras).to_crs(32611)
    import geopandas as gpd

    outline_m = gpd.GeoSeries([outline], crs=4326).to_crs(32611).iloc[0]
    assert outline.geom_type == "Polygon"
    assert g.within(outline_m).all()
    assert outline_m.exterior.distance(g.geometry).min() == pytest.approx(800, rel=0.01)
    # Burbank: about 34.15-34.22 N, 118.28-118.37 W
    minx, miny, maxx, maxy = outline.bounds
    assert -118.45 < minx < maxx < -118.2 and 34.1 < miny < maxy < 34.3


def test_outline_needs_cameras() -> None:
    with pytest.raises(WorkbenchError):
        city_outline(pl.DataFrame(schema={"lat": pl.Float64, "lon": pl.Float64}))


@pytest.mark.parametrize("shape", ["hex", "square"])
def test_heat_grid_covers_outline_and_counts_points_inside(outline, shape: str) -> None:
    points = _random_points(outline)
    grid = heat_grid(points, outline=outline, cell_m=500, shape=shape)
    assert grid.crs.to_epsg() == 4326
    assert list(grid.columns) == ["cell_id", "count", "geometry"]
    gap = outline.difference(grid.union_all()).area
    assert gap <= 1e-9 * outline.area
    assert grid.intersects(outline).all()
    inside = int(cameras_gdf(points).within(outline).sum())
    assert 0 < inside < points.height
    assert int(grid["count"].sum()) == inside


def test_heat_grid_cell_sizes(outline) -> None:
    hexes = heat_grid(pl.DataFrame({"lat": [], "lon": []}), outline=outline, cell_m=400)
    squares = heat_grid(
        pl.DataFrame({"lat": [], "lon": []}), outline=outline, cell_m=400, shape="square"
    )
    assert (hexes["count"] == 0).all()
    assert squares.to_crs(32611).area.median() == pytest.approx(400 * 400, rel=1e-3)
    # a hexagon 400 m across the flats has area sqrt(3)/2 * 400^2
    assert hexes.to_crs(32611).area.median() == pytest.approx(np.sqrt(3) / 2 * 400**2, rel=1e-3)
    with pytest.raises(WorkbenchError):
        heat_grid(pl.DataFrame({"lat": [], "lon": []}), outline=outline, shape="tri")  # type: ignore[arg-type]


def test_heat_grid_puts_a_point_in_its_cell(outline) -> None:
    c = outline.centroid
    grid = heat_grid(pl.DataFrame({"lat": [c.y] * 3, "lon": [c.x] * 3}), outline=outline)
    hot = grid[grid["count"] > 0]
    assert hot["count"].tolist() == [3]
    assert hot.geometry.iloc[0].covers(c)


def test_coverage_grid(cameras: pl.DataFrame, outline) -> None:
    cams = cameras_gdf(cameras)
    grid = coverage_grid(cams, outline=outline, cell_m=400, radius_m=300)
    assert grid.crs.to_epsg() == 4326
    assert {"cell_id", "distance_m", "is_covered", "area_in_outline_m2"} <= set(grid.columns)
    assert (grid["distance_m"] >= 0).all()
    assert (grid["is_covered"] == (grid["distance_m"] <= 300)).all()
    # a cell holding a camera has its centre within half a cell diagonal of it
    with_camera = grid[grid.intersects(cams.geometry.iloc[0])]
    assert with_camera["distance_m"].min() <= 400
    # clipped areas add up to the outline's area
    import geopandas as gpd

    outline_area = gpd.GeoSeries([outline], crs=4326).to_crs(32611).area.iloc[0]
    assert grid["area_in_outline_m2"].sum() == pytest.approx(outline_area, rel=1e-3)


def test_coverage_share_bounds_and_monotone(cameras: pl.DataFrame, outline) -> None:
    cams = cameras_gdf(cameras)
    shares = [coverage_share(cams, outline=outline, radius_m=r) for r in (100, 300, 1000, 20_000)]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert shares[0] < shares[1] < shares[2] <= shares[3]
    assert shares[3] == pytest.approx(1.0)
    assert coverage_share(cams.iloc[:0], outline=outline) == 0.0


def test_grid_share_approximates_exact_share(cameras: pl.DataFrame, outline) -> None:
    cams = cameras_gdf(cameras)
    grid = coverage_grid(cams, outline=outline, cell_m=150, radius_m=500)
    approx = (grid["area_in_outline_m2"] * grid["is_covered"]).sum() / grid[
        "area_in_outline_m2"
    ].sum()
    exact = coverage_share(cams, outline=outline, radius_m=500)
    assert approx == pytest.approx(exact, abs=0.03)


def test_coverage_grid_without_cameras(outline) -> None:
    empty = cameras_gdf(pl.DataFrame(schema={"lat": pl.Float64, "lon": pl.Float64}))
    grid = coverage_grid(empty, outline=outline, cell_m=800)
    assert len(grid) > 0
    assert np.isinf(grid["distance_m"]).all() and not grid["is_covered"].any()
