"""Shared fixtures: real key stores and real encrypted stores in temporary folders."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alpr_workbench.store import Store

PASSPHRASE = "test passphrase, not a secret"


@pytest.fixture(autouse=True)
def _no_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ALPR_WORKBENCH_KEK",
        "ALPR_WORKBENCH_PASSPHRASE",
        "ALPR_WORKBENCH_HOME",
        "ALPR_WORKBENCH_RETENTION_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)


_COLUMNS = 240


@pytest.fixture(autouse=True)
def _one_console_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps output at the terminal's width, or 80 columns without one (a pytest worker,
    CI): fix it wide, so that what a test finds in a command's output (a long temporary path,
    a table row) does not depend on the terminal, nor on how long the temporary folder's name
    is. A test that needs another width passes its own ``COLUMNS``."""
    monkeypatch.setenv("COLUMNS", str(_COLUMNS))
    common = sys.modules.get("alpr_workbench.cli._common")
    if common is not None:  # its consoles fixed a width when imported (a worker sets COLUMNS):
        for console in (common.console, common.err):  # read it from COLUMNS again
            monkeypatch.setattr(console, "_width", None)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.create(tmp_path / "home", passphrase=PASSPHRASE)


def make_reads(
    n: int = 1000,
    *,
    start: dt.date = dt.date(2026, 10, 1),
    days: int = 3,
    seed: int = 0,
    prefix: str = "r",
) -> pl.DataFrame:
    """A small, valid batch of reads spread over ``days`` days."""
    rng = np.random.default_rng(seed)
    micros = rng.integers(0, days * 86_400_000_000, n).astype("timedelta64[us]")
    letters = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
    plates = [
        f"{d}{''.join(ltr)}{t:03d}"
        for d, ltr, t in zip(
            rng.integers(1, 9, n),
            letters[rng.integers(0, len(letters), (n, 3))],
            rng.integers(0, 1000, n),
            strict=True,
        )
    ]
    return pl.DataFrame(
        {
            "read_id": [f"{prefix}{i:07d}" for i in range(n)],
            "camera_id": [f"cam-{i:02d}" for i in rng.integers(0, 10, n)],
            "network_id": "bpd-city",
            "captured_at": pl.Series(
                np.datetime64(start.isoformat()) + micros
            ).dt.replace_time_zone("UTC"),
            "plate": plates,
            "plate_state": "CA",
            "confidence_pct": rng.uniform(60, 100, n).astype(np.float32),
            "alternate_plates": [[p[::-1]] for p in plates],
            "image_ref": [f"frames/{i}.jpg" for i in range(n)],
            "lat": rng.uniform(34.15, 34.22, n),
            "lon": rng.uniform(-118.37, -118.28, n),
            "source": "synthetic",
        }
    )


@pytest.fixture
def reads() -> pl.DataFrame:
    return make_reads()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under ``tests/attacks`` is an attack: ``pytest -m attack`` counts them."""
    for item in items:
        if "attacks" in item.path.parts:
            item.add_marker(pytest.mark.attack)
