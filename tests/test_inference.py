"""Inference at any scale: windows, blending, band resizing, TTA, the Predictor, full-res eval,
streaming predict over folders, and memory bounded by the tile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import zoo
from tests.conftest import ROOT, SHARED_SAMPLE, cli
from zoo.inference import Predictor
from zoo.inference.resample import BandResizer
from zoo.inference.tta import TTA, augmented
from zoo.inference.windows import BLENDS, Blender, WindowGrid, importance_map, window_starts


def plain_registry():
    from tests import plain_model_plugin
    from zoo.plugins import make_plugin_manager
    from zoo.registry import build_registry

    pm, infos = make_plugin_manager(entry_points=False)
    pm.register(plain_model_plugin, name="plain")
    return build_registry(pm, infos)


def saved(tmp_path: Path, architecture: str, registry, task=None, seed: int = 0, **options) -> Path:
    torch.manual_seed(seed)
    model = zoo.create_model(architecture, registry=registry, task=task, **options)
    return zoo.save_model(model, tmp_path / f"{architecture}.safetensors")


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random picture (blobs, not noise), so neighbouring windows see related content."""
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.random((1, 3, max(2, h // 16), max(2, w // 16)))).float()
    return (F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
            * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("inference") / "R"
    zoo.train(out=run, architecture="unet", dataset="synthetic", epochs=1, image_size=32, batch_size=8, device="cpu",
              quiet=True, options={"base_channels": "4", "count": "16", "size": "48"})
    return run


# ---- windows and blending ----------------------------------------------------------------------
@pytest.mark.parametrize("size, tile, stride", [(100, 32, 24), (33, 32, 8), (32, 32, 8), (20, 32, 24), (257, 64, 64)])
def test_windows_cover_every_pixel_and_end_on_the_edge(size, tile, stride):
    starts = window_starts(size, tile, stride)
    clipped = min(tile, size)
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s:s + clipped] = True
    assert covered.all() and starts[0] == 0 and starts[-1] + clipped == size
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("blend", BLENDS)
@pytest.mark.parametrize("shape, tile, overlap", [((97, 131), (32, 48), 0.25), ((64, 64), (64, 64), 0.5),
                                                  ((40, 200), (40, 33), 0.6)])
def test_blended_windows_of_one_map_give_that_map_back(blend, shape, tile, overlap):
    """Windows cut from one map, blended: the weights sum to one at every pixel, corners and
    borders included, so the map comes back; a constant comes back constant."""
    h, w = shape
    grid = WindowGrid.plan(h, w, tile, overlap)
    full = torch.randn(3, h, w, generator=torch.Generator().manual_seed(0))
    for source in (full, torch.full((3, h, w), 2.5)):
        blender = Blender(grid, 3, importance_map(*grid.tile, blend), "cpu")
        out = torch.full_like(source, float("nan"))
        th, tw = grid.tile
        for y, x in grid:
            for top, band in blender.add(y, x, source[:, y:y + th, x:x + tw]):
                out[:, top:top + band.shape[1]] = band
        torch.testing.assert_close(out, source, rtol=0, atol=1e-5)


def test_importance_maps_peak_at_the_centre_and_never_vanish():
    for blend in ("gaussian", "linear"):
        m = importance_map(33, 20, blend)
        assert m.shape == (33, 20) and float(m.min()) > 0 and float(m.max()) == 1
        assert float(m[16, 9]) > float(m[0, 0]) and float(m[16, 9]) > float(m[16, 0])
    assert torch.equal(importance_map(8, 8, "constant"), torch.ones(8, 8))


@pytest.mark.parametrize("out_size", [(150, 210), (20, 30), (37, 100), (80, 53), (37, 53)])
@pytest.mark.parametrize("band", [1, 5, 37])
def test_band_resizer_equals_interpolating_the_whole_map(out_size, band):
    source = torch.randn(2, 37, 53, generator=torch.Generator().manual_seed(1))
    resizer = BandResizer((37, 53), out_size)
    out = torch.full((2, *out_size), float("nan"))
    for i in range(0, 37, band):
        for top, rows in resizer.add(source[:, i:i + band]):
            out[:, top:top + rows.shape[1]] = rows
    expected = F.interpolate(source[None], size=out_size, mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out, expected, rtol=0, atol=5e-5)


# ---- whole image vs tiles ------------------------------------------------------------------------
def test_a_tile_covering_the_image_equals_whole_image_native_inference(run_dir):
    image = photo(70, 90)
    whole = Predictor(run_dir, device="cpu", resolution="native")(image, probs=True)
    tiled = Predictor(run_dir, device="cpu", tile=128)(image, probs=True)
    assert whole.probs.shape == (1, 70, 90) and whole.mask.shape == (70, 90)
    assert np.abs(whole.probs - tiled.probs).max() < 1e-6
    assert np.array_equal(whole.mask, tiled.mask)


def test_tiles_agree_with_the_whole_image_for_a_translation_equivariant_model(tmp_path):
    registry = plain_registry()
    weights = saved(tmp_path, "plain", registry)
    image = photo(300, 410)
    whole = Predictor(weights, device="cpu", resolution="native", registry=registry)(image, probs=True)
    tiled = Predictor(weights, device="cpu", tile=96, overlap=0.25, registry=registry)(image, probs=True)
    assert (whole.mask == tiled.mask).mean() >= 0.995
    assert 0.05 < whole.mask.mean() < 0.95  # both classes present: the agreement is not trivial


def test_windows_are_batched_across_images(run_dir, tmp_path):
    """Same-size windows of consecutive images share forward passes."""
    predictor = Predictor(run_dir, device="cpu", tile=32, overlap=0, batch_size=8)
    sizes = []
    forward = predictor.forward
    predictor.forward = lambda x: (sizes.append(x.shape[0]), forward(x))[1]
    files = []
    for i in range(3):  # 3 images of 2x2 windows each -> 12 windows in batches of 8 + 4
        files.append(tmp_path / f"b{i}.png")
        Image.fromarray(photo(64, 64, i)).save(files[-1])
    result = predictor.predict_folder(files, tmp_path / "B", workers=0)
    assert sizes == [8, 4] and len(result.written) == 3


# ---- test-time augmentation ----------------------------------------------------------------------
@pytest.mark.parametrize("tta", TTA)
def test_tta_of_a_d4_invariant_model_changes_nothing(tmp_path, tta):
    registry = plain_registry()
    weights = saved(tmp_path, "pointwise", registry, task=zoo.Task("multiclass", ("a", "b", "c")))
    image = photo(45, 61)
    plain = Predictor(weights, device="cpu", resolution="native", registry=registry)(image, probs=True)
    augmented_ = Predictor(weights, device="cpu", resolution="native", tta=tta, tile=32, registry=registry)(
        image, probs=True)
    assert np.abs(plain.probs - augmented_.probs).max() < 1e-5


def test_tta_averages_probabilities_of_the_transformed_copies():
    """flip: mean of sigmoid(model(x)) and sigmoid of the mirrored pass mirrored back, as logits."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 1, 3, padding=1)
    x = torch.randn(2, 3, 9, 11)
    with torch.no_grad():
        got = torch.sigmoid(augmented(conv, zoo.Task(), "flip")(x))
        expected = (torch.sigmoid(conv(x)) + torch.sigmoid(conv(x.flip(-1))).flip(-1)) / 2
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        softmax = augmented(torch.nn.Conv2d(3, 4, 3, padding=1), zoo.Task("multiclass", tuple("abcd")), "d4")(x)
        torch.testing.assert_close(softmax.exp().sum(1), torch.ones(2, 9, 11), rtol=0, atol=1e-5)


# ---- the Python API --------------------------------------------------------------------------------
def test_predictor_takes_arrays_images_and_paths_at_any_size(run_dir, tmp_path):
    predictor = Predictor(run_dir, device="cpu", tta="flip")
    image = photo(37, 129)
    Image.fromarray(image).save(tmp_path / "x.png")
    from_array = predictor(image)
    assert from_array.mask.shape == (37, 129) and from_array.probs is None
    assert np.array_equal(predictor(Image.fromarray(image)).mask, from_array.mask)
    assert np.array_equal(predictor(tmp_path / "x.png").mask, from_array.mask)
    with pytest.raises(zoo.errors.UsageError, match="uint8"):
        predictor(np.zeros((4, 4, 3), np.float32))


def test_predict_honours_keep_aspect_as_training_resized(tmp_path):
    """A keep-aspect run's model sees the image as the cache stored it: long side to the size,
    padded below and right; the padding never reaches the output."""
    run = tmp_path / "K"
    zoo.train(out=run, architecture="unet", dataset="synthetic", epochs=1, image_size=32, batch_size=8, device="cpu",
              keep_aspect=True, quiet=True, options={"base_channels": "4", "count": "8", "size": "48"})
    predictor = Predictor(run, device="cpu")
    image = photo(40, 80)
    from zoo.inference.settings import prepare

    prepared = prepare(predictor.settings, predictor.preprocessing, image)
    assert prepared.array.shape == (32, 32, 3) and prepared.content == (16, 32)
    assert not prepared.array[16:].any()
    expected = np.asarray(Image.fromarray(image).resize((32, 16), Image.BILINEAR))
    assert np.array_equal(prepared.array[:16], expected)
    assert predictor(image).mask.shape == (40, 80)


def test_scale_resizes_before_and_back_after(run_dir):
    image = photo(64, 96)
    half = Predictor(run_dir, device="cpu", resolution="native", scale=0.5)(image, probs=True)
    assert half.probs.shape == (1, 64, 96)
    small = Predictor(run_dir, device="cpu", resolution="native")(
        np.asarray(Image.fromarray(image).resize((48, 32), Image.BILINEAR)), probs=True)
    back = F.interpolate(torch.from_numpy(small.probs)[None], size=(64, 96), mode="bilinear", align_corners=False)
    # logits are resized, then turned into probabilities: close to resizing the probabilities
    assert np.abs(half.probs - back[0].numpy()).max() < 0.05


# ---- the CLI: streaming over folders -------------------------------------------------------------
def test_predict_streams_nested_folders_globs_and_lists_past_a_broken_file(run_dir, tmp_path):
    photos = tmp_path / "photos"
    (photos / "x" / "y").mkdir(parents=True)
    Image.fromarray(photo(50, 70)).save(photos / "a.png")
    (photos / "x" / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(photo(80, 60, 1)).save(photos / "x" / "y" / "b.jpg")
    Image.fromarray(photo(33, 44, 2)).convert("CMYK").save(photos / "x" / "c.jpg")
    result = cli("predict", str(run_dir), str(photos), "--out", str(tmp_path / "o"), "--tile", "32",
                 "--workers", "1", "--probs", "--probs-format", "png16", "--json")
    assert result.code == 1 and "1 of 4 inputs could not be predicted" in result.stderr
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert sorted(Path(w["mask"]).relative_to(tmp_path / "o").as_posix() for w in data["written"]) == [
        "a.png.mask.png", "x/c.jpg.mask.png", "x/y/b.jpg.mask.png"]
    assert data["inference"]["resolution"] == "native" and data["inference"]["tile"] == [32, 32]
    probs = np.asarray(Image.open(tmp_path / "o" / "x" / "y" / "b.jpg.probs.png"))
    mask = np.asarray(Image.open(tmp_path / "o" / "x" / "y" / "b.jpg.mask.png"))
    assert probs.dtype == np.uint16 and probs.shape == mask.shape == (80, 60)
    assert ((probs > 32767) == (mask > 0)).mean() > 0.99

    listed = tmp_path / "list.txt"
    listed.write_text("photos/a.png\n# a comment\nphotos/x/y/b.jpg\n")
    by_list = cli("predict", str(run_dir), str(listed), "--out", str(tmp_path / "l"), "--no-overlay", "--workers", "0")
    assert by_list.code == 0, by_list.stderr
    assert sorted(p.relative_to(tmp_path / "l").as_posix() for p in (tmp_path / "l").rglob("*.png")) == [
        "photos/a.png.mask.png", "photos/x/y/b.jpg.mask.png"]
    by_glob = cli("predict", str(run_dir), str(photos / "**" / "*.jpg"), "--out", str(tmp_path / "g"))
    assert by_glob.code == 0, by_glob.stderr
    assert sorted(p.relative_to(tmp_path / "g").as_posix() for p in (tmp_path / "g").rglob("*.mask.png")) == [
        "x/c.jpg.mask.png", "x/y/b.jpg.mask.png"]


def test_probabilities_as_npy_match_the_mask(run_dir, tmp_path):
    Image.fromarray(photo(90, 50)).save(tmp_path / "p.png")
    made = cli("predict", str(run_dir), str(tmp_path / "p.png"), "--out", str(tmp_path / "o"), "--probs",
               "--tile", "32", "--tta", "d4")
    assert made.code == 0, made.stderr
    probs = np.load(tmp_path / "o" / "p.png.probs.npy")
    mask = np.asarray(Image.open(tmp_path / "o" / "p.png.mask.png"))
    assert probs.shape == (1, 90, 50) and probs.dtype == np.float16
    decided = np.abs(probs[0].astype(np.float32) - 0.5) > 1e-3  # float16 rounds near the threshold
    assert decided.mean() > 0.5 and np.array_equal((probs[0] > 0.5)[decided], (mask > 0)[decided])
    assert not list((tmp_path / "o").glob(".*"))  # no scratch file left behind


@pytest.mark.slow
def test_a_large_image_predicts_in_memory_bounded_by_the_tile(run_dir, tmp_path):
    """2400 x 2400 through the tiny UNet with --tile 128: peak RSS grows by far less than one
    full-resolution activation of the whole image would take (4 channels x 5.8M pixels x 4 bytes
    = 92 MB per layer; whole-image inference keeps a dozen of them)."""
    big = tmp_path / "big.png"
    Image.fromarray(photo(2400, 2400)).save(big)
    small = tmp_path / "small.png"
    Image.fromarray(photo(64, 64)).save(small)
    # VmHWM, not getrusage: ru_maxrss carries the forking (pytest) process's peak over exec
    probe = ("import sys; from zoo.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
             "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])")

    def peak_mb(image: Path) -> float:
        out = subprocess.run([sys.executable, "-c", probe, "predict", str(run_dir), str(image), "--out",
                              str(tmp_path / image.stem), "--tile", "128", "--no-overlay", "--workers", "0", "-q"],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip().splitlines()[-1]) / 1024

    growth = peak_mb(big) - peak_mb(small)
    assert Image.open(tmp_path / "big" / "big.png.mask.png").size == (2400, 2400)
    assert growth < 150, f"peak RSS grew by {growth:.0f} MB"


# ---- full-resolution evaluation -------------------------------------------------------------------
def test_full_res_eval_scores_images_of_mixed_sizes_at_their_own_size(tmp_path):
    """A folder dataset of three sizes: eval --full-res equals the confusion counts of zoo
    predict's masks against the original masks, computed here independently."""
    from torchmetrics.classification import BinaryJaccardIndex

    data = tmp_path / "data"
    for split in ("train", "valid", "test"):
        (data / split / "images").mkdir(parents=True)
        (data / split / "masks").mkdir(parents=True)
        for i, (h, w) in enumerate([(40, 50), (64, 64), (30, 80)]):
            image = photo(h, w, i)
            Image.fromarray(image).save(data / split / "images" / f"{i}.png")
            Image.fromarray(((image[..., 0] > 128) * 255).astype(np.uint8)).save(data / split / "masks" / f"{i}.png")
    run = tmp_path / "R"
    zoo.train(out=run, architecture="unet", dataset="folder", data_dir=str(data), epochs=1, image_size=32, batch_size=3,
              device="cpu", quiet=True, options={"base_channels": "4"})
    result = cli("eval", str(run), "--full-res", "--json")
    assert result.code == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["protocol"] == "full-res" and scored["protocol_detail"]["resolution"] == "train"
    assert scored["pixels"] == 40 * 50 + 64 * 64 + 30 * 80
    assert cli("predict", str(run), str(data / "test" / "images"), "--out", str(tmp_path / "P")).code == 0
    preds, truths = [], []
    for i in range(3):
        preds.append(torch.from_numpy(np.asarray(Image.open(tmp_path / "P" / f"{i}.png.mask.png")) > 0).flatten())
        truths.append(torch.from_numpy(np.asarray(Image.open(data / "test" / "masks" / f"{i}.png")) > 0).flatten())
    expected = float(BinaryJaccardIndex()(torch.cat(preds).int(), torch.cat(truths).int()))
    assert scored["iou_per_class"][1] == pytest.approx(expected, abs=1e-9)
    default = json.loads(cli("eval", str(run), "--json").stdout)
    assert default["protocol"] == "train-size" and default["pixels"] == 3 * 32 * 32


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_SAMPLE.is_dir(), reason="the shared Oxford-IIIT Pet sample is not beside the repo")
def test_full_res_eval_on_the_oxford_layout(tmp_path):
    run = tmp_path / "R"
    zoo.train(out=run, architecture="unet", dataset="oxford-pet", data_dir=str(SHARED_SAMPLE), epochs=1, image_size=32,
              batch_size=8, device="cpu", quiet=True, options={"base_channels": "4"})
    result = cli("eval", str(run), "--full-res", "--tile", "64", "--json")
    assert result.code == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["protocol"] == "full-res" and scored["protocol_detail"]["tile"] == [64, 64]
    assert scored["pixels"] > 31 * 200 * 200  # the photos' own sizes, not 32 x 32


@pytest.mark.parametrize("task", [zoo.Task(), zoo.Task("multiclass", ("bg", "a", "b")),
                                  zoo.Task("multilabel", ("x", "y"))], ids=lambda t: t.kind)
def test_every_task_type_predicts_tiled_with_tta(tmp_path, task):
    registry = plain_registry()
    weights = saved(tmp_path, "plain", registry, task=task)
    image = photo(70, 110)
    Image.fromarray(image).save(tmp_path / "i.png")
    predictor = Predictor(weights, device="cpu", tile=48, tta="d4", registry=registry)
    got = predictor(image, probs=True)
    assert got.probs.shape == (task.channels, 70, 110)
    if task.kind == "multiclass":
        np.testing.assert_allclose(got.probs.sum(0), 1, atol=1e-5)
        assert np.array_equal(got.mask, got.probs.argmax(0))
    else:
        assert np.array_equal(got.mask.astype(bool), (got.probs > 0.5).transpose(1, 2, 0).squeeze(-1)
                              if task.kind == "binary" else (got.probs > 0.5).transpose(1, 2, 0))
    result = predictor.predict_folder([tmp_path / "i.png"], tmp_path / "o", workers=0)
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    masks = [f"i.png.{c}.mask.png" for c in task.classes] if task.kind == "multilabel" else ["i.png.mask.png"]
    assert names == sorted(masks + ["i.png.overlay.png"]) and not result.failed
