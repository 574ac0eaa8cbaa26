"""The data directory's one holder: the running service, or an operator tool, never both.

The service holds this lock for as long as it runs (``service/run.py``); the operator tools
that open the store in-process (``verify``, ``audit verify|digest|checkpoint``, ``demo``)
take the same lock for as long as they work. It is an exclusive ``flock`` taken without
waiting, so a tool started beside a running service is refused at once with a message that
names the service, instead of racing its writes (``docs/decisions/0008-operator-tools.md``).
The lock is released by the kernel when its holder exits, ``kill -9`` included, so a crash
never leaves a data directory locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from alpr_workbench.errors import StoreError

__all__ = ["HOLDER_LOCK", "StoreBusyError", "hold_store"]

#: The lock file, in ``<data dir>/store/`` (the service account's own 0700 folder).
HOLDER_LOCK = ".holder.lock"


class StoreBusyError(StoreError):
    """Another process (the running service, or another operator tool) holds the store."""


def _describe(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (best effort; never raises)."""
    try:
        raw = os.pread(fd, 4096, 0)
        doc = json.loads(raw.decode()) if raw else {}
        holder = str(doc.get("holder", "")).strip()
    except (OSError, ValueError):
        holder = ""
    return holder[:300] if holder else "another process"


@contextlib.contextmanager
def hold_store(home: Path, *, holder: str) -> Iterator[None]:
    """Hold the data directory's holder lock for the block, or refuse at once.

    Parameters
    ----------
    home
        The data directory.
    holder
        Who holds it, in words another process can show when it is refused (e.g.
        ``"the workbench service (pid 4242, https://127.0.0.1:8443)"``).

    Raises
    ------
    StoreBusyError
        When another process holds the lock; its message names that holder.
    StoreError
        When ``home`` has no store folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> (home / "store").mkdir()
    >>> with hold_store(home, holder="tool A"):
    ...     with hold_store(home, holder="tool B"):
    ...         pass
    Traceback (most recent call last):
    ...
    alpr_workbench.store._holder.StoreBusyError: tool A holds the data directory ...
    """
    folder = Path(home) / "store"
    if not folder.is_dir():
        raise StoreError(f"{home} holds no store: run `alpr-workbench init` first")
    path = folder / HOLDER_LOCK
    try:
        # Never through a link: the lock file is truncated and written, and a tool run by a
        # more privileged account (root) would otherwise clobber whatever a link points at.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise StoreError(
            f"the holder lock {path} cannot be opened as a plain file ({exc.strerror}); "
            "remove it if it is a link, not a file, or another account's"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StoreError(f"the holder lock {path} is not a plain file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreBusyError(
                f"{_describe(fd)} holds the data directory {home} (its lock {path}); "
                "stop it first, or ask the running service instead"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"holder": holder, "pid": os.getpid()}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
