"""Package-level rules: light import, one-way layers, only the store touches Parquet."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "alpr_workbench"

# Lower number = lower layer (DESIGN.md). A module may import only from its layer or below.
LAYERS = {
    "errors": 0,
    "_fsutil": 0,
    "plates": 1,
    "policy": 1,
    "schema": 1,
    "config": 1,
    "keys": 2,
    "crypto": 2,
    "store": 3,
    "recognition": 4,
    "ingest": 4,
    "synth": 4,
    "hotlist": 4,
    "governance": 5,
    "analytics": 6,
    "reports": 7,
    "dashboard": 7,
    "demo": 7,
    "cli": 7,
}


def _modules():
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        yield path, rel.parts[0].removesuffix(".py")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def test_import_is_light():
    code = (
        "import sys, alpr_workbench, alpr_workbench.schema, alpr_workbench.store, "
        "alpr_workbench.keys, alpr_workbench.config, alpr_workbench.cli;"
        "heavy = ('torch', 'panel', 'holoviews', 'cv2', 'geopandas');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_layers_depend_one_way():
    problems = []
    for path, top in _modules():
        if top == "__init__":
            continue
        assert top in LAYERS, f"{top} has no layer in this test; add it"
        for module in _imports(path):
            if module.startswith("alpr_workbench."):
                target = module.split(".")[1]
                if LAYERS.get(target, 99) > LAYERS[top]:
                    problems.append(f"{path.relative_to(SRC)} imports {module}")
            assert not module.startswith(("dashboards", "notebooks")), path
    assert problems == []


def test_only_the_store_touches_parquet():
    banned = ("read_parquet", "scan_parquet", "write_parquet", "sink_parquet", "pyarrow.parquet")
    offenders = []
    for path, top in _modules():
        if top == "store":
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(SRC)}: {b}" for b in banned if b in text]
    assert offenders == []
