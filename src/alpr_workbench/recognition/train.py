"""Train the plate reader and detector on synthetic data, on the CPU, reproducibly.

Training needs PyTorch, the optional ``train`` extra (``pip install 'alpr-workbench[train]'``).
Run ``python -m alpr_workbench.recognition.train`` from a checkout: it writes to
``src/alpr_workbench/models``, where the shipped weights live (``--out DIR`` writes elsewhere),
and its defaults are those of the shipped run: 44 minutes, 120,000 reader crops, 70 % of the
training time to the reader. The run

1. renders a fixed, seeded set of synthetic plate crops and scenes (two worker processes;
   each chunk has its own seed, so the set does not depend on scheduling),
2. trains the reader (CRNN + CTC) and then the detector (CenterNet-style), each for a number
   of steps chosen from the time budget by timing the first steps, and
3. writes ``reader.pt``, ``detector.pt`` and ``training.json`` (seed, data sizes, the step
   counts actually used and the losses), so ``--reader-steps``/``--detector-steps`` replay
   the exact run.

:func:`fine_tune` adapts the reader to an agency's own labelled crops or frames.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.recognition.infer import require_torch
from alpr_workbench.recognition.synth_plates import ALPHABET, render_plate_crop, render_scene

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "TrainingConfig",
    "build_detector_targets",
    "fine_tune",
    "generate_detector_data",
    "generate_reader_data",
    "generate_state_data",
    "main",
    "reader_state",
    "train_all",
    "train_state",
    "train_state_all",
]

_CHUNK = 500


class TrainingConfig:
    """Settings of one training run (all sizes in samples, times in seconds).

    Parameters
    ----------
    seed
        Seed of data generation, initialisation and batching.
    minutes
        Total wall-clock budget, generation included.
    reader_samples, detector_samples
        Sizes of the rendered training sets.
    reader_steps, detector_steps
        Exact step counts (of each reader); ``None`` picks them from the budget.
    reader_share
        Share of the training time (after generation) that goes to the reader.
    reader_init
        Folder whose ``reader.pt`` the reader starts from (a second stage), or ``None``.
    reader_lr
        Peak learning rate of the reader.
    reader_only
        Train only the reader (the detector is copied from ``reader_init`` if there).
    threads
        Torch threads (and generation processes).
    readers
        How many readers to train (an ensemble whose readings vote): reader ``k`` trains on
        the same rendered crops with its own seed, ``seed + k``, for initialisation and
        batches, and gets its share of the reader's time.
    state_share
        Share of the reader's crops drawn in the state-consistent designs
        (:func:`~alpr_workbench.recognition.synth_plates.render_state_crop`, the 20 covered
        states and ``"other"`` equally likely), the rest by today's generator. ``0.0`` (the
        default) renders exactly the crops of earlier recipes.
    precision
        ``"fp32"`` (the shipped weights), ``"bf16"`` (forward passes in bfloat16 under
        autocast, weights and optimiser in float32, channels-last layout: about twice the
        steps per minute on a CPU with native bfloat16), or ``"auto"``: bf16 where the CPU
        computes it natively (AVX512-BF16 or AMX), else fp32.
    """

    def __init__(
        self,
        *,
        seed: int = 20260101,
        minutes: float = 44.0,
        reader_samples: int = 120_000,
        detector_samples: int = 12_000,
        reader_steps: int | None = None,
        detector_steps: int | None = None,
        reader_share: float = 0.7,
        threads: int = 2,
        reader_batch: int = 96,
        detector_batch: int = 24,
        scene_size: int = 256,
        reader_init: str | None = None,
        reader_lr: float = 2e-3,
        reader_only: bool = False,
        precision: str = "fp32",
        readers: int = 1,
        state_share: float = 0.0,
    ) -> None:
        _resolve_precision(precision)  # refuse an unknown precision now, not after rendering
        if isinstance(state_share, bool) or not isinstance(state_share, (int, float)) or not (
            0.0 <= float(state_share) <= 1.0
        ):
            raise WorkbenchError(f"state_share must be a number from 0 to 1, not {state_share!r}")
        if isinstance(readers, bool) or not isinstance(readers, int) or readers < 1:
            raise WorkbenchError(f"readers must be a whole number, at least 1, not {readers!r}")
        self.seed = seed
        self.minutes = minutes
        self.reader_samples = reader_samples
        self.detector_samples = detector_samples
        self.reader_steps = reader_steps
        self.detector_steps = detector_steps
        self.reader_share = reader_share
        self.threads = threads
        self.reader_batch = reader_batch
        self.detector_batch = detector_batch
        self.scene_size = scene_size
        self.reader_init = reader_init
        self.reader_lr = reader_lr
        self.reader_only = reader_only
        self.precision = precision
        self.readers = readers
        self.state_share = float(state_share)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return dict(vars(self))


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as torch sees it."""
    import torch

    return any(
        bool(getattr(torch.cpu, name, lambda: False)())
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def _resolve_precision(precision: str) -> str:
    """``"bf16"`` or ``"fp32"`` for a precision setting; a clear error for anything else."""
    if precision not in ("auto", "bf16", "fp32"):
        raise WorkbenchError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def _warmup_cosine(step: int, total: int, warm: int) -> float:
    """Learning-rate factor: linear warm-up over ``warm`` steps, then cosine decay to 0."""
    return (
        min(1.0, (step + 1) / max(1, warm)) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
    )


def _reader_size() -> tuple[int, int]:
    from alpr_workbench.recognition.models import READER_SIZE

    return READER_SIZE


def _reader_chunk(args: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    seed, chunk, count = args[:3]
    share = float(args[3]) / 1_000_000 if len(args) > 3 else 0.0  # parts per million
    rng = np.random.default_rng([seed, 1, chunk])
    imgs, texts = [], []
    for _ in range(count):
        if share > 0 and rng.random() < share:  # drawn only then: share 0 renders as before
            from alpr_workbench.recognition.synth_plates import render_state_crop

            s = render_state_crop(rng, size=_reader_size(), negative=rng.random() < 0.07)
        else:
            s = render_plate_crop(rng, size=_reader_size(), negative=rng.random() < 0.07)
        imgs.append(s.image)
        texts.append(s.text)
    return np.stack(imgs), texts


def _scene_chunk(args: tuple[int, int, int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
    seed, chunk, count, size = args
    rng = np.random.default_rng([seed, 2, chunk])
    imgs, boxes = [], []
    for _ in range(count):
        s = render_scene(rng, size=(size, size))
        imgs.append(s.image)
        boxes.append(s.boxes)
    return np.stack(imgs), boxes


def _run_chunks(fn: Callable[[Any], Any], jobs: list[Any], workers: int, label: str) -> list[Any]:
    from rich.progress import Progress

    with Progress(transient=False) as progress:
        task = progress.add_task(label, total=len(jobs))
        if workers <= 1:
            out = []
            for job in jobs:
                out.append(fn(job))
                progress.advance(task)
            return out
        with ProcessPoolExecutor(workers) as pool:
            out = []
            for res in pool.map(fn, jobs):
                out.append(res)
                progress.advance(task)
            return out


def generate_reader_data(
    n: int, *, seed: int, workers: int = 2, state_share: float = 0.0
) -> tuple[np.ndarray, list[str]]:
    """Render ``n`` synthetic plate crops (about 7 % without a plate, text ``""``).

    Parameters
    ----------
    n
        How many crops.
    seed
        Seed of the rendering (each chunk of 500 crops has its own stream).
    workers
        Rendering processes.
    state_share
        Share of crops drawn in the state-consistent designs (``render_state_crop``); ``0.0``
        renders exactly the crops of earlier recipes.

    Returns
    -------
    tuple[numpy.ndarray, list[str]]
        ``uint8`` images ``(n, 48, 96, 3)`` and their texts.

    Raises
    ------
    WorkbenchError
        If ``state_share`` is not between 0 and 1.
    """
    if not 0.0 <= state_share <= 1.0:
        raise WorkbenchError(f"state_share must be a number from 0 to 1, not {state_share!r}")
    ppm = round(state_share * 1_000_000)
    jobs: list[tuple[int, ...]] = [
        (seed, i, min(_CHUNK, n - i * _CHUNK)) + ((ppm,) if ppm else ())
        for i in range(math.ceil(n / _CHUNK))
    ]
    parts = _run_chunks(_reader_chunk, jobs, workers, "rendering plate crops")
    return np.concatenate([p[0] for p in parts]), [t for p in parts for t in p[1]]


def generate_detector_data(
    n: int, *, seed: int, size: int = 256, workers: int = 2
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Render ``n`` synthetic scenes of ``size`` x ``size`` pixels with their plate boxes."""
    jobs = [(seed, i, min(_CHUNK, n - i * _CHUNK), size) for i in range(math.ceil(n / _CHUNK))]
    parts = _run_chunks(_scene_chunk, jobs, workers, "rendering scenes")
    return np.concatenate([p[0] for p in parts]), [b for p in parts for b in p[1]]


def build_detector_targets(
    boxes: Sequence[np.ndarray], height: int, width: int, stride: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet targets for a batch of box lists (``x, y, w, h`` in input pixels).

    Returns
    -------
    tuple
        ``heat (B,1,h,w)``, ``size (B,2,h,w)`` (log of width and height in stride units),
        ``offset (B,2,h,w)`` and ``mask (B,1,h,w)``, all ``float32``.

    Examples
    --------
    >>> import numpy as np
    >>> heat, size, off, mask = build_detector_targets([np.array([[8, 8, 16, 8.0]])], 32, 32)
    >>> heat.shape, float(heat.max()), float(mask.sum())
    ((1, 1, 8, 8), 1.0, 1.0)
    """
    oh, ow = height // stride, width // stride
    b = len(boxes)
    heat = np.zeros((b, 1, oh, ow), np.float32)
    size = np.zeros((b, 2, oh, ow), np.float32)
    off = np.zeros((b, 2, oh, ow), np.float32)
    mask = np.zeros((b, 1, oh, ow), np.float32)
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    for i, bx in enumerate(boxes):
        for x, y, w, h in np.asarray(bx, np.float32).reshape(-1, 4):
            if w < 2 or h < 2:
                continue
            cx, cy = (x + w / 2) / stride, (y + h / 2) / stride
            ix, iy = min(int(cx), ow - 1), min(int(cy), oh - 1)
            sx, sy = max(0.7, w / stride / 6), max(0.7, h / stride / 6)
            g = np.exp(-((xx - ix) ** 2) / (2 * sx**2) - ((yy - iy) ** 2) / (2 * sy**2))
            heat[i, 0] = np.maximum(heat[i, 0], g)
            heat[i, 0, iy, ix] = 1.0
            size[i, :, iy, ix] = (math.log(w / stride), math.log(h / stride))
            off[i, :, iy, ix] = (cx - ix, cy - iy)
            mask[i, 0, iy, ix] = 1.0
    return heat, size, off, mask


def _encode(texts: Sequence[str]) -> tuple[list[int], list[int]]:
    flat: list[int] = []
    lengths = []
    for t in texts:
        flat.extend(ALPHABET.index(c) + 1 for c in t)
        lengths.append(len(t))
    return flat, lengths


def _augment_reader(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Cheap online augmentation: small affine jitter, contrast, brightness, grey."""
    import torch
    from torch.nn import functional as F

    b = x.shape[0]
    u = torch.rand(b, 6, generator=gen)
    scale = 0.92 + 0.14 * u[:, 0]
    ang = (u[:, 1] - 0.5) * math.radians(6)
    tx, ty = (u[:, 2] - 0.5) * 0.12, (u[:, 3] - 0.5) * 0.15
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.cos(ang)
    aspect = x.shape[3] / x.shape[2]  # rotate in pixels, not in normalised units
    theta[:, 0, 1] = -torch.sin(ang) / aspect
    theta[:, 1, 0] = torch.sin(ang) * aspect
    theta[:, 1, 1] = scale * torch.cos(ang)
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    contrast = (0.6 + 0.7 * u[:, 4]).view(b, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + (u[:, 5].view(b, 1, 1, 1) - 0.5) * 0.3
    grey = torch.rand(b, generator=gen) < 0.15
    x[grey] = x[grey].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    return x.clamp(0, 1)


def _to_tensor(batch: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255)


class _FastMode:
    """bfloat16 autocast and channels-last layout for training, or neither (fp32)."""

    def __init__(self, precision: str) -> None:
        self.precision = precision

    def forward(self) -> Any:
        """Context for the forward pass (autocast in bf16 mode)."""
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory layout the model was put in."""
        import torch

        return x.contiguous(memory_format=torch.channels_last) if self.precision == "bf16" else x

    def done(self, model: Any) -> Any:
        """The trained model back in the plain layout, in eval mode."""
        import torch

        return model.to(memory_format=torch.contiguous_format).eval()


def _fast_mode(model: Any, precision: str) -> _FastMode:
    import torch

    fast = _FastMode(_resolve_precision(precision))
    if fast.precision == "bf16":
        model.to(memory_format=torch.channels_last)
    return fast


def _optimise(opt: Any, model: Any, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss``, gradients clipped to norm 5; returns the loss value."""
    import torch

    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return float(loss.detach())


def _summary(total: int, losses: list[float]) -> dict[str, Any]:
    """Steps run and the mean loss of the last 100, for ``training.json``."""
    return {"steps": total, "final_loss": float(np.mean(losses[-100:]))}


def _train_loop(
    name: str,
    step_fn: Callable[[int], float],
    *,
    steps: int | None,
    seconds: float,
    on_schedule: Callable[[int], None],
) -> tuple[int, list[float]]:
    """Run ``step_fn`` for ``steps`` steps, or for as many as ``seconds`` allow.

    When ``steps`` is ``None``, steps 20 to 60 are timed (the first ones are slow while
    buffers are allocated) and the total is fixed from them (then announced through
    ``on_schedule``), so the learning-rate schedule is known before it matters and the count
    can be replayed (the first 60 steps ramp the learning rate up as the fixed schedule's
    warm-up does). At least 61 steps are run, whatever ``seconds`` says.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    warm, probe = 20, 60
    losses: list[float] = []
    total = steps if steps is not None else 10**9
    start = warm_end = time.perf_counter()
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns) as progress:
        task = progress.add_task(name, total=steps or probe, loss=float("nan"))
        if steps is not None:
            on_schedule(steps)
        i = 0
        while i < total:
            if steps is None and i == warm:
                warm_end = time.perf_counter()
            if steps is None and i == probe:
                now = time.perf_counter()
                per_step = (now - warm_end) / (probe - warm)
                total = max(probe + 1, probe + int((seconds - (now - start)) / per_step))
                on_schedule(total)
                progress.update(task, total=total)
            losses.append(step_fn(i))
            i += 1
            if i % 10 == 0:
                progress.update(task, completed=i, loss=float(np.mean(losses[-50:])))
        progress.update(task, completed=total, loss=float(np.mean(losses[-50:])))
    return total, losses


def train_reader(
    images: np.ndarray,
    texts: list[str],
    *,
    seed: int,
    steps: int | None,
    seconds: float,
    batch: int = 96,
    lr: float = 2e-3,
    init: dict[str, Any] | None = None,
    precision: str = "fp32",
) -> tuple[Any, dict[str, Any]]:
    """Train (or, with ``init``, fine-tune) a :class:`PlateReader` with CTC.

    ``precision`` is as in :class:`TrainingConfig`; the returned model is float32 either way.

    Returns
    -------
    tuple
        The trained model (eval mode) and a summary dict (steps, final loss).

    Raises
    ------
    WorkbenchError
        If PyTorch (the ``train`` extra) is not installed.
    """
    torch = require_torch("training")
    from torch.nn import functional as F

    from alpr_workbench.recognition.models import PlateReader

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = PlateReader()
    if init is not None:
        model.load_state_dict(init)
    fast = _fast_mode(model, precision)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    n = len(texts)

    def on_schedule(total: int) -> None:
        warm = min(300, total // 10)
        sched["fn"] = lambda i: _warmup_cosine(i, total, warm)

    def step(i: int) -> float:
        factor = sched["fn"](i) if "fn" in sched else min(1.0, (i + 1) / 300)
        for g in opt.param_groups:
            g["lr"] = lr * factor
        idx = rng.integers(0, n, batch)
        x = _augment_reader(_to_tensor(images[idx]), gen)
        flat, lengths = _encode([texts[j] for j in idx])
        model.train()
        with fast.forward():
            lp = model(fast.layout(x)).float()
        loss = F.ctc_loss(
            lp,
            torch.tensor(flat, dtype=torch.long),
            torch.full((batch,), lp.shape[0], dtype=torch.long),
            torch.tensor(lengths, dtype=torch.long),
            zero_infinity=True,
        )
        return _optimise(opt, model, loss)

    total, losses = _train_loop(
        "training reader", step, steps=steps, seconds=seconds, on_schedule=on_schedule
    )
    return fast.done(model), {**_summary(total, losses), "precision": fast.precision}


def train_detector(
    images: np.ndarray,
    boxes: list[np.ndarray],
    *,
    seed: int,
    steps: int | None,
    seconds: float,
    batch: int = 24,
    lr: float = 2e-3,
    precision: str = "fp32",
) -> tuple[Any, dict[str, Any]]:
    """Train a :class:`PlateDetector` on rendered scenes (``precision`` as for the reader).

    Raises
    ------
    WorkbenchError
        If PyTorch (the ``train`` extra) is not installed.
    """
    torch = require_torch("training")

    from alpr_workbench.recognition.models import PlateDetector, detector_loss

    torch.manual_seed(seed + 1)
    model = PlateDetector()
    fast = _fast_mode(model, precision)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched: dict[str, Any] = {}
    rng = np.random.default_rng(seed + 1)
    n, h, w = images.shape[:3]

    def on_schedule(total: int) -> None:
        warm = min(200, total // 10)
        sched["fn"] = lambda i: _warmup_cosine(i, total, warm)

    def step(i: int) -> float:
        factor = sched["fn"](i) if "fn" in sched else min(1.0, (i + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr * factor
        idx = rng.integers(0, n, batch)
        imgs = images[idx].copy()
        bxs = [boxes[j].copy() for j in idx]
        for k in range(batch):  # mirror half the scenes (plates stay plates when mirrored)
            if rng.random() < 0.5:
                imgs[k] = imgs[k, :, ::-1]
                if len(bxs[k]):
                    bxs[k][:, 0] = w - bxs[k][:, 0] - bxs[k][:, 2]
        heat, size, off, mask = (torch.from_numpy(a) for a in build_detector_targets(bxs, h, w))
        model.train()
        with fast.forward():
            out = tuple(o.float() for o in model(fast.layout(_to_tensor(imgs))))
        focal, size_l, off_l = detector_loss(out, heat, size, off, mask)
        loss = focal + 0.5 * size_l + off_l
        return _optimise(opt, model, loss)

    total, losses = _train_loop(
        "training detector", step, steps=steps, seconds=seconds, on_schedule=on_schedule
    )
    return fast.done(model), {**_summary(total, losses), "precision": fast.precision}


def reader_state(readers: Sequence[Any]) -> dict[str, Any]:
    """The ``reader.pt`` state dict of trained :class:`PlateReader` s.

    One reader is saved as itself (the format of v0.2); several as a
    :class:`~alpr_workbench.recognition.models.ReaderEnsemble`.
    """
    from alpr_workbench.recognition.models import ReaderEnsemble

    if len(readers) == 1:
        return dict(readers[0].state_dict())
    ensemble = ReaderEnsemble(len(readers))
    for slot, reader in zip(ensemble.members, readers, strict=True):
        slot.load_state_dict(reader.state_dict())
    return dict(ensemble.state_dict())


def _readers_summary(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One reader's training summary as it is; several readers' with per-reader lists."""
    if len(infos) == 1:
        return infos[0]
    return {**infos[0], "steps": [i["steps"] for i in infos],
            "final_loss": [i["final_loss"] for i in infos]}


def train_all(out: Path, config: TrainingConfig) -> dict[str, Any]:
    """Render data, train both networks and write them with ``training.json`` to ``out``.

    Returns
    -------
    dict
        What ``training.json`` holds.

    Raises
    ------
    WorkbenchError
        If PyTorch (the ``train`` extra) is not installed, or ``--init`` weights do not fit.
    """
    torch = require_torch("training")

    from alpr_workbench.recognition.models import ReaderEnsemble

    torch.set_num_threads(config.threads)
    starts: list[dict[str, Any]] | None = None
    if config.reader_init:  # checked before minutes of rendering
        starts = ReaderEnsemble.split_state(torch.load(
            Path(config.reader_init) / "reader.pt", map_location="cpu", weights_only=True
        ))
        if len(starts) > 1 and config.readers != len(starts):
            raise WorkbenchError(
                f"{config.reader_init}/reader.pt holds {len(starts)} readers: train "
                f"--readers {len(starts)} from it, not {config.readers}"
            )
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    r_imgs, r_texts = generate_reader_data(
        config.reader_samples, seed=config.seed, workers=config.threads,
        state_share=config.state_share,
    )
    if not config.reader_only:
        d_imgs, d_boxes = generate_detector_data(
            config.detector_samples,
            seed=config.seed,
            size=config.scene_size,
            workers=config.threads,
        )
    gen_s = time.perf_counter() - t0
    left = max(60.0, config.minutes * 60 - gen_s - 30)
    members = []
    for k in range(config.readers):  # the same crops; each its own seed for init and batches
        members.append(train_reader(
            r_imgs,
            r_texts,
            seed=config.seed + k,
            # without fixed steps, the first reader's timing fixes them for all: one replay
            steps=config.reader_steps or (members[0][1]["steps"] if members else None),
            seconds=left * (1.0 if config.reader_only else config.reader_share) / config.readers,
            batch=config.reader_batch,
            lr=config.reader_lr,
            init=starts[k % len(starts)] if starts else None,
            precision=config.precision,
        ))
    torch.save(reader_state([m for m, _ in members]), out / "reader.pt")
    r_info = _readers_summary([info for _, info in members])
    del r_imgs
    if config.reader_only:
        d_info: dict[str, Any] = {"steps": 0, "note": "not trained in this stage"}
        src = Path(config.reader_init or out) / "detector.pt"
        if src.exists() and src.resolve() != (out / "detector.pt").resolve():
            import shutil

            shutil.copy(src, out / "detector.pt")
    else:
        left = max(60.0, config.minutes * 60 - (time.perf_counter() - t0) - 15)
        detector, d_info = train_detector(
            d_imgs,
            d_boxes,
            seed=config.seed,
            steps=config.detector_steps,
            seconds=left,
            batch=config.detector_batch,
            precision=config.precision,
        )
        torch.save(detector.state_dict(), out / "detector.pt")
    info = {
        "config": config.as_dict(),
        "generation_seconds": round(gen_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "reader": r_info,
        "detector": d_info,
        "torch": torch.__version__,
        "replay": (
            f"python -m alpr_workbench.recognition.train --seed {config.seed} "
            f"--reader-samples {config.reader_samples} "
            f"--reader-steps {members[0][1]['steps']} --precision {r_info['precision']} "
            + (f"--readers {config.readers} " if config.readers > 1 else "")
            + (f"--state-share {config.state_share:g} " if config.state_share else "")
            + (f"--threads {config.threads} " if config.threads != 2 else "")
            + (
                f"--reader-only --init {config.reader_init} --lr {config.reader_lr}"
                if config.reader_only
                else f"--detector-steps {d_info['steps']}"
            )
        ),
    }
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _read_labels(folder: Path, labels_csv: Path) -> list[tuple[Path, str, tuple | None]]:
    rows = []
    with open(labels_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if "file" not in row or "text" not in row:
                raise WorkbenchError(f"{labels_csv}: needs columns 'file' and 'text'")
            box = None
            if all(row.get(k) for k in ("x", "y", "w", "h")):
                box = tuple(int(float(row[k])) for k in ("x", "y", "w", "h"))
            text = "".join(c for c in row["text"].upper() if c.isalnum())
            if any(c not in ALPHABET for c in text):
                raise WorkbenchError(f"{labels_csv}: {row['file']}: text {row['text']!r}")
            rows.append((folder / row["file"], text, box))
    if not rows:
        raise WorkbenchError(f"{labels_csv}: no labelled rows")
    return rows


def fine_tune(
    folder: Path,
    labels_csv: Path,
    *,
    models_dir: Path,
    out: Path,
    steps: int = 1500,
    synthetic_share: float = 0.5,
    seed: int = 7,
    threads: int = 2,
) -> dict[str, Any]:
    """Fine-tune the reader on an agency's own labelled plates.

    Parameters
    ----------
    folder
        Folder with the images.
    labels_csv
        CSV with columns ``file,text`` for crops, plus ``x,y,w,h`` for whole frames (the box
        is cropped). Texts are upper-cased; spaces and dashes are dropped.
    models_dir
        Where the current ``reader.pt`` (and ``detector.pt``) are.
    out
        Where to write the fine-tuned ``reader.pt`` (the detector is copied unchanged).
    steps
        Training steps (of each reader of an ensemble).
    synthetic_share
        Share of synthetic crops mixed into the agency data so the reader does not forget
        the plate designs the agency's sample lacks.
    seed, threads
        Seed and torch threads.

    Returns
    -------
    dict
        Summary: samples used, steps, final loss.

    Raises
    ------
    WorkbenchError
        If PyTorch (the ``train`` extra) is not installed, or a label or image is bad.
    """
    import shutil

    torch = require_torch("fine-tuning")

    from alpr_workbench.recognition.infer import load_image, prepare_crop
    from alpr_workbench.recognition.models import ReaderEnsemble

    torch.set_num_threads(threads)
    rows = _read_labels(folder, labels_csv)
    crops, texts = [], []
    for path, text, box in rows:
        img = load_image(path)
        if box is not None:
            x, y, w, h = box
            img = img[max(0, y) : y + h, max(0, x) : x + w]
        crops.append(prepare_crop(img))
        texts.append(text)
    own = np.stack(crops)
    n_syn = int(len(texts) * synthetic_share / max(1e-6, 1 - synthetic_share))
    if n_syn:
        syn, syn_texts = generate_reader_data(n_syn, seed=seed, workers=threads)
        images = np.concatenate([own, syn])
        texts = texts + syn_texts
    else:
        images = own
    starts = ReaderEnsemble.split_state(
        torch.load(models_dir / "reader.pt", map_location="cpu", weights_only=True)
    )
    tuned = [
        train_reader(images, texts, seed=seed + k, steps=steps, seconds=0.0, lr=3e-4, init=start)
        for k, start in enumerate(starts)
    ]
    info = _readers_summary([i for _, i in tuned])
    out.mkdir(parents=True, exist_ok=True)
    torch.save(reader_state([m for m, _ in tuned]), out / "reader.pt")
    if (models_dir / "detector.pt").exists() and models_dir.resolve() != out.resolve():
        shutil.copy(models_dir / "detector.pt", out / "detector.pt")
    info.update(agency_samples=len(rows), synthetic_samples=n_syn)
    (out / "fine_tune.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


# --- The state classifier (issue #17: predict the state where it can be seen) ---------------

#: Share of "other" plates (uncovered states, no state name) among the state crops; the rest
#: are spread evenly over the covered states. About 7 % of crops hold no plate ("other").
_STATE_OTHER_SHARE = 0.25


def _state_chunk(args: tuple[int, int, int]) -> tuple[np.ndarray, list[int]]:
    from alpr_workbench.recognition.synth_plates import (
        STATE_CLASSES,
        STATE_OTHER,
        render_state_crop,
    )

    seed, chunk, count = args
    rng = np.random.default_rng([seed, 3, chunk])
    covered = [c for c in STATE_CLASSES if c != STATE_OTHER]
    imgs, labels = [], []
    for _ in range(count):
        state = (STATE_OTHER if rng.random() < _STATE_OTHER_SHARE
                 else covered[int(rng.integers(len(covered)))])
        s = render_state_crop(rng, state, size=_reader_size(), negative=rng.random() < 0.07)
        imgs.append(s.image)
        labels.append(STATE_CLASSES.index(s.state))
    return np.stack(imgs), labels


def generate_state_data(n: int, *, seed: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` state-consistent synthetic crops and their class indices.

    Each crop is a plate in the design of its state
    (:func:`~alpr_workbench.recognition.synth_plates.render_state_crop`), through the same
    camera effects as the reader's crops. A quarter are ``"other"`` plates, the rest spread
    evenly over the covered states; about 7 % hold no plate (class ``"other"``).

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        ``uint8`` images ``(n, 48, 96, 3)`` and ``int64`` indices into ``STATE_CLASSES``.
    """
    jobs = [(seed, i, min(_CHUNK, n - i * _CHUNK)) for i in range(math.ceil(n / _CHUNK))]
    parts = _run_chunks(_state_chunk, jobs, workers, "rendering state crops")
    return (np.concatenate([p[0] for p in parts]),
            np.array([c for p in parts for c in p[1]], np.int64))


def train_state(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    steps: int,
    batch: int = 64,
    lr: float = 2e-3,
) -> tuple[Any, dict[str, Any]]:
    """Train a :class:`~alpr_workbench.recognition.models.StateClassifier` (cross-entropy).

    Batches get the reader's online jitter (affine, contrast, grey); AdamW, warm-up then
    cosine decay, label smoothing 0.05.

    Returns
    -------
    tuple
        The trained model (eval mode) and a summary dict (steps, final loss, train accuracy
        of the last 100 batches).

    Raises
    ------
    WorkbenchError
        If PyTorch (the ``train`` extra) is not installed, or ``steps`` is not positive.
    """
    torch = require_torch("training")
    from torch.nn import functional as F

    from alpr_workbench.recognition.models import StateClassifier

    if steps < 1:
        raise WorkbenchError(f"state classifier steps must be at least 1, not {steps!r}")
    torch.manual_seed(seed + 3)
    gen = torch.Generator().manual_seed(seed + 3)
    model = StateClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed + 3)
    n = len(labels)
    warm = min(200, max(1, steps // 10))
    hits: list[float] = []

    def step(i: int) -> float:
        for g in opt.param_groups:
            g["lr"] = lr * _warmup_cosine(i, steps, warm)
        idx = rng.integers(0, n, batch)
        x = _augment_reader(_to_tensor(images[idx]), gen)
        y = torch.from_numpy(labels[idx])
        model.train()
        logits = model(x)
        hits.append(float((logits.argmax(1) == y).float().mean()))
        return _optimise(opt, model, F.cross_entropy(logits, y, label_smoothing=0.05))

    total, losses = _train_loop(
        "training state classifier", step, steps=steps, seconds=0.0, on_schedule=lambda _: None
    )
    info = {**_summary(total, losses), "train_accuracy": float(np.mean(hits[-100:]))}
    return model.eval(), info


def train_state_all(
    out: Path, *, seed: int = 20260101, samples: int = 36_000, steps: int = 5000,
    threads: int = 1, export: bool = True,
) -> dict[str, Any]:
    """Render state crops, train the state classifier, write ``state.pt`` (and ``state.onnx``).

    The recipe goes into ``training.json`` under ``"state"`` (the other keys are kept).

    Parameters
    ----------
    out
        Folder to write to (the shipped weights' folder by default on the command line).
    seed
        Seed of rendering, initialisation and batches.
    samples, steps
        Rendered crops and training steps (batch 64).
    threads
        Torch threads and rendering processes.
    export
        Also write ``state.onnx`` and its ``.onnx.source`` note.

    Returns
    -------
    dict
        What ``training.json`` holds under ``"state"``.

    Raises
    ------
    WorkbenchError
        If PyTorch (the ``train`` extra) is not installed, or a setting is out of range.
    """
    torch = require_torch("training")
    from alpr_workbench.recognition.synth_plates import STATE_CLASSES

    if samples < 1:
        raise WorkbenchError(f"state samples must be at least 1, not {samples!r}")
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    images, labels = generate_state_data(samples, seed=seed, workers=threads)
    gen_s = time.perf_counter() - t0
    model, info = train_state(images, labels, seed=seed, steps=steps)
    torch.save(model.state_dict(), out / "state.pt")
    if export:
        from alpr_workbench.recognition.infer import export_state_onnx

        export_state_onnx(out)
    recipe = {
        "seed": seed, "samples": samples, "batch": 64, "lr": 2e-3, "threads": threads,
        "other_share": _STATE_OTHER_SHARE, "classes": list(STATE_CLASSES),
        **info,
        "generation_seconds": round(gen_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
        "replay": (f"python -m alpr_workbench.recognition.train --state-only --seed {seed} "
                   f"--state-samples {samples} --state-steps {info['steps']} "
                   f"--threads {threads}"),
    }
    meta = out / "training.json"
    data = json.loads(meta.read_text()) if meta.exists() else {}
    data["state"] = recipe
    tmp = meta.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(meta)
    return recipe


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("src/alpr_workbench/models"),
                   help="folder to write to (default: the shipped weights' folder of a checkout)")
    p.add_argument("--minutes", type=float, default=44.0)
    p.add_argument("--seed", type=int, default=20260101)
    p.add_argument("--reader-samples", type=int, default=120_000)
    p.add_argument("--detector-samples", type=int, default=12_000)
    p.add_argument("--reader-steps", type=int, default=None)
    p.add_argument("--detector-steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", default=None, help="start the reader from DIR/reader.pt")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the reader")
    p.add_argument("--reader-only", action="store_true", help="train only the reader")
    p.add_argument("--readers", type=int, default=1,
                   help="train this many readers (an ensemble whose readings vote)")
    p.add_argument("--reader-share", type=float, default=0.7,
                   help="share of the training time (after rendering) given to the reader")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32",
                   help="bf16: forward passes in bfloat16, about twice the steps per minute "
                        "where the CPU has it natively (auto: bf16 there); the shipped weights "
                        "are fp32")
    p.add_argument("--state-share", type=float, default=0.0,
                   help="share of reader crops drawn in the state-consistent designs "
                        "(20 states' layouts, colours and names); 0 renders as before")
    p.add_argument("--state-only", action="store_true",
                   help="train only the state classifier (state.pt, state.onnx); "
                        "the reader and detector are left as they are")
    p.add_argument("--state-samples", type=int, default=36_000,
                   help="state-consistent crops to render for --state-only")
    p.add_argument("--state-steps", type=int, default=5000,
                   help="training steps (batch 64) for --state-only")
    a = p.parse_args(argv)
    try:
        require_torch("training")
    except WorkbenchError as exc:
        p.exit(2, f"error: {exc}\n")
    if a.state_only:
        state = train_state_all(a.out, seed=a.seed, samples=a.state_samples,
                                steps=a.state_steps, threads=a.threads)
        print(json.dumps(state, indent=2))
        return state
    cfg = TrainingConfig(
        seed=a.seed,
        minutes=a.minutes,
        reader_samples=a.reader_samples,
        detector_samples=a.detector_samples,
        reader_steps=a.reader_steps,
        detector_steps=a.detector_steps,
        threads=a.threads,
        reader_init=a.init,
        reader_lr=a.lr,
        reader_only=a.reader_only,
        reader_share=a.reader_share,
        precision=a.precision,
        readers=a.readers,
        state_share=a.state_share,
    )
    info = train_all(a.out, cfg)
    print(json.dumps(info, indent=2))
    return info


if __name__ == "__main__":  # pragma: no cover
    main()
