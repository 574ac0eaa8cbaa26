"""Print a self-contained HTML report to PDF with Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

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


def html_to_pdf(html: Path, pdf: Path, *, timeout_s: float = 120) -> Path:
    """Render ``html`` (a local, self-contained file) to ``pdf``.

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
    with tempfile.TemporaryDirectory(prefix="alpr-pdf-") as profile:
        tmp = pdf.with_name(f".{pdf.name}.tmp")
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
            tmp.unlink(missing_ok=True)
            raise WorkbenchError(f"Chromium could not print {html.name} to PDF: {exc}") from exc
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise WorkbenchError(f"Chromium produced no PDF for {html.name}")
        os.replace(tmp, pdf)
    return pdf
