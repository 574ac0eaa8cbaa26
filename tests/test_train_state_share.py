"""``--state-share``: a share of the reader's crops in the state-consistent designs (issue #17).

The option must not change what the existing recipes render (share 0 is the old generator,
crop for crop), must mix in state designs when asked, and must refuse a share outside 0..1.
"""

import numpy as np
import pytest

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.recognition import train
from alpr_workbench.recognition.synth_plates import render_plate_crop


def test_share_zero_renders_the_old_crops_exactly():
    """The replay commands of earlier recipes render the same images as before."""
    imgs, texts = train.generate_reader_data(12, seed=11, workers=1)
    rng = np.random.default_rng([11, 1, 0])  # the old chunk stream, drawn the old way
    for img, text in zip(imgs, texts, strict=True):
        old = render_plate_crop(rng, size=imgs.shape[1:3], negative=rng.random() < 0.07)
        assert old.text == text and np.array_equal(old.image, img)


def test_share_mixes_state_designs_and_is_seeded():
    plain, _ = train.generate_reader_data(12, seed=11, workers=1)
    mixed, texts = train.generate_reader_data(12, seed=11, workers=1, state_share=0.5)
    again, texts2 = train.generate_reader_data(12, seed=11, workers=1, state_share=0.5)
    assert np.array_equal(mixed, again) and texts == texts2
    assert not np.array_equal(mixed, plain)
    assert mixed.shape == plain.shape and mixed.dtype == np.uint8


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_bad_share_is_refused(share):
    with pytest.raises(WorkbenchError, match="state_share"):
        train.generate_reader_data(2, seed=1, workers=1, state_share=share)
    with pytest.raises(WorkbenchError, match="state_share"):
        train.TrainingConfig(state_share=share)


def test_share_is_in_the_replay_command(tmp_path):
    pytest.importorskip("torch")
    cfg = train.TrainingConfig(seed=5, reader_samples=8, reader_steps=1, reader_batch=4,
                               reader_only=True, threads=1, state_share=0.3)
    info = train.train_all(tmp_path, cfg)
    assert "--state-share 0.3 " in info["replay"] and info["config"]["state_share"] == 0.3
    assert "--threads 1 " in info["replay"]
