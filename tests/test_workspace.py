"""Front ends use the data the user points them at (issues #13 and #15).

``open_workspace`` opens the configured data directory (``data_dir``, ``ALPR_WORKBENCH_HOME``,
or the default one when it holds a store); only when none is configured does it build a demo
city, and then it says so. The notebooks no longer call it: they are clients of the service
(``client.connect`` with a saved session), never open the store, and report the figures of the
service's data directory.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from alpr_workbench.demo import build_demo
from alpr_workbench.store import Store
from alpr_workbench.workspace import NoStoreError, open_workspace

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DEMO_NOTICE = (
    "No data directory configured (ALPR_WORKBENCH_HOME unset): built a demo synthetic city in "
)
_SECRETS = ("ALPR_WORKBENCH_KEK", "ALPR_WORKBENCH_PASSPHRASE", "ALPR_WORKBENCH_RETENTION_DAYS")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo city, built without any secret from the developer's environment."""
    home = tmp_path_factory.mktemp("city") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for name in _SECRETS:
            mp.delenv(name, raising=False)
        build_demo(home, days=7, scale=0.03)
    return home


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HOME`` with nothing in ``~/.local/share/alpr-workbench`` (and no env override)."""
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    return tmp_path / "user-home"


# -- the function ----------------------------------------------------------------------------


def test_alpr_workbench_home_is_opened(city: Path, monkeypatch, empty_home) -> None:
    monkeypatch.setenv("ALPR_WORKBENCH_HOME", str(city))
    with open_workspace(demo_days=1, demo_scale=0.01) as ws:
        count = Store.open(city).reads.row_count()
        assert (ws.home, ws.source, ws.is_demo, ws.built_demo) == (
            city, "ALPR_WORKBENCH_HOME", True, False
        )
        assert ws.store.reads.row_count() == count
        assert ws.notice == (
            f"Opened data directory {city} (from ALPR_WORKBENCH_HOME): {count:,} reads over "
            "7 days — a demo store: figures below are synthetic"
        )
        assert ws.output_dir == city
    assert city.is_dir()  # closing never removes a configured directory


def test_an_explicit_data_dir_wins_over_the_environment(city, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ALPR_WORKBENCH_HOME", str(tmp_path / "elsewhere"))
    with open_workspace(city) as ws:
        assert (ws.home, ws.source) == (city, "data_dir")
        assert ws.notice.startswith(f"Opened data directory {city} (given as data_dir): ")


def test_the_default_directory_is_opened_when_it_holds_a_store(city, empty_home) -> None:
    default = empty_home / ".local" / "share" / "alpr-workbench"
    default.parent.mkdir(parents=True)
    default.symlink_to(city, target_is_directory=True)
    with open_workspace() as ws:
        assert (ws.home, ws.source, ws.built_demo) == (default, "default", False)
        assert "(the default data directory; ALPR_WORKBENCH_HOME unset)" in ws.notice


@pytest.mark.parametrize("how", ["data_dir", "ALPR_WORKBENCH_HOME"])
@pytest.mark.parametrize("exists", [True, False], ids=["empty", "missing"])
def test_a_configured_directory_without_a_store_is_an_error(
    how, exists, tmp_path, monkeypatch, empty_home
) -> None:
    target = tmp_path / "not-a-store"
    if exists:
        target.mkdir()
    if how == "ALPR_WORKBENCH_HOME":
        monkeypatch.setenv("ALPR_WORKBENCH_HOME", str(target))
    with pytest.raises(NoStoreError, match=re.escape(f"no workbench store in {target}")) as err:
        open_workspace(target if how == "data_dir" else None, demo_days=1, demo_scale=0.01)
    assert how in str(err.value)
    # Never silently a city there (nor anywhere else).
    assert (list(target.iterdir()) == []) if exists else not target.exists()
    assert not (empty_home / ".local").exists()


def test_nothing_configured_builds_a_demo_city_and_says_so(empty_home) -> None:
    ws = open_workspace(demo_days=1, demo_scale=0.01)
    assert (ws.source, ws.is_demo, ws.built_demo) == ("built_demo", True, True)
    assert ws.notice == DEMO_NOTICE + f"{ws.home} — figures below are synthetic"
    assert ws.store.reads.row_count() > 0 and ws.output_dir == ws.home.parent
    assert not (empty_home / ".local").exists()  # nothing written to the default directory
    ws.close()
    ws.close()  # twice is fine
    assert not ws.home.exists()


def test_a_real_store_is_not_called_synthetic(tmp_path, monkeypatch) -> None:
    home = tmp_path / "real"
    Store.create(home, passphrase="a real passphrase here")
    monkeypatch.setenv("ALPR_WORKBENCH_PASSPHRASE", "a real passphrase here")
    with open_workspace(home) as ws:
        assert not ws.is_demo
        assert ws.notice == f"Opened data directory {home} (given as data_dir): 0 reads over 0 days"


def test_a_locked_store_names_its_directory(tmp_path) -> None:
    home = tmp_path / "real"
    Store.create(home, passphrase="a real passphrase here")
    with pytest.raises(Exception, match=re.escape(f"data directory {home}: no key-encryption")):
        open_workspace(home)


# -- the notebooks: clients of the service (issue #15) -----------------------------------------


def _setup_index(book: nbformat.NotebookNode) -> int:
    return next(i for i, c in enumerate(book.cells) if "connect(" in c.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_connect_to_the_service_and_never_open_the_store(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    setup = book.cells[_setup_index(book)].source
    assert "client = connect(session_file=session_file)" in setup
    assert "session_file = None" in book.cells[1].source
    assert book.cells[-1].source.strip().startswith("client.close()")
    tree = ast.parse(code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom | ast.Import)
                for a in n.names}
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    forbidden = {"Store", "AuditLog", "Gate", "open_workspace", "open_case_search",
                 "build_demo", "tempfile", "current_username"}
    assert not (names | imported) & forbidden, path.name
    assert not modules & {"alpr_workbench.store", "alpr_workbench.keys", "alpr_workbench.demo"}
    assert "workspace." not in code and "data_dir" not in code.replace("data_dir = None", "")


def _kernel_env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def _run(book: nbformat.NotebookNode, cwd: Path, env: dict[str, str]) -> str:
    """Execute ``book`` in a fresh kernel with ``env``; return every text it output."""
    client = NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=env)
    texts = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_a_notebook_without_a_session_says_to_sign_in(tmp_path: Path) -> None:
    from nbclient.exceptions import CellExecutionError

    book = nbformat.read(ROOT / "notebooks" / "03_command_efficacy_and_impact.ipynb",
                         as_version=4)
    book.cells = book.cells[: _setup_index(book) + 1]
    missing = tmp_path / "no-session.json"
    with pytest.raises(CellExecutionError, match="run `alpr-workbench login`"):
        _run(book, tmp_path, _kernel_env(ALPR_WORKBENCH_SESSION=str(missing),
                                         HOME=str(tmp_path)))
    assert not (tmp_path / ".local").exists()


@pytest.mark.slow
def test_notebook_03_reports_the_figures_of_the_service(city, tmp_path) -> None:
    """Through a real service over ``city``: the reads figure and the monthly trend add up."""
    from demo_service_fixtures import start_demo_service
    from service_fixtures import stop_service

    running = start_demo_service(city)
    try:
        session = tmp_path / "session.json"
        account = running.sign_in("command_staff", session)
        book = nbformat.read(ROOT / "notebooks" / "03_command_efficacy_and_impact.ipynb",
                             as_version=4)
        out = _run(book, tmp_path, _kernel_env(ALPR_WORKBENCH_SESSION=str(session),
                                               HOME=str(tmp_path)))
    finally:
        stop_service(running.service)
    count = Store.open(city).reads.row_count()
    assert f"Signed in to the service at {running.service.url} as {account.user_id}" in out
    headline = next(c for c in book.cells if c.source.startswith('figures = report["figures"]'))
    table = headline.outputs[0]["data"]["text/plain"]
    assert re.search(rf"│ reads\s+┆ {count}\.0\s+│", table), table
    trend = next(c for c in book.cells if "client.trend(" in c.source)
    months = re.findall(r"│ \d{4}-\d\d-01\s+┆ (\d+)\s+┆", trend.outputs[0]["data"]["text/plain"])
    assert months and sum(map(int, months)) == count
