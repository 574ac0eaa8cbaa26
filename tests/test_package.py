"""Package-level rules: light import, one-way layers, only the store touches Parquet.

Also: every ``docs/`` page the code cites exists (with the section it names), and every audit
check the code defines is documented in ``docs/policy.md``.
"""

import ast
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "alpr_workbench"

# Lower number = lower layer (docs/architecture.md#layers). A module may import only
# from its layer or below.
LAYERS = {
    "errors": 0,
    "_fsutil": 0,
    "_signed": 0,
    "_csvsafe": 0,
    "_csvheader": 0,
    "plates": 1,
    "policy": 1,
    "agencies": 1,
    "termmatch": 1,
    "schema": 1,
    "config": 1,
    "keys": 2,
    "keys_pkcs11": 2,
    "crypto": 2,
    "store": 3,
    "recognition": 4,
    "ingest": 4,
    "read_profiles": 4,
    "synth": 4,
    "hotlist": 4,
    "governance": 5,
    "analytics": 6,
    "reports": 7,
    "dashboard": 7,
    "demo": 7,
    "cli": 8,  # the cli/ package, every module in it: a client of the service (issue #15)
    "workspace": 7,
    "service": 7,  # the service process: serves the gate, accounts and the dashboard
    "client": 7,
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


# -- the documents the code cites are in the repository ----------------------------------------
#: Where code, tests and docs may cite a page; scanned for citations.
_CITING = ("src", "tests", "benchmarks", "dashboards", "notebooks", "docs", "README.md",
           "CONTRIBUTING.md")  # fmt: skip
_TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yaml", ".yml", ".toml", ".txt", ".html", ".j2"}
#: A docs page (``docs/<page>.md``), optionally with ``#anchor`` or `` §N`` (a numbered section).
_DOC_CITATION = re.compile(r"docs/\w[\w./-]*?\.md(?:#[\w-]+)?(?:\s*§\s*\d+)?")
#: Relative Markdown links inside the docs pages: ``[text](target)``.
_MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
#: The team's private notes, outside the repository; a user of the project does not have them.
_PRIVATE_NOTES = re.compile(r"\b(?:POLICY|STYLE|DESIGN)\.md\b")


def _citing_files():
    for name in _CITING:
        path = ROOT / name
        paths = [path] if path.is_file() else sorted(path.rglob("*"))
        for p in paths:
            skip = {"__pycache__", ".ipynb_checkpoints"} & set(p.parts) or ".egg-info" in str(p)
            if p.is_file() and p.suffix in _TEXT_SUFFIXES and not skip:
                yield p


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {
        _slug(m.group(1))
        for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", page.read_text(), flags=re.MULTILINE)
    }


def _numbered_sections(page: Path) -> set[str]:
    return set(re.findall(r"^#{1,6}\s+(\d+)\.", page.read_text(), flags=re.MULTILINE))


def _problems_with(target: Path, anchor: str | None, section: str | None, where: str) -> list[str]:
    if not target.is_file() and not (target.is_dir() and anchor is None and section is None):
        return [f"{where}: {target.relative_to(ROOT)} does not exist"]
    problems = []
    if anchor and anchor not in _anchors(target):
        problems.append(f"{where}: no section #{anchor} in {target.relative_to(ROOT)}")
    if section and section not in _numbered_sections(target):
        problems.append(f"{where}: no section {section}. in {target.relative_to(ROOT)}")
    return problems


def test_cited_docs_pages_exist():
    problems, cited = [], 0
    for path in _citing_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            for match in _DOC_CITATION.finditer(line):
                cited += 1
                page, _, rest = match.group().partition("#")
                page, _, section = page.partition("§")
                anchor = re.split(r"\s", rest)[0] if rest else None
                section = section.strip() or (re.findall(r"§\s*(\d+)", rest) or [None])[0]
                problems += _problems_with(ROOT / page.strip(), anchor, section, where)
    assert cited > 10, "the citation pattern no longer finds the code's citations"
    assert problems == []


def test_docs_pages_link_to_what_exists():
    problems = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for target in _MD_LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                resolved = (page.parent / file_part).resolve() if file_part else page
                problems += _problems_with(
                    resolved, anchor or None, None, f"{page.relative_to(ROOT)}:{number}"
                )
    assert problems == []


def test_no_source_cites_the_private_notes():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _citing_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if _PRIVATE_NOTES.search(line)
    ]
    assert offenders == [], "cite the docs/ pages instead"


def test_every_audit_check_is_documented():
    from alpr_workbench.policy import load_policy
    from alpr_workbench.reports.audit_checks import CHECK_TITLES, AuditInputs, run_checks
    from alpr_workbench.schema import empty_frame

    tables = ("audit_events", "users", "cases", "sharing_grants", "hotlists",
              "hotlist_entries", "legal_holds", "hits")  # fmt: skip
    inputs = AuditInputs(
        year=2026, chain_ok=None, chain_problem=None, retention_days=30, days_stored=[],
        as_of=dt.datetime(2026, 12, 31, tzinfo=dt.UTC),
        **{name: empty_frame(name) for name in tables},
    )  # fmt: skip
    ran = [r.check_id for r in run_checks(inputs, policy=load_policy())]
    assert ran == list(CHECK_TITLES)
    text = (ROOT / "docs" / "policy.md").read_text()
    documented = re.findall(r"^### ([A-Z]\d+)\s*$", text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(ran), "give every check a '### <id>' section"
