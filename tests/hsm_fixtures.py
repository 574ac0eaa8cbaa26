"""A real SoftHSM2 token for the PKCS#11 key-root tests (docs/decisions/0005-pkcs11-key-root.md).

SoftHSM2 reads ``SOFTHSM2_CONF`` once per process, when the module is first initialised, so
every test in one pytest process shares one token folder (made here, once, and removed at
exit); each test gets its own token in it, with its own label and PIN. The tests skip, with
the reason, when SoftHSM2 (``make softhsm``) or the binding (the ``hsm`` extra) is missing.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from alpr_workbench.keys_pkcs11 import DEFAULT_MODULE, Pkcs11Config


def _missing() -> str | None:
    if importlib.util.find_spec("pkcs11") is None:
        return "python-pkcs11 is not installed (pip install -e '.[hsm]')"
    if shutil.which("softhsm2-util") is None or not Path(DEFAULT_MODULE).is_file():
        return "SoftHSM2 is not installed (make softhsm, as root: apt-get install softhsm2)"
    return None


HSM_MISSING = _missing()
requires_softhsm = pytest.mark.skipif(HSM_MISSING is not None, reason=str(HSM_MISSING))

#: Tokens made before the module is first loaded: SoftHSM2 finds tokens only at C_Initialize.
_POOL_SIZE = 24
_POOL: list[tuple[Pkcs11Config, str]] = []
_MADE: list[bool] = []


def _make_pool() -> None:
    base = Path(tempfile.mkdtemp(prefix="alpr-softhsm-"))
    atexit.register(shutil.rmtree, base, True)
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)  # before the module is first loaded
    for _ in range(_POOL_SIZE):
        label, pin = "t-" + secrets.token_hex(6), secrets.token_hex(6)
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
             "--so-pin", secrets.token_hex(6)],
            check=True, capture_output=True,
        )  # fmt: skip
        _POOL.append((Pkcs11Config(token_label=label), pin))


def new_token() -> tuple[Pkcs11Config, str]:
    """A fresh SoftHSM2 token of this test process: its configuration and its user PIN."""
    if not _MADE:
        _make_pool()
        _MADE.append(True)
    if not _POOL:
        raise RuntimeError(f"more than {_POOL_SIZE} tokens used: raise _POOL_SIZE")
    return _POOL.pop()
