"""Under pytest the notebooks (nbval) see one small synthetic city, never a developer's data.

A notebook opens the configured data directory (``alpr_workbench.workspace.open_workspace``),
which on a developer's machine may be ``$ALPR_WORKBENCH_HOME`` or a real store in
``~/.local/share/alpr-workbench``. So that ``pytest`` is deterministic and reads nobody's data,
before the first notebook's kernel starts this builds one demo city
(``build_demo(days=30, scale=0.1)``, once per test session, in a temporary folder), removes every
``ALPR_WORKBENCH_*`` variable (passphrases, retention, user) from the environment, sets
``ALPR_WORKBENCH_HOME`` to the city and ``ALPR_WORKBENCH_SESSION`` to a file that does not
exist (so notebook 01 searches in-process, never through a developer's saved session).
Kernels inherit the environment when they start (nbval items take no fixtures), so every
notebook opens that city and says so in its first output.
The environment is restored after the last notebook; the city is removed at the session's end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# This file sits at the root, not in notebooks/: a second top-level "conftest" module there
# would replace tests/conftest.py, which the tests import from. It holds no doctests.
collect_ignore = ["conftest.py"]

_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
_PREFIX = "ALPR_WORKBENCH_"


class _Session:
    """What this session changed: the city's temporary folder and the saved environment."""

    city: tempfile.TemporaryDirectory[str] | None = None
    saved: dict[str, str] | None = None


def _is_notebook(item: pytest.Item | None) -> bool:
    return item is not None and item.path.suffix == ".ipynb" and item.path.parent == _NOTEBOOKS


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Point the environment at the session's city before a notebook's kernel starts."""
    if not _is_notebook(item) or _Session.saved is not None:
        return
    _Session.saved = {k: v for k, v in os.environ.items() if k.startswith(_PREFIX)}
    for name in _Session.saved:
        del os.environ[name]
    if _Session.city is None:  # built without any secret from the environment: a demo store
        from alpr_workbench.demo import build_demo

        _Session.city = tempfile.TemporaryDirectory(prefix="alpr-workbench-nbval-")
        build_demo(Path(_Session.city.name) / "city", days=30, scale=0.1)
    os.environ[_PREFIX + "HOME"] = str(Path(_Session.city.name) / "city")
    # No service session: a developer's saved sign-in is never used (notebooks search in-process).
    os.environ[_PREFIX + "SESSION"] = str(Path(_Session.city.name) / "no-session.json")


def _restore() -> None:
    if _Session.saved is None:
        return
    os.environ.pop(_PREFIX + "HOME", None)
    os.environ.pop(_PREFIX + "SESSION", None)
    os.environ.update(_Session.saved)
    _Session.saved = None


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Give the environment back once the notebooks are done."""
    if _is_notebook(item) and not _is_notebook(nextitem):
        _restore()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the session's city."""
    _restore()
    if _Session.city is not None:
        _Session.city.cleanup()
        _Session.city = None
