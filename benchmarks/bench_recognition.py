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

Timings are of the steady state (one warm-up pass first), as a running camera service sees it.

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

CHECKOUT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("ALPR_WORKBENCH_DATASETS") or CHECKOUT.parent / "shared" / "datasets")
CROPS = DATA / "openalpr_us_crops_dev"
FRAMES = DATA / "openalpr_us_dev"


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


def bench_ours(rec: Any, top_k: int) -> dict[str, Any]:
    from alpr_workbench.recognition.infer import load_image, prepare_crop

    res: dict[str, Any] = {}
    crops = load_crops_set()
    imgs = [load_image(p) for p, _, _ in crops]
    rec.read_crops(imgs[:32])  # warm-up: time the steady state

    def timed(**how: Any) -> tuple[list[Any], int, float]:
        """Readings, exact top-1 count and seconds (decoded crops in, readings out)."""
        t0 = time.perf_counter()
        out = rec.read_crops(imgs, top_k=top_k, **how)
        seconds = time.perf_counter() - t0
        return out, sum(r.text == gt for r, (_, gt, _) in zip(out, crops, strict=True)), seconds

    readings, top1, t_all = timed()
    topk = sum(gt in [c for c, _ in r.candidates] for r, (_, gt, _) in
               zip(readings, crops, strict=True))
    fold = sum(r.text.replace("O", "0") == gt.replace("O", "0")
               for r, (_, gt, _) in zip(readings, crops, strict=True))
    _, top1_every, t_every = timed(reread_below=1.0)
    _, top1_single, t_single = timed(views=1)
    prepared = np.stack([prepare_crop(im) for im in imgs])
    t0 = time.perf_counter()
    for _ in range(3):
        rec.read_probs(prepared, batch_size=256)
    t_model = (time.perf_counter() - t0) / 3
    res["crops"] = {
        "n": len(crops),
        "reader_file": rec.reader_file,
        "readers": int(rec.read_probs(prepared[:1]).shape[1]),
        "top1": top1 / len(crops),
        "topk": topk / len(crops),
        "top1_o_as_0": fold / len(crops),
        "top1_one_view": top1_single / len(crops),
        "top1_four_views_every_crop": top1_every / len(crops),
        "crops_per_s_four_views_every_crop": len(crops) / t_every,
        "crops_per_s_one_view": len(crops) / t_single,
        "k": top_k,
        "crops_per_s_end_to_end": len(crops) / t_all,
        "crops_per_s_model": len(crops) / t_model,
        "errors": [(p.name, gt, r.text) for r, (p, gt, _) in zip(readings, crops, strict=True)
                   if r.text != gt],
    }

    frames = load_frames_set()
    hits1 = hitsk = found = found1 = oracle = 0
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
        found += any(iou(b, box) >= 0.4 for b, _ in boxes)
        best = plates[0] if plates else None
        pred = best.text.replace("O", "0") if best else ""
        hits1 += pred == gt
        hitsk += bool(best) and gt in [c.replace("O", "0") for c, _ in best.candidates]
        found1 += bool(best) and iou(best.box, box) >= 0.4
        if pred != gt:
            misses.append((path.name, gt, pred))
        x, y, w, h = box
        o = rec.read_crops([img[max(0, y - h // 12): y + h + h // 12,
                                max(0, x - w // 25): x + w + w // 25]])[0]
        oracle += o.text.replace("O", "0") == gt
    n = len(frames)
    res["frames"] = {
        "n": n,
        "top1": hits1 / n,
        "topk": hitsk / n,
        "k": top_k,
        "detection_recall_iou04_any_of_6": found / n,
        "detection_recall_iou04_top1": found1 / n,
        "reader_on_gt_boxes_top1": oracle / n,
        "ms_per_frame_mean": statistics.fmean(times),
        "ms_per_frame_median": statistics.median(times),
        "ms_per_720p_frame_mean": statistics.fmean(times720) if times720 else None,
        "n_720p": len(times720),
        "errors": misses,
    }
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
    ok = sum(_plate_from_ocr(engine(str(p), use_cls=False)[0]) == gt for p, gt, _ in crops)
    res["crops"] = {"n": len(crops), "top1": ok / len(crops),
                    "crops_per_s": len(crops) / (time.perf_counter() - t0)}
    frames = load_frames_set()
    if limit:
        frames = frames[:: max(1, len(frames) // limit)][:limit]
    ok, times = 0, []
    for path, _, gt in frames:
        t0 = time.perf_counter()
        out = engine(str(path), use_cls=False)[0]
        times.append((time.perf_counter() - t0) * 1000)
        cands = sorted(
            (_norm(t) for _, t, _ in (out or []) if 4 <= len(_norm(t)) <= 8),
            key=lambda t: -sum(c.isdigit() for c in t) * sum(c.isalpha() for c in t),
        )
        ok += bool(cands) and cands[0].replace("O", "0") == gt
    res["frames"] = {"n": len(frames), "top1": ok / len(frames),
                     "ms_per_frame_mean": statistics.fmean(times)}
    return res


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
                   help="keep per-image errors in --json (never commit such a file)")
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
    ours = bench_ours(rec, a.top_k)
    base = {"skipped": "--no-baseline"} if a.no_baseline else bench_baseline(
        a.threads, a.baseline_limit)
    out = {
        "host": f"{platform.processor() or platform.machine()}, torch threads {a.threads}",
        "torch": torch_version,
        "ours": ours,
        "baseline": base,
    }
    c, f = ours["crops"], ours["frames"]
    print(f"reader: {c['reader_file']} ({c['readers']} reader(s) voting)")
    print(f"crops  (n={c['n']}): top-1 {c['top1']:.1%}  top-{c['k']} {c['topk']:.1%}  "
          f"(O=0 folded {c['top1_o_as_0']:.1%}; one view {c['top1_one_view']:.1%}; every crop "
          f"four ways {c['top1_four_views_every_crop']:.1%})  "
          f"{c['crops_per_s_model']:.0f} crops/s model, {c['crops_per_s_end_to_end']:.0f} "
          f"crops/s end to end, default ({c['crops_per_s_one_view']:.0f} one view, "
          f"{c['crops_per_s_four_views_every_crop']:.0f} every crop four ways)")
    print(f"frames (n={f['n']}): top-1 {f['top1']:.1%}  top-{f['k']} {f['topk']:.1%}  "
          f"det recall@0.4 {f['detection_recall_iou04_any_of_6']:.1%} (top box "
          f"{f['detection_recall_iou04_top1']:.1%})  reader on GT boxes "
          f"{f['reader_on_gt_boxes_top1']:.1%}  {f['ms_per_frame_mean']:.1f} ms/frame mean, "
          f"{f['ms_per_720p_frame_mean']} ms/720p frame")
    if "skipped" in base:
        print(f"baseline skipped: {base['skipped']}")
    else:
        print(f"baseline {base['name']}: crops (n={base['crops']['n']}) top-1 "
              f"{base['crops']['top1']:.1%}, {base['crops']['crops_per_s']:.1f} crops/s; "
              f"frames (n={base['frames']['n']}) top-1 {base['frames']['top1']:.1%}, "
              f"{base['frames']['ms_per_frame_mean']:.0f} ms/frame")
    if a.json:  # per-image errors name evaluation plates: keep them out of committed files
        if not a.with_errors:
            for part in ("crops", "frames"):
                ours[part].pop("errors", None)
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
