"""The example package, installed for real, is discovered through its `zoo` entry point."""

from __future__ import annotations

import json
import os

import pytest
import torch

import zoo
from tests.conftest import run_zoo
from zoo.registry import build_registry


def test_discovered_through_entry_point(with_example):
    registry = build_registry()
    info = registry.plugin_info("example")
    assert info is not None and info.status == "ok" and not info.builtin
    assert (info.distribution, info.version, info.module) == ("zoo-plugin-example", "0.4.0", "zoo_plugin_example")
    assert set(info.hooks) == {"zoo_register_architectures", "zoo_register_encoders", "zoo_register_losses",
                              "zoo_register_datasets", "zoo_register_callbacks"}
    assert registry.get("encoder", "tiny").plugin == "example"
    assert registry.get("loss", "boundary_bce").plugin == "example"
    assert registry.get("dataset", "stripes").plugin == "example"


def test_cli_lists_the_installed_plugin(with_example):
    env = {"PYTHONPATH": os.pathsep.join([str(with_example), os.environ.get("PYTHONPATH", "")])}
    plugins = json.loads(run_zoo("plugins", "--json", env=env, check=True).stdout)
    example = next(p for p in plugins if p["name"] == "example")
    assert example["status"] == "ok" and example["distribution"] == "zoo-plugin-example"
    encoders = json.loads(run_zoo("list-encoders", "--json", env=env, check=True).stdout)
    assert {"name": "tiny", "plugin": "example"}.items() <= next(e for e in encoders if e["name"] == "tiny").items()


def test_plugin_parts_train_together(with_example, tmp_path):
    registry = build_registry()
    model = zoo.create_model("unet", encoder="tiny", registry=registry, width=4)
    loss = zoo.create_loss("boundary_bce(boost=2)+dice", registry=registry)
    data = zoo.create_dataset("stripes", "train", registry=registry, image_size=32)
    batch = torch.stack([data[i]["image"] for i in range(4)]).float() / 255
    masks = torch.stack([data[i]["mask"] for i in range(4)]).float()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = loss(model(batch), masks)
    before.backward()
    optimizer.step()
    assert model(batch).shape == (4, 1, 32, 32) and torch.isfinite(before)


def test_the_example_architecture_keeps_zoos_contract(with_example):
    """What the example's own tests/test_plugin.py runs, through the installed entry point."""
    import zoo.testing

    registry = build_registry()
    zoo.testing.check_architecture("sumseg", "tiny", registry=registry, export=False, width=8, **{"encoder.width": 4})
    zoo.testing.check_architecture("sumseg", "resnet34", registry=registry, width=8, **{"encoder.base_channels": 8})
    zoo.testing.check_encoder("tiny", registry=registry, width=4)
    zoo.testing.check_loss("boundary_bce", registry=registry)
    zoo.testing.check_dataset("stripes", "train", registry=registry)
    from zoo.errors import IncompatibleEncoder

    with pytest.raises(IncompatibleEncoder, match="sumseg needs an encoder with at least 2 stages; this one has 1"):
        zoo.create_model("sumseg", "unet", registry=registry, depth=1, base_channels=4)


def test_a_distribution_name_in_zoo_load_plugins_gets_the_entry_point_names(with_example, monkeypatch):
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "zoo-plugin-example")
    info = build_registry().plugin_info("zoo-plugin-example")
    assert info.error == ("named in ZOO_LOAD_PLUGINS but not installed (it is a distribution; ZOO_LOAD_PLUGINS "
                          "takes entry-point names: example)")


def test_the_example_logger_writes_its_file(with_example, tmp_path):
    from zoo.engine.train import train

    registry = build_registry()
    assert registry.get("callback", "textlog").plugin == "example"
    train(out=tmp_path / "r", registry=registry, architecture="unet", dataset="stripes", epochs=2, image_size=32,
          batch_size=4, log="jsonl,textlog", options={"base_channels": "4", "keys": "train_loss"})
    lines = (tmp_path / "r" / "example-log.txt").read_text().splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1"], ["epoch", "2"]]
    assert all(line.split()[-1].startswith("train_loss=") for line in lines)
