"""Open the data a front end works on: the configured data directory, or a demo city.

The notebooks (and any other front end) call :func:`open_workspace` instead of building
their own data. Which directory counts as **configured**, in this order:

1. an explicit ``data_dir`` argument (the notebooks' ``data_dir`` parameter);
2. ``ALPR_WORKBENCH_HOME``, when set and not empty;
3. the default data directory, ``~/.local/share/alpr-workbench`` (where
   ``alpr-workbench demo`` and ``make demo`` put the city), **when it already holds a store**.

Steps 2 and 3 are the one rule the whole workbench uses
(:func:`alpr_workbench.config.default_home`, also what the command line opens). A directory
named by step 1 or 2 must hold a store: one that does not is an error naming the path, never
a place to build a city. Only when none of the three applies is a small synthetic city built
in a temporary folder, and :attr:`Workspace.notice` says so plainly.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from alpr_workbench.config import default_home
from alpr_workbench.errors import KeyStoreError, WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.keys import KEYSTORE_FILE
from alpr_workbench.store import Store, store_paths

__all__ = ["HOME_ENV", "NoStoreError", "Source", "Workspace", "open_workspace"]

#: The environment variable that names the data directory.
HOME_ENV = "ALPR_WORKBENCH_HOME"

#: Why a workspace holds the data it holds.
Source = Literal["data_dir", "ALPR_WORKBENCH_HOME", "default", "built_demo"]

_WHY = {
    "data_dir": "given as data_dir",
    "ALPR_WORKBENCH_HOME": f"from {HOME_ENV}",
    "default": f"the default data directory; {HOME_ENV} unset",
}


class NoStoreError(WorkbenchError, FileNotFoundError):
    """A configured data directory holds no workbench store."""


@dataclass
class Workspace:
    """An opened data directory: its store and audit log, and where they came from.

    Close it (or use it as a context manager) when done: that releases the audit log and
    removes a demo city built in a temporary folder.

    Attributes
    ----------
    home
        The data directory opened.
    store, audit
        Its encrypted store and its audit log.
    source
        Why this directory: ``"data_dir"`` (the argument), ``"ALPR_WORKBENCH_HOME"``,
        ``"default"`` (the default data directory, which held a store) or ``"built_demo"``
        (nothing configured: a demo city built in a temporary folder).
    is_demo
        True when the data are synthetic: a demo city built now, or a configured demo store
        (one made by ``alpr-workbench demo``). Front ends then act as a synthetic user.
    """

    home: Path
    store: Store
    audit: AuditLog
    source: Source
    is_demo: bool
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def built_demo(self) -> bool:
        """True when nothing was configured and a demo city was built in a temporary folder."""
        return self.source == "built_demo"

    @property
    def output_dir(self) -> Path:
        """Where files written by default go: the demo's temporary folder, else ``home``."""
        return Path(self._tmp.name) if self._tmp is not None else self.home

    @property
    def notice(self) -> str:
        """One line saying which data this is and why (front ends print it first)."""
        if self.built_demo:
            return (
                f"No data directory configured ({HOME_ENV} unset): built a demo synthetic city "
                f"in {self.home} — figures below are synthetic"
            )
        reads, days = self.store.reads.row_count(), len(self.store.reads.days())
        line = f"Opened data directory {self.home} ({_WHY[self.source]}): {reads:,} reads"
        line += f" over {days} day{'s' if days != 1 else ''}"
        return line + (" — a demo store: figures below are synthetic" if self.is_demo else "")

    def close(self) -> None:
        """Release the audit log and remove a temporary demo city (safe to call twice)."""
        self.audit.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _holds_store(home: Path) -> bool:
    return (store_paths(home).keys / KEYSTORE_FILE).is_file()


def _configured(data_dir: str | os.PathLike[str] | None) -> tuple[Path, Source] | None:
    """The configured data directory and why, or None when nothing is configured."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir"
    home = default_home()
    if os.environ.get(HOME_ENV):
        return home, "ALPR_WORKBENCH_HOME"
    return (home, "default") if _holds_store(home) else None


def _open(home: Path, source: Source, passphrase: str | None) -> Workspace:
    try:
        store = Store.open(home, passphrase=passphrase)
    except KeyStoreError as exc:
        raise KeyStoreError(f"data directory {home}: {exc}") from exc
    audit = AuditLog.open(home, store.keystore)
    return Workspace(home, store, audit, source, is_demo=store.keystore.is_demo)


def open_workspace(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    demo_days: int = 30,
    demo_scale: float = 0.1,
    passphrase: str | None = None,
) -> Workspace:
    """Open the configured data directory, or build a demo city when none is configured.

    Parameters
    ----------
    data_dir
        A data directory to open. None (the default) means the configured one:
        ``ALPR_WORKBENCH_HOME`` when set, else ``~/.local/share/alpr-workbench`` when it
        holds a store (see the module's documentation).
    demo_days, demo_scale
        Size of the synthetic city (:func:`alpr_workbench.demo.build_demo`) built in a
        temporary folder when no data directory is configured; unused otherwise.
    passphrase
        Passphrase of a configured store's key store; default: the environment
        (``ALPR_WORKBENCH_PASSPHRASE`` or ``ALPR_WORKBENCH_KEK``), or a demo store's own
        passphrase file.

    Returns
    -------
    Workspace
        The opened store and audit log; close it when done. Print :attr:`Workspace.notice`
        so the reader knows which data the figures come from.

    Raises
    ------
    NoStoreError
        If ``data_dir`` or ``ALPR_WORKBENCH_HOME`` names a directory that holds no store.
    KeyStoreError
        If the store cannot be unlocked (no secret configured, wrong passphrase).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from alpr_workbench.demo import build_demo
    >>> home = pathlib.Path(tempfile.mkdtemp()) / "city"
    >>> _ = build_demo(home, days=1, scale=0.01)
    >>> with open_workspace(home) as ws:
    ...     ws.source, ws.is_demo, ws.notice.startswith(f"Opened data directory {home}")
    ('data_dir', True, True)
    >>> open_workspace(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    alpr_workbench.workspace.NoStoreError: no workbench store in /... (given as data_dir): ...
    """
    configured = _configured(data_dir)
    if configured is not None:
        home, source = configured
        if not _holds_store(home):
            keystore = store_paths(home).keys / KEYSTORE_FILE
            raise NoStoreError(
                f"no workbench store in {home} ({_WHY[source]}): {keystore} is missing. "
                f"Point {'data_dir' if source == 'data_dir' else HOME_ENV} at a data directory "
                f"(`alpr-workbench demo --data-dir DIR` builds a synthetic one), or leave "
                f"both unset to work on a demo city in a temporary folder."
            )
        return _open(home, source, passphrase)

    from alpr_workbench.demo import build_demo

    tmp = tempfile.TemporaryDirectory(prefix="alpr-workbench-demo-")
    try:
        home = Path(tmp.name) / "city"
        build_demo(home, days=demo_days, scale=demo_scale)
        workspace = _open(home, "built_demo", None)
    except BaseException:
        tmp.cleanup()
        raise
    workspace._tmp = tmp
    return workspace
