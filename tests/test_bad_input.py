"""Bad input as users type it: every command-line option and every built-in plugin option gets zero,
negative, NaN, infinite, huge and malformed values. Each must end in one line on stderr that names
the option, exit 2, no traceback, and no run directory."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import zoo
from tests.conftest import builtin_registry, cli
from zoo.kinds import KINDS
from zoo.specs import EncoderFamilySpec, Option

TINY = ["--image-size", "32", "-o", "base_channels=4", "-o", "count=8", "--epochs", "1", "-q"]

TRAIN_FLAGS = [
    ("--epochs", ["0", "-1", "1.5", "abc"]),
    ("--batch-size", ["0", "-3"]),
    ("--lr", ["0", "-1", "nan", "inf", "-inf", "abc"]),
    ("--weight-decay", ["-1", "nan", "inf"]),
    ("--image-size", ["0", "4", "-3", "100000", "1e9"]),
    ("--seed", ["-1", "1e30"]),
    ("--optimizer", ["lion", ""]),
    ("--scheduler", ["stepwise", ""]),
    ("--warmup-epochs", ["-1", "nan"]),
    ("--warmup-steps", ["-2"]),
    ("--clip-grad", ["0", "-1", "nan"]),
    ("--accumulate", ["0", "-1", "1e9"]),
    ("--ema", ["0", "1", "1.5", "nan"]),
    ("--encoder-lr-mult", ["-1", "nan"]),
    ("--patience", ["0"]),
    ("--min-delta", ["-0.1"]),
    ("--val-every", ["0"]),
    ("--log", ["tensorbord", ""]),
    ("--log-every", ["0"]),
    ("--augment", ["blur", "flip,shear"]),
    ("--device", ["tpu", "cuda:9x"]),
    ("--encoder", ["resnet35"]),
    ("--encoder-weights", ["", "in22k", "hf://no-org", "hf://a/b@"]),
    ("--init", [""]),
    ("--loss", ["dcie", "0.3*bce+*dice", "bce(", ""]),
    ("--dataset", ["imagenet"]),
    ("--nproc", ["0", "-2"]),
    ("-o", ["count", "=3", "colour=red", "model.nope=1"]),
]


def flag_cases():
    for flag, values in TRAIN_FLAGS:
        for value in values:
            yield pytest.param(flag, value, id=f"{flag}={value}")


def _key(flag: str, value: str) -> str:
    """What the message must name: the flag, or for -o the option's key."""
    return flag if flag != "-o" else (value.split("=")[0].split(".")[-1] or value)


@pytest.mark.parametrize("flag, value", list(flag_cases()))
def test_train_flags(tmp_path, flag, value):
    result = cli("train", "unet", "--out", str(tmp_path / "run"), *TINY, flag, value)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith("zoo: error: ") and result.stderr.count("\n") == 1, result.stderr
    message = result.stderr.lower()
    named_by_kind = ("--encoder", "--loss", "--dataset", "--optimizer", "--scheduler", "--log", "-o")
    if flag not in named_by_kind or "=" in value and not value.startswith("=") or not value:
        assert _key(flag, value).lower().lstrip("-") in message.replace("_", "-") or flag in message, message
    assert "traceback" not in message
    assert not (tmp_path / "run").exists()


def bad_values(option: Option) -> list[str]:
    """Values outside what ``option`` declares: wrong type, NaN/inf, below/above its bounds, choices."""
    kind = option.value_type
    if option.choices is not None:
        return ["bogus"]
    if kind is bool:
        return ["maybe"]
    values = []
    if kind is int:
        values += ["abc", "1.5", "nan"]
    if kind is float:
        values += ["abc", "nan", "inf"]
    if kind is tuple:
        values += ["a,b"] + (["-1"] if option.minimum is not None else [])
    if kind in (int, float):
        step = 1 if kind is int else 0.5
        if option.minimum is not None:
            values.append(str(option.minimum if option.exclusive_minimum else option.minimum - step))
        if option.maximum is not None:
            values.append(str(int(option.maximum + step) if kind is int else option.maximum + step))
    return values


def plugin_cases():
    registry = builtin_registry()
    for kind in ("architecture", "encoder", "loss", "dataset"):
        for entry in registry.entries(kind) + registry.families(kind):
            for option in entry.spec.options:
                for value in bad_values(option):
                    yield pytest.param(kind, entry, option.name, value, id=f"{entry.name}.{option.name}={value}")


def command_for(kind: str, entry, key: str, value: str) -> list[str]:
    prefix = {"architecture": "model", "encoder": "encoder", "loss": "loss", "dataset": "dataset"}[kind]
    name = entry.qualified if not isinstance(entry.spec, EncoderFamilySpec) else "timm:resnet18"
    args = {"architecture": [name], "encoder": ["unet", "--encoder", name], "loss": ["unet", "--loss", name],
            "dataset": ["unet", "--dataset", name]}[kind]
    return ["train", *args, "-o", f"{prefix}.{key}={value}"]


@pytest.mark.parametrize("kind, entry, key, value", list(plugin_cases()))
def test_plugin_options(tmp_path, kind, entry, key, value):
    result = cli(*command_for(kind, entry, key, value), "--out", str(tmp_path / "run"), "--epochs", "1", "-q")
    assert result.code == 2, result.stderr
    line = result.stderr
    assert line.count("\n") == 1 and line.startswith("zoo: error: "), line
    assert f"{key}={value}" in line and f"{key} must be" in line, line
    assert not (tmp_path / "run").exists()


def test_every_numeric_builtin_option_declares_bounds():
    """A new built-in option cannot forget its range: counts, sizes and weights are bounded."""
    registry = builtin_registry()
    unbounded = [f"{e.name}.{o.name}" for kind in KINDS for e in registry.entries(kind) + registry.families(kind)
                 for o in e.spec.options if o.value_type in (int, float) and o.minimum is None and o.choices is None]
    assert unbounded == []


@pytest.mark.parametrize("args, message", [
    (["eval", "RUN", "--batch-size", "0"], "--batch-size 0: batch_size must be a positive integer"),
    (["eval", "RUN", "--threshold", "nan"], "--threshold nan: threshold must be a finite number in (0, 1]"),
    (["eval", "RUN", "--threshold", "2"], "--threshold 2.0: threshold must be a finite number in (0, 1]"),
    (["eval", "RUN", "--image-size", "-3"], "--image-size -3: image_size must be an integer >= 8"),
    (["eval", "RUN", "--weights", "best"], "--weights best: choose one of model, last"),
    (["eval", "RUN", "--split", "tarin"], "unknown split 'tarin'; did you mean train?"),
    (["eval", "RUN", "--device", "tpu"], "--device 'tpu': use auto, cpu, cuda, cuda:N or mps"),
    (["predict", "RUN", "IMG", "--tta", "d8"], "--tta 'd8': choose one of none, flip, d4"),
    (["predict", "RUN", "IMG", "--tile", "0"], "--tile 0: give H or HxW, each an integer from 8 to 16384"),
    (["predict", "RUN", "IMG", "--tile", "-256"], "--tile -256: give H or HxW"),
    (["predict", "RUN", "IMG", "--tile", "256x"], "--tile 256x: give H or HxW"),
    (["predict", "RUN", "IMG", "--tile", "1e9"], "--tile 1e9: give H or HxW"),
    (["predict", "RUN", "IMG", "--tile", "99999"], "--tile 99999: give H or HxW"),
    (["predict", "RUN", "IMG", "--tile", "64", "--overlap", "1"], "--overlap 1.0: overlap must be a fraction"),
    (["predict", "RUN", "IMG", "--tile", "64", "--overlap", "nan"], "--overlap nan: overlap must be a fraction"),
    (["predict", "RUN", "IMG", "--tile", "64", "--overlap", "-0.1"], "--overlap -0.1: overlap must be a fraction"),
    (["predict", "RUN", "IMG", "--stride", "32"], "--stride 32: needs --tile"),
    (["predict", "RUN", "IMG", "--tile", "64", "--stride", "65"], "--stride 65: must not exceed the tile 64x64"),
    (["predict", "RUN", "IMG", "--tile", "64", "--blend", "cosine"],
     "--blend 'cosine': choose one of gaussian, linear, constant"),
    (["predict", "RUN", "IMG", "--resolution", "full"], "--resolution 'full': choose one of native, train"),
    (["predict", "RUN", "IMG", "--resolution", "native", "--scale", "0"], "--scale 0.0: scale must be a number"),
    (["predict", "RUN", "IMG", "--resolution", "native", "--scale", "inf"], "--scale inf: scale must be a number"),
    (["predict", "RUN", "IMG", "--scale", "0.5"], "--scale 0.5: applies to --resolution native"),
    (["predict", "RUN", "IMG", "--batch-size", "0"], "--batch-size 0: batch_size must be a positive integer"),
    (["predict", "RUN", "IMG", "--probs", "--probs-format", "tiff"], "--probs-format 'tiff': choose one of npy, png16"),
    (["predict", "RUN", "IMG", "--workers", "-1"], "--workers -1: give 0 (decode in this process) or more"),
    (["eval", "RUN", "--tile", "64"], "--tile: need --full-res"),
    (["eval", "RUN", "--full-res", "--tile", "4"], "--tile 4: give H or HxW"),
    (["predict", "RUN", "IMG", "--threshold", "0"], "--threshold 0.0: threshold must be a finite number in (0, 1]"),
    (["predict", "RUN", "IMG", "--image-size", "0"], "--image-size 0: image_size must be an integer >= 8"),
    (["predict", "RUN", "IMG", "--weights", "x"], "--weights x: choose one of model, last"),
    (["export", "RUN", "--format", "tflite"], "--format 'tflite': choose one of onnx"),
    (["export", "RUN", "--weights", "x"], "--weights x: choose one of model, last"),
    (["train", "--resume", "NOWHERE"], "--resume NOWHERE: no config.json there"),
    (["train", "--config", "NOWHERE.toml"], "--config NOWHERE.toml: no such config file"),
    (["train", "--dataset", "oxford-pet", "--data-dir", "NOWHERE"], "--data-dir NOWHERE: no such directory"),
    (["info", "unte"], "unknown name 'unte'; did you mean unet"),
    (["list-models", "--bogus"], "no such option: --bogus; see 'zoo list-models --help'"),
    (["trian"], "no such command 'trian'"),
])
def test_other_commands(tmp_path, trained_tiny, args, message):
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (20, 20)).save(image)
    fill = {"RUN": str(trained_tiny), "IMG": str(image), "NOWHERE": str(tmp_path / "nowhere")}
    args = [fill.get(a, a.replace("NOWHERE", str(tmp_path / "nowhere"))) for a in args]
    message = message.replace("NOWHERE", str(tmp_path / "nowhere"))
    result = cli(*args)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith(f"zoo: error: {message}") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("toml, message", [
    ('lr = "fast"\n', "--lr fast: lr must be a positive finite number"),
    ("epochs = 0\n", "--epochs 0: epochs must be a positive integer"),
    ("lr = nan\n", "--lr nan: lr must be a positive finite number"),
    ("colour = 1\n", "unknown key 'colour'"),
    ("epochs = [1\n", "invalid TOML"),
    ("[options]\ncount = -5\n", "-o count=-5: count must be a positive integer"),
    ("options = 3\n", "options must be a table"),
])
def test_config_file_values(tmp_path, toml, message):
    (tmp_path / "run.toml").write_text(toml)
    result = cli("train", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "run"))
    assert result.code == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "run").exists()


def test_python_api_validates_the_same_way():
    from zoo.errors import OptionError

    with pytest.raises(OptionError, match=r"^base_channels=0: base_channels must be an integer in \[1, 4096\]$"):
        zoo.create_model("unet", base_channels=0)
    with pytest.raises(OptionError, match=r"count=nan"):
        zoo.create_dataset("synthetic", "train", count=math.nan)
    from zoo.engine.train import train

    with pytest.raises(OptionError, match=r"^--lr -1.0: lr must be a positive finite number$"):
        train(lr=-1.0, out=Path("/nonexistent/never"))


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory) -> Path:
    from zoo.engine.train import train

    run = tmp_path_factory.mktemp("tiny") / "run"
    train(out=run, epochs=1, image_size=32, options={"base_channels": "4", "count": "8"})
    return run
