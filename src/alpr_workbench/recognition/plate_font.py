"""Plate-style stroke glyphs, drawn here, for the synthetic plates.

US plates use narrow, even-stroke typefaces (California's is a condensed "penitentiary
gothic"), unlike the desktop fonts a machine happens to have. A reader trained only on those
fonts learns the wrong cues — a plain bar is an ``I``, a ``1`` needs a foot — and fails on real
plates. This module describes each of ``0-9A-Z`` as centre-line strokes in a unit box and draws
them with a random *style*: stroke weight, width, roundness (a superellipse exponent: 2 is an
ellipse, 4 nearly a rounded rectangle) and the variants that real plate typefaces disagree on
(a ``1`` with or without a foot, an open or closed ``4``, a flat-topped ``3``, a serifed ``I``,
how deep the ``M`` dips). Every shape here was written from the letterforms' common
description; no image was traced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["GLYPHS", "PlateFontStyle", "glyph_strokes", "random_style", "render_glyph"]

#: Characters this module can draw.
GLYPHS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

Stroke = list[tuple[float, float]]


@dataclass(frozen=True)
class PlateFontStyle:
    """One typeface drawn by :func:`render_glyph`.

    Attributes
    ----------
    stroke
        Stroke width as a share of the glyph height (0.08 light to 0.2 heavy).
    width
        Glyph width (centre lines) as a share of the height.
    roundness
        Superellipse exponent of the bowls: 2 round, up to 4.5 boxy.
    one_foot, i_serifs, four_open, three_flat, seven_bar, a_flat, zero_slash, g_spur
        Variant letterforms.
    o_as_zero
        ``O`` (and the bowl of ``Q``) drawn exactly like ``0``, as on many plates: only the
        format around it tells them apart.
    q_tail
        The tail of ``Q``: 0 a long stroke out of the bowl, 1 a short one across the bowl's
        lower right, 2 a small tick under the bowl.
    m_dip
        How far down the middle of ``M`` (and the up-stroke of ``W``) reaches, 0.45–1.
    seven_foot, seven_kink
        Where the stem of ``7`` lands (x, 0.2 slanted to 0.55 nearly upright) and whether
        it bends on the way.
    one_flag
        End point ``(x, y)`` of the flag of ``1``.
    six_hook
        Where the hook of ``6`` (and ``9``) ends, in degrees round its upper bowl.
    slant
        Horizontal shear (italic), as x shift per unit of height.
    """

    stroke: float
    width: float
    roundness: float
    one_foot: bool
    i_serifs: bool
    four_open: bool
    three_flat: bool
    seven_bar: bool
    a_flat: bool
    zero_slash: bool
    g_spur: bool
    m_dip: float
    slant: float
    seven_foot: float = 0.3
    seven_kink: bool = False
    one_flag: tuple[float, float] = (0.18, 0.2)
    six_hook: float = 310.0
    o_as_zero: bool = False
    q_tail: int = 0


def random_style(rng: np.random.Generator) -> PlateFontStyle:
    """Draw a typeface in the range of US plate fonts.

    Examples
    --------
    >>> import numpy as np
    >>> s = random_style(np.random.default_rng(0))
    >>> 0.08 <= s.stroke <= 0.2 and 0.38 <= s.width <= 0.7
    True
    """
    return PlateFontStyle(
        stroke=float(rng.uniform(0.08, 0.2)),
        width=float(rng.uniform(0.38, 0.7)),
        roundness=float(rng.uniform(2.0, 4.5)),
        one_foot=bool(rng.random() < 0.3),
        i_serifs=bool(rng.random() < 0.6),
        four_open=bool(rng.random() < 0.35),
        three_flat=bool(rng.random() < 0.35),
        seven_bar=bool(rng.random() < 0.05),
        a_flat=bool(rng.random() < 0.3),
        zero_slash=bool(rng.random() < 0.04),
        g_spur=bool(rng.random() < 0.5),
        m_dip=float(rng.uniform(0.45, 1.0)),
        slant=float(rng.uniform(-0.04, 0.04) if rng.random() < 0.9 else rng.uniform(0.1, 0.2)),
        seven_foot=float(rng.uniform(0.2, 0.55)),
        seven_kink=bool(rng.random() < 0.3),
        # many plate faces draw 1 as a bare bar with a nub of a flag, as plain as their I:
        # only the format around it tells them apart, and the reader has to learn that too
        one_flag=(
            (float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.12, 0.32)))
            if rng.random() < 0.55
            else (float(rng.uniform(0.42, 0.52)), float(rng.uniform(0.03, 0.1)))
        ),
        six_hook=float(rng.uniform(290, 345)),
        o_as_zero=bool(rng.random() < 0.7),
        q_tail=int(rng.choice(3, p=[0.3, 0.45, 0.25])),
    )


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: float) -> Stroke:
    """Points on a superellipse arc from angle ``a0`` to ``a1`` (degrees; y points down)."""
    steps = max(4, int(abs(a1 - a0) / 10))
    t = np.linspace(math.radians(a0), math.radians(a1), steps + 1)
    c, s = np.cos(t), np.sin(t)
    xs = cx + rx * np.sign(c) * np.abs(c) ** (2 / n)
    ys = cy + ry * np.sign(s) * np.abs(s) ** (2 / n)
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _mirror(strokes: list[Stroke]) -> list[Stroke]:
    return [[(1 - x, 1 - y) for x, y in s] for s in strokes]


def glyph_strokes(char: str, style: PlateFontStyle) -> list[Stroke]:
    """Centre-line strokes of ``char`` in a unit box (x right, y down, both 0..1).

    Raises
    ------
    KeyError
        If ``char`` is not in :data:`GLYPHS`.

    Examples
    --------
    >>> import numpy as np
    >>> style = random_style(np.random.default_rng(1))
    >>> len(glyph_strokes("H", style))
    3
    """
    n = style.roundness
    bowl = 0.5 * min(1.0, 0.55 / max(style.width, 1e-3))  # bowls stay round when narrow
    o_n = n if style.o_as_zero else max(2.0, n - 0.8)
    g: dict[str, Callable[[], list[Stroke]]] = {
        "0": lambda: (
            [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, n)]
            + ([[(0.78, 0.18), (0.22, 0.82)]] if style.zero_slash else [])
        ),
        "O": lambda: [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, o_n)],
        "1": lambda: (
            [[style.one_flag, (0.6, 0.0), (0.6, 1.0)]]
            + ([[(0.15, 1.0), (1.0, 1.0)]] if style.one_foot else [])
        ),
        "I": lambda: (
            [[(0.5, 0.0), (0.5, 1.0)]]
            + ([[(0.15, 0.0), (0.85, 0.0)], [(0.15, 1.0), (0.85, 1.0)]] if style.i_serifs else [])
        ),
        "2": lambda: [
            _arc(0.5, bowl * 0.55, 0.5, bowl * 0.55, 200, 350, n) + [(0.0, 1.0), (1.0, 1.0)]
        ],
        "3": lambda: (
            [[(0.05, 0.0), (0.95, 0.0), (0.42, 0.4)] + _arc(0.5, 0.69, 0.5, 0.31, -100, 150, n)]
            if style.three_flat
            else [_arc(0.5, 0.25, 0.45, 0.25, 200, 450, n), _arc(0.5, 0.74, 0.5, 0.26, -90, 160, n)]
        ),
        "4": lambda: (
            [[(0.62, 0.0), (0.0, 0.68), (1.0, 0.68)], [(0.75, 0.38), (0.75, 1.0)]]
            if style.four_open
            else [[(0.75, 1.0), (0.75, 0.0), (0.0, 0.68), (1.0, 0.68)]]
        ),
        "5": lambda: [
            [(0.92, 0.0), (0.1, 0.0), (0.05, 0.45)] + _arc(0.5, 0.68, 0.5, 0.32, 215, 510, n)
        ],
        "6": lambda: [
            _arc(0.5, 0.68, 0.5, 0.32, 0, 360, n),
            [(0.0, 0.68)] + _arc(0.5, 0.32, 0.5, 0.32, 180, style.six_hook, n),
        ],
        "7": lambda: (
            [
                [(0.0, 0.0), (1.0, 0.0)]
                + ([(0.75, 0.4)] if style.seven_kink else [])
                + [(style.seven_foot, 1.0)]
            ]
            + ([[(0.35, 0.52), (0.85, 0.52)]] if style.seven_bar else [])
        ),
        "8": lambda: [
            _arc(0.5, 0.25, 0.44, 0.25, 0, 360, n),
            _arc(0.5, 0.73, 0.5, 0.27, 0, 360, n),
        ],
        "A": lambda: (
            [[(0.0, 1.0), (0.32, 0.0), (0.68, 0.0), (1.0, 1.0)], [(0.13, 0.62), (0.87, 0.62)]]
            if style.a_flat
            else [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.18, 0.64), (0.82, 0.64)]]
        ),
        "B": lambda: [
            [(0.0, 0.48), (0.58, 0.48)]
            + _arc(0.58, 0.24, 0.36, 0.24, 90, -90, n)
            + [(0.0, 0.0), (0.0, 1.0)]
            + [(0.6, 1.0)]
            + _arc(0.6, 0.74, 0.4, 0.26, 90, -90, n)
            + [(0.0, 0.48)]
        ],
        "C": lambda: [_arc(0.5, 0.5, 0.5, 0.5, -38, -322, n)],
        "D": lambda: [
            [(0.0, 0.0), (0.0, 1.0), (0.42, 1.0)]
            + _arc(0.42, 0.5, 0.58, 0.5, 90, -90, n)
            + [(0.0, 0.0)]
        ],
        "E": lambda: [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [(0.0, 0.5), (0.8, 0.5)]],
        "F": lambda: [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)], [(0.0, 0.5), (0.8, 0.5)]],
        "G": lambda: (
            [_arc(0.5, 0.5, 0.5, 0.5, -38, -360, n) + [(1.0, 0.5), (0.55, 0.5)]]
            + ([[(1.0, 0.5), (1.0, 0.85)]] if style.g_spur else [])
        ),
        "H": lambda: [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (1.0, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
        "J": lambda: [[(1.0, 0.0)] + _arc(0.5, 0.7, 0.5, 0.3, 0, 165, n)],
        "K": lambda: [
            [(0.0, 0.0), (0.0, 1.0)],
            [(1.0, 0.0), (0.0, 0.62)],
            [(0.3, 0.42), (1.0, 1.0)],
        ],
        "L": lambda: [[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]],
        "M": lambda: [[(0.0, 1.0), (0.0, 0.0), (0.5, style.m_dip), (1.0, 0.0), (1.0, 1.0)]],
        "N": lambda: [[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],
        "P": lambda: [
            [(0.0, 1.0), (0.0, 0.0), (0.58, 0.0)]
            + _arc(0.58, 0.27, 0.42, 0.27, -90, 90, n)
            + [(0.0, 0.54)]
        ],
        "Q": lambda: [
            _arc(0.5, 0.5, 0.5, 0.5, 0, 360, o_n),
            [[(0.58, 0.68), (1.0, 1.05)], [(0.68, 0.74), (0.95, 1.0)], [(0.52, 0.9), (0.7, 1.06)]][
                style.q_tail
            ],
        ],
        "R": lambda: [
            [(0.0, 1.0), (0.0, 0.0), (0.58, 0.0)]
            + _arc(0.58, 0.27, 0.42, 0.27, -90, 90, n)
            + [(0.0, 0.54)],
            [(0.45, 0.54), (1.0, 1.0)],
        ],
        "S": lambda: [
            _arc(0.5, 0.26, 0.48, 0.26, -25, -270, n) + _arc(0.5, 0.75, 0.5, 0.25, -90, 155, n)
        ],
        "T": lambda: [[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
        "U": lambda: [
            [(0.0, 0.0), (0.0, 0.68)] + _arc(0.5, 0.68, 0.5, 0.32, 180, 0, n) + [(1.0, 0.0)]
        ],
        "V": lambda: [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
        "W": lambda: [
            [(0.0, 0.0), (0.22, 1.0), (0.5, 1.0 - style.m_dip * 0.75), (0.78, 1.0), (1.0, 0.0)]
        ],
        "X": lambda: [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
        "Y": lambda: [[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
        "Z": lambda: [[(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]],
    }
    g["9"] = lambda: _mirror(g["6"]())
    return g[char]()


def _glyph_width(char: str, style: PlateFontStyle) -> float:
    if char in "1I":
        return style.width * (0.45 if char == "1" and not style.one_foot else 0.55)
    if char in "MW":
        return style.width * 1.2
    if char in "OQ" and not style.o_as_zero:
        return style.width * 1.08
    return style.width


def render_glyph(char: str, style: PlateFontStyle, height: int) -> np.ndarray:
    """Draw one glyph as an anti-aliased ``uint8`` mask of the given pixel height.

    The mask is as wide as the glyph plus its stroke; ink is 255.

    Examples
    --------
    >>> import numpy as np
    >>> m = render_glyph("8", random_style(np.random.default_rng(2)), 40)
    >>> m.shape[0], m.dtype.name, int(m.max())
    (40, 'uint8', 255)
    """
    import cv2

    ss = 4  # supersampling
    big_h = height * ss
    stroke = max(1.0, style.stroke * big_h)
    inner_h = big_h - stroke
    inner_w = _glyph_width(char, style) * inner_h
    slant_px = abs(style.slant) * inner_h
    big_w = int(math.ceil(inner_w + stroke + slant_px)) + 1
    canvas = np.zeros((big_h, big_w), np.uint8)
    for s in glyph_strokes(char, style):
        pts = []
        for x, y in s:
            shear = style.slant * (1 - y) if style.slant >= 0 else -style.slant * y
            pts.append((stroke / 2 + (x * inner_w) + shear * inner_h, stroke / 2 + y * inner_h))
        arr = np.round(np.array(pts) * 16).astype(np.int32)
        cv2.polylines(
            canvas, [arr], False, 255, thickness=int(round(stroke)), lineType=cv2.LINE_AA, shift=4
        )
    out_w = max(1, int(round(big_w / ss)))
    return cv2.resize(canvas, (out_w, height), interpolation=cv2.INTER_AREA)
