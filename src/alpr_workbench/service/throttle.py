"""Per-source back-off after failed sign-ins: the dashboard's :class:`LoginThrottle`, reused.

Failures (a wrong password, a wrong TOTP code, a wrong enrolment code, a forged or expired
session token) slow the *source address* that makes them, with exponential back-off; the
account is never locked, so an anonymous caller cannot keep staff out. One declaration of the
rule lives in :mod:`alpr_workbench.dashboard.auth`; this module only sets the service's limits.
"""

from __future__ import annotations

from alpr_workbench.dashboard.auth import LoginThrottle

__all__ = ["LoginThrottle", "make_throttle"]


def make_throttle(
    *, free_failures: int = 5, base_delay_s: float = 1.0, max_delay_s: float = 900.0
) -> LoginThrottle:
    """The service's throttle: ``free_failures`` free, then 1 s, 2 s, 4 s ... up to 15 min.

    Examples
    --------
    >>> throttle = make_throttle(free_failures=1)
    >>> throttle.failed("192.0.2.7"), throttle.failed("192.0.2.7") > 0
    (0.0, True)
    >>> throttle.wait_s("192.0.2.8")
    0.0
    """
    return LoginThrottle(
        free_failures=free_failures, base_delay_s=base_delay_s, max_delay_s=max_delay_s
    )
