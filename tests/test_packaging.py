"""The package as pip installs it: declared dependencies, package data, no paths outside it.

``make wheel-check`` (part of ``make test``) builds and installs the real wheel; these fast
checks catch the same mistakes earlier, with the file that makes them.
"""

import ast
import fnmatch
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "alpr_workbench"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Imports that belong to an optional extra, and the only modules allowed to make them.
OPTIONAL = {
    "torch": ("train", {"recognition/models.py", "recognition/train.py",
                        "recognition/infer.py", "recognition/pipeline.py"}),
    "pkcs11": ("hsm", {"keys_pkcs11.py"}),
    "authlib": ("oidc", {"service/oidc.py"}),
    "joserfc": ("oidc", {"service/oidc.py"}),
}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_every_third_party_import_is_declared():
    project = PYPROJECT["project"]
    required = {_name(r) for r in project["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    distributions = packages_distributions()
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for module in sorted(_top_level_imports(path)):
            if module in sys.stdlib_module_names or module in ("alpr_workbench", "__future__"):
                continue
            names = {_name(d) for d in distributions.get(module, [module])}
            if module in OPTIONAL:
                extra, allowed = OPTIONAL[module]
                if rel not in allowed:
                    problems.append(f"{rel} imports {module} (only for the {extra} extra)")
                if not names & extras[extra]:
                    problems.append(f"{module} is not in the {extra} extra")
            elif not names & required:
                problems.append(f"{rel} imports {module}: declare {sorted(names)}")
    assert problems == []
    assert not {"torch"} & required, "torch is the `train` extra, not a dependency"
    assert "torch==2.13.0" in project["optional-dependencies"]["train"]


def test_every_data_file_is_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["alpr_workbench"]
    missing = [
        rel
        for path in sorted(SRC.rglob("*"))
        if path.is_file() and path.suffix not in (".py", ".pyc")
        and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts
        for rel in [path.relative_to(SRC).as_posix()]
        if not any(fnmatch.fnmatch(rel, p) for p in patterns)
    ]
    assert missing == [], "add them to [tool.setuptools.package-data]"
    shipped = ("data_schema/reads.yaml", "models/reader.int8.onnx", "models/detector.onnx",
               "reports/portal_figures/portal_figures_ca.csv", "department_policy.yaml")
    assert all((SRC / f).is_file() for f in shipped)


def test_no_module_looks_outside_the_package():
    """Data is found through the package, so an installed wheel finds it too."""
    # A module's own folder (Path(__file__).parent) is inside the package; climbing further
    # from __file__, or a "../" path, reaches into the checkout.
    climbing = re.compile(r"__file__.*(parents\[\d+\]|\.parent\.parent)|[\"']\.\./")
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if climbing.search(line)
    ]
    assert offenders == []
