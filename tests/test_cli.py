"""The CLI as users run it: JSON outputs, exit codes, one-line errors, and fast listing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli, run_zoo


def ok(*args: str) -> str:
    """stdout of `zoo ARGS` run in this process (the same main() as the console script), which must succeed."""
    result = cli(*args)
    assert result.code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command, names", [
    ("list-models", {"unet", "resnet34_unet", "fpn", "deeplabv3", "deeplabv3plus", "pspnet", "linknet",
                     "segformer", "upernet", "unetplusplus", "manet", "pan", "dpt"}),
    ("list-encoders", {"unet", "resnet34"}),
    ("list-losses", {"mse", "bce", "ce", "dice", "jaccard", "focal", "tversky", "lovasz"}),
    ("list-datasets", {"oxford-pet", "folder", "synthetic"}),
])
def test_list_json(command, names):
    rows = json.loads(ok(command, "--json"))
    assert {r["name"] for r in rows} == names
    assert all({"name", "plugin", "summary"} <= set(r) for r in rows)


def test_list_pattern_and_table():
    rows = json.loads(ok("list-losses", "b*", "--json"))
    assert [r["name"] for r in rows] == ["bce"]
    table = ok("list-encoders")
    assert "resnet34" in table and "timm" in table and "--all" in table


def test_list_encoders_all_expands_timm():
    rows = json.loads(ok("list-encoders", "convnext_at*", "--all", "--json"))
    assert {"name": "convnext_atto", "plugin": "timm"}.items() <= rows[0].items()


def test_plugins_json():
    rows = json.loads(ok("plugins", "--json"))
    losses = next(r for r in rows if r["name"] == "losses")
    assert losses == {"name": "losses", "module": "zoo_plugins.losses", "distribution": "zoo",
                      "version": losses["version"], "builtin": True, "hooks": ["zoo_register_losses"],
                      "status": "ok", "error": None, "warning": None}


def test_info_shows_parameter_count_and_options():
    out = ok("info", "unet")
    assert "31.04M (31,037,633)" in out and "base_channels" in out
    data = json.loads(ok("info", "focal", "--json"))
    assert data["kind"] == "loss" and {o["name"]: o["default"] for o in data["options"]} == {"alpha": None, "gamma": 2.0,
                                                                                         "class_weights": ""}


def unet_parameters(base: int, in_channels: int = 3, classes: int = 1) -> int:
    """The report's UNet counted by hand: DoubleConv = two bias-free 3x3 convs + two BatchNorms;
    up = 2x2 ConvTranspose with bias; head = 1x1 conv with bias."""
    double = lambda i, o: 9 * i * o + 9 * o * o + 4 * o  # noqa: E731
    w = [base * 2**k for k in range(5)]
    n = double(in_channels, w[0]) + sum(double(w[k], w[k + 1]) for k in range(4))
    n += sum(4 * w[k + 1] * w[k] + w[k] + double(2 * w[k], w[k]) for k in range(4))
    return n + w[0] * classes + classes


def test_info_params_builds_with_options():
    assert unet_parameters(64) == 31_037_633  # the formula agrees with the report's 31.0M
    data = json.loads(ok("info", "unet", "--params", "-o", "base_channels=8", "--json"))
    both = data if isinstance(data, list) else [data]
    assert next(d for d in both if d["kind"] == "architecture")["params"] == unet_parameters(8)


def test_version():
    from zoo.plugins import zoo_version

    assert run_zoo("--version", check=True).stdout.strip() == f"zoo {zoo_version()}"


@pytest.mark.parametrize("args, code, message", [
    (["info", "unte"], 2, "zoo: error: unknown name 'unte'; did you mean unet"),
    (["train", "unte", "--epochs", "1"], 2, "zoo: error: unknown architecture 'unte'; did you mean unet?"),
    (["train", "unet", "--loss", "0.3*bce+*dice"], 2,
     "zoo: error: bad loss spec '0.3*bce+*dice': expected a loss name at column 9 ('*dice')"),
    (["train", "unet", "--loss", "dcie"], 2, "zoo: error: unknown loss 'dcie'; did you mean dice"),
    (["train", "unet", "-o", "colour=red"], 2, "zoo: error: unknown option 'colour'; valid: "),
    (["train", "unet", "--optimizer", "lion"], 2, "zoo: error: unknown optimizer 'lion'; choose one of: adam, adamw, sgd"),
    (["eval", "/nonexistent/run"], 1, "zoo: error: /nonexistent/run: no such weights file"),
])
def test_errors_are_one_line_without_traceback(args, code, message):
    """In this process (the edge that maps errors is the same code; test_debug_variable_shows_traceback
    and test_bad_input run real processes)."""
    result = cli(*args)
    assert result.code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_debug_variable_shows_traceback():
    result = run_zoo("info", "unte", env={"ZOO_DEBUG": "1"})
    assert result.returncode == 2 and "Traceback" in result.stderr


def imported_modules(*args: str) -> set[str]:
    """Modules `python -X importtime -m zoo ARGS` reports importing."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "zoo", *args], capture_output=True,
                            text=True, cwd=ROOT, env=os.environ)
    assert result.returncode == 0, result.stderr[-500:]
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["list-models"], ["list-losses", "--json"], ["list-encoders"], ["info", "unet"],
                                  ["--help"], ["plugins"]])
def test_listing_does_not_import_torch(args):
    imported = imported_modules(*args)
    assert "zoo.registry" in imported
    assert not {"torch", "timm", "numpy", "PIL"} & imported


@pytest.mark.slow
def test_importtime_sees_torch_when_a_model_is_built():
    assert "torch" in imported_modules("info", "unet", "--params", "-o", "base_channels=4")


def test_info_shows_gflops_paper_and_the_encoders_an_architecture_accepts():
    from tests.conftest import cli

    small = json.loads(cli("info", "fpn", "--params", "--size", "64", "-o", "pyramid_channels=16",
                           "-o", "segmentation_channels=16", "--json").stdout)
    large = json.loads(cli("info", "fpn", "--params", "--size", "128", "-o", "pyramid_channels=16",
                           "-o", "segmentation_channels=16", "--json").stdout)
    assert small["gflops"] > 0 and large["gflops"] / small["gflops"] == pytest.approx(4, rel=0.02)  # FLOPs ~ pixels
    assert "Lin et al." in small["paper"]
    deeplab = json.loads(cli("info", "deeplabv3", "--json").stdout)
    assert "resnet34" in deeplab["accepted_encoders"] and "unet" not in deeplab["accepted_encoders"]
