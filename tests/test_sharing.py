"""Runs that travel: --init fine-tuning, the model card, `zoo push` to a hub served on 127.0.0.1 by
the test (the real huggingface_hub client on both ends), hf:// loading, and published models."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

import zoo
import zoo.api
from tests.conftest import cli, make_dist
from tests.hubserver import FakeHub

TINY = ["--image-size", "32", "--epochs", "1", "--batch-size", "4", "-o", "count=12", "-o", "base_channels=4", "-q"]


def train(out, *extra: str) -> None:
    result = cli("train", "unet", *TINY, "--out", str(out), *extra)
    assert result.code == 0, result.stderr


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """One finished binary run every test here may start from, read-only."""
    out = tmp_path_factory.mktemp("source") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "zoo-cache"))
        mp.setenv("ZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
        train(out)
    return out


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        yield hub


def test_init_across_class_counts_keeps_encoder_and_decoder_and_renews_the_head(source_run, tmp_path):
    out = tmp_path / "multi"
    result = cli("train", "unet", *TINY, "--out", str(out), "--init", str(source_run), "-o", "mode=multiclass",
                 "--epochs", "1", "--lr", "1e-9")
    assert result.code == 0, result.stderr
    assert re.search(r"note: --init .*: 2 tensors re-initialized \(1 classes there, 4 here\): decoder\.head\.weight, "
                     r"decoder\.head\.bias", result.stderr)
    record = json.loads((out / "config.json").read_text())
    assert record["init"]["reinitialized"] == ["decoder.head.weight", "decoder.head.bias"]
    assert record["init"]["decoder"] == "loaded" and record["init"]["classes"] == ["foreground"]
    # at lr 1e-9 one epoch moves nothing visible: what was loaded is the source's, the head is not
    before, after = load_file(str(source_run / "model.safetensors")), zoo.load_model(out).state_dict()
    encoder = [k for k in after if k.startswith("encoder.") and after[k].is_floating_point()
               and not k.endswith(("running_mean", "running_var"))]
    assert encoder and all(torch.allclose(after[k], before[k], atol=1e-6) for k in encoder)
    decoder = [k for k in after if k.startswith("decoder.") and not k.startswith("decoder.head.")
               and after[k].is_floating_point() and not k.endswith(("running_mean", "running_var"))]
    assert "decoder.ups.0.weight" in decoder
    assert all(torch.allclose(after[k], before[k], atol=1e-6) for k in decoder)
    assert after["decoder.head.weight"].shape[0] == 4 and before["decoder.head.weight"].shape[0] == 1


def test_init_is_strict_on_the_encoder(source_run, tmp_path):
    result = cli("train", "unet", *TINY[:-3], "-o", "base_channels=8", "--out", str(tmp_path / "r"),
                 "--init", str(source_run))
    assert result.code == 1
    assert "its encoder (unet) does not fit this run's (unet)" in result.stderr and "of other shapes" in result.stderr
    assert not (tmp_path / "r").exists()
    missing = cli("train", "unet", "--init", str(tmp_path / "nothing"), "--out", str(tmp_path / "r"))
    assert missing.code == 1 and "nothing: no such weights file" in missing.stderr
    unknown = cli("train", "unet", "--init", "pets-nothing", "--out", str(tmp_path / "r"))
    assert unknown.code == 1 and "pets-nothing: no such run directory, weights file or pretrained model" in \
        unknown.stderr


def test_every_run_has_a_model_card_from_its_own_files(source_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(source_run, run)
    card = (run / "README.md").read_text()
    record = json.loads((run / "config.json").read_text())
    assert card.startswith("---\nlibrary_name: zoo\nlicense: other\npipeline_tag: image-segmentation\n")
    assert record["parameters"] == zoo.api.count_parameters(zoo.load_model(run))
    assert f"({record['parameters']:,})" in card
    assert "| dataset | synthetic: train 12, valid 3 images |" in card
    assert "![training curves](curves.png)" in card and "trained from scratch" in card
    assert "Not evaluated on a test split yet" in card
    assert f'zoo.load_model("{source_run}")' in card  # where it was written
    # eval adds its split to the results table; `zoo card --license` sets a licence that later cards keep
    assert cli("card", str(run), "--license", "mit").code == 0
    result = cli("eval", str(run), "--split", "test", "--json")
    assert result.code == 0, result.stderr
    scored = json.loads(result.stdout)
    card = (run / "README.md").read_text()
    assert "license: mit" in card and "Not evaluated" not in card and f'zoo.load_model("{run}")' in card
    assert f"| test | train-size | {scored['miou']:.4f} | {scored['mdice']:.4f} |" in card
    assert cli("card", str(run), "--license", "MIT License").code == 2


def test_push_then_load_predict_and_eval_from_the_hub(source_run, fake_hub, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    result = cli("push", str(source_run), "lab/tiny-unet", "--json")
    assert result.code == 0, result.stderr
    pushed = json.loads(result.stdout)
    repo = fake_hub.repos["lab/tiny-unet"]
    files = repo.commits[repo.refs["main"]]
    assert set(pushed["files"]) == set(files)
    assert {"README.md", "config.json", "model.safetensors", "curves.png"} <= set(files)
    assert "checkpoint.safetensors" not in files and "last.safetensors" not in files
    assert 'zoo.load_model("hf://lab/tiny-unet")' in files["README.md"].decode()
    assert files["model.safetensors"] == (source_run / "model.safetensors").read_bytes()

    local, remote = zoo.load_model(source_run), zoo.load_model("hf://lab/tiny-unet")
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(local(x), remote(x))
    commit = repo.refs["main"]
    assert zoo.load_model(f"hf://lab/tiny-unet@{commit}").config == local.config

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    predicted = cli("predict", "hf://lab/tiny-unet", str(tmp_path / "a.png"), "--out", str(tmp_path / "p"), "-q")
    assert predicted.code == 0, predicted.stderr
    assert Image.open(tmp_path / "p" / "a.png.mask.png").size == (40, 48)
    monkeypatch.chdir(tmp_path)
    scored = cli("eval", "hf://lab/tiny-unet", "--split", "test", "--json")
    assert scored.code == 0, scored.stderr
    assert json.loads(scored.stdout)["output"] == "lab--tiny-unet-eval-test.json"  # not into the cache
    # offline, the cache alone serves it; an unknown revision or repo is one line
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert zoo.load_model("hf://lab/tiny-unet").config == local.config
    monkeypatch.delenv("HF_HUB_OFFLINE")
    for url, message in (("hf://lab/tiny-unet@v9", "no such revision"), ("hf://lab/none", "no such repository"),
                         ("hf://just-a-name", "a hub model is hf://ORG/NAME")):
        failed = cli("eval", url)
        assert failed.code in (1, 2) and message in failed.stderr and "\n" not in failed.stderr.strip()


def test_push_errors_and_dry_run(source_run, fake_hub, tmp_path, monkeypatch):
    dry = cli("push", str(source_run), "lab/x", "--dry-run")
    assert dry.code == 0 and "would upload model.safetensors" in dry.stdout and fake_hub.repos == {}
    monkeypatch.delenv("HF_TOKEN")
    denied = cli("push", str(source_run), "lab/x")
    assert denied.code == 1 and "answered 401" in denied.stderr and "HF_TOKEN" in denied.stderr
    assert cli("push", str(tmp_path), "lab/x").code == 2  # not a run
    assert "give ORG/NAME" in cli("push", str(source_run), "lab/x@dev").stderr


PUBLISHED = '''
import zoo
import zoo.api
from zoo.specs import PretrainedModelSpec


@zoo.hookimpl
def zoo_register_pretrained():
    return [PretrainedModelSpec("pets-tiny", "a tiny unet on synthetic shapes", location="hf://lab/tiny-unet",
                                sha256="{sha}", architecture="unet", encoder="unet", dataset="synthetic",
                                metrics={{"test_miou": 0.5}}, license="mit"),
            PretrainedModelSpec("tampered", "wrong checksum", location="hf://lab/tiny-unet", sha256="{bad}")]
'''


def test_published_models_by_name_with_their_checksum(source_run, fake_hub, tmp_path, monkeypatch):
    from zoo.hub import sha256

    fake_hub.add("lab/tiny-unet", {"model.safetensors": source_run / "model.safetensors",
                                   "config.json": source_run / "config.json"})
    site = tmp_path / "site"
    make_dist(site, "zoo-pets", {"pets": "zoo_pets"},
              {"zoo_pets": PUBLISHED.format(sha=sha256(source_run / "model.safetensors"), bad="0" * 64)})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "pets")
    zoo.default_registry.cache_clear()
    listed = json.loads(cli("list-models", "--pretrained", "--json").stdout)
    assert [(r["name"], r["plugin"], r["location"]) for r in listed] == [
        ("pets-tiny", "pets", "hf://lab/tiny-unet"), ("tampered", "pets", "hf://lab/tiny-unet")]
    assert "location: hf://lab/tiny-unet" in cli("info", "pets-tiny").stdout
    assert zoo.load_model("pets-tiny").config == zoo.load_model(source_run).config
    with pytest.raises(zoo.errors.WeightsError, match=r"pretrained model 'tampered': .* expected 000000000000"):
        zoo.load_model("tampered")
    out = tmp_path / "fine-tuned"
    assert cli("train", "unet", *TINY, "--out", str(out), "--init", "pets-tiny").code == 0
    assert json.loads((out / "config.json").read_text())["init"]["source"] == "pets-tiny"
