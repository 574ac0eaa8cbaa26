"""Plate recognition: generator, networks, decoding, bad input, shipped weights, reads."""

import csv
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.recognition.infer import default_models_dir

ROOT = Path(__file__).resolve().parents[1]
MODELS = default_models_dir()  # src/alpr_workbench/models: the shipped weights
CROPS = ROOT.parent / "shared" / "datasets" / "openalpr_us_crops_dev"
HAS_WEIGHTS = (MODELS / "reader.pt").exists() and (MODELS / "detector.pt").exists()
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="shipped models/*.pt not present")
#: Run first in a subprocess, it makes ``import torch`` fail there as if torch were absent.
NO_TORCH = "import sys; sys.modules['torch'] = None\n"


@pytest.fixture(scope="module")
def torch():
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def recognizer(torch):
    from alpr_workbench.recognition.infer import Recognizer

    return Recognizer.load(MODELS)


def test_import_is_light():
    code = (
        "import sys, alpr_workbench.recognition as r; r.__all__;"
        "print(','.join(m for m in ('torch', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_shipped_models_are_package_data():
    assert MODELS.is_relative_to(Path(__file__).resolve().parents[1] / "src" / "alpr_workbench")
    for name in ("reader.onnx", "reader.int8.onnx", "detector.onnx", "MODEL_CARD.md"):
        assert (MODELS / name).is_file(), name


def _run_without_torch(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=300)


def test_recognition_runs_without_torch(tmp_path):
    """``recognize`` and frames-to-reads run the shipped ONNX exports; torch is never imported.

    Torch is the optional ``train`` extra: the subprocess makes ``import torch`` fail.
    """
    from alpr_workbench.recognition.synth_plates import render_scene

    scene = render_scene(np.random.default_rng(11), size=(360, 640), plate_width=(120, 160),
                         plates=[("7ABC123", "CA")])
    frame = tmp_path / "cam7_20260301T081502Z.png"
    Image.fromarray(scene.image).save(frame)
    out = _run_without_torch(
        """
        import json
        from alpr_workbench.cli import app
        from alpr_workbench.recognition.infer import Recognizer
        from alpr_workbench.recognition.pipeline import frames_to_reads, recognize_cli

        lines = []
        status = recognize_cli([sys.argv[1]], as_json=True, threads=1, echo=lines.append)
        rec = Recognizer.load(threads=1)
        reads = frames_to_reads(sys.argv[1], camera_id="cam-7", network_id="city", lat=37.8,
                                lon=-122.27, recognizer=rec)
        print(json.dumps({"status": status, "result": json.loads(lines[0]),
                          "backend": rec.backend, "reads": reads.height,
                          "torch": sys.modules.get("torch") is not None}))
        """,
        str(frame),
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["status"] == 0 and got["backend"] == "onnx" and got["torch"] is False
    assert "error" not in got["result"] and isinstance(got["result"]["plates"], list)


def test_training_and_export_without_torch_fail_clearly(tmp_path):
    (tmp_path / "reader.pt").write_bytes(b"weights without an ONNX export")
    out = _run_without_torch(
        """
        from alpr_workbench.errors import WorkbenchError
        from alpr_workbench.recognition import infer, train

        for call in (lambda: infer.export_onnx(sys.argv[1]),
                     lambda: infer.Recognizer.load(sys.argv[1]),
                     lambda: train.train_reader(None, [], seed=1, steps=1, seconds=0.0),
                     lambda: train.fine_tune(None, None, models_dir=None, out=None)):
            try:
                call()
            except WorkbenchError as exc:
                print("refused:", exc)
        try:
            train.main(["--out", sys.argv[1]])
        except SystemExit as exc:
            print("exit:", exc.code)
        """,
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    hint = "needs PyTorch: pip install 'alpr-workbench[train]'"
    assert out.stdout.count(hint) == 4 and "exit: 2" in out.stdout
    assert hint in out.stderr  # train's command line says it too
    assert (tmp_path / "reader.pt").read_bytes() == b"weights without an ONNX export"


def test_generator_is_deterministic():
    from alpr_workbench.recognition.synth_plates import render_plate_crop, render_scene

    a = render_plate_crop(np.random.default_rng(5))
    b = render_plate_crop(np.random.default_rng(5))
    assert a.text == b.text and np.array_equal(a.image, b.image)
    s1 = render_scene(np.random.default_rng(9), size=(128, 192))
    s2 = render_scene(np.random.default_rng(9), size=(128, 192))
    assert np.array_equal(s1.image, s2.image) and np.array_equal(s1.boxes, s2.boxes)
    assert s1.image.shape == (128, 192, 3)


def test_plate_texts_cover_california_first():
    from alpr_workbench.recognition.synth_plates import ALPHABET, random_plate_text

    rng = np.random.default_rng(0)
    draws = [random_plate_text(rng) for _ in range(400)]
    ca = [t for _, t, s in draws if s == "CA"]
    assert len(ca) > 100
    assert sum(bool(re.fullmatch(r"\d[A-Z]{3}\d{3}", t)) for t in ca) > 80
    assert all(set(t) <= set(ALPHABET) and 1 <= len(t) <= 8 for _, t, _ in draws)
    neg = __import__(
        "alpr_workbench.recognition.synth_plates", fromlist=["x"]
    ).render_plate_crop(rng, negative=True)
    assert neg.text == ""


def test_model_shapes(torch):
    from alpr_workbench.recognition.models import (
        NUM_CLASSES,
        READER_SIZE,
        PlateDetector,
        PlateReader,
    )

    lp = PlateReader().eval()(torch.rand(2, 3, *READER_SIZE))
    assert lp.shape == (24, 2, NUM_CLASSES)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(24, 2), atol=1e-4)
    heat, size, off = PlateDetector().eval()(torch.rand(1, 3, 64, 96))
    assert heat.shape == (1, 1, 16, 24) and size.shape == off.shape == (1, 2, 16, 24)


def test_ctc_decoding_and_candidates():
    from alpr_workbench.recognition.infer import _decode_probs
    from alpr_workbench.recognition.synth_plates import ALPHABET

    t, c = 10, len(ALPHABET) + 1
    probs = np.full((t, c), 1e-4, np.float32)
    seq = [0, "7", "7", 0, "A", 0, "8", 0, "8", 0]  # 7 A 8 8 (blank splits the two 8s)
    for i, ch in enumerate(seq):
        probs[i, 0 if ch == 0 else ALPHABET.index(ch) + 1] = 0.9
    probs[6, ALPHABET.index("B") + 1] = 0.3  # the first 8 could be a B
    probs[6, ALPHABET.index("8") + 1] = 0.6
    text, conf, chars, cands = _decode_probs(probs, 5)
    assert text == "7A88"
    assert len(chars) == 4 and chars[2] == pytest.approx(0.6)
    assert conf == pytest.approx(0.9 * 0.9 * 0.6 * 0.9, rel=1e-4)
    assert cands[0][0] == "7A88" and cands[1][0] == "7AB8"
    assert [s for _, s in cands] == sorted((s for _, s in cands), reverse=True)


def test_crops_are_prepared_alike_on_threads():
    from alpr_workbench.recognition.infer import _prepare_all, prepare_crop

    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 255, (int(rng.integers(20, 200)), int(rng.integers(40, 400)), 3),
                          dtype=np.uint8) for _ in range(40)]
    together = _prepare_all(crops)
    assert together.shape == (40, 48, 96, 3)
    assert np.array_equal(together, np.stack([prepare_crop(c) for c in crops]))


def test_detector_targets():
    from alpr_workbench.recognition.train import build_detector_targets

    heat, size, off, mask = build_detector_targets([np.array([[10, 20, 40, 20.0]]),
                                                    np.zeros((0, 4))], 64, 64)
    assert mask[0].sum() == 1 and mask[1].sum() == 0
    iy, ix = np.argwhere(mask[0, 0])[0]
    assert (iy, ix) == (7, 7) and heat[0, 0, iy, ix] == 1.0
    assert np.exp(size[0, :, iy, ix]) * 4 == pytest.approx([40, 20])


def _write_bad_files(tmp: Path) -> dict[str, Path]:
    files = {}
    files["empty"] = tmp / "empty.jpg"
    files["empty"].write_bytes(b"")
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), (200, 30, 30)).save(buf, "JPEG")
    files["truncated"] = tmp / "truncated.jpg"
    files["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    files["text"] = tmp / "notes.png"
    files["text"].write_text("this is not an image\n")
    return files


def test_load_image_rejects_bad_files_clearly(tmp_path):
    from alpr_workbench.recognition.infer import load_image

    files = _write_bad_files(tmp_path)
    for kind, path in files.items():
        with pytest.raises(WorkbenchError, match=re.escape(str(path))) as err:
            load_image(path)
        assert kind[:5] in str(err.value).lower() or "image" in str(err.value).lower()
    with pytest.raises(WorkbenchError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    big = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(big)
    with pytest.raises(WorkbenchError, match="pixel limit"):
        load_image(big, max_pixels=10_000)


def test_load_image_converts_grey_16bit_and_alpha(tmp_path):
    from alpr_workbench.recognition.infer import load_image

    grey = tmp_path / "grey.png"
    Image.new("L", (30, 20), 128).save(grey)
    deep = tmp_path / "deep.png"
    ramp = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(ramp).save(deep)
    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (30, 20), (0, 0, 0, 0)).save(rgba)
    for path in (grey, deep, rgba):
        img = load_image(path)
        assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    assert load_image(deep).max() == 255 and load_image(deep).min() == 0
    assert load_image(rgba).min() == 255  # transparent -> white, not black


@needs_weights
def test_shipped_weights_read_synthetic_plates(recognizer):
    from alpr_workbench.recognition.synth_plates import render_plate_crop

    rng = np.random.default_rng(424242)
    samples = [render_plate_crop(rng) for _ in range(60)]
    readings = recognizer.read_crops([s.image for s in samples])
    acc = np.mean([r.text == s.text for r, s in zip(readings, samples, strict=True)])
    assert acc >= 0.65  # 78 % with the shipped weights; many crops are heavily degraded
    r = readings[0]
    assert 0 <= r.confidence <= 1 and len(r.char_confidences) == len(r.text)
    assert r.candidates[0] == (r.text, pytest.approx(r.confidence))


@needs_weights
def test_crop_views_and_plate_ranking(recognizer):
    from alpr_workbench.recognition.infer import PlateReading, _plate_rank
    from alpr_workbench.recognition.synth_plates import render_plate_crop

    rng = np.random.default_rng(77)
    images = [render_plate_crop(rng, size=(60, 130)).image for _ in range(6)]
    one = recognizer.read_crops(images, views=1)
    four = recognizer.read_crops(images)
    assert len(one) == len(four) == 6
    # a crop read surely enough the first time is not read again
    assert recognizer.read_crops(images, reread_below=0.0) == one
    assert all(b == a for a, b in zip(one, four, strict=True) if a.confidence >= 0.9)
    # one reader: more views only ever replace a reading with a surer one (several readers
    # vote instead, and a vote can be less sure than the first reading)
    import torch

    from alpr_workbench.recognition.infer import Recognizer
    from alpr_workbench.recognition.models import PlateReader, ReaderEnsemble

    first = PlateReader()
    first.load_state_dict(ReaderEnsemble.split_state(
        torch.load(MODELS / "reader.pt", weights_only=True))[0])
    single = Recognizer(first.eval(), None)
    one = single.read_crops(images, views=1)
    four = single.read_crops(images)
    every = single.read_crops(images, reread_below=1.0)
    assert all(b.confidence >= a.confidence - 1e-6 for a, b in zip(one, four, strict=True))
    assert all(b.confidence >= a.confidence - 1e-6 for a, b in zip(four, every, strict=True))
    tiny = recognizer.read_crops([np.zeros((6, 10, 3), np.uint8)])  # too small to trim
    assert len(tiny) == 1
    assert recognizer.read_crops([]) == []
    for bad in (0, 5):
        with pytest.raises(WorkbenchError, match="views"):
            recognizer.read_crops(images, views=bad)
    badge = PlateReading("AB", 0.99, (0.99, 0.99), (("AB", 0.99),), detection_score=0.9)
    plate = PlateReading("7ABC123", 0.6, (0.9,) * 7, (("7ABC123", 0.6),), detection_score=0.5)
    weak = PlateReading("8XYZ456", 0.3, (0.8,) * 7, (("8XYZ456", 0.3),), detection_score=0.5)
    assert sorted([badge, weak, plate], key=_plate_rank) == [plate, weak, badge]


@needs_weights
def test_recognize_cli_json_and_bad_files(tmp_path, torch):
    from alpr_workbench.recognition.pipeline import recognize_cli
    from alpr_workbench.recognition.synth_plates import render_plate_crop

    s = render_plate_crop(np.random.default_rng(3), size=(80, 160))
    Image.fromarray(s.image).save(tmp_path / "a_plate.png")
    _write_bad_files(tmp_path)
    lines: list[str] = []
    status = recognize_cli([tmp_path], crops=True, models_dir=MODELS, echo=lines.append)
    results = [json.loads(line) for line in lines]
    assert status == 1 and len(results) == 4
    by_name = {Path(r["image"]).name: r for r in results}
    assert "error" in by_name["empty.jpg"] and "error" in by_name["truncated.jpg"]
    ok = by_name["a_plate.png"]
    assert ok["ms"] >= 0 and len(ok["plates"]) == 1
    assert set(ok["plates"][0]) >= {"text", "confidence", "box", "candidates"}


@needs_weights
def test_frame_with_no_plate_and_frames_to_reads(tmp_path, recognizer):
    from alpr_workbench.recognition.pipeline import frames_to_reads
    from alpr_workbench.recognition.synth_plates import render_scene
    from alpr_workbench.schema import load_table

    blank = np.full((360, 640, 3), 90, np.uint8)
    assert recognizer.recognize(blank) == []
    scene = render_scene(np.random.default_rng(11), size=(360, 640), plate_width=(90, 140),
                         max_plates=3)
    Image.fromarray(scene.image).save(tmp_path / "cam7_20260301T081502Z.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    errors: list[str] = []
    reads = frames_to_reads(tmp_path, camera_id="cam-7", network_id="city", lat=37.8,
                            lon=-122.27, recognizer=recognizer,
                            on_error=lambda p, m: errors.append(p.name))
    assert errors == ["broken.jpg"]
    assert reads.columns == load_table("reads").columns
    if reads.height:  # the frame is synthetic; the detector may miss a plate
        assert set(reads["source"]) == {"recognition"}
        assert str(reads["captured_at"][0]).startswith("2026-03-01 08:15:02")
        again = frames_to_reads(tmp_path, camera_id="cam-7", network_id="city", lat=37.8,
                                lon=-122.27, recognizer=recognizer)
        assert again["read_id"].to_list() == reads["read_id"].to_list()


def test_step_probe_fixes_the_count_from_the_budget():
    from alpr_workbench.recognition import train

    announced: list[int] = []
    total, losses = train._train_loop("probe", float, steps=None, seconds=0.0,
                                      on_schedule=announced.append)
    assert total == len(losses) == 61 and announced == [61]  # the budget is spent: minimum
    total, losses = train._train_loop("fixed", float, steps=5, seconds=0.0,
                                      on_schedule=announced.append)
    assert total == len(losses) == 5 and announced == [61, 5]


def test_training_smoke(tmp_path, torch):
    from alpr_workbench.recognition import train

    imgs, texts = train._reader_chunk((1, 0, 16))
    reader, info = train.train_reader(imgs, texts, seed=1, steps=2, seconds=0, batch=8)
    assert info["steps"] == 2 and np.isfinite(info["final_loss"])
    for precision in ("fp32", "bf16"):  # bf16 runs (slowly) even where the CPU lacks it
        model, pinfo = train.train_reader(imgs, texts, seed=1, steps=2, seconds=0, batch=8,
                                          precision=precision)
        assert pinfo["precision"] == precision and np.isfinite(pinfo["final_loss"])
        assert all(t.is_contiguous() for t in model.state_dict().values())
    with pytest.raises(WorkbenchError, match="precision"):
        train.TrainingConfig(precision="fp16")
    with pytest.raises(WorkbenchError, match="precision"):  # also where training starts
        train.train_reader(imgs, texts, seed=1, steps=1, seconds=0, batch=8, precision="fp16")
    scenes, boxes = train._scene_chunk((1, 0, 4, 64))
    _, dinfo = train.train_detector(scenes, boxes, seed=1, steps=2, seconds=0, batch=2)
    assert np.isfinite(dinfo["final_loss"])
    # fine-tuning on an agency folder of labelled crops
    models = tmp_path / "models"
    models.mkdir()
    torch.save(reader.state_dict(), models / "reader.pt")
    folder = tmp_path / "agency"
    folder.mkdir()
    with open(folder / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "text"])
        for i in range(4):
            Image.fromarray(imgs[i]).save(folder / f"{i}.png")
            w.writerow([f"{i}.png", texts[i] or "X"])
    out = tmp_path / "tuned"
    ft = train.fine_tune(folder, folder / "labels.csv", models_dir=models, out=out, steps=2,
                         synthetic_share=0.0, threads=1)
    assert (out / "reader.pt").exists() and ft["agency_samples"] == 4


def test_reader_ensemble_trains_reproducibly_and_loads(tmp_path, torch):
    """``--readers 2``: reader k is exactly what training reader k alone would give."""
    from alpr_workbench.recognition import train
    from alpr_workbench.recognition.infer import Recognizer
    from alpr_workbench.recognition.models import ReaderEnsemble

    cfg = train.TrainingConfig(seed=5, reader_samples=24, reader_steps=2, reader_batch=8,
                               reader_only=True, threads=1, readers=2)
    info = train.train_all(tmp_path, cfg)
    assert len(info["reader"]["steps"]) == 2 and "--readers 2" in info["replay"]
    state = torch.load(tmp_path / "reader.pt", weights_only=True)
    members = ReaderEnsemble.split_state(state)
    imgs, texts = train.generate_reader_data(24, seed=5, workers=1)
    for k, member in enumerate(members):
        alone, _ = train.train_reader(imgs, texts, seed=5 + k, steps=2, seconds=0, batch=8)
        assert all(torch.equal(member[n], v) for n, v in alone.state_dict().items())
    assert not torch.equal(members[0]["head.weight"], members[1]["head.weight"])
    rec = Recognizer.load(tmp_path, backend="torch")
    crops = np.random.default_rng(0).integers(0, 255, (3, 48, 96, 3), dtype=np.uint8)
    assert rec.read_probs(crops).shape[:2] == (3, 2)
    readings = rec.read_crops(list(crops), reread_below=1.0)
    assert len(readings) == 3 and all(0.0 <= r.confidence <= 1.0 for r in readings)
    # a single reader's weights (the v0.2 format) load as an ensemble of one
    assert len(ReaderEnsemble.split_state(members[0])) == 1
    with pytest.raises(WorkbenchError, match="readers"):
        train.TrainingConfig(readers=0)
    # fine-tuning from an ensemble keeps its readers: a different count is refused up front
    one = train.TrainingConfig(seed=5, reader_samples=24, reader_steps=1, reader_batch=8,
                               reader_only=True, threads=1, reader_init=str(tmp_path))
    with pytest.raises(WorkbenchError, match="holds 2 readers"):
        train.train_all(tmp_path / "again", one)
    # weights that are not an ensemble's or a reader's state dict: a clear error
    for bad in (torch.zeros(3), {"members.0.head.bias": torch.zeros(37),
                                 "members.5.head.bias": torch.zeros(37)}):
        torch.save(bad, tmp_path / "reader.pt")
        with pytest.raises(WorkbenchError, match="cannot load reader.pt"):
            Recognizer.load(tmp_path, backend="torch")


def test_vote_lets_independent_readers_outvote_one_sure_misreading():
    from alpr_workbench.recognition.infer import _combine

    a = ("7ABC123", 0.7, (0.7,), (("7ABC123", 0.7),))
    b = ("7ABC123", 0.6, (0.6,), (("7ABC123", 0.6),))
    c = ("7A8C123", 0.9, (0.9,), (("7A8C123", 0.9),))
    assert _combine([a, b, c], 5, readers=1)[0] == "7A8C123"  # one reader: surest wins
    text, conf, _, cands = _combine([a, b, c], 5, readers=3)
    assert text == "7ABC123" and conf == pytest.approx(1.3 / 3)
    assert [t for t, _ in cands] == ["7ABC123", "7A8C123"]


def _card_figure() -> float:
    text = (MODELS / "MODEL_CARD.md").read_text()
    m = re.search(r"crops_top1_pct:\s*([\d.]+)", text)
    assert m, "MODEL_CARD.md must state crops_top1_pct"
    return float(m.group(1))


@needs_weights
@pytest.mark.skipif(not CROPS.is_dir(), reason="real evaluation crops are not available")
def test_real_crops_accuracy_matches_model_card(recognizer):
    with open(CROPS / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    readings = recognizer.read_crops([CROPS / r["file"] for r in rows])
    acc = 100 * np.mean([r.text == row["text"] for r, row in zip(readings, rows, strict=True)])
    assert acc >= _card_figure() - 1.0


@needs_weights
def test_onnx_backend_matches_torch(tmp_path, torch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import shutil

    from alpr_workbench.recognition.infer import Recognizer, export_onnx

    for name in ("reader.pt", "detector.pt"):
        shutil.copy(MODELS / name, tmp_path / name)
    export_onnx(tmp_path)
    a = Recognizer.load(tmp_path, backend="torch")
    b = Recognizer.load(tmp_path, backend="auto", threads=1, int8=False)
    assert b.backend == "onnx" and b.reader_file == "reader.onnx"
    from alpr_workbench.recognition.synth_plates import READER_SIZE, render_plate_crop

    crops = np.random.default_rng(0).integers(0, 255, (4, *READER_SIZE, 3), dtype=np.uint8)
    assert np.abs(a.read_probs(crops) - b.read_probs(crops)).max() < 1e-4
    # the int8 reader (the default) reads plates as float32 does
    q = Recognizer.load(tmp_path, threads=1)
    assert q.reader_file == "reader.int8.onnx"
    rng = np.random.default_rng(31)
    plates = [render_plate_crop(rng).image for _ in range(40)]
    same = [x.text == y.text for x, y in zip(a.read_crops(plates), q.read_crops(plates),
                                             strict=True)]
    assert np.mean(same) >= 0.9
    only = tmp_path / "exports"  # ONNX files without the weights they came from
    only.mkdir()
    for f in tmp_path.glob("*.onnx*"):
        shutil.copy(f, only / f.name)
    assert Recognizer.load(only, threads=1, int8=True).reader_file == "reader.int8.onnx"
    (only / "reader.int8.onnx.source").write_text("0123456789abcdef\n")  # older weights
    assert Recognizer.load(only, threads=1, int8=True).reader_file == "reader.onnx"
    from alpr_workbench.recognition.models import PlateDetector

    torch.save(PlateDetector().state_dict(), tmp_path / "detector.pt")  # export now stale
    assert Recognizer.load(tmp_path).backend == "torch"
    with pytest.raises(WorkbenchError, match="ONNX"):
        Recognizer.load(tmp_path, backend="onnx")
    (tmp_path / "reader.pt").write_bytes(b"not weights")  # every export is now stale too
    with pytest.raises(WorkbenchError, match="cannot load reader.pt"):
        Recognizer.load(tmp_path)
    (tmp_path / "reader.pt").write_bytes(b"")
    with pytest.raises(WorkbenchError, match="cannot load reader.pt"):
        Recognizer.load(tmp_path)


@needs_weights
def test_reads_from_rendered_frames_replace_the_sample(recognizer):
    """The demo's path: plates drawn into frames, read by the models, stored as their reads."""
    import datetime as dt

    import polars as pl

    from alpr_workbench.recognition.pipeline import reads_from_rendered_frames
    from alpr_workbench.schema import empty_frame, load_table

    t0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    sample = pl.concat([empty_frame("reads"), pl.DataFrame({
        "read_id": [f"syn:{i}" for i in range(4)],
        "camera_id": ["cam-1", "cam-1", "cam-2", "cam-2"],
        "network_id": ["city"] * 4,
        "captured_at": [t0 + dt.timedelta(seconds=17 * i) for i in range(4)],
        "plate": ["7ABC123", "8XYZ456", "4KLM901", "6PRS218"],
        "plate_state": ["CA"] * 4,
        "lat": [34.18] * 4,
        "lon": [-118.31] * 4,
        "source": ["synthetic"] * 4,
    })], how="diagonal_relaxed")
    reads, exact = reads_from_rendered_frames(sample, seed=3, recognizer=recognizer)
    again, exact_again = reads_from_rendered_frames(sample, seed=3, recognizer=recognizer)
    assert reads.columns == load_table("reads").columns
    assert reads["read_id"].to_list() == again["read_id"].to_list() and exact == exact_again
    assert 0 <= exact <= 4 and reads.height >= exact
    assert set(reads["source"]) <= {"recognition"}
    assert all(r.startswith("synthetic-frame:cam-") for r in reads["image_ref"])
    assert set(reads["camera_id"]) <= {"cam-1", "cam-2"}
