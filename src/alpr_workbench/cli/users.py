"""The ``users`` commands: user administration through the service (administrators).

Every command acts as the signed-in user (``alpr-workbench login`` first); none takes
``--user``. Disabling a user ends their live sessions at once. ``set-person`` records the
person behind an account (one person's accounts share it, so a supervisor's second account
cannot approve their own search); ``unbind-oidc`` undoes a wrong OpenID Connect binding.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from alpr_workbench.cli._common import _fail, console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session

users_app = typer.Typer(
    help=("Users: list, disable, enable, person ids, OIDC bindings, enrolment codes "
          "(administrators, through the service)."),
    no_args_is_help=True,
)


@users_app.command("list")
def users_list(session_file: Session = None) -> None:
    """List every user with role and standing."""
    users = as_session_user(session_file, lambda c: c.list_users())
    table = Table(title="Users")
    shown = [c for c in ("user_id", "full_name", "person_id", "role", "organization",
                         "job_title", "is_active", "trained_at", "separated_at")
             if c in users.columns]
    for column in shown:
        table.add_column(column)
    for row in users.select(shown).iter_rows() if users.height else []:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@users_app.command("disable")
def users_disable(
    user_id: Annotated[str, typer.Argument(help="The user to disable.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    session_file: Session = None,
) -> None:
    """Disable a user; their live sessions end at once (audited)."""
    done = as_session_user(session_file, lambda c: c.disable_user(user_id, reason))
    console.print(f"{user_id} disabled; {done['sessions_ended']} live session(s) ended.")


@users_app.command("enable")
def users_enable(
    user_id: Annotated[str, typer.Argument(help="The user to enable.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    session_file: Session = None,
) -> None:
    """Enable a disabled user again (audited)."""
    as_session_user(session_file, lambda c: c.enable_user(user_id, reason))
    console.print(f"{user_id} enabled.")


@users_app.command("enrolment-code")
def users_enrolment_code(
    user_id: Annotated[str, typer.Argument(help="The user to enrol (or re-enrol).")],
    session_file: Session = None,
) -> None:
    """Issue a one-time enrolment code for a user in good standing (shown once; audited)."""
    code = as_session_user(session_file, lambda c: c.issue_enrolment(user_id))
    console.print(f"Enrolment code for {user_id} (valid 72 h, shown once): {code}")


@users_app.command("set-person")
def users_set_person(
    user_id: Annotated[str, typer.Argument(help="The account.")],
    person_id: Annotated[str | None, typer.Argument(
        help="The person behind it (an HR or badge number); their other accounts get the same."
    )] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the account's person id.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    session_file: Session = None,
) -> None:
    """Record the person behind an account: one person's accounts never approve each other."""
    if (person_id is None) == (not clear):
        raise _fail(ValueError("give either a PERSON_ID or --clear, not both"))
    done = as_session_user(session_file, lambda c: c.set_person(user_id, person_id, reason))
    if done["person_id"] is None:
        console.print(f"{user_id}: person id cleared.")
    else:
        console.print(f"{user_id}: person id {done['person_id']}.")


@users_app.command("unbind-oidc")
def users_unbind_oidc(
    user_id: Annotated[str, typer.Argument(help="The account to unbind.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    session_file: Session = None,
) -> None:
    """Undo an account's OIDC binding; its next provider sign-in binds it again (audited)."""
    done = as_session_user(session_file, lambda c: c.unbind_oidc(user_id, reason))
    console.print(f"{user_id} unbound from {done['subject']} at {done['issuer']}; "
                  f"{done['sessions_ended']} live session(s) ended.")
