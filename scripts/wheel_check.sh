#!/usr/bin/env bash
# Build the wheel from this checkout, install it (not editable, without torch) into a fresh
# virtual environment and, from a folder outside the checkout, run the demo and `recognize`:
# what a user who runs `pip install .` gets. `make wheel-check` runs it; `make test` too.
#
# Usage: scripts/wheel_check.sh BUILD_PYTHON VENV_PYTHON
#   BUILD_PYTHON  Python with setuptools that builds the wheel (the project's .venv)
#   VENV_PYTHON   Python that creates the fresh environment (the one `make install` used)
set -euo pipefail
build_python=$1
venv_python=$2
root=$(cd "$(dirname "$0")/.." && pwd)
wheels=$root/build/wheel
venv=$root/build/wheel-venv

cd "$root"
# setuptools reuses build/lib: a stale copy of a moved or deleted file would end up in the wheel
rm -rf "$wheels" "$venv" build/lib build/bdist.*
"$build_python" -m pip wheel --quiet --no-deps --no-build-isolation . -w "$wheels"
wheel=$(ls "$wheels"/alpr_workbench-*.whl)
echo "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
"$venv_python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"  # outside the checkout: nothing may be found through it
export ALPR_WORKBENCH_HOME="$work/home"
unset ALPR_WORKBENCH_SCHEMA_DIR PYTHONPATH

"$venv/bin/python" - "$root" <<'PY'
import importlib.util
import sys
from pathlib import Path

import alpr_workbench

root = Path(sys.argv[1]).resolve()
where = Path(alpr_workbench.__file__).resolve()
assert not where.is_relative_to(root / "src"), f"imported from the checkout: {where}"
assert importlib.util.find_spec("torch") is None, "torch is installed in the wheel's venv"
print(f"installed at {where.parent}; torch is not installed")
PY

echo "--- alpr-workbench demo --days 2 --no-serve"
"$venv/bin/alpr-workbench" demo --days 2 --no-serve --data-dir "$work/data"

echo "--- alpr-workbench recognize (a rendered synthetic frame)"
"$venv/bin/python" - <<'PY'
import numpy as np
from PIL import Image

from alpr_workbench.recognition.synth_plates import render_scene

scene = render_scene(np.random.default_rng(11), size=(360, 640), plate_width=(120, 160),
                     plates=[("7ABC123", "CA")])
Image.fromarray(scene.image).save("frame.png")
PY
"$venv/bin/alpr-workbench" recognize frame.png --json --threads 1 | tee recognized.jsonl

"$venv/bin/python" - <<'PY'
import json
import sys
from pathlib import Path

from alpr_workbench.recognition.infer import Recognizer
from alpr_workbench.reports.transparency import compare_with_portals, default_portal_dir

result = json.loads(Path("recognized.jsonl").read_text().splitlines()[0])
assert "error" not in result and isinstance(result["plates"], list), result
assert Recognizer.load(threads=1).backend == "onnx"
portals = compare_with_portals(default_portal_dir(), department={"cameras": 10})
assert portals.available and portals.agencies > 80, portals.note
assert "torch" not in sys.modules
print(f"recognize read {[p['text'] for p in result['plates']]}; ONNX backend; "
      f"{portals.agencies} packaged portal figures; torch never imported")
PY
read -r auditor camera < <("$venv/bin/python" - "$work/data" <<'PY'
import sys

import polars as pl

from alpr_workbench.store import Store

tables = Store.open(sys.argv[1]).tables
users, cameras = tables.read("users"), tables.read("cameras")
print(users.filter(pl.col("role") == "auditor")["user_id"][0], cameras["camera_id"][0])
PY
)
: "${camera:?could not read the demo store}"
echo "--- ingest-frames' recognition step (the same frame, camera $camera; the upload needs a service session)"
mkdir frames && cp frame.png frames/
"$venv/bin/alpr-workbench" ingest-frames --help > /dev/null
"$venv/bin/python" - "$camera" <<'PY'
import sys

from alpr_workbench.recognition.pipeline import recognize_frames

reads = recognize_frames("frames", camera_id=sys.argv[1], time_from="mtime", min_confidence=0.5)
assert "torch" not in sys.modules
print(f"ingest-frames would send {reads.height} read(s): {reads['plate'].to_list()}; no torch")
PY

echo "--- the transparency page, as the service renders it (the packaged portal figures, no ../shared)"
"$venv/bin/python" - "$work/data" "$auditor" <<'PY'
import sys
from pathlib import Path

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.reports.transparency import write_transparency
from alpr_workbench.store import Store

store = Store.open(sys.argv[1])
audit = AuditLog.open(store.home, store.keystore)
write_transparency(store, audit, user_id=sys.argv[2], out=Path("page.html"))
PY
grep -q "Compared with other California agencies" page.html
grep -q "an analysis by The News &amp; Observer" page.html
echo "the page compares the department with the packaged California portal figures"
echo "--- training without torch stops with a clear message"
if "$venv/bin/python" -m alpr_workbench.recognition.train --out trained 2> train.err; then
  echo "training ran without torch?" >&2; exit 1
fi
grep -F "needs PyTorch: pip install 'alpr-workbench[train]'" train.err
echo "wheel check passed"
