"""Training at native scale: splits cached at their own size, random crops with random rescale from
the seeded per-step generator, validation of whole (or tiled) images, exact resume."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from tests.conftest import cli
from tests.test_reliability import assert_same_run, signal_at
from zoo.data.native import crop_batch, native_size
from zoo.engine.train import train
from zoo.errors import Interrupted, OptionError

CROP = dict(architecture="unet", dataset="synthetic", epochs=2, batch_size=4, device="cpu", deterministic=True,
            crop=32, rescale="0.5,1.5", augment="flip", loss="bce", options={"base_channels": "4", "count": "12",
                                                                             "size": "56"})


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    run = tmp_path_factory.mktemp("native") / "run"
    return run, train(out=run, **CROP)


def test_native_cache_keeps_each_image_at_its_size(tmp_path):
    import zoo

    data = zoo.create_dataset("synthetic", "train", native=True, cache_dir=tmp_path, count="4", size="50")
    assert len(data) == 4 and data[0]["image"].shape == (3, 50, 50) and data[0]["mask"].shape == (1, 50, 50)
    capped = zoo.create_dataset("synthetic", "train", native=True, max_side=20, cache_dir=tmp_path, count="4", size="50")
    assert capped[0]["image"].shape == (3, 20, 20)
    assert native_size(300, 200, 100) == (100, 67) and native_size(30, 20, 100) == (30, 20)


def test_crops_are_drawn_from_the_generator_and_pad_small_images(tmp_path):
    import zoo

    split = zoo.create_dataset("synthetic", "train", native=True, cache_dir=tmp_path, count="6", size="40").cached
    idx = np.arange(6)
    a = crop_batch(split, idx, 32, (0.5, 2.0), np.random.default_rng(7))
    b = crop_batch(split, idx, 32, (0.5, 2.0), np.random.default_rng(7))
    c = crop_batch(split, idx, 32, (0.5, 2.0), np.random.default_rng(8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[0], c[0])
    images, masks, valid = crop_batch(split, idx, 64, None, np.random.default_rng(0))  # 64 > 40: padded
    assert images.shape == (6, 64, 64, 3) and valid[:, :40, :40].all() and not valid[:, 40:].any()
    assert np.array_equal(images[0, :40, :40], np.asarray(split.images[0]))
    plain, _, _ = crop_batch(split, idx[:1], 16, None, np.random.default_rng(3))
    full = np.asarray(split.images[0])
    found = any(np.array_equal(plain[0], full[y:y + 16, x:x + 16]) for y in range(25) for x in range(25))
    assert found  # without rescale a crop is a window of the image, pixel for pixel


def test_a_crop_run_validates_whole_images_and_eval_reproduces_it(cropped):
    run, result = cropped
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["preprocessing"]["resolution"] == "native"
    assert config["run"]["crop"] == 32 and config["run"]["rescale"] == "0.5,1.5"
    best = result.best
    scored = json.loads(cli("eval", str(run), "--split", "valid", "--weights", "model", "--json").stdout)
    n = config["dataset"]["split_sizes"]["valid"]
    assert scored["protocol"] == "full-res" and scored["pixels"] == n * 56 * 56  # the valid images at their size
    assert scored["dice"] == pytest.approx(best["valid_dice"], abs=1e-12)


@pytest.mark.parametrize("position", [(0, 1), pytest.param((1, 2), marks=pytest.mark.slow)])
def test_a_crop_run_resumes_exactly(cropped, tmp_path, position):
    run, _ = cropped
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(out=cut, on_step=signal_at(position, signal.SIGINT), **CROP)
    train(resume=cut)
    assert_same_run(cut, run)


def test_tiled_validation_and_capped_side(tmp_path):
    result = train(out=tmp_path / "t", **{**CROP, "epochs": 1, "val_tile": 24, "max_side": 40})
    assert result.history[0]["valid_dice"] is not None
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["model"]["preprocessing"]["max_side"] == 40
    from zoo.inference import Predictor

    predictor = Predictor(tmp_path / "t", device="cpu")
    assert predictor.settings.resolution == "native"
    assert predictor(np.zeros((80, 60, 3), np.uint8)).mask.shape == (80, 60)  # predicted at 40x30, mapped back


@pytest.mark.parametrize("overrides, message", [
    ({"crop": None, "rescale": "0.5,2"}, "--rescale 0.5,2: applies to training on crops (--crop)"),
    ({"crop": None, "rescale": None, "val_tile": 64}, "--val-tile 64: applies to training on crops"),
    ({"rescale": "2,0.5"}, "--rescale 2,0.5: give LO,HI"),
    ({"rescale": "nan"}, "--rescale nan: give LO,HI"),
    ({"crop": 4}, "--crop 4: crop must be an integer in [8, 16384]"),
])
def test_bad_crop_options(tmp_path, overrides, message):
    import re

    with pytest.raises(OptionError, match=re.escape(message)):
        train(out=tmp_path / "x", **{**CROP, **overrides})
    assert not (tmp_path / "x").exists()


def test_weights_only_predicts_at_native_size(cropped, tmp_path):
    """A crop-trained model's weights file alone says it predicts at the image's own pixels."""
    import zoo

    run, _ = cropped
    model = zoo.load_model(run / "model.safetensors")
    assert model.config.preprocessing.resolution == "native"
    logits = model(torch.zeros(1, 3, 45, 71))
    assert logits.shape == (1, 1, 45, 71)
