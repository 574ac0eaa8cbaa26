"""Commands that act as a user are clients of the service: the user is the saved session's.

The session is the one ``alpr-workbench login`` saved (``$ALPR_WORKBENCH_SESSION`` or
``~/.config/alpr-workbench/session.json``); no such command takes ``--user``, reads
``ALPR_WORKBENCH_USER`` or opens the store (decision 0003).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from alpr_workbench.cli._common import _fail

if TYPE_CHECKING:
    from alpr_workbench.client import Client

T = TypeVar("T")


def as_session_user(session_file: Path | None, action: Callable[[Client], T]) -> T:
    """Run ``action`` with the saved session's client; a refusal exits 2 with its reason.

    Parameters
    ----------
    session_file
        The saved session (default: ``$ALPR_WORKBENCH_SESSION`` or the user's config).
    action
        What to ask the service, given the signed-in client.

    Returns
    -------
    T
        What ``action`` returned.
    """
    from alpr_workbench.client import ServiceError, connect

    try:
        with connect(session_file=session_file) as client:
            return action(client)
    except ServiceError as exc:
        raise _fail(exc) from exc
