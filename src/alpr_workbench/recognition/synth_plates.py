"""Synthetic US licence plates and street-like scenes, for training the reader and detector.

Everything here is procedural (PIL drawing plus OpenCV warps): no real plate photo is used as
a template. Each public function takes a :class:`numpy.random.Generator`, so a seed fixes the
output exactly.

The plate layouts follow public descriptions of US formats — California's ``1ABC234`` first,
then the common ``ABC1234``/``ABC-1234``/``123 ABC`` families and short vanity plates — drawn
in the plate-style stroke typeface of :mod:`alpr_workbench.recognition.plate_font` or a DejaVu
typeface shipped with the package (never a host font), with state names, slogans, stickers,
frames, bolts, pictures and small stacked letters that are not part of the plate number. The
degradations model what a street camera adds: perspective, blur, low resolution, glare, night
and infrared looks, sensor noise and JPEG artefacts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "ALPHABET",
    "READER_SIZE",
    "STATE_CLASSES",
    "STATE_OTHER",
    "PlateSample",
    "SceneSample",
    "random_plate_text",
    "render_plate",
    "render_plate_crop",
    "render_scene",
    "render_state_crop",
    "render_state_plate",
]

#: Characters the reader can emit (CTC classes 1..36; 0 is the blank).
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Input ``(height, width)`` of the reader: a plate keeps its 2:1 shape.
READER_SIZE = (48, 96)

_LETTERS = "ABCDEFGHIJKLMNPQRSTUVWXYZ"  # O only in series letters (see random_plate_text)
_DIGITS = "0123456789"

# Layout codes: D digit, L letter, X either, " " a gap, "-" a dash, "*" a small logo.
_FORMATS: list[tuple[str, float, str]] = [
    ("DLLLDDD", 0.30, "CA"),
    ("DLLL DDD", 0.04, "CA"),
    ("LLLDDD", 0.03, "CA"),
    ("DDDLLL", 0.02, "CA"),
    ("LLL-DDDD", 0.07, "TX"),
    ("LLL DDDD", 0.06, "NY"),
    ("LLLDDDD", 0.04, "PA"),
    ("LLL DDD", 0.06, "XX"),
    ("DDD LLL", 0.05, "XX"),
    ("DDD*LLL", 0.03, "XX"),
    ("LLL*DDD", 0.03, "XX"),
    ("LLD DDDD", 0.02, "XX"),
    ("DLL DDD", 0.02, "XX"),
    ("DDD DDD", 0.02, "XX"),
    ("LD DDDDD", 0.02, "IL"),
    ("DDDD DD", 0.02, "XX"),
    ("DL DDDD", 0.02, "XX"),
    ("DDDDLL", 0.02, "XX"),
    ("LLL DLL", 0.02, "FL"),
    ("DDD-DLL", 0.02, "XX"),
    ("XXXXXXX", 0.05, "XX"),
    ("XXXXXX", 0.03, "XX"),
    ("XXXXX", 0.02, "XX"),
    ("XXXX", 0.01, "XX"),
    ("XXXXXXXX", 0.02, "XX"),
]
_FORMAT_P = np.array([f[1] for f in _FORMATS]) / sum(f[1] for f in _FORMATS)

_STATES = [
    "CALIFORNIA", "California", "TEXAS", "Texas", "NEW YORK", "FLORIDA", "Florida",
    "ILLINOIS", "Illinois", "OHIO", "GEORGIA", "ARIZONA", "Arizona", "NEVADA", "Nevada",
    "OREGON", "WASHINGTON", "Washington", "COLORADO", "UTAH", "Utah", "IDAHO", "MONTANA",
    "NEW MEXICO", "MICHIGAN", "Pure Michigan", "INDIANA", "KANSAS", "MISSOURI", "IOWA",
    "MINNESOTA", "WISCONSIN", "KENTUCKY", "TENNESSEE", "ALABAMA", "MISSISSIPPI",
    "LOUISIANA", "ARKANSAS", "OKLAHOMA", "NEBRASKA", "VIRGINIA", "MARYLAND", "Maryland",
    "DELAWARE", "NEW JERSEY", "CONNECTICUT", "MASSACHUSETTS", "VERMONT", "Vermont",
    "NEW HAMPSHIRE", "MAINE", "Maine", "ALASKA", "HAWAII", "WYOMING", "NORTH CAROLINA",
    "SOUTH CAROLINA", "NORTH DAKOTA", "SOUTH DAKOTA", "PENNSYLVANIA", "WEST VIRGINIA",
    "RHODE ISLAND", "Illinois", "Ohio", "Georgia",
]
_SLOGANS = [
    "DMV.CA.GOV", "dmv.ca.gov", "SUNSHINE STATE", "Land of Lincoln", "EMPIRE STATE",
    "THE LONE STAR STATE", "Great Lakes", "GRAND CANYON STATE", "Live Free or Die",
    "Green Mountain State", "visitPA.com", "Famous Potatoes", "Wild Wonderful",
    "The Natural State", "Treasure the Chesapeake", "America's Dairyland", "Big Sky",
    "10,000 Lakes", "Heart of Dixie", "Peach State", "Volunteer State", "Centennial",
    "CELEBRATING", "FIRST IN FLIGHT", "Sportsman's Paradise", "In God We Trust",
    "Crossroads of America", "COUNTY", "Sacramento", "Los Angeles", "Orange County",
    "DEALER", "TOYOTA", "HONDA OF", "AUTO MALL", "Ford", "Chevrolet", "ALOHA STATE",
]

#: The typefaces the generator draws with ship inside the package (``recognition/fonts/``,
#: DejaVu 2.37 under the Bitstream Vera licence, see ``fonts/README.md``): nothing comes from
#: the host, so a seed gives the same images on every machine.
FONT_DIR = Path(__file__).resolve().parent / "fonts"
#: Desktop typefaces for the plate number (a third of plates) and their chances.
_MAIN_FONTS = [
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
]
_MAIN_FONT_P = np.array([0.42, 0.18, 0.18, 0.14, 0.08])
#: Typefaces for state names, slogans and signs.
_DECOR_FONTS = [
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansCondensed-Oblique.ttf",
]
#: Small print: stickers, frames, badges.
_SMALL_FONT = "DejaVuSans-Bold.ttf"


@functools.lru_cache(maxsize=512)
def _font(name: str, size: int) -> Any:
    """A packaged typeface at ``size`` pixels, laid out by Pillow's own engine.

    The basic layout engine is fixed so that the host's optional shaping libraries
    (libraqm, FriBiDi) cannot change where characters land.
    """
    path = FONT_DIR / name
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise RuntimeError(
            f"the packaged font {path} is missing or unreadable; reinstall alpr-workbench"
        ) from exc


@dataclass(frozen=True)
class PlateSample:
    """One rendered plate crop.

    Attributes
    ----------
    image
        ``uint8`` RGB array (H, W, 3).
    text
        The characters on the plate, upper case, without gaps or dashes.
    state
        Two-letter code of the layout family (``"XX"`` for generic layouts).
    """

    image: np.ndarray
    text: str
    state: str


@dataclass(frozen=True)
class SceneSample:
    """One synthetic scene with plates.

    Attributes
    ----------
    image
        ``uint8`` RGB array (H, W, 3).
    boxes
        ``float32`` array (N, 4) of axis-aligned plate boxes ``x, y, w, h`` in pixels.
    texts
        Plate texts, in the order of ``boxes``.
    """

    image: np.ndarray
    boxes: np.ndarray
    texts: list[str]


def random_plate_text(rng: np.random.Generator) -> tuple[str, str, str]:
    """Draw a plate layout and its characters.

    Parameters
    ----------
    rng
        Source of randomness.

    Returns
    -------
    tuple[str, str, str]
        ``(layout, text, state)``: the layout keeps gaps (``" "``), dashes (``"-"``) and logo
        slots (``"*"``); ``text`` is the plate as it should be read.

    Examples
    --------
    >>> import numpy as np
    >>> layout, text, state = random_plate_text(np.random.default_rng(0))
    >>> text.isalnum() and text.isupper() or text.isdigit()
    True
    """
    fmt, _, state = _FORMATS[int(rng.choice(len(_FORMATS), p=_FORMAT_P))]
    letters = _LETTERS
    if rng.random() < 0.45:  # many states leave I and Q out of their series
        letters = letters.replace("I", "").replace("Q", "")
    # a series letter O is usually drawn just like 0 and read from its place among letters;
    # on vanity plates the same round shape is written 0 (as the labels of real sets do)
    series = letters + ("O" if rng.random() < 0.5 else "")
    out = []
    for code in fmt:
        if code == "D":
            out.append(_DIGITS[rng.integers(10)])
        elif code == "L":
            out.append(series[rng.integers(len(series))])
        elif code == "X":
            pool = letters if rng.random() < 0.6 else _DIGITS
            out.append(pool[rng.integers(len(pool))])
        else:
            out.append(code)
    layout = "".join(out)
    if rng.random() < 0.2:  # a centred dot instead of a gap (many states)
        layout = layout.replace(" ", ".")
    if rng.random() < 0.08 and " " not in layout and "-" not in layout and len(layout) >= 5:
        cut = int(rng.integers(2, len(layout) - 1))
        layout = layout[:cut] + (" " if rng.random() < 0.5 else "-") + layout[cut:]
    text = "".join(c for c in layout if c.isalnum())
    return layout, text, state


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _palette(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Background and text colours with enough contrast to be legible."""
    dark_texts = [(20, 30, 110), (15, 15, 20), (140, 20, 30), (20, 80, 40), (90, 20, 40),
                  (30, 40, 150), (60, 60, 70)]
    light_bgs = [(245, 245, 245), (235, 238, 242), (250, 245, 225), (225, 235, 250),
                 (250, 240, 190), (230, 245, 235), (240, 230, 235)]
    r = rng.random()
    if r < 0.78:
        bg = light_bgs[rng.integers(len(light_bgs))]
        bg = tuple(int(np.clip(c + rng.integers(-25, 10), 0, 255)) for c in bg)
        fg = dark_texts[rng.integers(len(dark_texts))]
        fg = tuple(int(np.clip(c + rng.integers(-15, 25), 0, 255)) for c in fg)
    elif r < 0.9:  # yellow/orange plates with dark text (NY, older CA commercial)
        bg = (int(rng.integers(220, 256)), int(rng.integers(170, 225)), int(rng.integers(0, 80)))
        fg = dark_texts[rng.integers(len(dark_texts))]
    else:  # dark plates with light text (older CA black/blue, vintage)
        bg = _rgb(rng, 0, 70)
        fg = (int(rng.integers(200, 256)), int(rng.integers(190, 256)), int(rng.integers(90, 256)))
    return bg, fg  # type: ignore[return-value]


def _draw_background(
    img: Image.Image, rng: np.random.Generator, bg: tuple[int, int, int]
) -> None:
    w, h = img.size
    arr = np.empty((h, w, 3), np.float32)
    arr[:] = bg
    if rng.random() < 0.55:  # gradient
        other = np.array(bg, np.float32) + rng.uniform(-60, 60, 3)
        t = np.linspace(0, 1, h if rng.random() < 0.7 else w, dtype=np.float32)
        t = t[:, None, None] if len(t) == h else t[None, :, None]
        arr = arr * (1 - t) + other * t
    img.paste(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(0, 5))):  # scenery: mountains, sun, waves, bands
        kind = rng.random()
        col = (*_rgb(rng, 0, 256), int(rng.integers(30, 120)))
        if kind < 0.35:
            pts = [(0, h)]
            for x in np.linspace(0, w, int(rng.integers(3, 8))):
                pts.append((float(x), float(rng.uniform(0.25, 0.95) * h)))
            pts.append((w, h))
            draw.polygon(pts, fill=col)
        elif kind < 0.6:
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.4) * h
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
        elif kind < 0.85:
            y0 = rng.uniform(0, h)
            band = rng.uniform(0.03, 0.15) * h
            draw.rectangle([0, y0, w, y0 + band], fill=col)
        else:
            amp, y0 = rng.uniform(2, 10), rng.uniform(0.3, 1.0) * h
            pts = [(float(x), float(y0 + amp * math.sin(x / rng.uniform(8, 30))))
                   for x in np.linspace(0, w, 30)]
            draw.line(pts, fill=col, width=int(rng.integers(2, 8)))


def _draw_logo(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple, col: tuple) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = min(x1 - x0, y1 - y0) / 2
    kind = rng.integers(7)
    if kind == 4:  # an upright emblem: a tree, a cactus, a lighthouse, a figure
        draw.rectangle([cx - r * 0.15, cy - r * 1.2, cx + r * 0.15, cy + r * 1.2], fill=col)
        arm = r * rng.uniform(0.3, 0.7)
        draw.rectangle([cx - arm, cy - r * 0.3, cx - r * 0.1, cy - r * 0.1], fill=col)
        draw.rectangle([cx + r * 0.1, cy - r * 0.6, cx + arm, cy - r * 0.4], fill=col)
    elif kind == 5:  # a stacked-triangle tree or mountain
        for k in range(3):
            yy = cy - r + k * r * 0.6
            draw.polygon([(cx, yy), (cx + r * (0.4 + 0.2 * k), yy + r * 0.8),
                          (cx - r * (0.4 + 0.2 * k), yy + r * 0.8)], fill=col)
    elif kind == 6:  # a round seal or badge with a ring
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=col, width=max(1, int(r * 0.2)))
        draw.ellipse([cx - r * 0.4, cy - r * 0.4, cx + r * 0.4, cy + r * 0.4], fill=col)
    elif kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif kind == 1:  # heart-ish / star-ish polygon
        n = int(rng.integers(5, 9))
        pts = []
        for i in range(2 * n):
            rr = r if i % 2 == 0 else r * 0.45
            a = math.pi * i / n
            pts.append((cx + rr * math.sin(a), cy - rr * math.cos(a)))
        draw.polygon(pts, fill=col)
    elif kind == 2:
        draw.rectangle([cx - r * 0.6, cy - r, cx + r * 0.6, cy + r], outline=col, width=2)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=col)


def _glyph_maker(rng: np.random.Generator, char_h: int) -> Any:
    """A function drawing one character as a mask ``char_h`` pixels tall, in one typeface.

    Two thirds of plates use a plate-style stroke typeface from :mod:`plate_font`; the rest
    a packaged DejaVu typeface, condensed, so the reader does not learn one family only.
    """
    from alpr_workbench.recognition.plate_font import random_style, render_glyph

    thicken = rng.random() < 0.1
    if rng.random() < 0.67:
        style = random_style(rng)

        def stroke_glyph(c: str, height: int = char_h) -> np.ndarray:
            return render_glyph(c, style, height)

        return stroke_glyph
    font_name = _MAIN_FONTS[int(rng.choice(len(_MAIN_FONTS), p=_MAIN_FONT_P))]
    condense = rng.uniform(0.6, 1.0)

    def font_glyph(c: str, height: int = char_h) -> np.ndarray:
        font = _font(font_name, max(8, int(height * 1.45)))
        x0, y0, x1, y1 = font.getbbox(c)
        im = Image.new("L", (x1 + 2, y1 + 2), 0)
        ImageDraw.Draw(im).text((0, 0), c, font=font, fill=255)
        im = im.crop((x0, y0, x1, y1))
        width = max(1, int(im.width * height / max(1, im.height) * condense))
        out = np.asarray(im.resize((width, height), Image.LANCZOS))
        if thicken:
            out = _cv2().dilate(out, np.ones((1, 2), np.uint8))
        return out

    return font_glyph


def _add_stacked_slot(rng: np.random.Generator, layout: str) -> str:
    """Sometimes add a slot (``^``) for small stacked letters, which are not read."""
    if rng.random() >= 0.3:
        return layout
    where = rng.random()
    if where < 0.45:
        return "^" + layout
    if where < 0.9:
        return layout + "^"
    gaps = [i for i, c in enumerate(layout) if c in " -"]
    if not gaps:
        return layout + "^"
    i = gaps[int(rng.integers(len(gaps)))]
    return layout[:i] + " ^ " + layout[i + 1 :]


def _stacked_letters(rng: np.random.Generator, glyph: Any, char_h: int) -> np.ndarray:
    """Two or three small characters stacked in a column (a weight class, a county code)."""
    n = 2 if rng.random() < 0.8 else 3
    small_h = max(4, int(char_h * rng.uniform(0.28, 0.5)))
    pool = _LETTERS if rng.random() < 0.65 else _DIGITS
    masks = [glyph(pool[int(rng.integers(len(pool)))], small_h) for _ in range(n)]
    gap = max(1, int(small_h * 0.2))
    width = max(m.shape[1] for m in masks)
    out = np.zeros((min(char_h, n * small_h + (n - 1) * gap), width), np.uint8)
    y = 0
    for m in masks:
        if y + m.shape[0] > out.shape[0]:
            break
        out[y : y + m.shape[0], : m.shape[1]] = m
        y += m.shape[0] + gap
    return out


def render_plate(
    rng: np.random.Generator,
    text_layout: tuple[str, str, str] | None = None,
    *,
    width: int = 240,
) -> tuple[Image.Image, str, str]:
    """Draw a clean, flat plate (before any camera effects).

    Parameters
    ----------
    rng
        Source of randomness.
    text_layout
        ``(layout, text, state)`` as returned by :func:`random_plate_text`; drawn when ``None``.
    width
        Width of the plate in pixels; the height is half of it (a 12 x 6 inch plate).

    Returns
    -------
    tuple[PIL.Image.Image, str, str]
        The RGBA plate image, its text and layout family.
    """
    layout, text, state = text_layout or random_plate_text(rng)
    w, h = width, width // 2
    bg, fg = _palette(rng)
    img = Image.new("RGB", (w, h), bg)
    _draw_background(img, rng, bg)
    draw = ImageDraw.Draw(img, "RGBA")
    decor = _DECOR_FONTS
    accent = fg if rng.random() < 0.5 else _rgb(rng, 0, 200)

    if rng.random() < 0.85:  # state name on top
        name = _STATES[int(rng.integers(len(_STATES)))]
        if state == "CA" and rng.random() < 0.6:
            name = "California" if rng.random() < 0.7 else "CALIFORNIA"
        size = int(h * rng.uniform(0.14, 0.26))
        font = _font(decor[int(rng.integers(len(decor)))], size)
        tw = draw.textlength(name, font=font)
        x = (w - tw) / 2 + rng.uniform(-0.05, 0.05) * w
        draw.text((x, h * rng.uniform(0.02, 0.08)), name, font=font, fill=accent)
    if rng.random() < 0.7:  # slogan / dealer / website at the bottom
        name = _SLOGANS[int(rng.integers(len(_SLOGANS)))]
        size = int(h * rng.uniform(0.09, 0.16))
        font = _font(decor[int(rng.integers(len(decor)))], size)
        tw = draw.textlength(name, font=font)
        draw.text(((w - tw) / 2, h * rng.uniform(0.8, 0.87)), name, font=font, fill=accent)

    # main characters, laid out one by one so gaps, dashes, dots, logos and small stacked
    # letters (never part of the plate number) can sit between them
    char_h = int(h * rng.uniform(0.42, 0.62))
    glyph = _glyph_maker(rng, char_h)
    layout = _add_stacked_slot(rng, layout)
    spacing = rng.uniform(0.03, 0.18) * char_h
    pieces: list[tuple[str, np.ndarray | None, float]] = []
    for c in layout:
        if c.isalnum():
            m = glyph(c)
            pieces.append((c, m, float(m.shape[1])))
        elif c == "^":
            small = _stacked_letters(rng, glyph, char_h)
            pieces.append((c, small, float(small.shape[1])))
        else:
            widths = {" ": (0.25, 0.8), "-": (0.3, 0.6), ".": (0.25, 0.45), "*": (0.7, 1.3)}
            lo, hi = widths[c]
            pieces.append((c, None, rng.uniform(lo, hi) * char_h))
    total = sum(p[2] for p in pieces) + spacing * (len(pieces) - 1)
    max_w = w * rng.uniform(0.75, 0.92)
    sx = min(1.0, max_w / max(total, 1.0))
    layer = np.zeros((char_h + 8, int(total) + 8), np.uint8)
    x = 4.0
    logos = []
    for c, m, gw in pieces:
        if m is not None:
            y0 = 4 + (char_h - m.shape[0]) // 2
            xi = int(round(x))
            region = layer[y0 : y0 + m.shape[0], xi : xi + m.shape[1]]
            np.maximum(region, m[:, : region.shape[1]], out=region)
        elif c == "-":
            yy = int(4 + char_h * rng.uniform(0.45, 0.55))
            layer[yy : yy + max(1, int(char_h * 0.09)), int(x + gw * 0.1) : int(x + gw * 0.9)] = 255
        elif c == ".":
            r = max(1, int(char_h * rng.uniform(0.06, 0.1)))
            _cv2().circle(layer, (int(x + gw / 2), int(4 + char_h * 0.5)), r, 255, -1)
        elif c == "*":
            logos.append((x, gw))
        x += gw + spacing
    layer_img = Image.fromarray(layer)
    scaled_w = max(4, int(layer_img.width * sx))
    layer_img = layer_img.resize((scaled_w, layer_img.height), Image.BILINEAR)
    top = int(h * rng.uniform(0.22, 0.34) - 4)
    top = min(top, h - layer_img.height)
    left = int((w - scaled_w) / 2 + rng.uniform(-0.03, 0.03) * w)
    img.paste(Image.new("RGB", layer_img.size, fg), (left, top), layer_img)
    if rng.random() < 0.35:  # a picture beside the number (flag, state outline, emblem)
        r = char_h * rng.uniform(0.25, 0.55)
        side_x = left - r * 1.1 if rng.random() < 0.5 else left + scaled_w + r * 1.1
        if r < side_x < w - r:
            logos.append(((side_x - left) / sx + 4 - r / sx, 2 * r / sx))
    for lx, gw in logos:
        cx = left + (lx - 4 + gw / 2) * sx
        r = max(gw * sx * 0.5, char_h * 0.3) * rng.uniform(0.8, 1.2)
        cy = top + 4 + char_h * 0.5
        for _ in range(int(rng.integers(1, 4))):
            jx, jy = rng.uniform(-0.3, 0.3, 2) * r
            rr = r * rng.uniform(0.5, 1.0)
            _draw_logo(draw, rng, (cx + jx - rr, cy + jy - rr, cx + jx + rr, cy + jy + rr),
                       (*_rgb(rng, 0, 256), int(rng.integers(160, 256))))

    for _ in range(int(rng.integers(0, 3))):  # registration stickers in the corners
        sw, sh = w * rng.uniform(0.08, 0.16), h * rng.uniform(0.12, 0.22)
        corner = int(rng.integers(4))
        sx0 = w * 0.03 if corner % 2 == 0 else w * 0.97 - sw
        sy0 = h * 0.05 if corner < 2 else h * 0.93 - sh
        col = _rgb(rng, 0, 256)
        draw.rectangle([sx0, sy0, sx0 + sw, sy0 + sh], fill=col)
        sfont = _font(_SMALL_FONT, max(6, int(sh * 0.6)))
        label = (
            str(int(rng.integers(1, 30))) if rng.random() < 0.6
            else "JAN"[: int(rng.integers(1, 4))]
        )
        draw.text((sx0 + 1, sy0), label, font=sfont, fill=_rgb(rng, 0, 256))
    if rng.random() < 0.6:  # bolt holes
        for bx in (w * 0.2, w * 0.8):
            by, br = h * rng.uniform(0.08, 0.14), h * 0.035
            draw.ellipse([bx - br, by - br, bx + br, by + br], fill=(*_rgb(rng, 60, 200), 200))
    if rng.random() < 0.5:  # printed border
        draw.rounded_rectangle([1, 1, w - 2, h - 2], radius=int(h * 0.08), outline=accent,
                               width=int(rng.integers(1, 4)))
    if rng.random() < 0.25:  # dealer frame: a thick dark rim, with text on the bottom bar
        fw = int(h * rng.uniform(0.05, 0.12))
        fcol = _rgb(rng, 0, 60) if rng.random() < 0.8 else _rgb(rng, 150, 256)
        draw.rectangle([0, 0, w - 1, fw], fill=fcol)
        draw.rectangle([0, 0, fw, h - 1], fill=fcol)
        draw.rectangle([w - 1 - fw, 0, w - 1, h - 1], fill=fcol)
        bot = int(h * rng.uniform(0.1, 0.2))
        draw.rectangle([0, h - 1 - bot, w - 1, h - 1], fill=fcol)
        name = _SLOGANS[int(rng.integers(len(_SLOGANS)))]
        ffont = _font(_SMALL_FONT, max(6, int(bot * 0.7)))
        tw = draw.textlength(name, font=ffont)
        draw.text(((w - tw) / 2, h - bot), name, font=ffont, fill=_rgb(rng, 150, 256))
    return img.convert("RGBA"), text, state


def _cv2() -> Any:
    import cv2  # lazy: keeps ``import alpr_workbench`` light

    cv2.setNumThreads(1)
    return cv2


def _perspective(
    rng: np.random.Generator, w: int, h: int, strength: float
) -> np.ndarray:
    """Four destination corners for a plate of size (w, h), tilted and rotated."""
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-strength, strength, (4, 2)).astype(np.float32) * [w, h]
    angle = math.radians(rng.normal(0, 4))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    center = np.array([w / 2, h / 2])
    dst = (src - center) @ rot.T + center + jitter
    if rng.random() < 0.5:  # yaw: one side shorter than the other
        k = rng.uniform(0, 0.25) * h
        side = [1, 2] if rng.random() < 0.5 else [0, 3]
        dst[side[0], 1] += k / 2
        dst[side[1], 1] -= k / 2
    return dst.astype(np.float32)


def _degrade(img: np.ndarray, rng: np.random.Generator, *, strength: float = 1.0) -> np.ndarray:
    """Camera effects on a uint8 RGB array: blur, glare, night/IR, noise, JPEG."""
    cv2 = _cv2()
    out = img.astype(np.float32)
    h, w = out.shape[:2]
    if rng.random() < 0.25 * strength:  # glare: a soft bright blob
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        yy, xx = np.mgrid[0:h, 0:w]
        sigma = rng.uniform(0.15, 0.6) * max(h, w)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        out += (blob * rng.uniform(60, 200))[..., None]
    r = rng.random()
    if r < 0.12 * strength:  # night: dark, warm, noisy
        out = out * rng.uniform(0.15, 0.5) * np.array([1.0, 0.9, 0.75]) + rng.uniform(0, 20)
    elif r < 0.24 * strength:  # infrared: grey, high contrast, retroreflective background
        grey = out.mean(axis=2, keepdims=True)
        grey = (grey - grey.mean()) * rng.uniform(1.2, 2.2) + rng.uniform(110, 200)
        out = np.repeat(grey, 3, axis=2)
    if rng.random() < 0.5:  # exposure, contrast and white balance
        out = (out - 128) * rng.uniform(0.6, 1.3) + 128 + rng.uniform(-50, 40)
        out = out * rng.uniform(0.85, 1.15, 3)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5 * strength:
        k = float(rng.uniform(0.3, 1.6))
        out = cv2.GaussianBlur(out, (0, 0), k)
    if rng.random() < 0.15 * strength:  # motion blur
        n = int(rng.integers(3, 7))
        kern = np.zeros((n, n), np.float32)
        kern[n // 2, :] = 1.0 / n
        if rng.random() < 0.5:
            kern = kern.T
        out = cv2.filter2D(out, -1, kern)
    if rng.random() < 0.5 * strength:
        sigma = rng.uniform(2, 14)
        out = np.clip(out + rng.normal(0, sigma, out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.1:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    if rng.random() < 0.6:
        q = int(rng.integers(15, 90))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)


def _surround(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A car-body-like backdrop for a plate crop: colour, gradient, edges, tail lights."""
    img = Image.new("RGB", (w, h), _rgb(rng, 0, 256))
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(1, 6))):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.1, 1.0) * w, y0 + rng.uniform(0.05, 0.6) * h
        col = (*_rgb(rng, 0, 256), int(rng.integers(60, 256)))
        if rng.random() < 0.5:
            draw.rectangle([x0, y0, x1, y1], fill=col)
        else:
            draw.line([(x0, y0), (x1, y1)], fill=col, width=int(rng.integers(1, 6)))
    return np.asarray(img)


def render_plate_crop(
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = READER_SIZE,
    negative: bool = False,
    design: Any = None,
) -> PlateSample:
    """A plate crop as the reader will see it: warped, cropped with a loose box, degraded.

    Parameters
    ----------
    rng
        Source of randomness.
    size
        Output ``(height, width)``.
    negative
        Render a crop with no plate (text is ``""``): background, car body or unrelated
        signs, which teaches the reader to reject false detections.
    design
        ``design(rng, width) -> (plate image, text, state)`` draws the flat plate instead of
        :func:`render_plate` (``render_state_crop`` passes a state's own design); ``None``
        (the default, the reader's and detector's recipes) draws :func:`render_plate`.

    Returns
    -------
    PlateSample
        The crop and its text.

    Examples
    --------
    >>> import numpy as np
    >>> s = render_plate_crop(np.random.default_rng(1))
    >>> s.image.shape, s.image.dtype.name
    ((48, 96, 3), 'uint8')
    """
    cv2 = _cv2()
    out_h, out_w = size
    pw = int(rng.integers(140, 260))
    plate, text, state = (
        render_plate(rng, width=pw) if design is None else design(rng, pw)
    )
    ph = plate.height
    pad = int(pw * 0.25)
    cw, ch = pw + 2 * pad, ph + 2 * pad
    canvas = _surround(rng, cw, ch)
    if negative:
        text, state = "", "XX"
        img = Image.fromarray(canvas)
        draw = ImageDraw.Draw(img)
        if rng.random() < 0.6:  # a sign or a sticker with words: text that is not a plate
            words = _SLOGANS[int(rng.integers(len(_SLOGANS)))]
            font = _font(_DECOR_FONTS[0], int(ph * rng.uniform(0.2, 0.45)))
            draw.text((pad + rng.uniform(-20, 20), pad + ph * 0.3), words, font=font,
                      fill=_rgb(rng, 0, 256))
        canvas = np.asarray(img)
        corners = np.array([[pad, pad], [pad + pw, pad], [pad + pw, pad + ph], [pad, pad + ph]],
                           np.float32)
    else:
        dst = _perspective(rng, pw, ph, 0.06) + pad
        m = cv2.getPerspectiveTransform(
            np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32), dst
        )
        rgba = np.asarray(plate)
        warped = cv2.warpPerspective(rgba, m, (cw, ch), flags=cv2.INTER_LINEAR)
        alpha = warped[..., 3:4].astype(np.float32) / 255
        canvas = (warped[..., :3] * alpha + canvas * (1 - alpha)).astype(np.uint8)
        corners = dst
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    bw, bh = x1 - x0, y1 - y0
    # mostly a tight box (a cropped plate, as an annotator frames it); otherwise loose, like
    # a detector's box, a little off on every side
    if rng.random() < 0.6:
        mx = rng.uniform(-0.01, 0.04, 2) * bw
        my = rng.uniform(-0.04, 0.06, 2) * bh
    else:
        mx = rng.uniform(-0.04, 0.12, 2) * bw
        my = rng.uniform(-0.06, 0.18, 2) * bh
    box = np.array([x0 - mx[0], y0 - my[0], x1 + mx[1], y1 + my[1]])
    box = np.clip(box, 0, [cw, ch, cw, ch]).astype(int)
    crop = canvas[box[1] : box[3], box[0] : box[2]]
    # low resolution first (a far plate), then up to the reader's size
    small_w = int(math.exp(rng.uniform(math.log(45), math.log(260))))
    if small_w < crop.shape[1]:
        small_h = max(8, int(crop.shape[0] * small_w / crop.shape[1]))
        crop = cv2.resize(crop, (small_w, small_h), interpolation=cv2.INTER_AREA)
    crop = _degrade(crop, rng, strength=0.35 if rng.random() < 0.5 else 1.0)
    crop = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    return PlateSample(np.ascontiguousarray(crop), text, state)


def _scene_background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    cv2 = _cv2()
    base = np.empty((h, w, 3), np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    base[:] = c0 * (1 - t) + c1 * t
    # multi-scale noise texture (asphalt, foliage, walls)
    for scale in (4, 16, 64):
        if rng.random() < 0.6:
            n = rng.normal(0, rng.uniform(5, 35), (h // scale + 2, w // scale + 2))
            base += cv2.resize(n.astype(np.float32), (w, h))[..., None]
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(2, 12))):  # buildings, road marks, poles, shadows
        kind = rng.random()
        col = (*_rgb(rng, 0, 256), int(rng.integers(80, 256)))
        x0, y0 = rng.uniform(-0.1, 1) * w, rng.uniform(-0.1, 1) * h
        if kind < 0.45:
            draw.rectangle([x0, y0, x0 + rng.uniform(0.02, 0.5) * w,
                            y0 + rng.uniform(0.02, 0.5) * h], fill=col)
        elif kind < 0.75:
            draw.line([(x0, y0), (rng.uniform(0, w), rng.uniform(0, h))], fill=col,
                      width=int(rng.integers(1, 10)))
        else:
            r = rng.uniform(0.01, 0.15) * w
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=col)
    return img


def _draw_car(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, cy: float, pw: float
) -> None:
    """A crude car rear/front around a plate centred at (cx, cy) of width pw."""
    body_w = pw * rng.uniform(4.0, 7.0)
    body_h = body_w * rng.uniform(0.45, 0.8)
    x0 = cx - body_w / 2 + rng.uniform(-0.1, 0.1) * body_w
    y0 = cy - body_h * rng.uniform(0.55, 0.8)
    body = _rgb(rng, 0, 256)
    draw.rounded_rectangle([x0, y0, x0 + body_w, y0 + body_h], radius=int(body_h * 0.15),
                           fill=body)
    draw.polygon([(x0 + body_w * 0.15, y0 + body_h * 0.05), (x0 + body_w * 0.85,
                  y0 + body_h * 0.05), (x0 + body_w * 0.78, y0 - body_h * 0.35),
                  (x0 + body_w * 0.22, y0 - body_h * 0.35)], fill=_rgb(rng, 0, 90))
    light = (int(rng.integers(150, 256)), int(rng.integers(0, 80)), int(rng.integers(0, 60)))
    if rng.random() < 0.4:
        light = _rgb(rng, 180, 256)
    lw, lh = body_w * 0.14, body_h * rng.uniform(0.08, 0.18)
    ly = y0 + body_h * rng.uniform(0.1, 0.3)
    draw.rectangle([x0 + body_w * 0.03, ly, x0 + body_w * 0.03 + lw, ly + lh], fill=light)
    draw.rectangle([x0 + body_w * 0.97 - lw, ly, x0 + body_w * 0.97, ly + lh], fill=light)
    if rng.random() < 0.5:  # grille or bumper bars
        for k in range(int(rng.integers(2, 6))):
            yy = y0 + body_h * (0.7 + 0.05 * k)
            draw.line([(x0 + body_w * 0.1, yy), (x0 + body_w * 0.9, yy)],
                      fill=_rgb(rng, 0, 256), width=2)
    if rng.random() < 0.3:  # badge text on the body (a distractor)
        font = _font(_SMALL_FONT, max(6, int(pw * 0.12)))
        draw.text((cx + pw * 0.8, cy - pw * 0.6), _SLOGANS[int(rng.integers(len(_SLOGANS)))],
                  font=font, fill=_rgb(rng, 150, 256))


def render_scene(
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (256, 256),
    plate_width: tuple[float, float] = (18.0, 170.0),
    max_plates: int = 3,
    plates: Sequence[tuple[str, str]] | None = None,
) -> SceneSample:
    """A synthetic street-like scene with up to ``max_plates`` plates, for the detector.

    Parameters
    ----------
    rng
        Source of randomness.
    size
        Output ``(height, width)``.
    plate_width
        Range of plate widths in pixels, drawn log-uniformly.
    max_plates
        Most plates in one scene; some scenes have none.
    plates
        ``(text, state)`` of the plates to draw (as many as fit, without overlap), instead of
        a random number of random plates.

    Returns
    -------
    SceneSample
        The image and its axis-aligned plate boxes.

    Examples
    --------
    >>> import numpy as np
    >>> s = render_scene(np.random.default_rng(0), size=(128, 160))
    >>> s.image.shape, s.boxes.shape[1]
    ((128, 160, 3), 4)
    """
    cv2 = _cv2()
    h, w = size
    img = _scene_background(rng, w, h)
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(0, 4))):  # distractor text: signs, banners, shop fronts
        words = _SLOGANS[int(rng.integers(len(_SLOGANS)))]
        fs = int(rng.uniform(6, 40))
        x, y = rng.uniform(-0.1, 0.9) * w, rng.uniform(0, 0.95) * h
        if rng.random() < 0.5:
            font = _font(_DECOR_FONTS[int(rng.integers(len(_DECOR_FONTS)))], fs)
            tw = draw.textlength(words, font=font)
            draw.rectangle([x - 3, y - 2, x + tw + 3, y + fs * 1.3], fill=_rgb(rng, 0, 256))
        else:
            font = _font(_MAIN_FONTS[0], fs)
        draw.text((x, y), words, font=font, fill=_rgb(rng, 0, 256))
    n = (
        len(plates) if plates is not None
        else int(rng.choice(max_plates + 1, p=_plate_count_p(max_plates)))
    )
    lo, hi = math.log(plate_width[0]), math.log(plate_width[1])
    placed: list[list[float]] = []
    for _ in range(n * 3):
        if len(placed) >= n:
            break
        pw = min(math.exp(rng.uniform(lo, hi)), 0.9 * w, 1.8 * h)
        ph = pw / 2
        cx, cy = rng.uniform(pw * 0.3, w - pw * 0.3), rng.uniform(ph * 0.3, h - ph * 0.3)
        cand = [cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2]
        if not any(_overlap(cand, b) for b in placed):
            placed.append(cand)
    for x0, y0, x1, y1 in placed:  # cars first, so that no car covers another's plate
        if rng.random() < 0.7:
            _draw_car(draw, rng, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0)
    arr = np.asarray(img).copy()
    boxes: list[list[float]] = []
    texts: list[str] = []
    for k, (x0, y0, x1, y1) in enumerate(placed):
        pw, ph = x1 - x0, y1 - y0
        render_w = int(min(300, max(120, pw * 2)))
        given = None if plates is None else (plates[k][0], plates[k][0], plates[k][1])
        plate, text, _ = render_plate(rng, given, width=render_w)
        src = np.array([[0, 0], [render_w, 0], [render_w, render_w // 2], [0, render_w // 2]],
                       np.float32)
        dst = _perspective(rng, pw, ph, 0.05) + [x0, y0]
        m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
        warped = cv2.warpPerspective(np.asarray(plate), m, (w, h), flags=cv2.INTER_AREA)
        alpha = warped[..., 3:4].astype(np.float32) / 255
        arr = (warped[..., :3] * alpha + arr * (1 - alpha)).astype(np.uint8)
        bx0, by0 = np.clip(dst.min(axis=0), 0, [w, h])
        bx1, by1 = np.clip(dst.max(axis=0), 0, [w, h])
        boxes.append([float(bx0), float(by0), float(bx1), float(by1)])
        texts.append(text)
    arr = _degrade(arr, rng, strength=0.8)
    xywh = np.array([[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes], np.float32)
    return SceneSample(arr, xywh.reshape(-1, 4), texts)


def _plate_count_p(max_plates: int) -> np.ndarray:
    p = np.array([0.12] + [0.88 * 0.6**k for k in range(max_plates)])
    return p / p.sum()


def _overlap(a: list[float], b: list[float]) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


# --- State-consistent plates (issue #17: predict the state where it can be seen) -----------
#
# ``render_plate`` above draws a random state name unrelated to its layout family, and the
# reader's and detector's recipes replay it seed for seed, so it stays as it is. The designs
# below are drawn from public general knowledge of each state's standard passenger plate (its
# name and where it sits, its usual slogan, its colours), written down here as words and
# numbers; no image of any evaluation set was looked at or traced to make them. They are
# deliberately loose (colours jittered, older designs beside current ones), since a camera
# sees faded, dirty and older plates too.


@dataclass(frozen=True)
class _StateDesign:
    """One state's plate design(s), as publicly described.

    ``names``: the state's name as printed, each with ``"script"`` (an italic serif, as a
    script face) or ``"block"`` (capitals); ``slogans``: what the bottom line says; ``bgs``
    and ``fgs``: background and character colours (alternatives: older designs);
    ``name_rgb``: colour of the name; ``band``: a coloured band behind the name (colour) or
    ``None``; ``formats``: layouts (D digit, L letter, ``-``/``" "`` separators).
    """

    name: str
    names: tuple[tuple[str, str], ...]
    slogans: tuple[str, ...]
    bgs: tuple[tuple[int, int, int], ...]
    fgs: tuple[tuple[int, int, int], ...]
    name_rgb: tuple[int, int, int]
    band: tuple[int, int, int] | None
    formats: tuple[str, ...]


_WHITE = (244, 244, 240)
_NAVY = (25, 35, 95)
_BLACK = (20, 20, 22)
_RED = (185, 30, 35)

#: The 20 most populous US states (2020 census), whose plates the state classifier tells
#: apart; every other plate (another state, no plate, no state to be seen) is ``"other"``.
_STATE_DESIGNS: dict[str, _StateDesign] = {
    # white plate, red "California" in script at the top, dark blue characters
    "CA": _StateDesign("California", (("California", "script"), ("CALIFORNIA", "block")),
                       ("DMV.CA.GOV", "dmv.ca.gov", ""), (_WHITE,), (_NAVY,), _RED, None,
                       ("DLLLDDD",)),
    # white to light grey, "TEXAS" at the top, black characters, the lone star slogan
    "TX": _StateDesign("Texas", (("TEXAS", "block"), ("Texas", "block")),
                       ("THE LONE STAR STATE", ""), (_WHITE, (228, 228, 222)), (_BLACK,),
                       _BLACK, None, ("LLL-DDDD", "LLLDDDD")),
    # white with an orange emblem in the middle, green name and characters
    "FL": _StateDesign("Florida", (("FLORIDA", "block"), ("Florida", "script"),
                                   ("MYFLORIDA.COM", "block")),
                       ("SUNSHINE STATE", "Sunshine State"), (_WHITE,), ((20, 90, 45),),
                       (20, 100, 50), None, ("LLL DLL", "LLLL DD", "DDD LLL")),
    # gold or white with a blue band, dark blue name and characters
    "NY": _StateDesign("New York", (("NEW YORK", "block"),),
                       ("EXCELSIOR", "THE EMPIRE STATE", "EMPIRE STATE"),
                       ((238, 196, 70), (236, 205, 110), _WHITE), (_NAVY,), _NAVY, None,
                       ("LLL-DDDD", "LLL DDDD")),
    # white, a dark blue band with the name in white at the top, a yellow band at the bottom
    "PA": _StateDesign("Pennsylvania", (("PENNSYLVANIA", "block"), ("Pennsylvania", "block")),
                       ("visitPA.com", "www.visitPA.com"), (_WHITE,), (_NAVY,), (250, 250, 250),
                       (30, 45, 120), ("LLL-DDDD",)),
    # white, red "Illinois" in script, "Land of Lincoln", dark characters
    "IL": _StateDesign("Illinois", (("Illinois", "script"),), ("Land of Lincoln", ""),
                       (_WHITE, (240, 238, 230)), (_NAVY, (110, 25, 35)), _RED, None,
                       ("LL DDDDD", "LLDDDDD", "DDDDDDD")),
    # a sky-blue to white gradient, "OHIO" at the top, aviation slogan, black characters
    "OH": _StateDesign("Ohio", (("OHIO", "block"), ("Ohio", "block")),
                       ("BIRTHPLACE OF AVIATION", "Birthplace of Aviation", ""),
                       ((215, 230, 245), _WHITE), (_BLACK, _NAVY), _NAVY, None,
                       ("LLL DDDD", "LLL-DDDD")),
    # white with a peach in the middle, "GEORGIA" at the top, a county name at the bottom
    "GA": _StateDesign("Georgia", (("GEORGIA", "block"), ("Georgia", "script")),
                       ("COUNTY", "In God We Trust", "FULTON", "DEKALB", "COBB"),
                       (_WHITE,), (_BLACK,), _BLACK, None, ("LLL DDDD", "LLLDDDD")),
    # white, red "NORTH CAROLINA", "FIRST IN FLIGHT", dark blue characters
    "NC": _StateDesign("North Carolina", (("NORTH CAROLINA", "block"),),
                       ("FIRST IN FLIGHT", "FIRST IN FREEDOM"), (_WHITE,), (_NAVY,), _RED, None,
                       ("LLL-DDDD",)),
    # white, blue "Pure Michigan" or "MICHIGAN"; older plates blue with white characters
    "MI": _StateDesign("Michigan", (("Pure Michigan", "script"), ("MICHIGAN", "block"),
                                    ("Michigan", "script")),
                       ("GREAT LAKES", "michigan.org", ""), (_WHITE, (25, 45, 120)),
                       (_NAVY, (245, 245, 245)), (30, 60, 150), None,
                       ("LLL DDDD", "DLLDDD")),
    # pale yellow fading to buff, "NEW JERSEY", "Garden State", black characters
    "NJ": _StateDesign("New Jersey", (("NEW JERSEY", "block"), ("New Jersey", "block")),
                       ("Garden State", "GARDEN STATE"), ((245, 232, 175), (238, 222, 160)),
                       (_BLACK,), _BLACK, None, ("LDD-LLL", "LLL-DDL")),
    # white, dark blue "Virginia" in script, dark blue characters
    "VA": _StateDesign("Virginia", (("Virginia", "script"), ("VIRGINIA", "block")),
                       ("virginia.gov", "Virginia is for Lovers", ""), (_WHITE,), (_NAVY,),
                       _NAVY, None, ("LLL-DDDD", "LLLDDDD")),
    # white with a pale blue mountain, red or blue "Washington" in script
    "WA": _StateDesign("Washington", (("Washington", "script"),), ("", "Evergreen State"),
                       (_WHITE, (232, 238, 246)), (_NAVY,), (160, 30, 40), None,
                       ("LLLDDDD", "LLL DDDD")),
    # a desert sunset, "ARIZONA", "GRAND CANYON STATE", dark red characters
    "AZ": _StateDesign("Arizona", (("ARIZONA", "block"),),
                       ("GRAND CANYON STATE", "Grand Canyon State"),
                       ((238, 215, 165), (240, 228, 200)), ((120, 25, 35),), (120, 25, 35),
                       None, ("LLLDDDD", "LLL DDDD")),
    # white, red "Massachusetts" in script, red characters, the spirit slogan
    "MA": _StateDesign("Massachusetts", (("Massachusetts", "script"),),
                       ("The Spirit of America", ""), (_WHITE,), (_RED,), _RED, None,
                       ("DLLDDD", "DLL DDD", "DDDLLL")),
    # blue top or white, "TENNESSEE" at the top, a county at the bottom
    "TN": _StateDesign("Tennessee", (("TENNESSEE", "block"), ("Tennessee", "block")),
                       ("COUNTY", "tnvacation.com", "DAVIDSON", "SHELBY"),
                       (_WHITE, (210, 225, 240)), (_NAVY, _BLACK), (30, 60, 140), None,
                       ("DDD-LLL", "LDD-DDL")),
    # white, a torch and stars, "INDIANA" at the top, dark blue characters
    "IN": _StateDesign("Indiana", (("INDIANA", "block"), ("Indiana", "block")),
                       ("In God We Trust", "Crossroads of America", ""), (_WHITE,), (_NAVY,),
                       _NAVY, None, ("DDDLLL", "DDD LLL")),
    # white, "Maryland" in script, black characters, the bay slogan
    "MD": _StateDesign("Maryland", (("Maryland", "script"), ("MARYLAND", "block")),
                       ("Treasure the Chesapeake", "my.maryland.gov", ""), (_WHITE,), (_BLACK,),
                       _BLACK, None, ("DLLDDDD", "DLL DDDD")),
    # white fading to blue, "MISSOURI", "SHOW-ME STATE", dark blue characters
    "MO": _StateDesign("Missouri", (("MISSOURI", "block"),), ("SHOW-ME STATE", "Show-Me State"),
                       (_WHITE, (220, 232, 245)), (_NAVY,), _NAVY, None,
                       ("LLD-LDL", "LLD LDL")),
    # white with a farm scene, "WISCONSIN", "America's Dairyland", black characters
    "WI": _StateDesign("Wisconsin", (("WISCONSIN", "block"), ("Wisconsin", "block")),
                       ("America's Dairyland", "AMERICA'S DAIRYLAND"), (_WHITE,), (_BLACK,),
                       _BLACK, None, ("LLL-DDDD", "DDD-LLL")),
}

#: Code of the class for every plate that is not one of the covered states' (or no plate).
STATE_OTHER = "other"
#: Classes of the state classifier, in its output order: the covered states, then "other".
STATE_CLASSES: tuple[str, ...] = (*_STATE_DESIGNS, STATE_OTHER)

_COVERED_NAMES = {n.upper() for d in _STATE_DESIGNS.values()
                  for n, _ in d.names} | {d.name.upper() for d in _STATE_DESIGNS.values()}
#: Names printed on "other" plates: the states not covered (from ``_STATES``).
_OTHER_NAMES = tuple(sorted({n for n in _STATES if n.upper() not in _COVERED_NAMES}))
#: Slogans of "other" plates: those not tied to a covered state.
_OTHER_SLOGANS = (
    "Famous Potatoes", "Big Sky", "10,000 Lakes", "Heart of Dixie", "Centennial",
    "Live Free or Die", "Green Mountain State", "ALOHA STATE", "Wild Wonderful",
    "The Natural State", "Sportsman's Paradise", "Vacationland", "Battle Born", "", "",
)


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: int) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _fill_format(rng: np.random.Generator, fmt: str) -> tuple[str, str]:
    """``(layout, text)`` for a layout code (D digit, L letter, others kept as they are)."""
    out = []
    for code in fmt:
        if code == "D":
            out.append(_DIGITS[rng.integers(10)])
        elif code == "L":
            out.append(_LETTERS[rng.integers(len(_LETTERS))])
        else:
            out.append(code)
    layout = "".join(out)
    return layout, "".join(c for c in layout if c.isalnum())


def _draw_number(
    img: Image.Image, rng: np.random.Generator, layout: str, fg: tuple[int, int, int]
) -> None:
    """The plate number, in one plate-style typeface, centred in the middle of the plate."""
    w, h = img.size
    char_h = int(h * rng.uniform(0.4, 0.55))
    glyph = _glyph_maker(rng, char_h)
    spacing = rng.uniform(0.05, 0.16) * char_h
    pieces = []
    for c in layout:
        if c.isalnum():
            pieces.append(glyph(c))
        else:
            gap = np.zeros((char_h, max(1, int(char_h * rng.uniform(0.25, 0.5)))), np.uint8)
            if c == "-":
                y = int(char_h * 0.47)
                gap[y : y + max(1, int(char_h * 0.09)), 1:-1] = 255
            pieces.append(gap)
    total = int(sum(p.shape[1] for p in pieces) + spacing * (len(pieces) - 1)) + 2
    layer = np.zeros((char_h, total), np.uint8)
    x = 0.0
    for m in pieces:
        y0 = (char_h - m.shape[0]) // 2
        xi = int(round(x))
        region = layer[y0 : y0 + m.shape[0], xi : xi + m.shape[1]]
        np.maximum(region, m[:, : region.shape[1]], out=region)
        x += m.shape[1] + spacing
    mask = Image.fromarray(layer)
    target_w = min(mask.width, int(w * rng.uniform(0.72, 0.88)))
    mask = mask.resize((max(4, target_w), mask.height), Image.Resampling.BILINEAR)
    top = int(h * rng.uniform(0.27, 0.33))
    top = min(top, h - mask.height)
    left = int((w - mask.width) / 2 + rng.uniform(-0.02, 0.02) * w)
    img.paste(Image.new("RGB", mask.size, fg), (left, top), mask)


def render_state_plate(
    rng: np.random.Generator, state: str, *, width: int = 240
) -> tuple[Image.Image, str, str]:
    """Draw a clean, flat plate in the design of ``state`` (before any camera effects).

    The covered states' designs (:data:`STATE_CLASSES`) follow public general knowledge of
    their standard plates: the state's name where it is printed, in its colour (a script face
    where the plate writes it in script), its usual slogan, its background and character
    colours. ``"other"`` draws a plate of another state (one of the uncovered names, or no
    name at all) in a random palette.

    Parameters
    ----------
    rng
        Source of randomness.
    state
        One of :data:`STATE_CLASSES`.
    width
        Width of the plate in pixels; the height is half of it.

    Returns
    -------
    tuple[PIL.Image.Image, str, str]
        The RGBA plate image, its text and ``state``.

    Raises
    ------
    ValueError
        If ``state`` is not one of :data:`STATE_CLASSES`.

    Examples
    --------
    >>> import numpy as np
    >>> img, text, state = render_state_plate(np.random.default_rng(0), "TX")
    >>> img.size, state, text[3:].isdigit()
    ((240, 120), 'TX', True)
    """
    if state not in STATE_CLASSES:
        raise ValueError(f"unknown state class {state!r}: use one of {', '.join(STATE_CLASSES)}")
    w, h = width, width // 2
    design = _STATE_DESIGNS.get(state)
    if design is None:  # another state's plate (or one whose state cannot be seen)
        bg, fg = _palette(rng)
        accent = fg if rng.random() < 0.5 else _rgb(rng, 0, 200)
        name = _OTHER_NAMES[int(rng.integers(len(_OTHER_NAMES)))] if rng.random() < 0.85 else ""
        style = "script" if name[:1].isupper() and not name.isupper() else "block"
        slogan = _OTHER_SLOGANS[int(rng.integers(len(_OTHER_SLOGANS)))]
        band = _rgb(rng, 0, 256) if rng.random() < 0.1 else None
        layout, text = _fill_format(rng, _FORMATS[int(rng.choice(len(_FORMATS), p=_FORMAT_P))][0]
                                    .replace("X", "L").replace("*", " "))
    else:
        k = int(rng.integers(len(design.bgs)))
        bg = _jitter(rng, design.bgs[k], 14)
        fg = _jitter(rng, design.fgs[min(k, len(design.fgs) - 1)], 18)
        accent = _jitter(rng, design.name_rgb, 20)
        if sum(bg) < 300:  # an older dark plate prints its name light
            accent = _jitter(rng, (235, 235, 235), 15)
        name, style = design.names[int(rng.integers(len(design.names)))]
        slogan = design.slogans[int(rng.integers(len(design.slogans)))]
        band = design.band
        layout, text = _fill_format(rng, design.formats[int(rng.integers(len(design.formats)))])
    img = Image.new("RGB", (w, h), bg)
    if rng.random() < 0.5:  # faint scenery, as many designs have (kept light: legibility)
        _draw_background(img, rng, bg)
        img = Image.blend(Image.new("RGB", (w, h), bg), img, float(rng.uniform(0.2, 0.6)))
    draw = ImageDraw.Draw(img, "RGBA")
    if band is not None:
        draw.rectangle([0, 0, w, int(h * rng.uniform(0.2, 0.26))], fill=_jitter(rng, band, 12))
        if state == "PA":  # and a yellow band at the bottom
            draw.rectangle([0, int(h * 0.82), w, h], fill=_jitter(rng, (240, 200, 60), 15))
    if state == "FL" and rng.random() < 0.8:  # the orange in the middle
        r = h * rng.uniform(0.14, 0.2)
        cx, cy = w / 2 + rng.uniform(-0.04, 0.04) * w, h * 0.55
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(240, 140, 30, 230))
    if state == "GA" and rng.random() < 0.8:  # the peach
        r = h * rng.uniform(0.12, 0.18)
        cx, cy = w / 2, h * 0.55
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(245, 160, 110, 220))
    if name:
        size = int(h * (rng.uniform(0.2, 0.28) if style == "script" else rng.uniform(0.15, 0.22)))
        font = _font("DejaVuSerif-BoldItalic.ttf" if style == "script"
                     else ("DejaVuSans-Bold.ttf" if rng.random() < 0.7
                           else "DejaVuSerif-Bold.ttf"), size)
        tw = draw.textlength(name, font=font)
        if tw > w * 0.92:
            font = _font(font.path.rsplit("/", 1)[-1], max(6, int(size * w * 0.92 / tw)))
            tw = draw.textlength(name, font=font)
        draw.text(((w - tw) / 2 + rng.uniform(-0.03, 0.03) * w, h * rng.uniform(0.01, 0.05)),
                  name, font=font, fill=accent)
    if slogan:
        size = int(h * rng.uniform(0.09, 0.13))
        font = _font("DejaVuSans-Bold.ttf" if slogan.isupper() else "DejaVuSerif-Bold.ttf", size)
        tw = draw.textlength(slogan, font=font)
        if tw > w * 0.9:
            font = _font(font.path.rsplit("/", 1)[-1], max(6, int(size * w * 0.9 / tw)))
            tw = draw.textlength(slogan, font=font)
        col = (20, 30, 90) if state == "PA" else accent
        draw.text(((w - tw) / 2, h * rng.uniform(0.83, 0.87)), slogan, font=font, fill=col)
    _draw_number(img, rng, layout, fg)
    for _ in range(int(rng.integers(0, 3))):  # registration stickers in the corners
        sw, sh = w * rng.uniform(0.08, 0.14), h * rng.uniform(0.12, 0.2)
        corner = int(rng.integers(4))
        sx0 = w * 0.03 if corner % 2 == 0 else w * 0.97 - sw
        sy0 = h * 0.05 if corner < 2 else h * 0.93 - sh
        draw.rectangle([sx0, sy0, sx0 + sw, sy0 + sh], fill=_rgb(rng, 0, 256))
    if rng.random() < 0.6:  # bolt holes
        for bx in (w * 0.2, w * 0.8):
            by, br = h * rng.uniform(0.08, 0.14), h * 0.035
            draw.ellipse([bx - br, by - br, bx + br, by + br], fill=(*_rgb(rng, 60, 200), 200))
    if rng.random() < 0.2:  # a dealer frame: covers the edges, sometimes the slogan
        fw = int(h * rng.uniform(0.03, 0.08))
        fcol = _rgb(rng, 0, 60) if rng.random() < 0.8 else _rgb(rng, 150, 256)
        draw.rectangle([0, 0, w - 1, fw], fill=fcol)
        draw.rectangle([0, 0, fw, h - 1], fill=fcol)
        draw.rectangle([w - 1 - fw, 0, w - 1, h - 1], fill=fcol)
        draw.rectangle([0, h - 1 - int(h * rng.uniform(0.08, 0.18)), w - 1, h - 1], fill=fcol)
    return img.convert("RGBA"), text, state


def render_state_crop(
    rng: np.random.Generator,
    state: str | None = None,
    *,
    size: tuple[int, int] = READER_SIZE,
    negative: bool = False,
) -> PlateSample:
    """A crop of a state-consistent plate, as the reader sees it (same camera effects).

    Parameters
    ----------
    rng
        Source of randomness.
    state
        One of :data:`STATE_CLASSES`, or ``None`` to draw one (every class equally likely).
    size
        Output ``(height, width)``.
    negative
        A crop with no plate (its ``state`` is ``"other"``).

    Returns
    -------
    PlateSample
        The crop, its text and its state class (``"other"`` for uncovered states and
        negatives).

    Examples
    --------
    >>> import numpy as np
    >>> s = render_state_crop(np.random.default_rng(3), "CA")
    >>> s.image.shape, s.state
    ((48, 96, 3), 'CA')
    """
    if state is None:
        state = STATE_CLASSES[int(rng.integers(len(STATE_CLASSES)))]
    if state not in STATE_CLASSES:
        raise ValueError(f"unknown state class {state!r}: use one of {', '.join(STATE_CLASSES)}")

    def design(r: np.random.Generator, width: int) -> tuple[Image.Image, str, str]:
        return render_state_plate(r, state, width=width)

    sample = render_plate_crop(rng, size=size, negative=negative, design=design)
    return PlateSample(sample.image, sample.text, STATE_OTHER if negative else state)
