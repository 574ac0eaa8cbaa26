"""Run the shipped detector and reader: robust image loading, batched reading, whole frames.

The shipped models run on ONNX Runtime; PyTorch (the ``train`` extra) is needed only to train,
fine-tune or export, or to run ``.pt`` weights that have no current ONNX export. Torch and
OpenCV are imported inside the functions that need them, so importing this module stays light.
A hit from these readings must be confirmed by a person before any action (see
``alpr_workbench/models/MODEL_CARD.md``).
"""

from __future__ import annotations

import math
import pickle
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.recognition.synth_plates import ALPHABET, READER_SIZE

__all__ = [
    "CROP_VIEWS",
    "DETECTOR_STRIDE",
    "IMAGE_SUFFIXES",
    "export_onnx",
    "export_state_onnx",
    "quantize_reader",
    "PlateReading",
    "Recognizer",
    "STATE_MIN_CONFIDENCE",
    "TORCH_INSTALL_HINT",
    "default_models_dir",
    "load_image",
    "prepare_crop",
    "require_torch",
]

#: How to get PyTorch, which only training, fine-tuning and export need.
TORCH_INSTALL_HINT = "pip install 'alpr-workbench[train]'"

#: Output stride of the detector's heat map (defined here, not in ``models``, so reading
#: frames needs no torch).
DETECTOR_STRIDE = 4
#: File suffixes taken as images when a folder is given.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_MAX_BYTES = 200 * 1024 * 1024
_MAX_PIXELS = 60_000_000


@dataclass(frozen=True)
class PlateReading:
    """One plate as read.

    Attributes
    ----------
    text
        Best reading, upper case, no spaces (``""`` when the reader saw no plate).
    confidence
        Probability of the best reading, 0 to 1: for one reader the product of the
        per-character values; for several, its mean vote (see :func:`_vote`).
    char_confidences
        Per-character probabilities of ``text``.
    candidates
        Alternatives ``(text, confidence)``, best first; the first is ``text``, and none is
        listed as surer than it.
    box
        ``(x, y, w, h)`` in the frame's pixels, or ``None`` for a crop read as given.
    detection_score
        Detector confidence (1.0 for crops read as given).
    state
        Two-letter state code of the plate's design when the state classifier (``state.onnx``)
        sees one of the states it knows at least :data:`STATE_MIN_CONFIDENCE` surely;
        ``None`` when the state cannot be seen (or no state classifier is shipped).
    state_confidence
        The classifier's probability of ``state`` (of its best class when ``state`` is
        ``None``), or ``None`` without a state classifier.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    candidates: tuple[tuple[str, float], ...]
    box: tuple[int, int, int, int] | None = None
    detection_score: float = 1.0
    state: str | None = None
    state_confidence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The reading as JSON-ready data (confidences rounded to 4 places)."""
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "char_confidences": [round(c, 4) for c in self.char_confidences],
            "box": list(self.box) if self.box is not None else None,
            "detection_score": round(self.detection_score, 4),
            "state": self.state,
            "state_confidence": (
                round(self.state_confidence, 4) if self.state_confidence is not None else None
            ),
            "candidates": [{"text": t, "confidence": round(c, 4)} for t, c in self.candidates],
        }


def default_models_dir() -> Path:
    """The shipped weights: the ``models/`` folder inside the package.

    Returns
    -------
    pathlib.Path
        ``alpr_workbench/models`` (the ONNX exports, their ``.pt`` sources and model card).
    """
    return Path(str(files("alpr_workbench").joinpath("models")))


def require_torch(what: str = "training") -> ModuleType:
    """Import PyTorch, or fail with a clear error saying how to install it.

    Parameters
    ----------
    what
        What needs torch, for the message ("training", "exporting to ONNX", ...).

    Returns
    -------
    types.ModuleType
        The ``torch`` module.

    Raises
    ------
    WorkbenchError
        If torch is not installed (it is the optional ``train`` extra).
    """
    try:
        import torch
    except ImportError as exc:
        raise WorkbenchError(f"{what} needs PyTorch: {TORCH_INSTALL_HINT}") from exc
    return torch


def load_image(
    path: str | Path, *, max_bytes: int = _MAX_BYTES, max_pixels: int = _MAX_PIXELS
) -> np.ndarray:
    """Read an image file as ``uint8`` RGB, whatever its mode, or fail with a clear error.

    Grayscale, palette, alpha, CMYK and 16-bit/float images are converted (16-bit and float
    are scaled by their own range). EXIF orientation is applied.

    Parameters
    ----------
    path
        Image file.
    max_bytes, max_pixels
        Files or images beyond these limits are refused instead of exhausting memory.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` ``uint8``.

    Raises
    ------
    WorkbenchError
        If the file is missing, empty, too large, truncated or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise WorkbenchError(f"{p}: no such file")
    size = p.stat().st_size
    if size == 0:
        raise WorkbenchError(f"{p}: empty file")
    if size > max_bytes:
        raise WorkbenchError(f"{p}: file of {size} bytes is over the {max_bytes}-byte limit")
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise WorkbenchError(f"{p}: {w}x{h} image is over the {max_pixels}-pixel limit")
            if w < 1 or h < 1:
                raise WorkbenchError(f"{p}: image has no pixels")
            im.load()
            im = ImageOps.exif_transpose(im)
            return _to_rgb8(im)
    except WorkbenchError:
        raise
    except UnidentifiedImageError as exc:
        raise WorkbenchError(f"{p}: not an image file (or a format that cannot be read)") from exc
    except Image.DecompressionBombError as exc:
        raise WorkbenchError(f"{p}: image is too large to decode safely") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise WorkbenchError(f"{p}: unreadable or truncated image: {exc}") from exc


def _to_rgb8(im: Any) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        grey = np.nan_to_num(arr).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        from PIL import Image

        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def prepare_crop(image: np.ndarray) -> np.ndarray:
    """Resize an RGB plate crop to the reader's input size (``uint8``, 48 x 96 x 3).

    Raises
    ------
    WorkbenchError
        If the crop is empty.
    """
    import cv2

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise WorkbenchError(f"plate crop of shape {image.shape} is too small to read")
    h, w = READER_SIZE
    interp = cv2.INTER_AREA if image.shape[1] > w else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image[..., :3]), (w, h), interpolation=interp)


def _prepare_all(images: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`prepare_crop` for many crops, on up to four threads.

    Shrinking a real crop to the reader's size is most of the work outside the network
    (about 0.16 ms for a 160 x 320 crop); OpenCV lets go of the GIL while it resizes.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = min(4, os.cpu_count() or 1)
    if len(images) < 32 or workers < 2:
        return np.stack([prepare_crop(im) for im in images])
    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(prepare_crop, images)))


def _decode_probs(probs: np.ndarray, top_k: int) -> tuple[str, float, tuple, tuple]:
    """Best path plus alternatives from per-frame probabilities ``(T, C)``.

    Alternatives swap the least certain characters for their runner-up class (the way a
    person would doubt a plate: ``8`` or ``B``?), scored by the same product of probabilities.
    """
    best = probs.argmax(1)
    chars: list[int] = []
    confs: list[float] = []
    seconds: list[tuple[int, float]] = []
    prev = 0
    for t, c in enumerate(best):
        c = int(c)
        if c != 0 and c != prev:
            chars.append(c)
            confs.append(float(probs[t, c]))
            row = probs[t].copy()
            row[[0, c]] = -1
            alt = int(row.argmax())
            seconds.append((alt, float(row[alt])))
        elif c != 0 and c == prev and float(probs[t, c]) > confs[-1]:
            confs[-1] = float(probs[t, c])
        prev = c
    text = "".join(ALPHABET[c - 1] for c in chars)
    conf = float(np.prod(confs)) if confs else 0.0
    cands: dict[str, float] = {text: conf}
    order = np.argsort([s[1] / max(c, 1e-6) for s, c in zip(seconds, confs, strict=True)])[::-1]
    picks = [int(i) for i in order[: max(0, min(4, len(order)))]]
    for i in picks:
        alt, p = seconds[i]
        t2 = text[:i] + ALPHABET[alt - 1] + text[i + 1 :]
        cands.setdefault(t2, conf * p / max(confs[i], 1e-6))
    if len(picks) >= 2:
        i, j = picks[0], picks[1]
        t2 = list(text)
        t2[i], t2[j] = ALPHABET[seconds[i][0] - 1], ALPHABET[seconds[j][0] - 1]
        s = conf * seconds[i][1] / max(confs[i], 1e-6) * seconds[j][1] / max(confs[j], 1e-6)
        cands.setdefault("".join(t2), s)
    ranked = sorted(cands.items(), key=lambda kv: -kv[1])[:top_k]
    return text, conf, tuple(confs), tuple((t, float(c)) for t, c in ranked)


class Recognizer:
    """The detector and reader together.

    Use :meth:`load`; then :meth:`read_crops` for plate crops and :meth:`recognize` for whole
    frames. With the torch backend, set the number of torch threads yourself
    (``torch.set_num_threads``) if the default does not suit the host.
    """

    def __init__(
        self,
        reader: Any,
        detector: Any | None,
        *,
        det_size: int = 640,
        backend: str = "torch",
        reader_file: str = "reader.pt",
        state_model: Any | None = None,
        state_below: float | None = None,
    ) -> None:
        self.reader = reader
        self.detector = detector
        self.det_size = det_size
        self.backend = backend
        #: The weights file the reader runs from (``reader.int8.onnx`` for the int8 export).
        self.reader_file = reader_file
        #: The state classifier (an ONNX Runtime session or a torch module), or ``None``.
        self.state_model = state_model
        #: States less sure than this are not given (``None``: "cannot be seen").
        self.state_below = STATE_MIN_CONFIDENCE if state_below is None else state_below

    @classmethod
    def load(
        cls,
        models_dir: str | Path | None = None,
        *,
        det_size: int = 640,
        backend: str = "auto",
        threads: int | None = None,
        int8: bool = True,
    ) -> Recognizer:
        """Load the reader and, when present, the detector from ``models_dir``.

        Parameters
        ----------
        models_dir
            Folder with ``*.onnx`` (from :func:`export_onnx`) and/or ``reader.pt``/
            ``detector.pt``; the shipped models (:func:`default_models_dir`) when ``None``.
        det_size
            Longer side, in pixels, that frames are resized to for detection.
        backend
            ``"torch"``, ``"onnx"`` (ONNX Runtime; needs ``onnxruntime`` and the ``.onnx``
            files) or ``"auto"``: ONNX Runtime when it and up-to-date ``.onnx`` files are
            there (it measured about twice as fast on two CPU cores), else torch (which
            needs the ``train`` extra).
        threads
            Intra-op threads of ONNX Runtime (torch: set ``torch.set_num_threads`` yourself);
            ``None`` leaves ONNX Runtime's default (one per core).
        int8
            With ONNX Runtime, run the reader's int8 export (``reader.int8.onnx``) when it is
            current (the default: with v0.3's two readers it read as many dev crops and whole
            photos right as float32 at about 1.6 times the speed; see the model card);
            ``False`` runs the float32 export.

        Raises
        ------
        WorkbenchError
            If the reader weights are missing or do not fit the network, the ONNX backend
            was asked for but cannot be used, or the torch backend is needed but PyTorch is
            not installed.
        """
        folder = Path(models_dir) if models_dir is not None else default_models_dir()
        if backend not in ("auto", "torch", "onnx"):
            raise WorkbenchError(f"unknown backend {backend!r}: use auto, torch or onnx")
        if backend in ("auto", "onnx"):
            onnx = _load_onnx(folder, threads, int8)
            if onnx is not None:
                return cls(onnx[0], onnx[1], det_size=det_size, backend="onnx",
                           reader_file=onnx[2], state_model=_load_state_model(folder, threads))
            if backend == "onnx":
                raise WorkbenchError(
                    f"{folder}: ONNX backend needs onnxruntime and current reader.onnx "
                    "(see export_onnx)"
                )
        if not (folder / "reader.pt").exists():
            raise WorkbenchError(
                f"{folder}: no reader weights to run (no current reader.onnx, no reader.pt)"
            )
        torch = require_torch(f"{folder}: running reader.pt (there is no current ONNX export)")

        from alpr_workbench.recognition.models import PlateDetector, ReaderEnsemble

        try:
            reader = ReaderEnsemble.from_state(
                torch.load(folder / "reader.pt", map_location="cpu", weights_only=True)
            )
        except (OSError, RuntimeError, TypeError, ValueError, KeyError, EOFError,
                pickle.UnpicklingError) as exc:
            raise WorkbenchError(f"{folder}: cannot load reader.pt: {exc}") from exc
        reader.eval()
        detector = None
        if (folder / "detector.pt").exists():
            detector = PlateDetector()
            try:
                detector.load_state_dict(
                    torch.load(folder / "detector.pt", map_location="cpu", weights_only=True)
                )
            except RuntimeError as exc:
                raise WorkbenchError(f"{folder}: cannot load detector.pt: {exc}") from exc
            detector.eval()
        return cls(reader, detector, det_size=det_size, backend="torch",
                   state_model=_load_state_model(folder, threads))

    def _run_reader(self, x: np.ndarray) -> np.ndarray:
        """Log-probabilities ``(M, T, B, C)`` of the ``M`` readers for ``(B, 3, H, W)``."""
        if self.backend == "onnx":
            lp = self.reader.run(None, {"x": x})[0]
        else:
            import torch

            with torch.inference_mode():
                lp = self.reader(torch.from_numpy(x)).numpy()
        return lp if lp.ndim == 4 else lp[None]  # one reader exported on its own (v0.2)

    def _run_detector(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.backend == "onnx":
            heat, size, off = self.detector.run(None, {"x": x})
            return heat, size, off
        import torch

        with torch.inference_mode():
            heat, size, off = self.detector(torch.from_numpy(x))
        return heat.numpy(), size.numpy(), off.numpy()

    def read_probs(self, crops: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Per-frame class probabilities ``(N, M, T, C)`` of the ``M`` readers.

        ``crops`` are prepared crops ``(N, 48, 96, 3)`` (:func:`prepare_crop`).
        """
        out = []
        for i in range(0, len(crops), batch_size):
            x = np.ascontiguousarray(
                crops[i : i + batch_size].transpose(0, 3, 1, 2), dtype=np.float32
            ) / np.float32(255)
            out.append(np.exp(self._run_reader(x)).transpose(2, 0, 1, 3))
        if not out:
            return np.zeros((0, 1, 24, len(ALPHABET) + 1), np.float32)
        return np.concatenate(out)

    def read_states(
        self, crops: np.ndarray, *, batch_size: int = 256
    ) -> list[tuple[str | None, float | None]]:
        """The state of each prepared crop ``(N, 48, 96, 3)`` and its probability.

        A state is given only when the classifier's best class is a state it knows (not
        ``"other"``) and at least :attr:`state_below` sure; else ``None`` ("cannot be seen")
        with the best class's probability. Without a state classifier every crop gets
        ``(None, None)``.
        """
        if self.state_model is None or not len(crops):
            return [(None, None)] * len(crops)
        from alpr_workbench.recognition.synth_plates import STATE_CLASSES, STATE_OTHER

        out: list[tuple[str | None, float | None]] = []
        for i in range(0, len(crops), batch_size):
            x = np.ascontiguousarray(
                crops[i : i + batch_size].transpose(0, 3, 1, 2), dtype=np.float32
            ) / np.float32(255)
            probs = _softmax(_run_state_model(self.state_model, x))
            for row in probs:
                k = int(row.argmax())
                name = STATE_CLASSES[k]
                sure = float(row[k])
                given = name != STATE_OTHER and sure >= self.state_below
                out.append((name if given else None, sure))
        return out

    def read_crops(
        self,
        images: Sequence[np.ndarray | str | Path],
        *,
        top_k: int = 5,
        batch_size: int = 256,
        views: int = 4,
        reread_below: float = 0.9,
    ) -> list[PlateReading]:
        """Read already cropped plates, batched.

        Parameters
        ----------
        images
            RGB arrays (any size) or image paths.
        top_k
            Most candidates per plate.
        batch_size
            Crops per forward pass.
        views
            How many ways to read each crop (1 to 4, in the order of :data:`CROP_VIEWS`: as it
            is, with a thin border repeated around it, trimmed a little on every side, trimmed
            top and bottom), every reader reading every view; the readings are combined by
            :func:`_combine` (several readers vote). A crop's framing decides what its edges
            look like to the reader — a tight cut can pass for a ``1``, a sticker at the edge
            for a letter — so more views read more plates right.
        reread_below
            Only crops whose first (voted) reading is less sure than this are read the other
            ways (``1.0`` reads every crop every way). At the default, as many dev crops are
            read right as when every crop is read four ways.

        Returns
        -------
        list[PlateReading]
            One reading per image, in order (``box`` is ``None``).
        """
        if views not in range(1, len(CROP_VIEWS) + 1):
            raise WorkbenchError(f"views must be 1 to {len(CROP_VIEWS)}, not {views!r}")
        imgs = [load_image(im) if isinstance(im, str | Path) else im for im in images]
        if not imgs:
            return []
        prepared = _prepare_all(imgs)
        first = self.read_probs(prepared, batch_size=batch_size)
        states = self.read_states(prepared, batch_size=batch_size)
        options = [[_decode_probs(p, top_k) for p in members] for members in first]
        readers = first.shape[1]
        chosen = [_combine(o, top_k, readers) for o in options]
        unsure = [i for i, c in enumerate(chosen) if c[1] < reread_below]
        if views > 1 and unsure:
            more = self.read_probs(
                _prepare_all([_view(imgs[i], name) for name in CROP_VIEWS[1:views]
                              for i in unsure]),
                batch_size=batch_size,
            )
            for v in range(views - 1):
                for k, i in enumerate(unsure):
                    options[i] += [_decode_probs(p, top_k) for p in more[v * len(unsure) + k]]
            for i in unsure:
                chosen[i] = _combine(options[i], top_k, readers)
        return [PlateReading(*c, state=st, state_confidence=p)
                for c, (st, p) in zip(chosen, states, strict=True)]

    def detect(
        self, frame: np.ndarray, *, max_boxes: int = 6, min_score: float = 0.15
    ) -> list[tuple[tuple[float, float, float, float], float]]:
        """Plate boxes ``((x, y, w, h), score)`` in a frame, best first.

        Raises
        ------
        WorkbenchError
            If no detector weights were loaded.
        """
        import cv2

        if self.detector is None:
            raise WorkbenchError("no detector weights (detector.pt) were loaded")
        h, w = frame.shape[:2]
        scale = self.det_size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        ph, pw = math.ceil(nh / 32) * 32, math.ceil(nw / 32) * 32
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas = np.zeros((ph, pw, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=interp)
        x = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255
        heat_l, size, off = self._run_detector(x)
        heat = 1 / (1 + np.exp(-heat_l[0, 0]))
        peaks = heat * (cv2.dilate(heat, np.ones((3, 3), np.uint8)) == heat)
        flat = peaks.ravel()
        top = np.argsort(-flat)[: max_boxes * 3]
        scores, idx = flat[top], top
        gw = heat.shape[1]
        boxes: list[tuple[tuple[float, float, float, float], float]] = []
        for s, i in zip(scores.tolist(), idx.tolist(), strict=True):
            if s < min_score or len(boxes) >= max_boxes:
                break
            iy, ix = divmod(i, gw)
            ox, oy = (1 / (1 + np.exp(-off[0, :, iy, ix]))).tolist()
            lw, lh = size[0, :, iy, ix].tolist()
            cx, cy = (ix + ox) * DETECTOR_STRIDE / scale, (iy + oy) * DETECTOR_STRIDE / scale
            bw = math.exp(lw) * DETECTOR_STRIDE / scale
            bh = math.exp(lh) * DETECTOR_STRIDE / scale
            x0, y0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
            x1, y1 = min(float(w), cx + bw / 2), min(float(h), cy + bh / 2)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            box = (x0, y0, x1 - x0, y1 - y0)
            if all(_iou(box, b) < 0.5 for b, _ in boxes):
                boxes.append((box, float(s)))
        return boxes

    def recognize(
        self,
        frame: np.ndarray,
        *,
        max_plates: int = 6,
        min_score: float = 0.15,
        top_k: int = 5,
    ) -> list[PlateReading]:
        """Find and read the plates in a whole frame.

        Each detected box is read at one crop margin; boxes that give at least three
        characters are read again at two more margins (the detector's box is rarely exact), and
        all the readings are combined by :func:`_combine` (the surest wins for one reader,
        several readers vote). Boxes the readers find no plate in are
        dropped. Plates are ordered by :func:`_plate_rank`: readings of a plate's usual
        length (4 to 8 characters) first, then by detection score times reading confidence.

        Parameters
        ----------
        frame
            ``uint8`` RGB array (use :func:`load_image`).
        max_plates, min_score
            Most boxes to read and the lowest detector score to consider.
        top_k
            Most candidates per plate.

        Returns
        -------
        list[PlateReading]
            Possibly empty.
        """
        boxes = self.detect(frame, max_boxes=max_plates, min_score=min_score)
        if not boxes:
            return []
        h, w = frame.shape[:2]

        def crop(box: tuple[float, float, float, float], mx: float, my: float) -> np.ndarray:
            x, y, bw, bh = box
            x0, y0 = int(max(0, x - mx * bw)), int(max(0, y - my * bh))
            x1, y1 = int(min(w, x + bw + mx * bw + 1)), int(min(h, y + bh + my * bh + 1))
            return prepare_crop(frame[y0:y1, x0:x1])

        # first pass: every box at one margin; boxes that read as nothing much (a badge, a
        # light) are dropped there, the others are read again at two more margins
        first_crops = np.stack([crop(b, 0.04, 0.08) for b, _ in boxes])
        first = self.read_probs(first_crops)
        readers = first.shape[1]
        readings = [[_decode_probs(p, top_k) for p in members] for members in first]
        again = [k for k, r in enumerate(readings) if len(_combine(r, top_k, readers)[0]) >= 3]
        if again:
            more = self.read_probs(np.stack(
                [crop(boxes[k][0], mx, my) for k in again for mx, my in ((0.0, 0.0), (0.1, 0.18))]
            ))
            for i, k in enumerate(again):
                for j in range(2):
                    readings[k] += [_decode_probs(p, top_k) for p in more[2 * i + j]]
        out = []
        kept = []
        for k, ((box, score), at_margins) in enumerate(zip(boxes, readings, strict=True)):
            best = _combine(at_margins, top_k, readers)
            if len(best[0]) < 2:
                continue
            kept.append(k)
            ibox = tuple(int(round(v)) for v in box)
            out.append(PlateReading(best[0], best[1], best[2], best[3],
                                    box=(ibox[0], ibox[1], max(1, ibox[2]), max(1, ibox[3])),
                                    detection_score=score))
        if out and self.state_model is not None:  # only the boxes that hold a plate
            states = self.read_states(first_crops[kept])
            out = [replace(r, state=st, state_confidence=p)
                   for r, (st, p) in zip(out, states, strict=True)]
        out.sort(key=_plate_rank)
        return out


def _combine(
    readings: Sequence[tuple[str, float, tuple, tuple]], top_k: int, readers: int
) -> tuple[str, float, tuple, tuple]:
    """One reading of a plate from the readings of ``readers`` readers (one or more views).

    One reader: its surest reading wins. Several: their readings vote (:func:`_vote`) —
    independent readers seldom make the same mistake, while one reader's own views share its
    blind spots (voting over one reader's views read fewer dev crops right than taking the
    surest).
    """
    if readers > 1:
        return _vote(readings, top_k)
    best = readings[0]
    for option in readings[1:]:
        if option[1] > best[1] or (best[0] == "" and option[0]):
            best = option
    return best


def _vote(readings: Sequence[tuple[str, float, tuple, tuple]], top_k: int) -> tuple:
    """One reading of a plate from several (readers, views or margins).

    Each reading votes for its text with its probability; the text with the largest total
    wins, with the mean vote over all readings as its confidence (a reading of another text
    votes 0 for it) and the per-character values of its surest reading. The other candidates
    are ranked by their mean probability over all the readings' candidate lists, listed
    after the winner and never as surer than it. (Letting the alternatives' probabilities
    choose the winner too read 3 fewer dev crops right.)

    Examples
    --------
    >>> r = [("X1234", 0.5, (0.5,), (("X1234", 0.5), ("Y1234", 0.45))),
    ...      ("Y1234", 0.4, (0.4,), (("Y1234", 0.4),))]
    >>> text, conf, chars, cands = _vote(r, 5)
    >>> text, conf, [(t, round(p, 3)) for t, p in cands]
    ('X1234', 0.25, [('X1234', 0.25), ('Y1234', 0.25)])
    """
    n = len(readings)
    votes: dict[str, float] = {}
    for text, conf, _, _ in readings:
        votes[text] = votes.get(text, 0.0) + conf / n
    winner = max(votes, key=lambda t: votes[t])
    chars = max((r for r in readings if r[0] == winner), key=lambda r: r[1])[2]
    pooled: dict[str, float] = {}
    for _, _, _, candidates in readings:
        for text, p in candidates:
            if text != winner:
                pooled[text] = pooled.get(text, 0.0) + p / n
    others = sorted(pooled.items(), key=lambda kv: -kv[1])[: max(0, top_k - 1)]
    conf = votes[winner]
    return winner, conf, chars, ((winner, conf), *((t, min(p, conf)) for t, p in others))


#: The ways :meth:`Recognizer.read_crops` reads a crop, in order of use.
CROP_VIEWS = ("as_is", "border", "trim", "trim_vertical")


def _view(image: np.ndarray, name: str) -> np.ndarray:
    """One framing of a plate crop (see :data:`CROP_VIEWS`)."""
    import cv2

    h, w = image.shape[:2]
    if name == "border":  # edge pixels repeated outwards by 5 %
        dy, dx = max(1, int(h * 0.05)), max(1, int(w * 0.05))
        return cv2.copyMakeBorder(np.ascontiguousarray(image), dy, dy, dx, dx,
                                  cv2.BORDER_REPLICATE)
    if name == "trim" and h >= 20 and w >= 20:  # 3 % off the sides, 5 % off top and bottom
        return image[int(h * 0.05) : h - int(h * 0.05), int(w * 0.03) : w - int(w * 0.03)]
    if name == "trim_vertical" and h >= 20:  # 8 % off top and bottom
        return image[int(h * 0.08) : h - int(h * 0.08)]
    return image


def _plate_rank(reading: PlateReading) -> tuple[bool, float]:
    """Sort key of a frame's readings: plate-length texts first, then the surest.

    A two- or three-character reading is far more often a badge, a sign or a piece of a plate
    than a short vanity plate, so it is listed after any reading of a usual length.
    """
    usual = 4 <= len(reading.text) <= 8
    return (not usual, -(reading.detection_score * reading.confidence))


#: Least probability at which the state classifier's best class is given as the plate's state
#: (below it, or when the best class is "other", the state is ``None``: cannot be seen).
#: Chosen on the tuning part of the dev crops only (see the model card's "State" section).
STATE_MIN_CONFIDENCE = 0.9


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _run_state_model(model: Any, x: np.ndarray) -> np.ndarray:
    """Logits ``(B, classes)`` of the state classifier (ONNX Runtime session or torch)."""
    if hasattr(model, "run"):
        return np.asarray(model.run(None, {"x": x})[0])
    import torch

    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]


def _load_state_model(folder: Path, threads: int | None) -> Any | None:
    """The state classifier of ``folder``, or ``None`` when there is none (state stays None).

    ``state.onnx`` on ONNX Runtime when it is current (its ``.source`` matches ``state.pt``
    when that is there); else ``state.pt`` on torch when torch is installed. A missing, stale
    or unreadable classifier is not an error: plates are still read, without a state.
    """
    onnx = _current_export(folder, "state", int8=False)
    if onnx is not None:
        try:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if threads is not None:
                opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        except ImportError:
            pass
        except Exception as exc:  # a damaged file: read plates without a state, say so
            warnings.warn(f"{onnx}: state classifier not loaded ({exc}); state stays None",
                          RuntimeWarning, stacklevel=3)
            return None
    pt = folder / "state.pt"
    if not pt.exists():
        return None
    try:
        import torch

        from alpr_workbench.recognition.models import StateClassifier
    except ImportError:
        return None
    model = StateClassifier()
    try:
        model.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        warnings.warn(f"{pt}: state classifier not loaded ({exc}); state stays None",
                      RuntimeWarning, stacklevel=3)
        return None
    return model.eval()


def _current_export(folder: Path, name: str, int8: bool) -> Path | None:
    """The ONNX file of ``name`` that matches its ``.pt`` weights (int8 first if wanted).

    Without the ``.pt`` file (a folder of exports only), the int8 export must come from the
    same weights as the float32 one beside it.
    """
    pt = folder / f"{name}.pt"
    plain = folder / f"{name}.onnx"
    source = _digest(pt) if pt.exists() else _onnx_source(plain) if plain.exists() else None
    files = ([folder / f"{name}.int8.onnx"] if int8 else []) + [plain]
    for onnx in files:
        if onnx.exists() and (source is None or _onnx_source(onnx) == source):
            return onnx
    return None


def _load_onnx(folder: Path, threads: int | None, int8: bool) -> tuple[Any, Any, str] | None:
    """Reader and detector sessions (when usable and not stale) and the reader's file name."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sessions: list[Any] = []
    reader_file = "reader.onnx"
    for name in ("reader", "detector"):
        pt = folder / f"{name}.pt"
        onnx = _current_export(folder, name, int8 and name == "reader")
        if onnx is None:
            if name == "detector" and not pt.exists():
                sessions.append(None)  # a reader-only model folder
                continue
            return None  # missing or stale export: use torch
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between runs: the reader and detector sessions take turns on the
        # same cores, and a spinning pool of one starves the other (a 720p frame took about
        # 40 ms with spinning, under 20 ms without, on two cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions.append(
            ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        )
        if name == "reader":
            reader_file = onnx.name
    return sessions[0], sessions[1], reader_file


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _onnx_source(path: Path) -> str:
    side = path.with_suffix(".onnx.source")
    return side.read_text().strip() if side.exists() else ""


def export_onnx(models_dir: str | Path | None = None, *, int8: bool = True) -> list[Path]:
    """Export ``reader.pt``/``detector.pt`` to ONNX beside them.

    Needs PyTorch and the ``onnx`` package (the ``train`` extra), and ``onnxruntime`` for the
    int8 reader.

    Each ``.onnx`` file gets a ``.onnx.source`` note with the hash of the weights it came from,
    so a stale export is never loaded after the weights change. With ``int8``, the reader is
    also written as ``reader.int8.onnx`` (:func:`quantize_reader`).

    Returns
    -------
    list[pathlib.Path]
        The files written.

    Raises
    ------
    WorkbenchError
        If PyTorch is not installed, or the weights cannot be loaded.
    """
    torch = require_torch("exporting to ONNX")
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    rec = Recognizer.load(folder, backend="torch")
    written = []
    jobs = [("reader", rec.reader, torch.rand(2, 3, *READER_SIZE), ["lp"], {"x": {0: "b"},
                                                                      "lp": {2: "b"}})]
    if rec.detector is not None:
        jobs.append(("detector", rec.detector, torch.rand(1, 3, 64, 96),
                     ["heat", "size", "offset"], {"x": {2: "h", 3: "w"}}))
    for name, model, example, outs, axes in jobs:
        path = folder / f"{name}.onnx"
        with warnings.catch_warnings():  # the exporter warns about LSTM batch sizes; harmless
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["x"],
                              output_names=outs, dynamic_axes=axes, opset_version=17)
        path.with_suffix(".onnx.source").write_text(_digest(folder / f"{name}.pt") + "\n")
        written.append(path)
    if int8:
        written.append(quantize_reader(folder))
    return written


def export_state_onnx(models_dir: str | Path | None = None) -> Path:
    """Export ``state.pt`` (the state classifier) to ``state.onnx`` beside it.

    The file gets a ``state.onnx.source`` note with the hash of ``state.pt``, so a stale
    export is never run after the weights change. Needs PyTorch and the ``onnx`` package
    (the ``train`` extra).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    WorkbenchError
        If PyTorch is not installed, or ``state.pt`` is missing or does not fit the network.
    """
    torch = require_torch("exporting to ONNX")
    from alpr_workbench.recognition.models import StateClassifier

    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    pt = folder / "state.pt"
    if not pt.exists():
        raise WorkbenchError(f"{folder}: no state.pt to export")
    model = StateClassifier()
    try:
        model.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise WorkbenchError(f"{folder}: cannot load state.pt: {exc}") from exc
    model.eval()
    path = folder / "state.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(2, 3, *READER_SIZE),), str(path), dynamo=False,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "b"}, "logits": {0: "b"}}, opset_version=17)
    path.with_suffix(".onnx.source").write_text(_digest(pt) + "\n")
    return path


#: Seed of the synthetic crops that calibrate the int8 reader (never real images).
CALIBRATION_SEED = 20260601


def quantize_reader(models_dir: str | Path | None = None, *, crops: int = 256) -> Path:
    """Write ``reader.int8.onnx``: the float32 ONNX reader with int8 convolutions and matmuls.

    Static quantization (ONNX Runtime, QDQ format, per-channel int8 weights in 7 bits
    (``reduce_range``), uint8 activations) calibrated on ``crops`` synthetic plate crops
    rendered from :data:`CALIBRATION_SEED`, so the file is the same on every run of the same
    weights with the same ONNX Runtime version. The 7-bit weights keep the int8 products from
    saturating on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI): with 8-bit weights the
    reader read 1.8 points fewer real crops there than on an AVX512 machine; with 7 bits it
    reads as many there as the 8-bit reader did on that machine (see the model card).

    Returns
    -------
    pathlib.Path
        The file written (with its ``.onnx.source`` note).

    Raises
    ------
    WorkbenchError
        If ``reader.onnx`` is missing or stale, or ONNX Runtime is not installed.
    """
    import tempfile

    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise WorkbenchError(
            "the int8 reader needs onnxruntime; install it or export with int8=False"
        ) from exc

    from alpr_workbench.recognition.synth_plates import render_plate_crop

    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    source = folder / "reader.onnx"
    if _current_export(folder, "reader", int8=False) != source:
        raise WorkbenchError(f"{folder}: export reader.onnx first (export_onnx)")
    rng = np.random.default_rng(CALIBRATION_SEED)
    images = np.stack([render_plate_crop(rng, size=READER_SIZE).image for _ in range(crops)])
    batches = [
        {"x": np.ascontiguousarray(images[i : i + 32].transpose(0, 3, 1, 2), np.float32) / 255}
        for i in range(0, crops, 32)
    ]

    class _Calibration(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return batches.pop(0) if batches else None

    out = folder / "reader.int8.onnx"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # same file system: atomic rename
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(Path(tmp) / out.name), _Calibration(),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        reduce_range=True)
        (Path(tmp) / out.name).replace(out)
    out.with_suffix(".onnx.source").write_text(_onnx_source(source) + "\n")
    return out


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def iter_image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (not recursively) into image files, in sorted order.

    A file named directly is kept whatever its suffix, so a bad file gets a clear error.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir()
                              if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def recognize_paths(
    paths: Iterable[str | Path],
    *,
    recognizer: Recognizer,
    crops: bool = False,
    top_k: int = 5,
) -> Iterable[dict[str, Any]]:
    """Yield one result per image: ``{"image", "plates", "ms"}`` or ``{"image", "error"}``.

    One bad file gives an ``error`` entry and the run goes on.
    """
    for path in iter_image_files(paths):
        t0 = time.perf_counter()
        try:
            img = load_image(path)
            readings = (
                recognizer.read_crops([img], top_k=top_k) if crops
                else recognizer.recognize(img, top_k=top_k)
            )
        except WorkbenchError as exc:
            yield {"image": str(path), "plates": [], "error": str(exc)}
            continue
        plates = []
        for r in readings:
            if crops and not r.text:
                continue
            d = r.as_dict()
            if crops:
                d["box"] = [0, 0, int(img.shape[1]), int(img.shape[0])]
            plates.append(d)
        ms = (time.perf_counter() - t0) * 1000
        yield {"image": str(path), "plates": plates, "ms": round(ms, 2)}
