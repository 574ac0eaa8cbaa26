"""Open the data a front end works on: the configured data directory, or a demo city.

The notebooks no longer open a store: they are clients of the service
(``alpr_workbench.client.connect``) and keep the reports it sends with :func:`save_report`.
:func:`open_workspace` is for tools run **as the service account** (with the key-store
secret). Which directory counts as **configured**, in this order:

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
from typing import Any, Literal

import polars as pl

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.config import default_home
from alpr_workbench.errors import KeyStoreError, WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.keys import KEYSTORE_FILE
from alpr_workbench.store import Store, store_paths

__all__ = [
    "HOME_ENV",
    "CaseSearch",
    "NoStoreError",
    "Source",
    "Workspace",
    "open_case_search",
    "open_workspace",
    "save_report",
]

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


class CaseSearch:
    """Searches inside one case: through the service when signed in, else through the gate.

    With a saved session (``alpr-workbench login``) every search goes to the service, which
    takes the acting user from the session and audits it; ``user`` is then that session's
    user. Without one, the search runs in this process through the gate, which needs the
    store's key (the service boundary is not used); :attr:`notice` says which.

    Attributes
    ----------
    user
        Who the searches run as.
    via_service
        True when searches go through the service.
    notice
        One line saying how searches run (front ends print it).
    """

    def __init__(self, workspace: Workspace, user: str | None, client: Any, notice: str) -> None:
        self._workspace = workspace
        self._client = client
        self.user = user
        self.via_service = client is not None
        self.notice = notice

    def act_as(self, user: str) -> None:
        """Choose the acting user of in-process searches.

        Raises
        ------
        WorkbenchError
            Through the service, for anyone but the session's user: the service takes who is
            searching from the session only.
        """
        if self.via_service and user != self.user:
            raise WorkbenchError(
                f"signed in to the service as {self.user}: searches run as {self.user}, "
                f"not {user}"
            )
        self.user = user

    def __call__(self, **request: Any) -> pl.DataFrame:
        """The rows of one case-gated search (the fields of ``SearchRequest``).

        Raises
        ------
        SearchRefused
            When the gate (here or in the service) refuses; the refusal is audited.
        """
        from alpr_workbench.client import ServiceError
        from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest

        if self._client is None:
            if self.user is None:
                raise WorkbenchError("choose the acting user first (act_as)")
            gate = Gate(self._workspace.store, self._workspace.audit)
            return gate.search(self.user, SearchRequest(**request)).rows
        try:
            found = self._client.search(**request)
        except ServiceError as exc:
            if exc.code == "search_refused":
                raise SearchRefused(exc.detail, exc.event_id or "") from exc
            raise
        rows: pl.DataFrame = found.rows
        return rows

    def close(self) -> None:
        """Close the connection to the service (the session stays valid)."""
        if self._client is not None:
            self._client.close()


def open_case_search(workspace: Workspace, *, session_file: Path | None = None) -> CaseSearch:
    """Searches through the saved service session when there is one, else in-process.

    Parameters
    ----------
    workspace
        The opened data (used for in-process searches only).
    session_file
        Default: ``$ALPR_WORKBENCH_SESSION`` or ``~/.config/alpr-workbench/session.json``.

    Returns
    -------
    CaseSearch
        With ``user`` the session's user, or None for in-process searches (the front end
        picks the acting user then).
    """
    from alpr_workbench.client import ServiceError, connect

    client = None
    try:
        client = connect(session_file=session_file)
        user = str(client.whoami()["user_id"])
    except ServiceError as exc:
        if client is not None:
            client.close()
        return CaseSearch(
            workspace,
            None,
            None,
            f"No service session ({exc.detail}): searching in this process through the gate, "
            "with the store's key (the service boundary is not used)",
        )
    return CaseSearch(
        workspace, user, client, f"Searching through the service at {client.url} as {user}"
    )


def save_report(
    content: bytes,
    out: str | os.PathLike[str] | None,
    *,
    name: str,
    session_file: Path | None,
    public: bool = False,
) -> Path:
    """Keep a report the service sent (HTML): at ``out``, else beside the session file.

    Parameters
    ----------
    content
        The report's bytes.
    out
        Where to write it; None: ``reports/<name>`` in the session file's folder (made
        mode 0700), where the command line puts reports too.
    name
        The file name used when ``out`` is None.
    session_file
        The client's session file (``Client.session_file``).
    public
        A page for the public (mode 0644); otherwise mode 0600, as reports name users.

    Returns
    -------
    pathlib.Path
        The file written (atomically).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = save_report(b"<p>hi</p>", None, name="r.html", session_file=folder / "s.json")
    >>> path == folder / "reports" / "r.html", oct(path.stat().st_mode & 0o777)
    (True, '0o600')
    """
    if out is not None:
        path = Path(out).expanduser()
    else:
        if session_file is None:
            raise WorkbenchError(f"give a file to write {name} to (no session file to go beside)")
        folder = Path(session_file).expanduser().parent / "reports"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / name
    atomic_write_bytes(path, content, mode=0o644 if public else 0o600)
    return path
