"""Shared fixtures: real key stores and real encrypted stores in temporary folders."""

from __future__ import annotations

import datetime as dt
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
