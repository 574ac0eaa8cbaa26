"""The plate's state (issue #17): state-consistent plates, the classifier, what reads carry."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from alpr_workbench.recognition.infer import Recognizer, default_models_dir, prepare_crop
from alpr_workbench.recognition.synth_plates import (
    STATE_CLASSES,
    STATE_OTHER,
    render_plate_crop,
    render_state_crop,
    render_state_plate,
)

MODELS = default_models_dir()
CROPS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "openalpr_us_crops_dev"
HAS_STATE = (MODELS / "state.onnx").exists()
needs_state = pytest.mark.skipif(not HAS_STATE, reason="shipped models/state.onnx not present")


def _rgb(img):
    return np.asarray(img.convert("RGB")).astype(int)


def _red_in_top(img) -> int:
    """Pixels of the top fifth that are clearly red (California's name is printed red)."""
    top = _rgb(img)[: img.height // 5]
    return int(((top[..., 0] > 140) & (top[..., 1] < 90) & (top[..., 2] < 90)).sum())


def test_state_plates_are_deterministic_and_differ_by_state():
    a = render_state_plate(np.random.default_rng(5), "CA")
    b = render_state_plate(np.random.default_rng(5), "CA")
    c = render_state_plate(np.random.default_rng(5), "NY")
    assert a[2] == "CA" and c[2] == "NY"
    assert np.array_equal(_rgb(a[0]), _rgb(b[0])) and a[1] == b[1]
    assert not np.array_equal(_rgb(a[0]), _rgb(c[0]))
    crop = render_state_crop(np.random.default_rng(9), "PA")
    again = render_state_crop(np.random.default_rng(9), "PA")
    assert crop.state == "PA" and np.array_equal(crop.image, again.image)
    assert render_state_crop(np.random.default_rng(9), negative=True).state == STATE_OTHER


def test_state_plates_draw_their_state_design():
    # California's name in red at the top on every plate; New York's plates print none
    ca = [render_state_plate(np.random.default_rng(s), "CA")[0] for s in range(12)]
    ny = [render_state_plate(np.random.default_rng(s), "NY")[0] for s in range(12)]
    assert all(_red_in_top(img) > 40 for img in ca)
    assert sum(_red_in_top(img) > 40 for img in ny) <= 2  # a red sticker now and then
    # Pennsylvania: a dark blue band across the top
    for s in range(6):
        band = _rgb(render_state_plate(np.random.default_rng(s), "PA")[0])[10:22]
        assert np.mean(band[..., 2] > band[..., 0] + 50) > 0.3


def test_texts_follow_the_state_formats():
    for s in range(10):
        _, text, _ = render_state_plate(np.random.default_rng(s), "CA")
        assert len(text) == 7 and text[0].isdigit() and text[1:4].isalpha()
        assert text[4:].isdigit()


def test_unknown_state_is_a_clear_error():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown state class 'ZZ'"):
        render_state_plate(rng, "ZZ")
    with pytest.raises(ValueError, match="unknown state class"):
        render_state_crop(rng, "ca")


def test_reader_recipe_renders_as_before_with_the_design_keyword():
    # the reader's recipe passes no design: the same rng sequence as ever
    a = render_plate_crop(np.random.default_rng(4))
    b = render_plate_crop(np.random.default_rng(4), design=None)
    assert np.array_equal(a.image, b.image) and a.text == b.text


def test_state_classifier_trains_a_few_steps():
    torch = pytest.importorskip("torch")
    from alpr_workbench.recognition.models import StateClassifier
    from alpr_workbench.recognition.train import generate_state_data, train_state

    torch.set_num_threads(1)
    images, labels = generate_state_data(24, seed=3, workers=1)
    assert images.shape == (24, 48, 96, 3) and labels.max() < len(STATE_CLASSES)
    model, info = train_state(images, labels, seed=3, steps=3, batch=8)
    assert info["steps"] == 3 and np.isfinite(info["final_loss"])
    assert isinstance(model, StateClassifier) and not model.training
    out = model(torch.rand(2, 3, 48, 96))
    assert tuple(out.shape) == (2, len(STATE_CLASSES))
    with pytest.raises(Exception, match="at least 1"):
        train_state(images, labels, seed=3, steps=0)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer.load(MODELS, threads=1)


@needs_state
def test_shipped_classifier_knows_fresh_synthetic_plates(recognizer):
    assert recognizer.state_model is not None
    # the classifier's best class, whatever its probability
    best = Recognizer(recognizer.reader, recognizer.detector, backend=recognizer.backend,
                      state_model=recognizer.state_model, state_below=0.0)
    rng = np.random.default_rng(777)  # never a training seed (those are [seed, 3, chunk])
    states = ["CA", "TX", "NY", "PA", "IL", "FL", "NJ", "AZ"]
    # flat plates, as a camera straight behind a car sees them
    flat = np.stack([prepare_crop(np.asarray(render_state_plate(rng, st, width=200)[0]
                                             .convert("RGB")))
                     for st in states for _ in range(3)])
    truth = [st for st in states for _ in range(3)]
    got = best.read_states(flat)
    assert np.mean([g == t for (g, _), t in zip(got, truth, strict=True)]) >= 0.75, got
    # at the shipped threshold, fewer are given, and those nearly always right
    given = [(g, t) for (g, _), t in zip(recognizer.read_states(flat), truth, strict=True) if g]
    assert given and np.mean([g == t for g, t in given]) >= 0.9, given
    # and through the camera effects, at least half of them
    crops = [render_state_crop(rng, st) for st in states for _ in range(3)]
    got = best.read_states(np.stack([c.image for c in crops]))
    assert np.mean([g == c.state for (g, _), c in zip(got, crops, strict=True)]) >= 0.5


@needs_state
def test_read_crops_carries_the_state(recognizer):
    rng = np.random.default_rng(2024)
    plate = np.asarray(render_state_plate(rng, "CA", width=240)[0].convert("RGB"))
    reading = recognizer.read_crops([plate])[0]
    assert reading.state == "CA" and reading.state_confidence >= recognizer.state_below
    d = reading.as_dict()
    assert d["state"] == "CA" and 0 < d["state_confidence"] <= 1


@needs_state
def test_no_plate_gives_no_state(recognizer):
    rng = np.random.default_rng(1)
    blank = np.full((48, 96, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)
    wall = np.zeros((60, 120, 3), np.uint8)
    wall[:, :60] = (90, 60, 40)
    for (state, p), crop in zip(recognizer.read_states(np.stack(
            [blank, noise, prepare_crop(wall)])), ("blank", "noise", "wall"), strict=True):
        assert state is None or p < 0.6, (crop, state, p)


def test_reader_works_without_a_state_classifier(tmp_path):
    for f in MODELS.glob("*.onnx*"):
        if not f.name.startswith("state."):
            shutil.copy(f, tmp_path / f.name)
    rec = Recognizer.load(tmp_path, threads=1)
    assert rec.state_model is None
    rng = np.random.default_rng(3)
    readings = rec.read_crops([render_state_crop(rng, "TX").image for _ in range(3)])
    assert len(readings) == 3
    assert all(r.state is None and r.state_confidence is None for r in readings)
    assert rec.read_states(np.zeros((2, 48, 96, 3), np.uint8)) == [(None, None)] * 2


@needs_state
def test_a_damaged_state_file_leaves_state_unknown(tmp_path):
    for f in MODELS.glob("*.onnx*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "state.onnx").write_bytes(b"not a model")
    with pytest.warns(RuntimeWarning, match="state classifier not loaded"):
        rec = Recognizer.load(tmp_path, threads=1)
    assert rec.state_model is None
    assert rec.read_crops([np.full((40, 80, 3), 200, np.uint8)])[0].state is None


@needs_state
@pytest.mark.skipif(not CROPS.is_dir(), reason="real evaluation crops are not available")
def test_real_crops_get_a_known_state_or_none(recognizer):
    with open(CROPS / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:60]
    readings = recognizer.read_crops([CROPS / r["file"] for r in rows])
    known = set(STATE_CLASSES) - {STATE_OTHER}
    assert all(r.state is None or r.state in known for r in readings)
    assert all(r.state_confidence is not None and 0 <= r.state_confidence <= 1
               for r in readings)
