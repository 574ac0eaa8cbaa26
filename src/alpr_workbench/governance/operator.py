"""Operator tools: run as the service account, they take the store's lock and leave a record.

``verify``, ``audit verify|digest|checkpoint`` and the demo builder open the store in the
operator's own process with the key-store secret (the service account). Each takes the data
directory's holder lock that the running service holds (``store/_holder.py``), so it never
races the service (it is refused, naming the service, while one runs), and each appends one
``operator`` record to the audit log through the same append the service uses: the actor is
``operator:<OS account>``, read from the operating system (the effective uid), never from an
argument or an environment variable, the source is ``local``, with the command and its
result (``docs/decisions/0008-operator-tools.md``). Since every operator runs as the service
account, the record also names the account the person logged in as (``login_account``: the
kernel's audit login uid, which ``su`` and ``sudo`` keep).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog, AuditRecord
from alpr_workbench.store import Store, hold_store

__all__ = [
    "OPERATOR_EVENT",
    "OperatorRun",
    "operator_identity",
    "login_account",
    "operator_lock",
    "operator_run",
]

#: The audit event type of an operator tool's record.
OPERATOR_EVENT = "operator"
_RESULT_LIMIT = 500


def operator_identity() -> str:
    """The acting operator, from the operating system: ``operator:<account of the euid>``.

    Never from ``USER``, ``LOGNAME``, ``ALPR_WORKBENCH_USER`` or an argument: whoever can set
    the environment could name anyone (``getpass.getuser`` reads the environment first).

    Examples
    --------
    >>> import os, pwd
    >>> operator_identity() == "operator:" + pwd.getpwuid(os.geteuid()).pw_name
    True
    """
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # an account without a passwd entry (some containers)
        name = f"uid-{uid}"
    return f"operator:{name}"


#: ``/proc/self/loginuid`` when no login session set it (a service, a container).
_NO_LOGIN_UID = 4294967295


def login_account() -> str:
    """The account the person logged in as, kept by the kernel across ``su`` and ``sudo``.

    Operator tools run as the service account, so the effective uid (:func:`operator_identity`)
    is the same for every person who uses them. The kernel's audit login uid
    (``/proc/self/loginuid``, set once by ``pam_loginuid`` at login and not writable by the
    process) still names who logged in. ``"unset"`` when no login session set it,
    ``"unknown"`` where the kernel does not keep it.

    Examples
    --------
    >>> login_account() != ""
    True
    """
    try:
        uid = int(Path("/proc/self/loginuid").read_text().strip())
    except (OSError, ValueError):
        return "unknown"
    if uid == _NO_LOGIN_UID:
        return "unset"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


@dataclass
class OperatorRun:
    """An operator tool at work: the opened store and audit log, and its one record."""

    store: Store
    audit: AuditLog
    actor: str
    command: str
    recorded: AuditRecord | None = None

    def record(
        self, result: str, *, failed: bool = False, details: Mapping[str, Any] | None = None
    ) -> AuditRecord:
        """Append this run's audit record (once): what was run, by whom, and its result.

        Parameters
        ----------
        result
            What came of it, in words (``"store sound"``, ``"2 problem(s)"``...).
        failed
            The command could not do its work (outcome ``failed``, the reason ``result``).
        details
            More of what was run (e.g. the digest's year), kept in the record's query.

        Returns
        -------
        AuditRecord
            The record, on disk.

        Raises
        ------
        WorkbenchError
            If this run already has its record, or the log refuses the append.
        """
        if self.recorded is not None:
            raise WorkbenchError(f"`{self.command}` already has its audit record")
        cut = result if len(result) <= _RESULT_LIMIT else result[:_RESULT_LIMIT] + "..."
        query = {
            **(details or {}),
            "action": "operator tool",
            "command": f"alpr-workbench {self.command}",
            "source": "local",
            "login_account": login_account(),
            "pid": os.getpid(),
            "result": cut,
        }
        self.recorded = self.audit.append(
            {
                "event_type": OPERATOR_EVENT,
                "occurred_at": dt.datetime.now(dt.UTC),
                "user_id": self.actor,
                "outcome": "failed" if failed else "allowed",
                "refusal_reason": cut if failed else None,
                "query_json": json.dumps(query, sort_keys=True, default=str),
            }
        )
        return self.recorded


def operator_lock(home: Path, command: str) -> contextlib.AbstractContextManager[None]:
    """Hold the data directory as the operator running ``command`` (see :func:`hold_store`).

    Raises
    ------
    StoreBusyError
        While the service (or another operator tool) holds it: the message names it.
    """
    holder = f"`alpr-workbench {command}` run by {operator_identity()} (pid {os.getpid()})"
    return hold_store(Path(home), holder=holder)


@contextlib.contextmanager
def operator_run(home: Path, command: str, *, locked: bool = False) -> Iterator[OperatorRun]:
    """Open the store and its audit log as the operator, holding the data directory's lock.

    The block calls :meth:`OperatorRun.record` with its result. A block that raises before
    recording leaves a ``failed`` record naming the error (when the log takes appends), and
    the error goes on.

    Parameters
    ----------
    home
        The data directory.
    command
        What was run, as typed after ``alpr-workbench`` (``"verify"``, ``"audit digest"``).
    locked
        The caller already holds :func:`operator_lock` (the demo builder, which creates the
        store first).

    Raises
    ------
    StoreBusyError
        While the service (or another operator tool) holds the data directory: the message
        names it.
    WorkbenchError
        If the store or its audit log does not open (without the key-store secret, say).
    """
    with contextlib.nullcontext() if locked else operator_lock(home, command):
        store = Store.open(Path(home))
        audit = AuditLog.open(store.home, store.keystore)
        run = OperatorRun(store, audit, operator_identity(), command)
        try:
            yield run
        except Exception as exc:
            if run.recorded is None:
                with contextlib.suppress(WorkbenchError):
                    run.record(f"failed: {exc}", failed=True)
            raise
        finally:
            audit.close()
