"""Training runs end to end on CPU: files, reproducible eval, exact resume, faults, predict, export."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from tests.conftest import ROOT, cli, run_zoo
from zoo.engine.train import train
from zoo.errors import Interrupted, TrainingError, UsageError, WeightsError

TINY = dict(architecture="unet", loss="mse", dataset="synthetic", epochs=2, image_size=64, batch_size=8,
            options={"base_channels": "4", "count": "32", "size": "64"})
RUN_FILES = {"config.json", "model.safetensors", "last.safetensors", "checkpoint.safetensors", "metrics.jsonl",
             "curves.png", "samples.png"}


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in rows]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """`zoo train unet --loss mse --dataset synthetic --epochs 2 --image-size 64 -o base_channels=8 --out R`."""
    run = tmp_path_factory.mktemp("runs") / "R"
    result = cli("train", "unet", "--loss", "mse", "--dataset", "synthetic", "--epochs", "2", "--image-size",
                     "64", "-o", "base_channels=8", "-o", "count=32", "--out", str(run), "-q")
    assert result.code == 0, result.stderr
    assert f"run: {run}" in result.stdout
    return run


def test_run_directory(trained):
    assert RUN_FILES <= {p.name for p in trained.iterdir()}
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in trained.iterdir() if p.name in RUN_FILES}
    assert set(modes.values()) == {0o666 & ~umask}, modes  # weights too: no 0600 from a temp file
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["architecture"] == "unet" and config["model"]["options"]["encoder.base_channels"] == 8
    assert config["loss"] == "mse" and config["dataset"]["name"] == "synthetic"
    assert config["dataset"]["mean"] == [0.485, 0.456, 0.406] and config["run"]["optimizer"] == "adamw"
    # the recipe under the flags, and every value it set that no flag overrode
    assert config["run"]["recipe"] == "default" and config["run"]["recipe_values"]["optimizer"] == "adamw"
    assert "loss" not in config["run"]["recipe_values"]  # TINY gives --loss
    assert config["precision"] in ("bfloat16", "float32") and isinstance(config["run"]["amp"], bool)
    assert config["plugins"]["architecture"]["distribution"] == "zoo" and config["zoo_version"] == zoo.__version__
    rows = metrics(trained)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "valid_dice", "valid_iou", "lr", "seconds", "images_per_s"} <= set(rows[0])
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["valid_dice"] <= 1 for r in rows)
    assert Image.open(trained / "curves.png").size[0] > 100 and Image.open(trained / "samples.png").size == (256, 256)


def test_weights_open_with_safe_open(trained):
    from safetensors import safe_open

    with safe_open(str(trained / "model.safetensors"), framework="pt") as fh:
        meta = json.loads(fh.metadata()["zoo"])
        assert meta["architecture"] == "unet" and "encoder.stages.0.0.weight" in fh.keys()


def test_eval_reproduces_valid_dice(trained):
    rows = metrics(trained)
    best = max(rows, key=lambda r: r["valid_dice"])
    out = cli("eval", str(trained), "--split", "valid", "--json")
    assert out.code == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["dice"] == pytest.approx(best["valid_dice"], abs=1e-9)
    assert result["iou"] == pytest.approx(best["valid_iou"], abs=1e-9)
    last = zoo.evaluate(trained, split="valid", which="last", output=trained / "last.json")
    assert last["dice"] == pytest.approx(rows[-1]["valid_dice"], abs=1e-9)
    assert json.loads((trained / "last.json").read_text())["dice"] == last["dice"]
    table = cli("eval", str(trained), "--split", "test").stdout
    assert "dice" in table and (trained / "eval-test.json").is_file()


def test_load_model_from_file_alone(trained, tmp_path):
    lone = tmp_path / "weights.safetensors"
    lone.write_bytes((trained / "model.safetensors").read_bytes())
    model = zoo.load_model(lone)
    reference = zoo.load_model(trained)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x), reference(x))
    saved = zoo.save_model(model, tmp_path / "again.safetensors", note="hello")
    torch.testing.assert_close(zoo.load_model(saved)(x), reference(x))


def test_predict_writes_mask_and_overlay(trained, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(tmp_path / "some.png")
    result = cli("predict", str(trained), str(tmp_path / "some.png"), "--out", str(tmp_path / "P"), "--tta", "flip")
    assert result.code == 0, result.stderr
    mask = np.asarray(Image.open(tmp_path / "P" / "some.png.mask.png"))
    assert mask.shape == (50, 70) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(tmp_path / "P" / "some.png.overlay.png").size == (70, 50)


def test_bad_weights_give_one_line_errors(trained, tmp_path):
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes((trained / "model.safetensors").read_bytes()[:300])
    with pytest.raises(WeightsError, match="cut.safetensors"):
        zoo.load_model(truncated)
    other = zoo.create_model("resnet34_unet", base_channels=8, decoder_channels=8)
    zoo.save_model(other, tmp_path / "other.safetensors")
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tmp_path / "other.safetensors"), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    unet_header = json.dumps(json.loads((trained / "config.json").read_text())["model"])
    save_file(tensors, str(tmp_path / "mismatch.safetensors"), metadata={"zoo": unet_header})
    with pytest.raises(WeightsError, match="weights do not fit unet"):
        zoo.load_model(tmp_path / "mismatch.safetensors")
    save_file(tensors, str(tmp_path / "bare.safetensors"))
    with pytest.raises(WeightsError, match="no zoo config in its header and no config.json"):
        zoo.load_model(tmp_path / "bare.safetensors")
    result = cli("eval", str(truncated))
    assert result.code == 1 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # test_reliability's bitwise resume points cover it in the fast set
def test_interrupted_run_resumes_to_identical_metrics(tmp_path):
    straight = train(out=tmp_path / "straight", **TINY)

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match=r"continue with: zoo train --resume .*cut") as err:
        train(out=tmp_path / "cut", on_epoch=stop_after_first_epoch, **TINY)
    assert err.value.exit_code == 130
    assert len(metrics(tmp_path / "cut")) == 1 and (tmp_path / "cut" / "last.safetensors").is_file()
    resumed = train(resume=tmp_path / "cut")
    assert comparable(metrics(tmp_path / "cut")) == comparable(metrics(tmp_path / "straight"))
    assert comparable(resumed.history) == comparable(straight.history)


def test_mid_epoch_interruption_resumes_exactly(tmp_path):
    config = {**TINY, "augment": "flip,affine,color"}
    train(out=tmp_path / "straight", **config)

    def stop_mid_epoch(epoch, step, loss):
        if (epoch, step) == (1, 2):  # a real Ctrl-C, honoured before step 3's forward pass
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match="epoch 2, step 2"):
        train(out=tmp_path / "cut", on_step=stop_mid_epoch, **config)
    train(resume=tmp_path / "cut")
    assert comparable(metrics(tmp_path / "cut")) == comparable(metrics(tmp_path / "straight"))
    a, b = zoo.load_model(tmp_path / "cut", which="last"), zoo.load_model(tmp_path / "straight", which="last")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


class NanAfter:
    """A loss plugin whose loss turns NaN from its fifth call on (epoch 2, step 1 with 4 steps per epoch)."""

    @zoo.hookimpl
    def zoo_register_losses(self):
        return [zoo.specs.LossSpec("nan_after", "mse, then NaN", NanAfter.build)]

    @staticmethod
    def build():
        from zoo_plugins.losses.pixelwise import MSELoss

        class Poisoned(MSELoss):
            calls = 0

            def compute(self, logits, target, valid):
                Poisoned.calls += 1
                value = super().compute(logits, target, valid)
                return value * float("nan") if Poisoned.calls > 4 else value

        return Poisoned()


def test_nan_loss_stops_and_keeps_last_good_weights(tmp_path):
    from zoo.plugins import make_plugin_manager

    pm, infos = make_plugin_manager(entry_points=False)
    pm.register(NanAfter(), name="poison")
    registry = zoo.build_registry(pm, infos)
    with pytest.raises(TrainingError, match=r"loss became nan in epoch 2 by step 4; nothing was saved after the last good"):
        train(out=tmp_path / "nan", registry=registry, **{**TINY, "loss": "nan_after"})
    assert len(metrics(tmp_path / "nan")) == 1
    last = zoo.load_model(tmp_path / "nan", which="last", registry=registry)
    assert all(torch.isfinite(p).all() for p in last.parameters())
    best = zoo.load_model(tmp_path / "nan", registry=registry)
    for (name, a), (_, b) in zip(last.state_dict().items(), best.state_dict().items()):
        assert torch.equal(a, b), name  # no step was taken after epoch 1


def test_existing_run_is_never_overwritten(trained):
    with pytest.raises(UsageError, match="already holds a run with saved state; continue it with: zoo train --resume"):
        train(out=trained, **TINY)


def test_toml_config_and_flag_overrides(tmp_path):
    (tmp_path / "run.toml").write_text(
        'architecture = "resnet34_unet"\nloss = "0.5*bce+0.5*dice"\nepochs = 1\nimage_size = 64\nlr = 0.05\n'
        'optimizer = "adamw"\nscheduler = "none"\n[options]\nbase_channels = 8\ndecoder_channels = 8\ncount = 16\n')
    result = cli("train", "--config", str(tmp_path / "run.toml"), "--lr", "0.02", "--out", str(tmp_path / "R"), "-q")
    assert result.code == 0, result.stderr
    config = json.loads((tmp_path / "R" / "config.json").read_text())
    assert config["run"]["lr"] == 0.02 and config["run"]["optimizer"] == "adamw"
    assert config["model"]["architecture"] == "resnet34_unet" and config["loss"] == "0.5*bce+0.5*dice"
    assert metrics(tmp_path / "R")[0]["lr"] == 0.02


@pytest.mark.slow
def test_onnx_export_matches_torch(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra: pip install 'zoo[onnx]'")
    result = run_zoo("export", str(trained), "--out", str(tmp_path / "m.onnx"))
    assert result.returncode == 0, result.stderr
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    model = zoo.load_model(trained)
    for shape in ((1, 3, 64, 64), (3, 3, 70, 90)):
        x = torch.randn(*shape)
        (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        np.testing.assert_allclose(onnx_out, model(x).detach().numpy(), rtol=1e-3, atol=1e-4)
    # zoo export itself ran the graph at two sizes off the stride; a graph that computes something
    # else than the model is an error (checked here against other weights, and weights that overflow)
    from zoo.engine.export import verify_onnx
    from zoo.errors import ExportError

    verify_onnx(tmp_path / "m.onnx", model, 3)
    for change in (lambda p: p.mul_(1.05), lambda p: p.add_(0.5)):
        other = zoo.load_model(trained)
        with torch.no_grad():
            for p in other.parameters():
                change(p)
        with pytest.raises(ExportError, match=r"disagrees with the model at \d+x\d+"):
            verify_onnx(tmp_path / "m.onnx", other, 3)


def test_no_pickle_anywhere():
    files = [p for p in (ROOT / "zoo").rglob("*.py")] + [p for p in (ROOT / "plugins").rglob("*.py")]
    offenders = [str(p) for p in files if re.search(r"torch\.load\(|import pickle|from pickle|cPickle", p.read_text())]
    assert offenders == []
    grep = subprocess.run(["git", "grep", "-nE", r"torch\.load\(|^import pickle|^from pickle", "--", "zoo", "plugins",
                           "examples"], cwd=ROOT, capture_output=True, text=True)
    assert grep.stdout == ""


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_130(tmp_path):
    """A real SIGINT to `zoo train`: it stops at a step boundary, saves, exits 130, and resumes."""
    import os
    import signal
    import sys
    import time

    run = tmp_path / "R"
    args = [sys.executable, "-m", "zoo", "train", "unet", "--epochs", "100", "--image-size", "64", "-o",
            "base_channels=4", "-o", "count=32", "--out", str(run), "-q"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(rf"zoo: error: interrupted at epoch \d+, step \d+; state saved in {run}; "
                                        rf"continue with: zoo train --resume {run}$", lines[0])
    assert {"last.safetensors", "checkpoint.safetensors"} <= {p.name for p in run.iterdir()}
    done = len(metrics(run))
    resumed = cli("train", "--resume", str(run), "--epochs", str(done + 1), "-q")
    assert resumed.code == 0, resumed.stderr
    assert [r["epoch"] for r in metrics(run)] == list(range(1, done + 2))


def test_retained_heap_switch(monkeypatch):
    import sys

    from zoo.engine.device import retained_heap

    with retained_heap() as active:
        assert active is sys.platform.startswith("linux")
    with retained_heap(enabled=False) as active:
        assert active is False
    monkeypatch.setenv("ZOO_NO_RETAINED_HEAP", "1")
    with retained_heap() as active:
        assert active is False


def test_predict_keeps_going_and_never_collides(trained, tmp_path):
    """A broken file in the middle, a.jpg beside a.png, a nested folder: every readable file is
    predicted to its own output, the broken one is listed at the end, exit 1."""
    photos = tmp_path / "photos"
    (photos / "nested").mkdir(parents=True)
    rng = np.random.default_rng(1)
    picture = lambda h, w: Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))  # noqa: E731
    picture(30, 40).save(photos / "a.jpg")
    picture(31, 41).save(photos / "a.png")
    (photos / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    picture(20, 50).save(photos / "c.png")
    picture(25, 25).save(photos / "nested" / "a.png")
    from tests.conftest import cli

    result = cli("predict", str(trained), str(photos), "--out", str(tmp_path / "out"))
    assert result.code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        f"zoo: error: 1 of 5 inputs could not be predicted: {photos / 'b_broken.png'} (cannot decode")
    masks = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.mask.png"))
    assert masks == ["a.jpg.mask.png", "a.png.mask.png", "c.png.mask.png", "nested/a.png.mask.png"]
    assert Image.open(tmp_path / "out" / "a.png.mask.png").size == (41, 31)
    assert Image.open(tmp_path / "out" / "nested" / "a.png.mask.png").size == (25, 25)
    two_roots = cli("predict", str(trained), str(photos / "a.png"), str(photos / "nested"), "--out", str(tmp_path / "o2"))
    assert two_roots.code == 0, two_roots.stderr
    assert sorted(str(p.relative_to(tmp_path / "o2")) for p in (tmp_path / "o2").rglob("*.mask.png")) == [
        "a.png.mask.png", "nested/a.png.mask.png"]


@pytest.mark.slow
def test_compiled_training_matches_eager_closely(tmp_path):
    """`--compile` (inductor, C++ on CPU) trains one epoch; its validation Dice is eager's within bf16/fp32
    kernel differences."""
    config = dict(architecture="unet", dataset="synthetic", epochs=1, image_size=32, batch_size=4, amp=False,
                  deterministic=True, augment="none", options={"base_channels": "4", "count": "16", "size": "32"})
    eager = train(out=tmp_path / "eager", **config).history[-1]
    compiled = train(out=tmp_path / "compiled", compile=True, **config).history[-1]
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-3)
    assert compiled["valid_dice"] == pytest.approx(eager["valid_dice"], abs=0.02)
