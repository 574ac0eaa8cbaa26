"""Benchmark plate recognition on the real evaluation sets, beside a baseline, in one run.

Sets (evaluation only, never trained on; see their README files):

- ``openalpr_us_crops_dev``: 501 plate crops with text -> exact-plate accuracy (top-1, top-k),
  crops per second: the shipped default (one view, then three more for the crops read less
  than 90 % surely), every crop four ways, and one view.
- ``openalpr_us_dev``: 148 whole photos, one plate each, box + text -> end-to-end exact-plate
  accuracy (top-1, top-k; every ``O`` is scored as ``0`` as the labels do), detection recall
  at IoU >= 0.4, ms per frame; plus the reader alone on the ground-truth boxes ("oracle").

Baseline: RapidOCR (PP-OCRv4 detector + recognizer via ONNX Runtime, ``rapidocr-onnxruntime``,
models inside the wheel), with the tallest text line(s) taken as the plate. It is skipped,
and said so, when the package is not installed.

Every accuracy figure, ours and the baseline's, is reported for the whole set (for continuity
with earlier runs) and for each part of the fixed split of issue #17
(``alpr_workbench.recognition.evalsplit.split_of``): the *tuning* part (about two thirds: look
at its errors, choose recipes and thresholds on it) and the *check* part (read only its
aggregate figures). In the JSON output each set's whole-set figures stay where they were and
``parts`` holds the same figures per part. ``--tuning-errors`` prints the tuning part's
per-image errors; the check part's errors are never collected, printed or written. A gap
between the parts is a finding to state, not to hide.

States (issue #17): the state classifier's figures on the crops, per part: the share of crops
given a state (coverage), the share right among those given, and the share right overall
(a crop of a state the classifier does not cover is right when no state is given), plus the
milliseconds per crop it adds. ``--tuning-errors`` also prints, for the tuning part only,
what it gave per true state and a sweep of its threshold. ``--crops-only`` reads only the
crops (the default reading and the states), without the speed variants, photos or baseline.

Timings are of the steady state (one warm-up pass first), as a running camera service sees it;
they are of the whole set only.

Run ``python benchmarks/bench_recognition.py [--threads 2] [--json FILE]`` from a checkout
(the figures quoted in the model card are ``src/alpr_workbench/models/benchmark.json``). The
sets are looked for in ``--data DIR``, else ``$ALPR_WORKBENCH_DATASETS``, else
``../shared/datasets`` beside the checkout; the run skips cleanly (exit 0) when they are absent.
Torch is optional: the shipped models run on ONNX Runtime.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from alpr_workbench.recognition.evalsplit import PARTS, TUNING, split_of

CHECKOUT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("ALPR_WORKBENCH_DATASETS") or CHECKOUT.parent / "shared" / "datasets")
CROPS = DATA / "openalpr_us_crops_dev"
FRAMES = DATA / "openalpr_us_dev"
WHOLE = "whole"  # the whole set, beside the parts of the fixed split


def use_data(folder: Path) -> None:
    """Read the evaluation sets from ``folder`` (holding ``openalpr_us_crops_dev`` etc.)."""
    global DATA, CROPS, FRAMES
    DATA = folder.expanduser().resolve()
    CROPS = DATA / "openalpr_us_crops_dev"
    FRAMES = DATA / "openalpr_us_dev"


def _norm(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def load_crops_set() -> list[tuple[Path, str, str]]:
    with open(CROPS / "labels.csv", newline="") as fh:
        return [(CROPS / r["file"], _norm(r["text"]), r["state"]) for r in csv.DictReader(fh)]


def load_frames_set() -> list[tuple[Path, tuple[int, int, int, int], str]]:
    out = []
    for txt in sorted(FRAMES.glob("*.txt")):
        line = txt.read_text().strip().split("\t")
        name, x, y, w, h, text = line[0], *map(int, line[1:5]), line[5]
        out.append((FRAMES / name, (x, y, w, h), _norm(text)))
    return out


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _by_part(names: list[str], flags: dict[str, list[bool]]) -> dict[str, dict[str, Any]]:
    """Share of ``True`` per flag over the whole set and over each part of the fixed split."""
    parts = [split_of(n) for n in names]
    out: dict[str, dict[str, Any]] = {}
    for part in (WHOLE, *PARTS):
        idx = [i for i, p in enumerate(parts) if part in (WHOLE, p)]
        out[part] = {"n": len(idx)}
        for key, values in flags.items():
            out[part][key] = sum(values[i] for i in idx) / len(idx) if idx else None
    return out


def _with_parts(whole: dict[str, Any], names: list[str],
                flags: dict[str, list[bool]]) -> dict[str, Any]:
    """``whole`` with each flag's share over the whole set, and the same per part."""
    figures = _by_part(names, flags)
    whole.update({k: v for k, v in figures[WHOLE].items() if k != "n"})
    whole["parts"] = {part: figures[part] for part in PARTS}
    return whole


#: Thresholds of the state classifier swept on the tuning part (``--tuning-errors``).
STATE_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def _state_scores(truths: list[str], best: list[tuple[str, float]], below: float,
                  covered: set[str]) -> tuple[list[bool], list[bool], list[bool]]:
    """Per crop: given a state, given the right one, right overall.

    ``best`` is the classifier's best class and its probability; a state is given when that
    class is a covered state at least ``below`` sure. Right overall: the right state given,
    or none given for a plate of a state the classifier does not cover.
    """
    given = [c in covered and p >= below for c, p in best]
    right = [g and c == t for g, (c, _), t in zip(given, best, truths, strict=True)]
    overall = [r or (not g and t not in covered)
               for g, r, t in zip(given, right, truths, strict=True)]
    return given, right, overall


def bench_states(rec: Any, crops: list[tuple[Path, str, str]],
                 prepared: np.ndarray) -> dict[str, Any]:
    """State accuracy on the crops per part, its cost, and the tuning part's confusions."""
    from collections import Counter

    from alpr_workbench.recognition.synth_plates import STATE_CLASSES, STATE_OTHER

    if rec.state_model is None:
        return {"skipped": "no state classifier (state.onnx) in the models folder"}
    covered = set(STATE_CLASSES) - {STATE_OTHER}
    names = [p.name for p, _, _ in crops]
    truths = [st.upper() for _, _, st in crops]
    below, rec.state_below = rec.state_below, 0.0  # every crop's best class, then threshold
    raw = rec.read_states(prepared)
    rec.state_below = below
    # at threshold 0 a None is the class "other"
    best = [(STATE_OTHER if c is None else c, float(p or 0.0)) for c, p in raw]
    t0 = time.perf_counter()
    for _ in range(3):
        rec.read_states(prepared)
    ms_per_crop = (time.perf_counter() - t0) / 3 / len(prepared) * 1000
    t0 = time.perf_counter()  # for scale: the readers' networks on the same crops
    for _ in range(3):
        rec.read_probs(prepared)
    reader_ms = (time.perf_counter() - t0) / 3 / len(prepared) * 1000
    given, right, overall = _state_scores(truths, best, below, covered)
    parts = [split_of(n) for n in names]
    out: dict[str, Any] = {"threshold": below, "ms_per_crop": ms_per_crop,
                           "reader_network_ms_per_crop": reader_ms,
                           "classes": list(STATE_CLASSES)}
    for part in (WHOLE, *PARTS):
        idx = [i for i, q in enumerate(parts) if part in (WHOLE, q)]
        n_given = sum(given[i] for i in idx)
        n_cov = sum(truths[i] in covered for i in idx)
        out[part] = {
            "n": len(idx),
            "n_covered_states": n_cov,
            "coverage": n_given / len(idx) if idx else None,
            "accuracy_given": sum(right[i] for i in idx) / n_given if n_given else None,
            "accuracy_overall": sum(overall[i] for i in idx) / len(idx) if idx else None,
            "recall_covered": (sum(right[i] for i in idx if truths[i] in covered) / n_cov
                               if n_cov else None),
        }
    # the tuning part only: per true state, what the classifier gave; and a threshold sweep
    tuning = [i for i, q in enumerate(parts) if q == TUNING]
    confusion: dict[str, dict[str, Any]] = {}
    for i in tuning:
        key = truths[i] if truths[i] in covered else STATE_OTHER
        row = confusion.setdefault(key, {"n": 0, "right": 0, "none": 0, "wrong": Counter()})
        row["n"] += 1
        if right[i]:
            row["right"] += 1
        elif not given[i]:
            row["none"] += 1
        else:
            row["wrong"][best[i][0]] += 1
    out["tuning_confusion"] = {
        k: {**v, "wrong": dict(v["wrong"].most_common())}
        for k, v in sorted(confusion.items(), key=lambda kv: (kv[0] == STATE_OTHER, kv[0]))}
    sweep = {}
    for t in STATE_SWEEP:
        g, r, o = _state_scores([truths[i] for i in tuning], [best[i] for i in tuning], t,
                                covered)
        sweep[str(t)] = {"coverage": sum(g) / len(g),
                         "accuracy_given": sum(r) / sum(g) if sum(g) else None,
                         "accuracy_overall": sum(o) / len(o)}
    out["tuning_sweep"] = sweep
    return out


def bench_ours(rec: Any, top_k: int, *, crops_only: bool = False) -> dict[str, Any]:
    from alpr_workbench.recognition.infer import load_image, prepare_crop

    res: dict[str, Any] = {}
    crops = load_crops_set()
    names = [p.name for p, _, _ in crops]
    imgs = [load_image(p) for p, _, _ in crops]
    rec.read_crops(imgs[:32])  # warm-up: time the steady state
    if crops_only:  # the default reading and the states only: no speed variants, no photos
        t0 = time.perf_counter()
        readings = rec.read_crops(imgs, top_k=top_k)
        t_all = time.perf_counter() - t0
        res["crops"] = _with_parts({
            "n": len(crops), "reader_file": rec.reader_file, "k": top_k,
            "crops_per_s_end_to_end": len(crops) / t_all,
        }, names, {"top1": [r.text == gt for r, (_, gt, _) in zip(readings, crops,
                                                                    strict=True)]})
        res["crops"]["tuning_errors"] = [
            (p.name, gt, r.text) for r, (p, gt, _) in zip(readings, crops, strict=True)
            if r.text != gt and split_of(p.name) == TUNING]
        res["states"] = bench_states(rec, crops, np.stack([prepare_crop(im) for im in imgs]))
        return res

    def timed(**how: Any) -> tuple[list[Any], list[bool], float]:
        """Readings, exact top-1 per crop and seconds (decoded crops in, readings out)."""
        t0 = time.perf_counter()
        out = rec.read_crops(imgs, top_k=top_k, **how)
        seconds = time.perf_counter() - t0
        return out, [r.text == gt for r, (_, gt, _) in zip(out, crops, strict=True)], seconds

    readings, top1, t_all = timed()
    topk = [gt in [c for c, _ in r.candidates] for r, (_, gt, _) in
            zip(readings, crops, strict=True)]
    fold = [r.text.replace("O", "0") == gt.replace("O", "0")
            for r, (_, gt, _) in zip(readings, crops, strict=True)]
    _, top1_every, t_every = timed(reread_below=1.0)
    _, top1_single, t_single = timed(views=1)
    prepared = np.stack([prepare_crop(im) for im in imgs])
    t0 = time.perf_counter()
    for _ in range(3):
        rec.read_probs(prepared, batch_size=256)
    t_model = (time.perf_counter() - t0) / 3
    res["crops"] = _with_parts({
        "n": len(crops),
        "reader_file": rec.reader_file,
        "readers": int(rec.read_probs(prepared[:1]).shape[1]),
        "k": top_k,
        "crops_per_s_four_views_every_crop": len(crops) / t_every,
        "crops_per_s_one_view": len(crops) / t_single,
        "crops_per_s_end_to_end": len(crops) / t_all,
        "crops_per_s_model": len(crops) / t_model,
    }, names, {
        "top1": top1,
        "topk": topk,
        "top1_o_as_0": fold,
        "top1_one_view": top1_single,
        "top1_four_views_every_crop": top1_every,
    })
    # errors of the tuning part only: the check part's are never collected (issue #17)
    res["crops"]["tuning_errors"] = [
        (p.name, gt, r.text) for r, (p, gt, _) in zip(readings, crops, strict=True)
        if r.text != gt and split_of(p.name) == TUNING]
    res["states"] = bench_states(rec, crops, prepared)

    frames = load_frames_set()
    flags: dict[str, list[bool]] = {
        "top1": [], "topk": [], "detection_recall_iou04_any_of_6": [],
        "detection_recall_iou04_top1": [], "reader_on_gt_boxes_top1": []}
    times, times720 = [], []
    misses = []
    rec.recognize(load_image(frames[0][0]))  # warm-up: time the steady state
    for path, box, gt in frames:
        img = load_image(path)
        t0 = time.perf_counter()
        plates = rec.recognize(img, top_k=top_k)
        ms = (time.perf_counter() - t0) * 1000
        times.append(ms)
        if img.shape[:2] == (720, 1280):
            times720.append(ms)
        boxes = rec.detect(img)
        flags["detection_recall_iou04_any_of_6"].append(any(iou(b, box) >= 0.4 for b, _ in boxes))
        best = plates[0] if plates else None
        pred = best.text.replace("O", "0") if best else ""
        flags["top1"].append(pred == gt)
        flags["topk"].append(
            bool(best) and gt in [c.replace("O", "0") for c, _ in best.candidates])
        flags["detection_recall_iou04_top1"].append(bool(best) and iou(best.box, box) >= 0.4)
        if pred != gt and split_of(path.name) == TUNING:
            misses.append((path.name, gt, pred))
        x, y, w, h = box
        o = rec.read_crops([img[max(0, y - h // 12): y + h + h // 12,
                                max(0, x - w // 25): x + w + w // 25]])[0]
        flags["reader_on_gt_boxes_top1"].append(o.text.replace("O", "0") == gt)
    res["frames"] = _with_parts({
        "n": len(frames),
        "k": top_k,
        "ms_per_frame_mean": statistics.fmean(times),
        "ms_per_frame_median": statistics.median(times),
        "ms_per_720p_frame_mean": statistics.fmean(times720) if times720 else None,
        "n_720p": len(times720),
    }, [p.name for p, _, _ in frames], flags)
    res["frames"]["tuning_errors"] = misses
    return res


def _plate_from_ocr(result: list | None) -> str:
    """The tallest text line (and lines as tall beside it), left to right, as the plate."""
    if not result:
        return ""
    items = []
    for quad, text, _score in result:
        q = np.asarray(quad, np.float32)
        t = _norm(text)
        if t:
            items.append((q[:, 1].max() - q[:, 1].min(), q[:, 1].mean(), q[:, 0].min(), t))
    if not items:
        return ""
    tall = max(items, key=lambda i: i[0])
    line = [i for i in items if i[0] >= 0.7 * tall[0] and abs(i[1] - tall[1]) < 0.5 * tall[0]]
    return "".join(i[3] for i in sorted(line, key=lambda i: i[2]))


def bench_baseline(threads: int, limit: int | None) -> dict[str, Any]:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return {"skipped": "rapidocr-onnxruntime is not installed"}
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
    res: dict[str, Any] = {"name": "RapidOCR (PP-OCRv4 ONNX), tallest text line"}
    crops = load_crops_set()
    if limit:
        crops = crops[:: max(1, len(crops) // limit)][:limit]
    t0 = time.perf_counter()
    ok = [_plate_from_ocr(engine(str(p), use_cls=False)[0]) == gt for p, gt, _ in crops]
    res["crops"] = _with_parts({"n": len(crops),
                                "crops_per_s": len(crops) / (time.perf_counter() - t0)},
                               [p.name for p, _, _ in crops], {"top1": ok})
    frames = load_frames_set()
    if limit:
        frames = frames[:: max(1, len(frames) // limit)][:limit]
    ok, times = [], []
    for path, _, gt in frames:
        t0 = time.perf_counter()
        out = engine(str(path), use_cls=False)[0]
        times.append((time.perf_counter() - t0) * 1000)
        cands = sorted(
            (_norm(t) for _, t, _ in (out or []) if 4 <= len(_norm(t)) <= 8),
            key=lambda t: -sum(c.isdigit() for c in t) * sum(c.isalpha() for c in t),
        )
        ok.append(bool(cands) and cands[0].replace("O", "0") == gt)
    res["frames"] = _with_parts({"n": len(frames), "ms_per_frame_mean": statistics.fmean(times)},
                                [p.name for p, _, _ in frames], {"top1": ok})
    return res


_ROWS = (  # (set, figure, label) of each accuracy line
    ("crops", "top1", "crops, top-1 exact, default"),
    ("crops", "topk", "crops, top-k exact"),
    ("crops", "top1_o_as_0", "crops, top-1, O and 0 folded"),
    ("crops", "top1_one_view", "crops, top-1, one view"),
    ("crops", "top1_four_views_every_crop", "crops, top-1, every crop four ways"),
    ("frames", "top1", "photos, top-1 exact"),
    ("frames", "topk", "photos, top-k exact"),
    ("frames", "detection_recall_iou04_any_of_6", "photos, detection recall, any of 6"),
    ("frames", "detection_recall_iou04_top1", "photos, detection recall, first box"),
    ("frames", "reader_on_gt_boxes_top1", "photos, reader on ground-truth boxes"),
)


def _accuracy_table(ours: dict[str, Any], base: dict[str, Any]) -> str:
    """Every accuracy figure, ours and the baseline's, for the whole set and each part."""

    def cell(figures: dict[str, Any], key: str) -> str:
        value = figures.get(key)
        return f"{value:7.1%}" if value is not None else "      -"

    head = f"{'':44s} {WHOLE:>7s} " + " ".join(f"{part:>7s}" for part in PARTS)
    lines = [head]
    for who, res in (("ours", ours), ("RapidOCR", base)):
        if "skipped" in res:
            continue
        for set_, key, label in _ROWS:
            if set_ not in res or key not in res[set_]:
                continue
            figures = [res[set_]] + [res[set_]["parts"][part] for part in PARTS]
            lines.append(f"{who + ': ' + label:44s} "
                         + " ".join(cell(fig, key) for fig in figures))
        if "frames" not in res:  # --crops-only
            continue
        lines.append(f"{who + ': n (crops / photos)':44s} "
                     + " ".join(f"{f'{n_c}/{n_f}':>7s}" for n_c, n_f in zip(
                         [res["crops"]["n"]] + [res["crops"]["parts"][p]["n"] for p in PARTS],
                         [res["frames"]["n"]] + [res["frames"]["parts"][p]["n"] for p in PARTS],
                         strict=True)))
    return "\n".join(lines)


_STATE_ROWS = (
    ("coverage", "state: crops given a state"),
    ("accuracy_given", "state: right among those given"),
    ("accuracy_overall", "state: right overall (none for others)"),
    ("recall_covered", "state: covered states' crops given right"),
)


def _state_table(states: dict[str, Any]) -> str:
    """The state figures for the whole set and each part."""
    if "skipped" in states:
        return f"state: skipped ({states['skipped']})"
    lines = [f"state classifier: threshold {states['threshold']}, "
             f"{states['ms_per_crop']:.3f} ms per crop added (the readers' networks: "
             f"{states['reader_network_ms_per_crop']:.3f} ms per crop)"]
    for key, label in _STATE_ROWS:
        cells = []
        for part in (WHOLE, *PARTS):
            v = states[part][key]
            cells.append(f"{v:7.1%}" if v is not None else "      -")
        lines.append(f"{label:44s} " + " ".join(cells))
    lines.append(f"{'state: n (crops / of covered states)':44s} " + " ".join(
        f"{str(states[p]['n']) + '/' + str(states[p]['n_covered_states']):>7s}"
        for p in (WHOLE, *PARTS)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="folder of the evaluation sets (default: see the module docstring)")
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--float32", action="store_true",
                   help="run the reader's float32 export (reader.onnx), not the default int8")
    p.add_argument("--with-errors", action="store_true",
                   help="keep the tuning part's per-image errors in --json (never commit "
                        "such a file); the check part's errors are never collected")
    p.add_argument("--tuning-errors", action="store_true",
                   help="print the tuning part's per-image errors (file, truth, reading); "
                        "the check part's are never printed")
    p.add_argument("--crops-only", action="store_true",
                   help="read only the crops (default reading and states): no speed "
                        "variants, no photos, no baseline")
    p.add_argument("--baseline-limit", type=int, default=None,
                   help="run the baseline on an evenly spaced subset of this size per set")
    a = p.parse_args(argv)
    if a.data is not None:
        use_data(a.data)
    if not CROPS.is_dir() or not FRAMES.is_dir():
        print(f"SKIP: evaluation data not found under {DATA}")
        return 0
    from alpr_workbench.recognition.infer import Recognizer

    try:  # only .pt weights without a current ONNX export run on torch (the `train` extra)
        import torch
    except ImportError:
        torch_version = None
    else:
        torch.set_num_threads(a.threads)
        torch_version = torch.__version__
    rec = Recognizer.load(a.models, int8=not a.float32)
    ours = bench_ours(rec, a.top_k, crops_only=a.crops_only)
    base = ({"skipped": "--no-baseline"} if a.no_baseline
            else {"skipped": "--crops-only"} if a.crops_only
            else bench_baseline(a.threads, a.baseline_limit))
    out = {
        "host": f"{platform.processor() or platform.machine()}, torch threads {a.threads}",
        "torch": torch_version,
        "ours": ours,
        "baseline": base,
    }
    c = ours["crops"]
    if a.crops_only:
        print(f"reader: {c['reader_file']}; crops (n={c['n']}): "
              f"{c['crops_per_s_end_to_end']:.0f} crops/s end to end, default")
    else:
        f = ours["frames"]
        print(f"reader: {c['reader_file']} ({c['readers']} reader(s) voting)")
        print(f"crops  (n={c['n']}): {c['crops_per_s_model']:.0f} crops/s model, "
              f"{c['crops_per_s_end_to_end']:.0f} crops/s end to end, default "
              f"({c['crops_per_s_one_view']:.0f} one view, "
              f"{c['crops_per_s_four_views_every_crop']:.0f} every crop four ways)")
        print(f"frames (n={f['n']}): {f['ms_per_frame_mean']:.1f} ms/frame mean, "
              f"{f['ms_per_720p_frame_mean']} ms/720p frame")
    if "skipped" in base:
        print(f"baseline skipped: {base['skipped']}")
    else:
        print(f"baseline {base['name']}: {base['crops']['crops_per_s']:.1f} crops/s, "
              f"{base['frames']['ms_per_frame_mean']:.0f} ms/frame")
    print(_accuracy_table(ours, base))
    print(_state_table(ours["states"]))
    if a.tuning_errors:  # the tuning part only: never read the check part's errors
        states = ours["states"]
        if "skipped" not in states:
            print("states, tuning part: true state, n, right, none given, given wrong")
            for st, row in states["tuning_confusion"].items():
                wrong = ", ".join(f"{k} {v}" for k, v in row["wrong"].items())
                print(f"  {st:6s} {row['n']:3d} {row['right']:3d} {row['none']:3d}  {wrong}")
            print("states, tuning part, threshold sweep: coverage, right among given, overall")
            for t, row in states["tuning_sweep"].items():
                acc = row["accuracy_given"]
                print(f"  {t}: {row['coverage']:.1%}  "
                      f"{'-' if acc is None else f'{acc:.1%}'}  {row['accuracy_overall']:.1%}")
        for part in ("crops", "frames"):
            if part not in ours:
                continue
            print(f"{part}, tuning part, errors (file, truth, reading):")
            for name, truth, reading in ours[part]["tuning_errors"]:
                print(f"  {name}\t{truth}\t{reading}")
    if a.json:  # per-image errors name evaluation plates: keep them out of committed files
        if not a.with_errors:
            for part in ("crops", "frames"):
                ours.get(part, {}).pop("tuning_errors", None)
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
