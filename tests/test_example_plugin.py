"""The example package, installed for real, is discovered through its `zoo` entry point."""

from __future__ import annotations

import json
import os

import torch

import zoo
from tests.conftest import run_zoo
from zoo.registry import build_registry


def test_discovered_through_entry_point(with_example):
    registry = build_registry()
    info = registry.plugin_info("example")
    assert info is not None and info.status == "ok" and not info.builtin
    assert (info.distribution, info.version, info.module) == ("zoo-plugin-example", "0.2.0", "zoo_plugin_example")
    assert set(info.hooks) == {"zoo_register_encoders", "zoo_register_losses", "zoo_register_datasets"}
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
