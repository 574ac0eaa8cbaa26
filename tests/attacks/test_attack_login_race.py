"""Concurrent guesses from one address do not outrun the sign-in back-off (review 3, probe B).

Sign-in and enrolment share the service lock (``test_attack_login_lock.py``), so several
requests from one address could all pass the back-off check before any of them recorded its
failure: 20 wrong sign-ins sent at once from one address were all evaluated (20 x 401), where
20 sent one after another get ``free_failures`` + 1 answers and then 429. From one source the
check and the outcome are now one step; an attempt that arrives while another from the same
address is in flight is answered 429 without being evaluated. A real service subprocess, and
clients bound to chosen loopback source addresses.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest

from alpr_workbench.service.throttle import make_throttle
from service_fixtures import build_home, start_service, stop_service

#: The service's free failures per source (``make_throttle``'s default, which it runs with).
FREE_FAILURES = make_throttle().free_failures
GUESSES = 20


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("login-race") / "home"
    code, cert = build_home(home)
    running = start_service(home, code, cert)
    yield running
    stop_service(running)


def _at_once(service, source: str, path: str, body: dict[str, str]) -> list[int]:
    """Send ``GUESSES`` copies of ``body`` to ``path`` from ``source``, released together."""
    clients = [service.raw(source) for _ in range(GUESSES)]
    for client in clients:  # connect (TLS) first, so the requests themselves race
        assert client.get("/v1/health").status_code == 200
    go = threading.Barrier(GUESSES)

    def guess(client) -> int:
        go.wait()
        return client.post(path, json=body).status_code

    try:
        with cf.ThreadPoolExecutor(GUESSES) as pool:
            return list(pool.map(guess, clients))
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize(("source", "path", "body", "refused"), [
    ("127.0.0.41", "/v1/login",
     {"user_id": "t.analyst", "password": "wrong guess", "totp": "123456"}, 401),
    ("127.0.0.42", "/v1/enroll",
     {"user_id": "t.analyst", "code": "not-the-code", "new_password": "a long new password"},
     400),
])
def test_concurrent_wrong_guesses_from_one_address_are_backed_off(
        service, source, path, body, refused):
    answers = _at_once(service, source, path, body)
    counts = {status: answers.count(status) for status in set(answers)}
    assert set(counts) <= {refused, 429}, counts
    # Serially: FREE_FAILURES free refusals, one more that starts the back-off, then 429s.
    assert counts.get(refused, 0) <= FREE_FAILURES + 1, counts
    assert counts.get(429, 0) >= GUESSES - FREE_FAILURES - 1, counts

