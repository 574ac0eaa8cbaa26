"""The fixed tuning/check split of the shared evaluation sets (issue #17)."""

import csv
from pathlib import Path

import pytest

from alpr_workbench.recognition.evalsplit import CHECK, PARTS, TUNING, split_of

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CROPS = DATASETS / "openalpr_us_crops_dev"
FRAMES = DATASETS / "openalpr_us_dev"

#: Computed once with the rule in the module docstring and written here: if any of these
#: changes, the rule changed, and parts whose errors were read would leak into the check part.
KNOWN = {
    "ak1165.png": TUNING,
    "al47.png": TUNING,
    "ar624.png": CHECK,
    "az1429.png": CHECK,
    "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg": TUNING,
    "33fa5185-0286-4e8f-b775-46162eba39d4.jpg": CHECK,
    "plate": TUNING,
    "x": CHECK,
}


@pytest.mark.parametrize(("name", "part"), sorted(KNOWN.items()))
def test_rule_is_fixed(name, part):
    assert split_of(name) == part


def test_only_the_base_name_without_extension_counts():
    assert PARTS == ("tuning", "check")
    for name, part in KNOWN.items():
        stem = Path(name).stem
        assert split_of(Path("/some/folder") / name) == part
        assert split_of(f"other/{stem}.txt") == part  # a photo and its annotation agree
    # the name decides, not the folder: the same folder holds both parts
    assert {split_of(f"one/folder/{n}") for n in KNOWN} == {TUNING, CHECK}


@pytest.mark.parametrize("bad", ["", ".", "/", None, 42, b"ak1165.png"])
def test_bad_names_are_refused_with_a_clear_error(bad):
    with pytest.raises(ValueError, match="split_of needs a file name"):
        split_of(bad)


def _crop_names() -> list[str]:
    with open(CROPS / "labels.csv", newline="") as fh:
        return [row["file"] for row in csv.DictReader(fh)]


def _frame_names() -> list[str]:
    return sorted(p.name for p in FRAMES.glob("*.jpg"))


@pytest.mark.parametrize(("folder", "names", "n"), [
    (CROPS, _crop_names, 501),
    (FRAMES, _frame_names, 148),
])
def test_real_sets_are_split_about_two_thirds_tuning(folder, names, n):
    if not folder.is_dir():
        pytest.skip(f"{folder.name} is not available beside the checkout")
    files = names()
    assert len(files) == n  # the sets as their READMEs describe them
    tuning = sum(split_of(f) == TUNING for f in files)
    assert 0.60 <= tuning / len(files) <= 0.72
