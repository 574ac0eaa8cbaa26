"""A demo city served by the real service (a subprocess), and demo users signed in to it.

The demo store keeps its generated passphrase in its own key folder, so the service is
started without one in its environment. Accounts come from ``prepare_demo_service`` (what
``alpr-workbench demo`` runs); each sign-in goes through the service's enrolment and login.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alpr_workbench.demo import DemoAccount, prepare_demo_service
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.store import Store
from service_fixtures import Service, enroll_and_login, start_service


@dataclass
class DemoService:
    """A running service over a demo city, and its demo accounts by role."""

    service: Service
    accounts: dict[str, DemoAccount]
    used: set[str] = field(default_factory=set)

    def sign_in(self, role: str, session_file: Path) -> DemoAccount:
        """Enrol and sign in the demo user of ``role``; the session is saved to the file.

        The demo's code is used the first time; a later sign-in of the same role enrols
        again with a fresh code (a TOTP code is accepted once, so re-enrolling is simpler
        than waiting for the next step).
        """
        account = self.accounts[role]
        code = account.enrolment_code
        if role in self.used:
            store = Store.open(self.service.home)
            code = AccountStore(self.service.home, store.keystore).issue_enrolment(
                account.user_id, issued_by="demo-loader"
            )
        self.used.add(role)
        enroll_and_login(self.service, account.user_id, code, session_file).close()
        return account


def start_demo_service(home: Path) -> DemoService:
    """Issue the demo accounts of a built demo city, then start the service over it."""
    prepared = prepare_demo_service(home)
    service = start_service(home, "", prepared.certfile, passphrase=None)
    return DemoService(service, {a.role: a for a in prepared.accounts})
