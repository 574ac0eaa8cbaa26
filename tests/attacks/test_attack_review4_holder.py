"""Review 4: the holder lock file followed a link, so a tool run as root clobbered its target.

``hold_store`` opens ``<data dir>/store/.holder.lock`` and truncates and writes it. It
followed a symbolic link: whoever holds the service account could point the lock at any
file, and the next careless ``sudo alpr-workbench verify`` (run as root) emptied that file
(``/etc/shadow``, say) and wrote JSON into it. Now the lock is opened without following a
link, must be a plain file, and anything else is a clear error naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpr_workbench.errors import StoreError
from alpr_workbench.store import hold_store
from alpr_workbench.store._holder import HOLDER_LOCK


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "store").mkdir(parents=True)
    return home


def test_a_linked_holder_lock_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    home = _home(tmp_path)
    victim = tmp_path / "shadow"
    victim.write_text("root:$6$secret:19000:0:99999:7:::\n")
    (home / "store" / HOLDER_LOCK).symlink_to(victim)
    with pytest.raises(StoreError, match=r"holder lock .* cannot be opened as a plain file"):
        with hold_store(home, holder="a careless root"):
            pass
    assert victim.read_text() == "root:$6$secret:19000:0:99999:7:::\n"


def test_a_holder_lock_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    home = _home(tmp_path)
    os.mkfifo(home / "store" / HOLDER_LOCK)
    with pytest.raises(StoreError, match="not a plain file"):
        with hold_store(home, holder="tool"):
            pass


def test_a_plain_holder_lock_still_works_and_is_released(tmp_path: Path) -> None:
    home = _home(tmp_path)
    with hold_store(home, holder="tool A"):
        pass
    with hold_store(home, holder="tool B"):  # released by the first block
        pass
