"""Print a self-contained HTML report to PDF with Debian's headless Chromium.

The PDF holds what the HTML holds, so it gets the same mode (0600): Chromium prints into a
private temporary folder, and the workbench writes the file itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import WorkbenchError

__all__ = ["find_chromium", "html_to_pdf"]

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
]


def find_chromium() -> str | None:
    """Path of a Chromium binary (``ALPR_CHROMIUM`` overrides), or None."""
    override = os.environ.get("ALPR_CHROMIUM")
    if override:
        return override
    return shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(html: Path, pdf: Path, *, timeout_s: float = 120, mode: int = 0o600) -> Path:
    """Render ``html`` (a local, self-contained file) to ``pdf``, written with ``mode``.

    Raises
    ------
    WorkbenchError
        When Chromium is not installed or fails; the HTML report stays the primary output.
    """
    chromium = find_chromium()
    if chromium is None:
        raise WorkbenchError(
            "PDF needs Chromium (Debian package `chromium`); the HTML report was written"
        )
    with tempfile.TemporaryDirectory(prefix="alpr-pdf-") as private:
        profile = Path(private) / "profile"
        tmp = Path(private) / "print.pdf"  # the folder is 0700: nobody else sees the file
        cmd = [
            chromium,
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp}",
            Path(html).resolve().as_uri(),
        ]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            raise WorkbenchError(f"Chromium could not print {html.name} to PDF: {exc}") from exc
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise WorkbenchError(f"Chromium produced no PDF for {html.name}")
        atomic_write_bytes(Path(pdf), tmp.read_bytes(), mode=mode)
    return pdf
