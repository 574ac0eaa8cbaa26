"""Plate recognition: a synthetic-data-trained detector and CRNN reader, run on the CPU.

Importing this package is light: OpenCV loads only when a model runs, and torch (the optional
``train`` extra) only to train, fine-tune or export, or to run ``.pt`` weights that have no
current ONNX export: the shipped models run on ONNX Runtime.
Readings are leads, not evidence: a hit must be confirmed by a person before any action.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "PlateReading",
    "Recognizer",
    "capture_time_of",
    "fine_tune",
    "frames_to_reads",
    "load_image",
    "random_plate_text",
    "reads_from_rendered_frames",
    "recognize_cli",
    "recognize_paths",
    "render_plate_crop",
    "render_scene",
    "train_all",
]

_WHERE = {
    "PlateReading": "infer",
    "Recognizer": "infer",
    "load_image": "infer",
    "recognize_paths": "infer",
    "capture_time_of": "pipeline",
    "frames_to_reads": "pipeline",
    "recognize_cli": "pipeline",
    "reads_from_rendered_frames": "pipeline",
    "fine_tune": "train",
    "train_all": "train",
    "random_plate_text": "synth_plates",
    "render_plate_crop": "synth_plates",
    "render_scene": "synth_plates",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(f"alpr_workbench.recognition.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
