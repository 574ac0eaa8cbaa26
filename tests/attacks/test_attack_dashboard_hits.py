"""Attacks on the dashboard's hit queue (issue #16, item 3).

``image_ref`` and every field of a hit come from stored reads and hotlists, which vendors'
exports and imported CSV files fill: the page must neither read any file a crafted
``image_ref`` names nor render a field as markup.
"""

from __future__ import annotations

import os
from pathlib import Path

from alpr_workbench.dashboard.hits import MAX_CROP_BYTES, HitQueuePage, queue_table, read_crop

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_image_ref_cannot_make_the_page_read_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    (home / "keys" / "keystore.json").write_text('{"secret": "sealed key material"}')
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    (home / "link.png").symlink_to(outside)
    (home / "big.png").write_bytes(PNG + b"\x00" * MAX_CROP_BYTES)
    for ref in (
        "keys/keystore.json",  # inside the data directory, but not an image
        str(home / "keys" / "keystore.json"),
        "../outside.png",  # a relative reference leaving the data directory
        "link.png",  # a link to a file elsewhere
        "big.png",  # too large to be a crop
        os.devnull,
        str(home),  # a folder
        "\x00bad",
    ):
        data, note = read_crop(ref, home=home)
        assert data is None, ref
        assert note.startswith("no readable image")
    assert read_crop("frames/x.png")[0] is None  # a relative reference without a data directory


def test_hit_fields_are_shown_as_text_not_markup() -> None:
    evil = "<img src=x onerror=alert(1)>"
    hits = [{"hit_id": evil, "captured_at": None, "camera_name": evil, "read_plate": evil,
             "listed_plate": "7ABC123", "confidence_pct": None, "category": evil,
             "confusable_warnings": [evil]}]
    table = HitQueuePage._queue(queue_table(hits, timezone="UTC"), "UTC")
    details = HitQueuePage._details({**hits[0], "is_actionable": True, "reason": evil,
                             "outcomes": [{"outcome_type": evil, "case_number": evil}]}, "UTC")
    for html in (table, details):
        assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
