"""Pretrained encoders (--encoder-weights), timm's own weight loading, and the names that reach
timm: every download path runs the real huggingface_hub client, on a cache laid out by the test or
against a hub the test serves on 127.0.0.1. Nothing touches the network."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import zoo
from tests.conftest import ROOT, cli
from tests.hubserver import FakeHub, populate_cache

SMALL = {"encoder.base_channels": 8}


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache for this test, offline unless the test serves a hub."""
    cache = tmp_path / "hf-hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return cache


@pytest.fixture
def fake_hub(hf_cache, monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        yield hub


def timm_style_resnet34(path, base_channels=8):
    """A checkpoint in timm's resnet34 layout (classifier included) for zoo's ResNet34 of this width."""
    encoder = zoo.create_model("unet", "resnet34", **{"encoder.base_channels": base_channels}).encoder
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in encoder.state_dict().items()}
    state |= {"fc.weight": torch.randn(1000, 8 * base_channels), "fc.bias": torch.randn(1000)}
    save_file(state, str(path))
    return state


def test_imagenet_resolves_from_an_offline_cache_and_sets_the_encoders_weights(hf_cache, tmp_path):
    state = timm_style_resnet34(tmp_path / "model.safetensors")
    populate_cache(hf_cache, "timm/resnet34.tv_in1k", {"model.safetensors": tmp_path / "model.safetensors"})
    model = zoo.create_model("unet", "resnet34", encoder_weights="imagenet", **SMALL)
    loaded = model.encoder.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    assert model.config.preprocessing.mean == (0.485, 0.456, 0.406)
    # a named tag reaches its own repo; without it in the cache, one line names encoder, tag and file
    with pytest.raises(zoo.errors.WeightsError, match=r"encoder 'resnet34' weights 'a1_in1k'.*model\.safetensors "
                       r"of hf://timm/resnet34\.a1_in1k.*HF_HUB_OFFLINE"):
        zoo.create_model("unet", "resnet34", encoder_weights="a1_in1k", **SMALL)


def test_zoos_resnet34_has_timms_resnet34_key_names_and_shapes():
    """So the real tv_in1k/a1_in1k files (timm's resnet34) load into the built-in encoder."""
    import timm

    with torch.device("meta"):
        theirs = {k: v.shape for k, v in timm.create_model("resnet34").state_dict().items()}
        ours = {k: v.shape for k, v in zoo.create_model("unet", "resnet34").encoder.state_dict().items()}
    assert ours == {k: v for k, v in theirs.items() if not k.startswith("fc.")}


def test_train_from_a_warm_cache_records_the_weights_and_their_normalization(hf_cache, tmp_path):
    timm_style_resnet34(tmp_path / "w.safetensors")
    populate_cache(hf_cache, "timm/resnet34.tv_in1k", {"model.safetensors": tmp_path / "w.safetensors"})
    out = tmp_path / "run"
    result = cli("train", "resnet34_unet", "--encoder-weights", "imagenet", "--image-size", "32", "--epochs", "1",
                 "--batch-size", "4", "-o", "count=8", "-o", "base_channels=8", "--out", str(out), "-q")
    assert result.code == 0, result.stderr
    record = json.loads((out / "config.json").read_text())
    assert record["encoder_weights"]["source"] == "hf://timm/resnet34.tv_in1k"
    assert record["encoder_weights"]["tag"] == "tv_in1k" and len(record["encoder_weights"]["sha256"]) == 64
    assert record["run"]["mean"] == [0.485, 0.456, 0.406] and record["model"]["preprocessing"]["std"][0] == 0.229


def test_offline_with_an_empty_cache_is_one_line(hf_cache, tmp_path):
    result = cli("train", "resnet34_unet", "--encoder-weights", "imagenet", "--out", str(tmp_path / "r"))
    assert result.code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for part in ("'resnet34'", "imagenet", "tv_in1k", "model.safetensors", "HF_HUB_OFFLINE", str(hf_cache),
                 "hf download"):
        assert part in line
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.parametrize("name", ["resnet34.pth", "weights.bin", "model.ckpt"])
def test_pickled_checkpoints_are_refused_with_a_conversion_hint(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04pickle")
    for flags in (["--encoder-weights", str(tmp_path / name)], ["-o", f"encoder.weights={tmp_path / name}"]):
        result = cli("train", "resnet34_unet", *flags, "--out", str(tmp_path / "r"))
        assert result.code == 1 and "pickled" in result.stderr and "safetensors.torch.save_file" in result.stderr, result.stderr
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"x")
    result = cli("train", "resnet34_unet", "--encoder-weights", str(folder), "--out", str(tmp_path / "r"))
    assert result.code == 1 and "pytorch_model.bin" in result.stderr and "safetensors.torch.save_file" in result.stderr


def test_unknown_tags_and_encoders_without_published_weights():
    with pytest.raises(zoo.errors.UsageError, match=r"unknown tag; choose imagenet, one of tv_in1k, a1_in1k"):
        zoo.create_model("unet", "resnet34", encoder_weights="in22k")
    with pytest.raises(zoo.errors.UsageError, match="no published weights"):
        zoo.create_model("unet", "unet", encoder_weights="imagenet")
    result = cli("train", "--encoder-weights", "imagenet", "--init", "somewhere")
    assert result.code == 2 and "--init somewhere and --encoder-weights imagenet: give one" in result.stderr


def test_hub_repo_weights_and_their_config_normalization(fake_hub, tmp_path):
    """--encoder-weights hf://ORG/NAME: any repo with a model.safetensors; a timm-style config.json
    beside it gives the normalization, which the model then records for eval and predict."""
    timm_style_resnet34(tmp_path / "m.safetensors")
    config = {"architecture": "resnet34", "pretrained_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    fake_hub.add("lab/r34-ssl", {"model.safetensors": tmp_path / "m.safetensors",
                                 "config.json": json.dumps(config).encode()})
    model = zoo.create_model("unet", "resnet34", encoder_weights="hf://lab/r34-ssl", **SMALL)
    assert model.config.preprocessing.mean == (0.5, 0.5, 0.5) and model.config.preprocessing.std == (0.25,) * 3
    with pytest.raises(zoo.errors.WeightsError, match=r"hf://lab/nothing: no such repository"):
        zoo.create_model("unet", "resnet34", encoder_weights="hf://lab/nothing", **SMALL)


def test_timm_loads_its_own_checkpoints_remapping_keys_and_adapting_the_stem(hf_cache, tmp_path):
    """convnext's feature wrapper names stages `stages_0` where its checkpoints say `stages.0`; timm
    loads before wrapping, so all of them arrive, and a 1-channel stem is adapted as timm does."""
    import timm
    from timm.models import adapt_input_conv

    source = timm.create_model("convnext_atto").state_dict()
    save_file({k: v.contiguous() for k, v in source.items()}, str(tmp_path / "model.safetensors"))
    encoder = zoo.create_model("unet", "timm:convnext_atto", **{"encoder.weights": str(tmp_path / "model.safetensors")}).encoder
    loaded = encoder.state_dict()
    remapped = {k.replace("model.", "", 1).replace("stages_", "stages.").replace("stem_", "stem."): v
                for k, v in loaded.items()}
    assert len(loaded) == 124 and all(torch.equal(v, source[k]) for k, v in remapped.items())
    gray = zoo.create_model("unet", "timm:convnext_atto", in_channels=1,
                            **{"encoder.weights": str(tmp_path / "model.safetensors")}).encoder
    assert torch.equal(gray.state_dict()["model.stem_0.weight"], adapt_input_conv(1, source["stem.0.weight"]))
    # imagenet: timm's default tag, from the cache; the timm pretrained config gives the normalization
    populate_cache(hf_cache, "timm/convnext_atto.d2_in1k", {"model.safetensors": tmp_path / "model.safetensors"})
    model = zoo.create_model("unet", "timm:convnext_atto", encoder_weights="imagenet")
    assert torch.equal(model.encoder.state_dict()["model.stages_2.blocks.0.conv_dw.weight"],
                       source["stages.2.blocks.0.conv_dw.weight"])
    # another model's checkpoint is an error, not a silently random encoder
    with pytest.raises(zoo.errors.WeightsError, match=r"tensors are not in it.*checkpoint of this model"):
        zoo.create_model("unet", "timm:resnet18", **{"encoder.weights": str(tmp_path / "model.safetensors")})


@pytest.mark.parametrize("channels", [1, 2, 4, 7])
def test_input_conv_adaptation_equals_timms(channels):
    from timm.models import adapt_input_conv as timms

    from zoo.encoders import adapt_input_conv

    weight = torch.randn(16, 3, 7, 7)
    assert torch.allclose(adapt_input_conv(weight, channels), timms(channels, weight), atol=1e-6)


def test_builtin_resnet34_adapts_its_stem_to_other_input_channels(tmp_path):
    state = timm_style_resnet34(tmp_path / "w.safetensors")
    model = zoo.create_model("unet", "resnet34", in_channels=1, encoder_weights=str(tmp_path / "w.safetensors"),
                             **SMALL)
    assert torch.allclose(model.encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def test_names_reach_timm_only_where_unambiguous(registry):
    assert registry.get("encoder", "resnet34").plugin == "encoders"  # the built-in wins a bare name
    assert registry.get("encoder", "timm:resnet34").member == "resnet34"
    assert registry.get("encoder", "convnext_atto").plugin == "timm"  # nobody else has it
    assert registry.alternatives(registry.get("encoder", "resnet34")) == ["timm:resnet34"]
    info = cli("info", "resnet34")
    assert "also timm:resnet34" in info.stdout and "imagenet (= tv_in1k)" in info.stdout


def test_a_name_in_two_families_is_ambiguous(monkeypatch):
    from zoo import build_registry
    from zoo.errors import AmbiguousNameError
    from zoo.plugins import make_plugin_manager
    from zoo.specs import EncoderFamilySpec

    class Other:
        @zoo.hookimpl
        def zoo_register_encoders(self):
            return [EncoderFamilySpec("other", "another family", "x:y", names=lambda: ["convnext_atto", "mine"])]

    pm, infos = make_plugin_manager(entry_points=False)
    pm.register(Other(), name="otherfam")
    reg = build_registry(pm, infos)
    with pytest.raises(AmbiguousNameError, match=r"'timm' and 'otherfam'; pick one with 'timm:convnext_atto' or "
                                                 r"'otherfam:convnext_atto'"):
        reg.get("encoder", "convnext_atto")
    assert reg.get("encoder", "mine").plugin == "otherfam"


def test_info_and_typos_never_import_torch_or_timm(tmp_path, monkeypatch):
    """Once timm's names are saved (per timm version; the first look-up does it), `zoo info` of a
    loss, an architecture or a typo answers from files: neither torch nor timm is imported."""
    from zoo_plugins.timm.names import model_names

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    model_names.cache_clear()
    assert "convnext_atto" in model_names()
    saved = list(tmp_path.glob("timm-*-models.txt"))
    assert len(saved) == 1 and "resnet34" in saved[0].read_text().split()
    probe = ("import sys\nfrom zoo.cli import main\nfor args in (['info', 'bce'], ['info', 'resnet34_unet'], "
             "['info', 'unte']):\n    try:\n        main(args)\n    except SystemExit:\n        pass\n"
             "print('IMPORTED', 'torch' in sys.modules, 'timm' in sys.modules)")
    env = {"ZOO_CACHE_DIR": str(tmp_path), "ZOO_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT)
    assert "IMPORTED False False" in run.stdout, run.stdout + run.stderr
    assert "unknown name 'unte'; did you mean unet" in run.stderr
    model_names.cache_clear()
