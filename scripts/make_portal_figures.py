"""Derive the packaged California portal figures from the ``flock_portal_metrics`` data set.

The transparency page sets the department's figures beside those other California agencies
publish on their Flock transparency portals. The data set itself (The News & Observer's
"Private Eyes" scrape, MIT licence) is never committed here; this script keeps only what the
page uses, the output of :func:`alpr_workbench.reports.read_portal_metrics` (California rows;
agency, retention_days, cameras, reads, hits, searches, outside_agencies), and writes it with
the data set's licence into the package::

    python scripts/make_portal_figures.py [--source ../shared/datasets/flock_portal_metrics]

It writes ``src/alpr_workbench/reports/portal_figures/portal_figures_ca.csv`` and
``LICENSE.private_eyes.txt`` beside it (the folder's ``README.md`` is kept by hand). The output
is the same on every run of the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "flock_portal_metrics"
DEFAULT_OUT = ROOT / "src" / "alpr_workbench" / "reports" / "portal_figures"
SOURCE_FILE = "latest_usage04262023.csv"
LICENCE_FILE = "LICENSE.private_eyes.txt"
#: The copied release: github.com/mcclatchy-southeast/private_eyes, folder data/.
SOURCE_REPOSITORY = "https://github.com/mcclatchy-southeast/private_eyes"
SOURCE_COMMIT = "00f29cadee8db87cb3b387caab15ab15aae893ad"
SOURCE_SHA256 = "780a0ec381b9499b79ff2f412d0aee885456bebd7ba7b449751105ec717adc0f"
OUT_FILE = "portal_figures_ca.csv"


def header(sha256: str) -> list[str]:
    """The ``#`` comment lines that open the figures file.

    Parameters
    ----------
    sha256
        Hash of the source file the figures come from.

    Returns
    -------
    list[str]
        Lines without their line ends.
    """
    return [
        "# California agencies' Flock transparency-portal figures as published on 2024-04-26.",
        '# Source: "Private Eyes", an analysis by The News & Observer (McClatchy Southeast data',
        f"# desk), {SOURCE_REPOSITORY}, data/{SOURCE_FILE}",
        f"# at commit {SOURCE_COMMIT} (2024-05-02),",
        f"# file sha256 {sha256}.",
        "# Licence: MIT, Copyright (c) 2024 McClatchy Southeast Data Desk; see",
        f"# {LICENCE_FILE} beside this file. Credit: an analysis by The News & Observer.",
        "# Derived by scripts/make_portal_figures.py (alpr_workbench.reports.read_portal_metrics):",
        "# California portals only, the metrics the transparency page compares; empty = not",
        "# published or not usable.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Write the figures file and the licence; return the exit status.

    Parameters
    ----------
    argv
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when written, 1 when the source is missing or not the expected file.
    """
    from alpr_workbench.reports.transparency import read_portal_metrics

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                   help="folder of the flock_portal_metrics data set")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write to")
    p.add_argument("--any-version", action="store_true",
                   help="accept a source file other than the release copied at SOURCE_COMMIT")
    a = p.parse_args(argv)
    src = a.source / SOURCE_FILE
    if not src.is_file() or not (a.source / LICENCE_FILE).is_file():
        print(f"error: {src} or {a.source / LICENCE_FILE} not found", file=sys.stderr)
        return 1
    sha256 = hashlib.sha256(src.read_bytes()).hexdigest()
    if sha256 != SOURCE_SHA256 and not a.any_version:
        print(f"error: {src} is not the file of commit {SOURCE_COMMIT} (sha256 {sha256}); "
              "update the header or pass --any-version", file=sys.stderr)
        return 1
    figures = read_portal_metrics(src)
    a.out.mkdir(parents=True, exist_ok=True)
    body = figures.write_csv(null_value="")
    text = "\n".join(header(sha256)) + "\n" + body
    (a.out / OUT_FILE).write_text(text, encoding="utf-8")
    shutil.copyfile(a.source / LICENCE_FILE, a.out / LICENCE_FILE)
    print(f"{a.out / OUT_FILE}: {figures.height} California portals")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
