"""Binary, multiclass and multilabel end to end: losses against formulas and smp, metrics against
torchmetrics with ignored pixels, datasets and mask formats, and each task from training to export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import zoo
from tests.conftest import SHARED_SAMPLE, builtin_registry, cli
from zoo.engine.train import train
from zoo.errors import DataError, LossSpecError, UsageError
from zoo.losses import build_loss
from zoo.metrics import SegmentationMeter
from zoo.tasks import Task

MULTICLASS = Task("multiclass", ("a", "b", "c"))
MULTILABEL = Task("multilabel", ("a", "b", "c"))
TASKS = {"binary": Task(), "multiclass": MULTICLASS, "multilabel": MULTILABEL}


def batch(task: Task, seed: int = 0, ignore: bool = True, dtype=torch.float64):
    """Logits, target and valid mask (a quarter of the pixels ignored) for ``task``."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(3, task.channels, 12, 10, generator=g) * 2).to(dtype)
    if task.kind == "multiclass":
        target = torch.randint(0, task.channels, (3, 12, 10), generator=g)
    else:
        target = (torch.rand(3, task.channels, 12, 10, generator=g) > 0.6).to(dtype)
    valid = (torch.rand(3, 1, 12, 10, generator=g) > 0.25).to(dtype) if ignore else None
    return logits, target, valid


def loss(spec: str, task: Task):
    return build_loss(spec, zoo.default_registry(), task=task)


# ---- losses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [e.name for e in builtin_registry().entries("loss")])
def test_every_loss_keeps_the_contract_for_every_task_it_serves(spec):
    """zoo.testing.check_loss: finite, gradients reach the logits, ignored pixels pull nothing."""
    import zoo.testing

    zoo.testing.check_loss(spec)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_datasets_keep_the_sample_contract(mode, tmp_path):
    import zoo.testing

    zoo.testing.check_dataset("synthetic", "train", count=4, size=32, mode=mode)
    from tests.test_data import write_oxford

    write_oxford(tmp_path / "pets")
    zoo.testing.check_dataset("oxford-pet", "test", tmp_path / "pets", mode="trimap" if mode != "binary" else "binary")


def test_a_loss_that_cannot_serve_a_task_says_so():
    with pytest.raises(LossSpecError, match="loss 'mse' cannot serve a multiclass task \\(it serves binary, multilabel\\)"):
        loss("ce+mse", MULTICLASS)
    result = cli("train", "unet", "-o", "mode=multiclass", "--loss", "bce", "--out", "/nonexistent/never",
                 "--image-size", "32", "-o", "count=8")
    assert result.code == 2 and "loss 'bce' cannot serve a multiclass task" in result.stderr


@pytest.mark.parametrize("mode, task", [("multiclass", MULTICLASS), ("multilabel", MULTILABEL)])
@pytest.mark.parametrize("name, kwargs", [("dice", {}), ("jaccard", {}), ("tversky", {"alpha": 0.3, "beta": 0.7})])
def test_overlap_losses_match_smp(mode, task, name, kwargs):
    smp = pytest.importorskip("segmentation_models_pytorch")
    logits, target, _ = batch(task, seed=3, ignore=False)
    ours = build_loss(f"{name}(smooth=0{''.join(f',{k}={v}' for k, v in kwargs.items())})",
                      zoo.default_registry(), task=task)(logits, target)
    cls = {"dice": smp.losses.DiceLoss, "jaccard": smp.losses.JaccardLoss, "tversky": smp.losses.TverskyLoss}[name]
    theirs = cls(mode, smooth=0.0, **kwargs)(logits, target)  # every class is present in this batch
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-6, atol=1e-9)


def test_lovasz_softmax_and_hinge_match_smp():
    smp = pytest.importorskip("segmentation_models_pytorch")
    logits, target, _ = batch(MULTICLASS, seed=4, ignore=False)
    torch.testing.assert_close(loss("lovasz", MULTICLASS)(logits, target),
                               smp.losses.LovaszLoss("multiclass")(logits.float(), target).double(), rtol=1e-5, atol=1e-6)
    logits, target, _ = batch(Task(), seed=5, ignore=False)
    torch.testing.assert_close(loss("lovasz", Task())(logits, target),
                               smp.losses.LovaszLoss("binary")(logits.float(), target.float()).double(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode, task", [("binary", Task()), ("multilabel", MULTILABEL)])
def test_sigmoid_focal_matches_smp(mode, task):
    smp = pytest.importorskip("segmentation_models_pytorch")
    logits, target, _ = batch(task, seed=6, ignore=False)
    torch.testing.assert_close(loss("focal(alpha=0.25,gamma=2)", task)(logits, target),
                               smp.losses.FocalLoss(mode, alpha=0.25, gamma=2.0)(logits, target).double(),
                               rtol=1e-6, atol=1e-9)


def test_cross_entropy_matches_torch_with_weights_smoothing_and_ignore():
    logits, target, valid = batch(MULTICLASS, seed=7)
    ours = loss("ce(class_weights='1,2,0.5',label_smoothing=0.1)", MULTICLASS)(logits, target, valid)
    masked = torch.where(valid[:, 0] > 0, target, torch.full_like(target, 255))
    theirs = F.cross_entropy(logits, masked, weight=torch.tensor([1, 2, 0.5], dtype=torch.float64), ignore_index=255,
                             label_smoothing=0.1)
    torch.testing.assert_close(ours, theirs)


def test_softmax_focal_and_weighted_dice_against_formulas():
    logits, target, valid = batch(MULTICLASS, seed=8)
    p = torch.softmax(logits, 1)
    keep = valid[:, 0] > 0
    pt = p.gather(1, target[:, None])[:, 0][keep]
    w = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)[target][keep]
    expected = (w * -(1 - pt) ** 2 * torch.log(pt)).sum() / w.sum()
    torch.testing.assert_close(loss("focal(class_weights='1,3,0.5')", MULTICLASS)(logits, target, valid), expected)
    onehot = F.one_hot(target, 3).permute(0, 3, 1, 2).double() * valid
    probs = p * valid
    per_class = []
    for c in range(3):
        tp = (probs[:, c] * onehot[:, c]).sum()
        fp, fn = probs[:, c].sum() - tp, onehot[:, c].sum() - tp
        per_class.append(1 - (2 * tp + 2) / (2 * tp + fp + fn + 2))
    weights = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    expected = (torch.stack(per_class) * weights).sum() / weights.sum()
    torch.testing.assert_close(loss("dice(class_weights='2,1,1')", MULTICLASS)(logits, target, valid), expected)


def test_class_weights_must_fit_the_task():
    with pytest.raises(LossSpecError, match=r"expected 3 non-negative finite numbers, one per class \(a, b, c\)"):
        loss("ce(class_weights='1,2')", MULTICLASS)
    with pytest.raises(LossSpecError, match="auto is measured on the train split"):
        loss("dice(class_weights=auto)", MULTICLASS)


# ---- metrics --------------------------------------------------------------------------------
def test_multiclass_metrics_match_torchmetrics_with_ignored_pixels():
    from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                             MulticlassJaccardIndex, MulticlassPrecision, MulticlassRecall)

    task = Task("multiclass", ("a", "b", "c", "d"))
    meter = SegmentationMeter(task)
    preds, truths = [], []
    for seed in range(3):  # accumulated over batches
        logits, target, valid = batch(task, seed=seed)
        meter.update(logits, target, valid)
        preds.append(logits.argmax(1))
        truths.append(torch.where(valid[:, 0] > 0, target, torch.full_like(target, 255)))
    pred, truth = torch.cat(preds), torch.cat(truths)
    got = meter.compute()
    kw = dict(num_classes=4, ignore_index=255)
    assert got["confusion_matrix"] == MulticlassConfusionMatrix(**kw)(pred, truth).tolist()
    for key, metric in (("iou_per_class", MulticlassJaccardIndex), ("dice_per_class", MulticlassF1Score),
                        ("precision_per_class", MulticlassPrecision), ("recall_per_class", MulticlassRecall)):
        assert got[key] == pytest.approx(metric(average=None, **kw)(pred, truth).tolist(), abs=1e-6), key
    assert got["miou"] == pytest.approx(float(MulticlassJaccardIndex(average="macro", **kw)(pred, truth)), abs=1e-6)
    assert got["pixel_accuracy"] == pytest.approx(float(MulticlassAccuracy(average="micro", **kw)(pred, truth)), abs=1e-6)


def test_multilabel_metrics_match_torchmetrics_with_ignored_pixels():
    from torchmetrics.classification import MultilabelConfusionMatrix, MultilabelF1Score, MultilabelJaccardIndex

    logits, target, valid = batch(MULTILABEL, seed=11)
    meter = SegmentationMeter(MULTILABEL)
    meter.update(logits, target, valid)
    got = meter.compute()
    preds = torch.sigmoid(logits).permute(0, 2, 3, 1).reshape(-1, 3)
    truth = torch.where(valid > 0, target, torch.full_like(target, -1)).permute(0, 2, 3, 1).reshape(-1, 3).long()
    kw = dict(num_labels=3, ignore_index=-1)
    assert got["confusion_matrix"] == MultilabelConfusionMatrix(**kw)(preds, truth).tolist()
    assert got["iou_per_class"] == pytest.approx(MultilabelJaccardIndex(average=None, **kw)(preds, truth).tolist(), abs=1e-6)
    assert got["dice_per_class"] == pytest.approx(MultilabelF1Score(average=None, **kw)(preds, truth).tolist(), abs=1e-6)


def test_a_class_absent_from_truth_and_prediction_is_left_out_of_the_mean():
    task = Task("multiclass", ("a", "b", "c"))
    meter = SegmentationMeter(task)
    logits = torch.zeros(1, 3, 2, 2)
    logits[:, 0] = 5
    meter.update(logits, torch.zeros(1, 2, 2, dtype=torch.long))
    got = meter.compute()
    assert got["iou_per_class"] == [1.0, None, None] and got["miou"] == 1.0  # as mmseg's nanmean


# ---- datasets and mask formats ----------------------------------------------------------------
def test_oxford_trimap_mode_keeps_the_three_classes(tmp_path):
    from tests.test_data import write_oxford

    write_oxford(tmp_path / "pets")
    data = zoo.create_dataset("oxford-pet", "valid", tmp_path / "pets", image_size=64, mode="trimap")
    raw = np.asarray(Image.open(tmp_path / "pets" / "annotations" / "trimaps" / "Cat_0.png"))
    resized = np.asarray(Image.fromarray(raw).resize((64, 64), Image.NEAREST))
    np.testing.assert_array_equal(data[0]["mask"][0].numpy(), resized - 1)
    assert data.cached.task.classes == ("pet", "background", "border")
    ignored = zoo.create_dataset("oxford-pet", "valid", tmp_path / "pets", image_size=64, mode="trimap", border="ignore")
    assert ignored.cached.task.classes == ("pet", "background")
    np.testing.assert_array_equal(ignored[0]["valid"][0].numpy(), (resized != 3).astype(np.uint8))


@pytest.mark.skipif(not SHARED_SAMPLE.is_dir(), reason="needs ../shared/data/oxford-pet-sample beside the checkout")
def test_shared_sample_trimaps():
    test = zoo.create_dataset("oxford-pet", "test", SHARED_SAMPLE, image_size=64, mode="trimap")
    assert set(np.unique(np.asarray(test.cached.masks)).tolist()) == {0, 1, 2}


def _folder(root: Path, masks: dict[str, Image.Image], classes: dict | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for stem, mask in masks.items():
        Image.fromarray(rng.integers(0, 255, (mask.size[1], mask.size[0], 3), dtype=np.uint8)).save(root / "images" / f"{stem}.png")
        mask.save(root / "masks" / f"{stem}.png")
    if classes is not None:
        (root / "classes.json").write_text(json.dumps(classes))
    return root


def _labels(h=20, w=24) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[4:10, 3:12], labels[12:18, 10:20] = 1, 2
    return labels


ALL = dict(valid_fraction=0, test_fraction=0)


def test_folder_palette_pngs_use_their_palette(tmp_path):
    palette = Image.fromarray(_labels()).convert("P")
    palette.putpalette([0, 0, 0, 250, 0, 0, 0, 0, 250] + [0] * 759)
    root = _folder(tmp_path / "d", {"a": palette, "b": palette})
    data = zoo.create_dataset("folder", "train", root, image_size=24, classes="bg,cat,dog", **ALL)
    assert data.cached.task == Task("multiclass", ("bg", "cat", "dog"), ((0, 0, 0), (250, 0, 0), (0, 0, 250)))
    assert set(data[0]["mask"].unique().tolist()) == {0, 1, 2}


def test_folder_rgb_colour_masks_and_16_bit_index_masks(tmp_path):
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    rgb = Image.fromarray(colours[_labels()])
    root = _folder(tmp_path / "rgb", {"a": rgb})
    data = zoo.create_dataset("folder", "train", root, image_size=24, palette="bg:000000,cat:ff0000,dog:00ff00", **ALL)
    np.testing.assert_array_equal(data[0]["mask"][0].numpy(),
                                  np.asarray(Image.fromarray(_labels()).resize((24, 24), Image.NEAREST)))
    wide = _labels().astype(np.uint16)
    wide[0, 0] = 255  # the ignore index: an invalid pixel, not a class
    root = _folder(tmp_path / "i16", {"a": Image.fromarray(wide)}, {"task": "multiclass", "classes": ["bg", "cat", "dog"]})
    item = zoo.create_dataset("folder", "train", root, image_size=24, **ALL)[0]
    assert item["valid"].sum() == 24 * 24 - 1 and item["mask"].max() == 2
    bad = _labels().astype(np.uint16)
    bad[0, :2] = (7, 300)
    root = _folder(tmp_path / "bad", {"a": Image.fromarray(bad)}, {"task": "multiclass", "classes": ["bg", "cat", "dog"]})
    with pytest.raises(DataError, match=r"bad/masks/a\.png: mask values \[7, 300\] are not classes of this dataset"):
        zoo.create_dataset("folder", "train", root, image_size=24, **ALL)
    odd = np.array(rgb).copy()
    odd[0, 0] = (1, 2, 3)
    root = _folder(tmp_path / "odd", {"a": Image.fromarray(odd)})
    with pytest.raises(DataError, match=r"colours #010203 are not class colours of this dataset"):
        zoo.create_dataset("folder", "train", root, image_size=24, palette="bg:000000,cat:ff0000,dog:00ff00", **ALL)


def test_folder_multilabel_one_mask_folder_per_label(tmp_path):
    root = tmp_path / "ml"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "images" / "a.png")
    for label, rows in (("road", slice(0, 10)), ("car", slice(5, 15))):
        (root / "masks" / label).mkdir(parents=True)
        plane = np.zeros((20, 24), np.uint8)
        plane[rows] = 255
        Image.fromarray(plane).save(root / "masks" / label / "a.png")
    data = zoo.create_dataset("folder", "train", root, image_size=24, **ALL)
    assert data.cached.task.kind == "multilabel" and data.cached.task.classes == ("car", "road")
    planes = np.asarray(data.cached.masks[0])
    assert planes.shape == (24, 24, 2) and planes[:, :, 0].sum() > 0 and (planes.sum(-1) == 2).any()  # overlap


# ---- each task from training to export ----------------------------------------------------------
TINY = dict(architecture="unet", epochs=1, image_size=32, batch_size=4, options={"base_channels": "4", "count": "16",
                                                                                  "size": "32"})


@pytest.mark.parametrize("mode, spec", [("multiclass", "ce+dice"), ("multilabel", "bce+dice")])
def test_task_round_trip(tmp_path, mode, spec):
    run = tmp_path / mode
    result = train(out=run, loss=spec, **{**TINY, "options": {**TINY["options"], "mode": mode}})
    row = result.history[0]
    assert {"valid_miou", "valid_mdice", "valid_pixel_accuracy", "valid_iou_per_class"} <= set(row)
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["kind"] == mode and config["model"]["task"] == config["task"]
    assert config["model"]["options"]["classes"] == len(config["task"]["classes"])
    assert json.loads((run / "confusion.json").read_text())["classes"] == config["task"]["classes"]
    model = zoo.load_model(run)
    assert model.config.task.kind == mode and model(torch.randn(1, 3, 33, 35)).shape == (1, model.config.task.channels, 33, 35)
    scored = cli("eval", str(run), "--split", "valid", "--json")
    assert scored.code == 0, scored.stderr
    assert json.loads(scored.stdout)["miou"] == pytest.approx(row["valid_miou"], abs=1e-9)
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    made = cli("predict", str(run), str(image), "--out", str(tmp_path / "p"), "--probs")
    assert made.code == 0, made.stderr
    probs = np.load(tmp_path / "p" / "x.png.probs.npy")
    assert probs.shape == (model.config.task.channels, 40, 50)
    if mode == "multiclass":
        mask = Image.open(tmp_path / "p" / "x.png.mask.png")
        assert mask.mode == "P" and mask.size == (50, 40)
        assert mask.getpalette()[:12] == [v for c in model.config.task.colors for v in c]
        assert (np.asarray(mask) == probs.argmax(0)).mean() > 0.99  # float16 probabilities may tie
    else:
        assert {p.name for p in (tmp_path / "p").iterdir()} >= {f"x.png.{k}.mask.png" for k in model.config.task.classes}


@pytest.mark.slow
def test_multiclass_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    train(out=run, loss="ce", **{**TINY, "options": {**TINY["options"], "mode": "multiclass"}})
    assert cli("export", str(run), "--out", str(tmp_path / "m.onnx")).code == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    model = zoo.load_model(run)
    x = torch.randn(2, 3, 35, 45)
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert out.shape == (2, 4, 35, 45)
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-3, atol=1e-4)


def test_class_weights_auto_are_measured_and_recorded(tmp_path):
    train(out=tmp_path / "r", loss="ce(class_weights=auto)", **{**TINY, "options": {**TINY["options"], "mode": "multiclass"}})
    spec = json.loads((tmp_path / "r" / "config.json").read_text())["loss"]
    weights = [float(w) for w in spec.split("class_weights='")[1].split("'")[0].split(",")]
    assert len(weights) == 4 and math.isclose(sum(weights) / 4, 1, rel_tol=1e-3)
    assert weights[0] == min(weights)  # background is the most frequent class, so it weighs least


def test_classes_override_renames_or_refuses(tmp_path):
    multiclass = {**TINY, "loss": "ce", "options": {**TINY["options"], "mode": "multiclass"}}
    result = train(out=tmp_path / "r", classes="bg,round,box,tri", **multiclass)
    assert result.history[0]["classes"] == ["bg", "round", "box", "tri"]
    with pytest.raises(UsageError, match="--classes a,b: synthetic has 4 classes"):
        train(out=tmp_path / "s", classes="a,b", **multiclass)


# ---- binary runs stay as they were ------------------------------------------------------------
# Measured with round 1's code (commit 02d55c8) on an Intel Xeon (AVX-512): the new code reproduces
# the same rows bit for bit there (and the same last.safetensors tensors). Other CPUs run other
# oneDNN kernels (another summation order): on an AMD EPYC (AVX2) epochs 1-2 still agree to 1e-6
# and epoch 3 to 0.4%, the float differences amplified by three epochs at lr 0.05.
ROUND1_ROWS = [
    {"epoch": 1, "train_loss": 1.5857412219047546, "valid_dice": 0.36837713155657736, "valid_iou": 0.23404593804902904,
     "valid_dice_dataset": 0.3490772599311855, "valid_iou_dataset": 0.211443728685108, "lr": 0.05},
    {"epoch": 2, "train_loss": 1.2130111455917358, "valid_dice": 0.39427060871082525, "valid_iou": 0.2625442850798666,
     "valid_dice_dataset": 0.34990439770554493, "valid_iou_dataset": 0.21205098493626884, "lr": 0.037500000000000006},
    {"epoch": 3, "train_loss": 0.962798535823822, "valid_dice": 0.38334472396274055, "valid_iou": 0.24939251050447359,
     "valid_dice_dataset": 0.3320353982300885, "valid_iou_dataset": 0.19906621392190152, "lr": 0.012500000000000008},
]


def test_binary_run_reproduces_round_one(tmp_path):
    result = train(out=tmp_path / "r", architecture="unet", loss="bce+dice", dataset="synthetic", epochs=3,
                   image_size=32, batch_size=4, deterministic=True, device="cpu", augment="flip,affine,color", lr=0.05,
                   amp=False, lr_by_epoch=True, recipe="report", scheduler="cosine",  # round 1's defaults
                   options={"base_channels": "8", "count": "16", "size": "32"})
    rows = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in result.history]
    assert [r["lr"] for r in rows] == pytest.approx([r["lr"] for r in ROUND1_ROWS], rel=1e-12)
    for got, expected in zip(rows, ROUND1_ROWS):
        assert got.keys() == expected.keys()
        assert got == pytest.approx(expected, rel=1e-6 if got["epoch"] == 1 else 1e-2)
    counts = {a: zoo.api.count_parameters(zoo.create_model(a)) for a in ("unet", "resnet34_unet")}
    assert counts == {"unet": 31_037_633, "resnet34_unet": 24_720_284}


def test_a_round_one_run_directory_still_works(tmp_path):
    """A run written by round 1's code (commit 02d55c8): binary by default, preprocessing from its
    config.json, its two-file checkpoint resumable."""
    import shutil

    run = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "round1-run", run)
    model = zoo.load_model(run)
    assert model.config.task == Task() and model.config.preprocessing.image_size == 32
    recorded = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    scored = cli("eval", str(run), "--split", "valid", "--json")
    assert scored.code == 0, scored.stderr
    assert json.loads(scored.stdout)["dice"] == pytest.approx(recorded["valid_dice"], abs=1e-9)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "x.png")
    assert cli("predict", str(run), str(tmp_path / "x.png"), "--out", str(tmp_path / "p")).code == 0
    result = train(resume=run, epochs=2)
    assert [r["epoch"] for r in result.history] == [1, 2] and result.history[0] == recorded
