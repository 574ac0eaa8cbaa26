"""Build the embedded default: the synthetic city, stored encrypted in a data directory."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.keys import DEMO_PASSPHRASE_FILE
from alpr_workbench.store import Store, store_paths

__all__ = [
    "DEMO_ROLES",
    "DemoAccount",
    "DemoService",
    "DemoSummary",
    "build_demo",
    "open_or_create_demo_store",
    "prepare_demo_service",
]

#: The roles the demo makes a service account for (one user of each).
DEMO_ROLES = ("analyst", "investigator", "supervisor", "command_staff", "auditor", "administrator")
_LOADER = "demo-loader"

_REFERENCE_TABLES = (
    "networks",
    "cameras",
    "users",
    "cases",
    "sharing_grants",
    "hotlists",
    "hotlist_entries",
    "legal_holds",
)
_DAYS_PER_INGEST = 7


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo` built."""

    home: Path
    passphrase_file: Path | None
    start_date: dt.date
    end_date: dt.date
    networks: int
    cameras: int
    users: int
    cases: int
    reads_added: int
    reads_stored: int
    hits: int
    recoveries: int
    searches: int
    planted_improper: int
    example_search: str | None = None
    recognized_frames: int = 0
    recognized_exact: int = 0


def open_or_create_demo_store(home: Path, *, key_root: str = "file") -> tuple[Store, Path | None]:
    """Open the store in ``home``, or create a demo store with a random passphrase.

    Parameters
    ----------
    home
        The data directory.
    key_root
        For a new store: ``"file"`` (the key store file alone) or ``"softhsm"`` (a SoftHSM2
        token made in ``<home>/keys/softhsm/`` holds the key root, so a purge reaches every
        copy of the key store; see ``docs/decisions/0005-pkcs11-key-root.md``).

    Returns
    -------
    tuple
        The store and, for a demo store, the file holding its generated passphrase.

    Raises
    ------
    WorkbenchError
        If ``key_root`` is unknown, SoftHSM2 is missing, or an existing store has another root.
    """
    from alpr_workbench.keys_pkcs11 import create_demo_softhsm_token

    if key_root not in ("file", "softhsm"):
        raise WorkbenchError(f"--key-root must be 'file' or 'softhsm', not {key_root!r}")
    paths = store_paths(home)
    if (paths.keys / "keystore.json").is_file():
        store = Store.open(home)
        if key_root == "softhsm" and store.keystore.key_root != "pkcs11":
            raise WorkbenchError(
                f"the store in {home} keeps its key root in a file; --key-root softhsm needs a "
                "new data directory"
            )
    elif key_root == "softhsm":
        token = create_demo_softhsm_token(paths.keys)
        store = Store.create(home, demo=True, root=token)
    else:
        store = Store.create(home, demo=True)
    passphrase_file = paths.keys / DEMO_PASSPHRASE_FILE
    return store, passphrase_file if passphrase_file.is_file() else None


def _load_audit_history(store: Store, history: pl.DataFrame) -> None:
    """Append the city's search history to the audit log once, then a sharing baseline."""
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.governance.sharing import grants_digest

    audit = AuditLog.open(store.home, store.keystore)
    logged = audit.events()
    known = set(logged["event_id"])
    fresh = history.filter(~pl.col("event_id").is_in(list(known))).sort("occurred_at")
    if fresh.height:
        audit.append_many(fresh.to_dicts())
    if logged.filter(pl.col("event_type") == "sharing_change").is_empty():
        digest = grants_digest(store.tables.read("sharing_grants"))
        audit.append(
            {
                "event_type": "sharing_change",
                "user_id": "demo-loader",
                "outcome": "allowed",
                "query_json": json.dumps({"action": "initial_load", "grants_digest": digest}),
            }
        )


def _write_department_settings(store: Store, retention_days: int) -> None:
    """Sign the department's settings into a new store (audited), so the store is complete."""
    from alpr_workbench.config import (
        DEPARTMENT_SETTINGS_FILE,
        load_department_settings,
        write_department_settings,
    )
    from alpr_workbench.errors import WorkbenchError
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.policy import load_policy

    # Raises when the file was written once and has gone: a demo never papers over that.
    old = load_department_settings(store.home, store.keystore).retention_days
    if (store.home / DEPARTMENT_SETTINGS_FILE).is_file():
        return
    low, high = load_policy().retention_days_range
    if not low <= retention_days <= high:
        raise WorkbenchError(
            f"a retention of {retention_days} days is refused: the policy allows between "
            f"{low} and {high} days"
        )
    write_department_settings(store.home, store.keystore, retention_days=retention_days)
    AuditLog.open(store.home, store.keystore).append(
        {
            "event_type": "settings_change",
            "user_id": "demo-loader",
            "outcome": "allowed",
            "query_json": json.dumps(
                {
                    "action": "initial_settings",
                    "old": {"retention_days": old},
                    "new": {"retention_days": retention_days},
                },
                sort_keys=True,
            ),
        }
    )


def build_demo(
    home: Path,
    *,
    days: int = 30,
    seed: int = 7,
    scale: float = 1.0,
    end_date: dt.date | None = None,
    recognized_frames: int = 0,
    retention_days: int = 30,
    on_progress: Callable[[int, int], None] | None = None,
    key_root: str = "file",
) -> DemoSummary:
    """Generate the synthetic city and store it, encrypted, in ``home``.

    Rerunning with the same arguments adds nothing (ingest is idempotent by ``read_id``).

    Parameters
    ----------
    home
        Data directory (created if needed).
    days, seed, scale
        Synthetic city parameters (see :class:`alpr_workbench.synth.CityConfig`).
    end_date
        Last simulated day (default: yesterday, UTC, so the city's reads are inside retention).
    recognized_frames
        How many of the last day's reads (without a hotlist hit) come from the recognition
        models instead: each is drawn into a synthetic camera frame that the shipped detector
        and reader then read (see
        :func:`alpr_workbench.recognition.pipeline.reads_from_rendered_frames`).
    retention_days
        The department's retention period, signed into the store's department settings when
        they are not written yet (an existing store keeps its own; change it with
        ``alpr-workbench settings set``).
    on_progress
        Called with ``(days_done, days_total)`` as the reads are stored.
    key_root
        ``"file"`` or ``"softhsm"`` for a new store (see :func:`open_or_create_demo_store`).

    Returns
    -------
    DemoSummary
        Counts of what was built.
    """
    from alpr_workbench.synth import CityConfig, generate_city, generate_day

    store, passphrase_file = open_or_create_demo_store(home, key_root=key_root)
    last_day = end_date or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    city = generate_city(CityConfig(seed=seed, days=days, scale=scale, end_date=last_day))
    for table in _REFERENCE_TABLES:
        store.tables.write(table, getattr(city, table))
    _load_audit_history(store, city.audit_events)
    _write_department_settings(store, retention_days)
    all_days = [city.config.start_date + dt.timedelta(days=i) for i in range(days)]
    hits, outcomes, added, done = [], [], 0, 0
    recognized = (0, 0)
    for first in range(0, len(all_days), _DAYS_PER_INGEST):
        chunk = [generate_day(city, d) for d in all_days[first : first + _DAYS_PER_INGEST]]
        reads = pl.concat([b.reads for b in chunk])
        if recognized_frames and first + _DAYS_PER_INGEST >= len(all_days):
            reads, recognized = _recognize_sample(reads, chunk[-1], recognized_frames, seed)
        added += store.reads.ingest(reads).rows_added
        hits.extend(b.hits for b in chunk)
        outcomes.extend(b.outcomes for b in chunk)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, len(all_days))
    hit_frame = pl.concat(hits) if hits else None
    outcome_frame = pl.concat(outcomes) if outcomes else None
    if hit_frame is not None:
        store.tables.write("hits", hit_frame)
    if outcome_frame is not None:
        store.tables.write("outcomes", outcome_frame)
    recoveries = (
        0
        if outcome_frame is None
        else outcome_frame.filter(pl.col("outcome_type") == "recovery").height
    )
    return DemoSummary(
        home=Path(home),
        passphrase_file=passphrase_file,
        start_date=city.config.start_date,
        end_date=city.config.end_date,
        networks=city.networks.height,
        cameras=city.cameras.height,
        users=city.users.height,
        cases=city.cases.height,
        reads_added=added,
        reads_stored=store.reads.row_count(),
        hits=0 if hit_frame is None else hit_frame.height,
        recoveries=recoveries,
        searches=city.audit_events.filter(pl.col("event_type") == "search").height,
        planted_improper=city.planted.height,
        example_search=_example_search(city, hit_frame),
        recognized_frames=recognized[0],
        recognized_exact=recognized[1],
    )


def _recognize_sample(
    reads: pl.DataFrame, last_day: Any, n: int, seed: int
) -> tuple[pl.DataFrame, tuple[int, int]]:
    """Swap ``n`` of the last day's reads for what the models read from rendered frames."""
    from alpr_workbench.recognition.pipeline import reads_from_rendered_frames

    hit_ids = last_day.hits["read_id"] if last_day.hits.height else pl.Series([], dtype=pl.String)
    pool = last_day.reads.filter(
        ~pl.col("read_id").is_in(hit_ids.implode())
        & pl.col("plate").str.contains(r"^[A-Z0-9]{2,8}$")
    ).sort("read_id")
    sample = pool.sample(min(n, pool.height), seed=seed, shuffle=True)
    model_reads, exact = reads_from_rendered_frames(sample, seed=seed)
    kept = reads.filter(~pl.col("read_id").is_in(sample["read_id"].implode()))
    return pl.concat([kept, model_reads], how="diagonal_relaxed"), (sample.height, exact)


def _example_search(city: Any, hits: pl.DataFrame | None) -> str | None:
    """A search the gate will allow on this city: a real user, one of their open cases."""
    from alpr_workbench.analytics.patterns import eligible_case_assignments
    from alpr_workbench.policy import load_policy

    now = dt.datetime.combine(city.config.end_date, dt.time(23, 59), tzinfo=dt.UTC)
    pairs = eligible_case_assignments(city.cases, city.users, policy=load_policy(), now=now)
    if pairs.is_empty() or hits is None:
        return None
    stolen = hits.filter(
        (pl.col("disposition") == "confirmed") & (pl.col("hotlist_source") == "state_stolen")
    ).rename({"listed_plate": "plate"})
    if stolen.is_empty():
        return None
    pair = pairs.row(0, named=True)
    return (
        f"alpr-workbench search --case {pair['case_number']} "
        f"--reason {pair['reason_code']} --reason-text 'vehicle seen near the scene' "
        f"--plate {stolen['plate'][0]}"
    )


@dataclass(frozen=True)
class DemoAccount:
    """A demo user of one role, with a one-time enrolment code for the service.

    ``search`` is a case-gated search the gate allows this user (command-line arguments after
    ``alpr-workbench search``), or None for a role that may not search or has no open case.
    """

    role: str
    user_id: str
    enrolment_code: str
    search: tuple[str, ...] | None


@dataclass(frozen=True)
class DemoService:
    """What :func:`prepare_demo_service` made: the certificate to pin and the accounts."""

    certfile: Path
    keyfile: Path
    accounts: tuple[DemoAccount, ...]


def _demo_plate(store: Store) -> str | None:
    """A plate a demo search finds reads of: a confirmed stolen vehicle's, else any hit's read.

    A small city (one day, a few percent of the traffic) may have no confirmed stolen-vehicle
    hit on a given date; the plate read in any hit was still seen by a camera.
    """
    hits = store.tables.read("hits")
    if hits.is_empty() or "listed_plate" not in hits.columns:
        return None
    stolen = hits.filter(
        (pl.col("disposition") == "confirmed") & (pl.col("hotlist_source") == "state_stolen")
    ).sort("read_id")
    if not stolen.is_empty():
        return str(stolen["listed_plate"][0])
    return str(hits.sort("read_id")["read_plate"][0])


def prepare_demo_service(home: Path, *, now: dt.datetime | None = None) -> DemoService:
    """Make a demo store serveable: the TLS certificate and one service account per role.

    For each role of :data:`DEMO_ROLES` it picks a real user of the synthetic ``users`` table
    in good standing (for the roles that search: one assigned to an open case the gate lets
    them search) and issues a one-time enrolment code (audited as a ``user_change`` by
    ``demo-loader``). A new run issues new codes, which replace the earlier ones. The
    certificate is made once (clients pin it) and kept.

    Parameters
    ----------
    home
        A data directory built by :func:`build_demo`.
    now
        The time the users' standing is checked at (default: now, UTC).

    Returns
    -------
    DemoService
        The certificate, its key and the accounts (codes shown once; kept only as hashes).

    Raises
    ------
    WorkbenchError
        If ``home`` is not a demo store (real data gets accounts from ``init`` and an
        administrator, never from the demo), or the city lacks a user of some role.
    """
    from alpr_workbench.analytics.patterns import eligible_case_assignments
    from alpr_workbench.errors import WorkbenchError
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.governance.registry import get_user, user_problem
    from alpr_workbench.policy import load_policy
    from alpr_workbench.service.accounts import AccountStore
    from alpr_workbench.service.tls import make_loopback_certificate, tls_files

    store = Store.open(home)
    if not store.keystore.is_demo:
        raise WorkbenchError(f"{home} is not a demo store: demo accounts are for synthetic data")
    policy = load_policy()
    now = now or dt.datetime.now(dt.UTC)
    users = store.tables.read("users").sort("user_id")
    pairs = eligible_case_assignments(store.tables.read("cases"), users, policy=policy, now=now)
    plate = _demo_plate(store)
    chosen: list[tuple[str, str, tuple[str, ...] | None]] = []
    for role in DEMO_ROLES:
        mine = pairs.filter(pl.col("role") == role)
        if not mine.is_empty() and plate is not None:
            pair = mine.row(0, named=True)
            args: tuple[str, ...] = (
                "--case", str(pair["case_number"]), "--reason", str(pair["reason_code"]),
                "--reason-text", "vehicle seen near the scene", "--plate", plate,
            )  # fmt: skip
            chosen.append((role, str(pair["user_id"]), args))
            continue
        good = [
            u
            for u in users.filter(pl.col("role") == role)["user_id"]
            if user_problem(get_user(store, u), policy=policy, now=now) is None
        ]
        if not good:
            raise WorkbenchError(f"the synthetic city has no {role} in good standing")
        chosen.append((role, good[0], None))
    files = tls_files(home)
    if not files.certfile.is_file():
        files = make_loopback_certificate(home)
    accounts = AccountStore(home, store.keystore)
    made = []
    with AuditLog.open(home, store.keystore) as audit:
        for role, user_id, search in chosen:
            code = accounts.issue_enrolment(user_id, issued_by=_LOADER)
            audit.append(
                {
                    "event_type": "user_change",
                    "user_id": _LOADER,
                    "outcome": "allowed",
                    "query_json": json.dumps(
                        {"service": "issue_enrolment", "target_user_id": user_id, "demo": True}
                    ),
                }
            )
            made.append(DemoAccount(role, user_id, code, search))
    return DemoService(files.certfile, files.keyfile, tuple(made))
