"""Administrative and user actions through the service (``/v1/admin/...``).

Users, grants, settings, keys, purge, legal holds, hotlists, the audit log and ingest.

Every route needs a session; the acting user is the session's user, never a field of the
request (every body model forbids unknown fields, so a smuggled ``actor`` or ``user`` is a
422). Each request is checked first against the policy permission of the user's role (a
refusal is audited here, as the action's own event type), then handed to the governance
function, which checks the actor's role again and audits the action itself. Refusals are
``403 {"error": "refused", "detail": <reason>, "event_id": <audit record>}``; other invalid
requests are 400 (with the audit record when one was written). See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance import admin
from alpr_workbench.governance.admin import AdminRefused, actor_problem
from alpr_workbench.governance.registry import (
    User,
    get_user,
    person_id_problem,
    person_roles_problem,
    same_person,
)
from alpr_workbench.governance.sharing import SharingRefused
from alpr_workbench.policy import Permission

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["MAX_LISTED", "MAX_UPLOAD_BYTES", "UPLOAD_PATHS", "admin_router"]

#: Rows a listing returns at most.
MAX_LISTED = 10_000
#: CSV uploads (hotlists, vendor audit logs, reads) are limited to this many bytes; every
#: other request body to the service's general limit (``app.MAX_BODY_BYTES``).
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
#: The routes that take a CSV body.
UPLOAD_PATHS = frozenset(
    {"/v1/admin/hotlists/import", "/v1/admin/audit/vendor-import", "/v1/admin/ingest"}
)
_CSV_TYPES = {"text/csv", "application/csv", "text/plain"}

_Work = Callable[[User, "_Recorder"], dict[str, Any]]


class _Recorder:
    """The audit sink handed to governance functions; remembers the last record written."""

    def __init__(self, append: Callable[[dict[str, Any]], Any]) -> None:
        self._append = append
        self.last: str | None = None

    def __call__(self, event: dict[str, Any]) -> Any:
        record = self._append(event)
        self.last = getattr(record, "event_id", None)
        return record


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _UserStateBody(_Body):
    reason: str = Field(default="", max_length=500)


class _PersonBody(_Body):
    person_id: str | None = Field(max_length=64)
    reason: str = Field(default="", max_length=500)


class _GrantBody(_Body):
    network_id: str = Field(max_length=200)
    recipient_org: str = Field(max_length=200)
    approved_by: str = Field(max_length=200)
    basis: str = Field(max_length=1000)
    review_by_date: dt.date
    scope: str = Field(default="search", max_length=40)
    recipient_type: str | None = Field(default=None, max_length=40)


class _AgencyBody(_Body):
    name: str = Field(max_length=200)
    organization_type: str = Field(max_length=40)
    state: str = Field(max_length=8)


class _RetentionBody(_Body):
    retention_days: int


class _PurgeBody(_Body):
    as_of: dt.date | None = None
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    dry_run: bool = False


class _HoldBody(_Body):
    hold_id: str = Field(max_length=80)
    case_number: str = Field(max_length=80)
    approver_user_id: str = Field(max_length=64)
    reason: str = Field(max_length=1000)
    review_by_date: dt.date
    read_ids: list[str] = Field(max_length=MAX_LISTED)


class _HotlistBody(_Body):
    name: str = Field(max_length=200)
    case_number: str = Field(max_length=80)
    reason: str = Field(max_length=1000)
    expires_at: dt.datetime


class _EntryBody(_Body):
    plate: str = Field(max_length=16)
    plate_state: str | None = Field(default=None, max_length=8)
    reason: str | None = Field(default=None, max_length=1000)


class _ChangeBody(_Body):
    changes: dict[str, str] = Field(max_length=20)


class _DeleteBody(_Body):
    reason: str = Field(max_length=1000)


class _Malformed(ValueError):
    """A body that does not fit its model (answered 422)."""


def _parse(model: type[_Body], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise _Malformed(f"{where}: {first['msg']}") from exc


def _csv_file(raw: bytes, request: Request, directory: str) -> Path:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _CSV_TYPES:
        raise ValueError("send the file as text/csv")
    if not raw:
        raise ValueError("the CSV body is empty")
    path = Path(directory) / "upload.csv"
    path.write_bytes(raw)
    return path


def _frame(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame.head(MAX_LISTED).to_dicts()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dt.datetime | dt.date):
                row[key] = value.isoformat()
    return rows


def admin_router(svc: _Service) -> APIRouter:
    """The ``/v1/admin/...`` routes over the service's store, audit log and sessions.

    Parameters
    ----------
    svc
        What the service's routes share (``service.app._Service``).

    Returns
    -------
    fastapi.APIRouter
        The routes, to include in the service's application.
    """
    from alpr_workbench.service.app import ServiceError, _source

    router = APIRouter(prefix="/v1/admin")

    def refuse(status: int, code: str, detail: str, event_id: str | None) -> ServiceError:
        return ServiceError(status, code, detail, event_id=event_id)

    async def handle(
        request: Request,
        *,
        event_type: str,
        permission: Permission | tuple[Permission, ...],
        action: str,
        work: _Work,
        read_only: bool = False,
    ) -> Response:
        """Authenticate, check the role's permission, run ``work``, answer JSON.

        ``read_only`` routes call no auditing governance function, so their success is
        recorded here (as ``aggregate``: a view, not a change).
        """
        source = _source(request)

        def locked() -> Response:
            with svc.lock:
                actor, _ = svc.authenticate(request, source)
                wanted = permission if isinstance(permission, tuple) else (permission,)
                problems = [
                    actor_problem(
                        svc.store, actor=actor.user_id, permission=p, action=action,
                        policy=svc.gate.policy, now=svc.now(),
                    )
                    for p in wanted
                ]
                if all(p is not None for p in problems):
                    reason = str(problems[0])
                    event_id = svc.record(
                        event_type, action=action, source=source, user_id=actor.user_id,
                        problem=reason, details={"path": request.url.path},
                    )
                    raise refuse(403, "refused", reason, event_id)
                recorder = _Recorder(svc.audit.append)
                try:
                    result = work(actor, recorder)
                except _Malformed as exc:
                    raise refuse(422, "malformed_request", str(exc), recorder.last) from exc
                except (AdminRefused, SharingRefused) as exc:
                    raise refuse(403, "refused", str(exc), recorder.last) from exc
                except (WorkbenchError, ValueError) as exc:
                    raise refuse(400, "invalid_request", str(exc), recorder.last) from exc
                if read_only:
                    recorder.last = svc.record(
                        "aggregate", action=action, source=source, user_id=actor.user_id,
                        problem=None, details={"path": request.url.path},
                    )
                result.setdefault("event_id", recorder.last)
                return JSONResponse(result)

        return await run_in_threadpool(locked)

    def now() -> dt.datetime:
        return svc.now()

    def bearer_first(request: Request) -> None:
        """Before a large upload is read: a request with no session token is answered now.

        A token is checked properly (with back-off and audit) once the body is in.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServiceError(401, "unauthenticated",
                               "sign in first: this request carries no session token",
                               headers={"WWW-Authenticate": "Bearer"})

    # -- users ---------------------------------------------------------------------------
    @router.get("/users")
    async def users_list(request: Request) -> Response:
        """Administrators: every user, with role and standing fields."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            return {"users": _frame(svc.store.tables.read("users"))}

        return await handle(request, event_type="aggregate", permission="administer",
                            action="list users", work=work, read_only=True)

    async def _set_active(request: Request, user_id: str, active: bool) -> Response:
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_UserStateBody, raw)
            if svc.store.tables.read("users").filter(pl.col("user_id") == user_id).is_empty():
                raise ValueError(f"unknown user {user_id[:64]!r}")
            admin.change_user(
                svc.store, audit, actor=actor.user_id, user_id=user_id,
                changes={"is_active": active}, policy=svc.gate.policy, now=now(),
            )
            ended = 0 if active else svc.sessions.revoke_user(user_id)
            return {"user_id": user_id, "is_active": active, "sessions_ended": ended,
                    "reason": body.reason}

        verb = "enable" if active else "disable"
        return await handle(request, event_type="user_change", permission="administer",
                            action=f"{verb} users", work=work)

    @router.post("/users/{user_id}/disable")
    async def users_disable(user_id: str, request: Request) -> Response:
        """Administrators: disable a user; their live sessions end at once."""
        return await _set_active(request, user_id, False)

    @router.post("/users/{user_id}/enable")
    async def users_enable(user_id: str, request: Request) -> Response:
        """Administrators: enable a disabled user again."""
        return await _set_active(request, user_id, True)

    @router.post("/users/{user_id}/person")
    async def users_person(user_id: str, request: Request) -> Response:
        """Administrators: record (or clear, with null) the person behind an account.

        One person's accounts share a person id, and a two-person rule (a supervisor's
        approval of a larger search) is never met by two of them. Refused (audited): an
        administrator's change to their own person's accounts, and a person whose accounts
        would together hold both sides of a two-person rule (``registry.SPLIT_DUTIES``).
        """
        raw = await request.body()
        source = _source(request)

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_PersonBody, raw)
            person = body.person_id.strip() if body.person_id is not None else None
            person = person or None
            details = {"user_id": user_id[:64], "person_id": person, "reason": body.reason}

            def audited(reason: str) -> str:
                audit.last = svc.record("user_change", action="set person id", source=source,
                                        user_id=actor.user_id, problem=reason, details=details)
                return reason

            def refused(reason: str) -> AdminRefused:
                return AdminRefused(audited(reason))

            target = get_user(svc.store, user_id)
            if target is None:
                raise ValueError(audited(f"unknown user {user_id[:64]!r}"))
            invalid = person_id_problem(person)
            if invalid is not None:
                raise ValueError(audited(invalid))
            before = target.person_id
            if same_person(actor, target) or (
                actor.person_id is not None and person is not None
                and same_person(actor, target.model_copy(update={"person_id": person}))
            ):
                raise refused(f"{actor.user_id!r} may not change the person id of their own "
                              "person's accounts (ask another administrator)")
            if person is not None:
                after = target.model_copy(update={"person_id": person})
                others = [
                    u for u in (User(**row) for row in
                                 svc.store.tables.read("users").iter_rows(named=True))
                    if u.user_id != user_id and same_person(u, after)
                ]
                conflict = person_roles_problem([after, *others], policy=svc.gate.policy)
                if conflict is not None:
                    raise refused(conflict)
            admin.change_user(
                svc.store, audit, actor=actor.user_id, user_id=user_id,
                changes={"person_id": person}, policy=svc.gate.policy, now=now(),
            )
            return {"user_id": user_id, "person_id": person, "previous_person_id": before,
                    "reason": body.reason}

        return await handle(request, event_type="user_change", permission="administer",
                            action="set person ids", work=work)

    @router.post("/users/{user_id}/unbind-oidc")
    async def users_unbind_oidc(user_id: str, request: Request) -> Response:
        """Administrators: undo an account's OIDC binding; its live sessions end at once.

        The account's next sign-in through the identity provider binds it again (audited
        ``oidc_bound``). Audited as a ``user_change`` with the binding removed.
        """
        raw = await request.body()
        source = _source(request)

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.service.oidc import find_binding, remove_binding

            body = _parse(_UserStateBody, raw)
            details: dict[str, Any] = {"user_id": user_id[:64], "reason": body.reason}
            problem = None
            if get_user(svc.store, user_id) is None:
                problem = f"unknown user {user_id[:64]!r}"
            elif find_binding(svc.store, user_id) is None:
                problem = (f"{user_id!r} is not bound to an identity at the provider: "
                           "nothing to unbind")
            if problem is not None:
                audit.last = svc.record("user_change", action="unbind oidc", source=source,
                                        user_id=actor.user_id, problem=problem,
                                        details=details)
                raise ValueError(problem)
            removed = remove_binding(svc.store, user_id)
            ended = svc.sessions.revoke_user(user_id)
            audit.last = svc.record(
                "user_change", action="unbind oidc", source=source, user_id=actor.user_id,
                problem=None,
                details={**details, "issuer": removed["issuer"],
                         "subject": str(removed["subject"])[:128],
                         "bound_at": removed["bound_at"], "sessions_ended": ended},
            )
            return {"user_id": user_id, "unbound": True, "issuer": removed["issuer"],
                    "subject": removed["subject"], "sessions_ended": ended,
                    "reason": body.reason}

        return await handle(request, event_type="user_change", permission="administer",
                            action="unbind oidc accounts", work=work)

    # -- grants and agencies -------------------------------------------------------------
    @router.get("/grants")
    async def grants_list(request: Request) -> Response:
        """Every sharing grant, in force or revoked."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            return {"grants": _frame(svc.store.tables.read("sharing_grants"))}

        return await handle(request, event_type="aggregate",
                            permission=("manage_grants", "audit", "view_aggregates"),
                            action="list grants", work=work, read_only=True)

    @router.post("/grants")
    async def grants_add(request: Request) -> Response:
        """Record an owner's grant to a known agency (federal, out-of-state, private refused)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.governance.sharing import add_grant

            body = _parse(_GrantBody, raw)
            grant_id = add_grant(
                svc.store, audit, actor=actor.user_id, network_id=body.network_id,
                recipient_org=body.recipient_org, recipient_type=body.recipient_type,
                scope=body.scope, approved_by=body.approved_by, basis=body.basis,
                review_by_date=body.review_by_date, policy=svc.gate.policy, now=now(),
            )
            return {"grant_id": grant_id}

        return await handle(request, event_type="sharing_change", permission="manage_grants",
                            action="manage grants", work=work)

    @router.post("/grants/{grant_id}/revoke")
    async def grants_revoke(grant_id: str, request: Request) -> Response:
        """Revoke a grant; it stops applying on the next query."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.governance.sharing import revoke_grant

            revoke_grant(svc.store, audit, actor=actor.user_id, grant_id=grant_id,
                         policy=svc.gate.policy, now=now())
            return {"grant_id": grant_id, "revoked": True}

        return await handle(request, event_type="sharing_change", permission="manage_grants",
                            action="manage grants", work=work)

    @router.post("/grants/snapshot")
    async def grants_snapshot(request: Request) -> Response:
        """Record today's sharing settings in the audit log; report drift (a daily job)."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.governance.sharing import snapshot_sharing

            changes = svc.audit.events().filter(pl.col("event_type") == "sharing_change")
            drift = snapshot_sharing(svc.store, audit, changes, actor=actor.user_id, now=now())
            return {"drift": drift}

        return await handle(request, event_type="sharing_snapshot",
                            permission=("manage_grants", "audit"),
                            action="snapshot the sharing settings", work=work)

    @router.post("/agencies")
    async def agencies_add(request: Request) -> Response:
        """Add an agency to the department's registry of known agencies."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.governance.sharing import add_agency

            body = _parse(_AgencyBody, raw)
            add_agency(svc.store, audit, actor=actor.user_id, name=body.name,
                       organization_type=body.organization_type, state=body.state,
                       policy=svc.gate.policy, now=now())
            return {"name": body.name, "organization_type": body.organization_type}

        return await handle(request, event_type="sharing_change", permission="manage_grants",
                            action="manage grants", work=work)

    # -- settings, keys, purge, holds ----------------------------------------------------
    @router.get("/settings")
    async def settings_show(request: Request) -> Response:
        """The department's signed settings."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            return {"retention_days": admin.configured_retention_days(svc.store)}

        return await handle(request, event_type="aggregate",
                            permission=("configure", "audit", "view_aggregates"),
                            action="read the settings", work=work, read_only=True)

    @router.post("/settings/retention")
    async def settings_retention(request: Request) -> Response:
        """Change the retention period (``configure``)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_RetentionBody, raw)
            old = admin.set_retention_days(svc.store, audit, actor=actor.user_id,
                                           retention_days=body.retention_days,
                                           policy=svc.gate.policy, now=now())
            return {"old_retention_days": old, "retention_days": body.retention_days}

        return await handle(request, event_type="settings_change", permission="configure",
                            action="change the department's settings", work=work)

    @router.post("/keys/rotate")
    async def keys_rotate(request: Request) -> Response:
        """Rotate every master key (``rotate_keys``); data files are not rewritten."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            files = admin.rotate_master_keys(svc.store, audit, actor=actor.user_id,
                                             policy=svc.gate.policy, now=now())
            return {"files_rewrapped": files}

        return await handle(request, event_type="key_rotation", permission="rotate_keys",
                            action="rotate keys", work=work)

    @router.post("/purge")
    async def purge(request: Request) -> Response:
        """Crypto-shred expired days (``purge``), or list them with ``dry_run``."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_PurgeBody, raw)
            day = body.as_of or now().date()
            if body.dry_run:
                plan = admin.plan_purge(svc.store, audit, actor=actor.user_id, as_of=day,
                                        retention_days=body.retention_days,
                                        policy=svc.gate.policy, now=now())
                return {"dry_run": True, "as_of": plan.as_of.isoformat(),
                        "retention_days": plan.retention_days,
                        "days": [[d.isoformat(), n] for d, n in plan.days],
                        "reads": plan.reads}
            report = admin.purge_expired(svc.store, audit, actor=actor.user_id, as_of=day,
                                         retention_days=body.retention_days,
                                         policy=svc.gate.policy, now=now())
            return {"dry_run": False, "as_of": report.as_of.isoformat(),
                    "retention_days": report.retention_days,
                    "days_purged": [d.isoformat() for d in report.days_purged],
                    "rows_destroyed": report.rows_destroyed,
                    "rows_kept_under_hold": report.rows_kept_under_hold,
                    "hold_ids": list(report.hold_ids),
                    # File-only key root: older keystore.json copies still decrypt the days.
                    "key_root": svc.store.keystore.key_root,
                    "warning": report.key_copies_warning}

        return await handle(request, event_type="purge", permission="purge", action="purge",
                            work=work)

    @router.post("/holds")
    async def holds_place(request: Request) -> Response:
        """Place a legal hold on reads of a case (``manage_legal_holds``)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_HoldBody, raw)
            held = admin.place_legal_hold(
                svc.store, audit, actor=actor.user_id, hold_id=body.hold_id,
                case_number=body.case_number, approver_user_id=body.approver_user_id,
                reason=body.reason, review_by_date=body.review_by_date, read_ids=body.read_ids,
                policy=svc.gate.policy, now=now(),
            )
            return {"hold_id": body.hold_id, "reads_held": held}

        return await handle(request, event_type="hold", permission="manage_legal_holds",
                            action="place a legal hold", work=work)

    @router.post("/holds/{hold_id}/release")
    async def holds_release(hold_id: str, request: Request) -> Response:
        """Release a legal hold (``manage_legal_holds``): its reads are crypto-shredded."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            admin.release_legal_hold(svc.store, audit, actor=actor.user_id, hold_id=hold_id,
                                     policy=svc.gate.policy, now=now())
            return {"hold_id": hold_id, "released": True}

        return await handle(request, event_type="hold", permission="manage_legal_holds",
                            action="release a legal hold", work=work)

    # -- hotlists ------------------------------------------------------------------------
    @router.post("/hotlists/import")
    async def hotlists_import(request: Request, source: str, name: str | None = None) -> Response:
        """Load a hotlist from a CSV body (``manage_hotlists``; never-alert rows dropped)."""
        bearer_first(request)
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.hotlist import read_hotlist_csv

            with tempfile.TemporaryDirectory() as folder:
                path = _csv_file(raw, request, folder)
                imported = read_hotlist_csv(path, source=source[:40],
                                            name=name[:200] if name else None)
            loaded = admin.import_hotlist(svc.store, audit, imported, actor=actor.user_id,
                                          policy=svc.gate.policy, now=now())
            return {"hotlist_id": loaded.hotlist_id, "rows_read": imported.rows_read,
                    "entries_loaded": loaded.entries_loaded,
                    "entries_removed": loaded.entries_removed,
                    "entries_replaced": loaded.entries_replaced,
                    "dropped": dict(imported.dropped)}

        return await handle(request, event_type="hotlist_add", permission="manage_hotlists",
                            action="load a hotlist", work=work)

    @router.post("/hotlists")
    async def hotlists_create(request: Request) -> Response:
        """Create a custom list tied to a case (``manage_hotlists``)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_HotlistBody, raw)
            hotlist_id = admin.create_hotlist(
                svc.store, audit, actor=actor.user_id, name=body.name,
                case_number=body.case_number, reason=body.reason, expires_at=body.expires_at,
                policy=svc.gate.policy, now=now(),
            )
            return {"hotlist_id": hotlist_id}

        return await handle(request, event_type="hotlist_add", permission="manage_hotlists",
                            action="manage hotlists", work=work)

    @router.post("/hotlists/{hotlist_id}/entries")
    async def hotlists_add(hotlist_id: str, request: Request) -> Response:
        """Add a plate to a custom list (``manage_hotlists``)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_EntryBody, raw)
            entry_id = admin.add_hotlist_entry(
                svc.store, audit, actor=actor.user_id, hotlist_id=hotlist_id, plate=body.plate,
                plate_state=body.plate_state, reason=body.reason, policy=svc.gate.policy,
                now=now(),
            )
            return {"entry_id": entry_id}

        return await handle(request, event_type="hotlist_add", permission="manage_hotlists",
                            action="manage hotlists", work=work)

    @router.post("/hotlist-entries/{entry_id}/change")
    async def hotlists_change(entry_id: str, request: Request) -> Response:
        """Change fields of an entry (``manage_hotlists``; audited before and after)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_ChangeBody, raw)
            admin.change_hotlist_entry(svc.store, audit, actor=actor.user_id,
                                       entry_id=entry_id, changes=dict(body.changes),
                                       policy=svc.gate.policy, now=now())
            return {"entry_id": entry_id, "changed": sorted(body.changes)}

        return await handle(request, event_type="hotlist_change",
                            permission="manage_hotlists", action="manage hotlists", work=work)

    @router.post("/hotlist-entries/{entry_id}/delete")
    async def hotlists_delete(entry_id: str, request: Request) -> Response:
        """Delete an entry (``manage_hotlists``; audited with the entry as it was)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_DeleteBody, raw)
            admin.delete_hotlist_entry(svc.store, audit, actor=actor.user_id,
                                       entry_id=entry_id, reason=body.reason,
                                       policy=svc.gate.policy, now=now())
            return {"entry_id": entry_id, "deleted": True}

        return await handle(request, event_type="hotlist_delete",
                            permission="manage_hotlists", action="manage hotlists", work=work)

    # -- audit log and ingest ------------------------------------------------------------
    @router.post("/audit/verify")
    async def audit_verify(request: Request) -> Response:
        """Check the whole hash chain (auditors, administrators)."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            report = svc.audit.verify()
            return {"ok": report.ok, "records": report.records, "problem": report.problem}

        return await handle(request, event_type="aggregate", permission=("audit", "administer"),
                            action="verify the audit log", work=work, read_only=True)

    @router.post("/audit/checkpoint")
    async def audit_checkpoint(request: Request) -> Response:
        """Verify the log, then sign a checkpoint to publish (auditors, administrators)."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            checkpoint = svc.audit.checkpoint()
            return {"seq": checkpoint.seq, "checkpoint": checkpoint.to_json()}

        return await handle(request, event_type="aggregate", permission=("audit", "administer"),
                            action="sign an audit checkpoint", work=work, read_only=True)

    @router.post("/audit/vendor-import")
    async def audit_vendor_import(request: Request, organization: str | None = None) -> Response:
        """Import a vendor's search-log CSV (``import_vendor_audit``); every row accounted."""
        bearer_first(request)
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.governance.vendor_import import read_vendor_audit

            with tempfile.TemporaryDirectory() as folder:
                path = _csv_file(raw, request, folder)
                imported = read_vendor_audit(
                    path, organization=organization[:200] if organization else None
                )
            fresh = admin.import_vendor_audit(svc.store, svc.audit, imported,
                                              actor=actor.user_id, policy=svc.gate.policy,
                                              now=now())
            rejected = imported.rejected.select("line", "reason").head(100)
            return {"format": imported.format, "rows_read": imported.rows_read,
                    "imported": imported.events.height, "new": fresh,
                    "rejected": imported.rejected.height,
                    "rejections": [list(r) for r in rejected.iter_rows()]}

        return await handle(request, event_type="ingest", permission="import_vendor_audit",
                            action="import vendor audit logs", work=work)

    @router.post("/ingest")
    async def ingest(
        request: Request, source: str | None = None, camera: str | None = None
    ) -> Response:
        """Store reads from a CSV body and match them against the hotlists (administrators).

        ``source`` names the file in the audit record (the client's name for it). ``camera``
        (reads recognized in that camera's frames, ``ingest-frames``): the reads' network and
        place come from the cameras table, and an unknown camera is refused.
        """
        bearer_first(request)
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            from alpr_workbench.ingest import ingest_csv

            with tempfile.TemporaryDirectory() as folder:
                path = _csv_file(raw, request, folder)
                result = ingest_csv(svc.store, path, audit_append=audit, actor=actor.user_id,
                                    policy=svc.gate.policy, now=now(),
                                    source=source[:300] if source else "upload",
                                    camera_id=camera[:200] if camera is not None else None)
            r = result.report
            return {"rows_received": r.rows_received, "rows_added": r.rows_added,
                    "rows_already_stored": r.rows_already_stored,
                    "hits_added": result.hits_added}

        return await handle(request, event_type="ingest", permission="administer",
                            action="ingest reads", work=work)

    return router
