"""`zoo plugin new`: a plugin package that installs and passes its own test as generated.

One package per plugin: ``pyproject.toml`` with the ``zoo`` entry point, the hook module (specs only,
no torch import, so listing stays fast), the factory module, a README and a test that runs
:mod:`zoo.testing`'s contract on the new plugin. No torch import here either.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from string import Template

from zoo.errors import OptionError

KINDS = ("architecture", "encoder", "loss", "dataset")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-$dist"
version = "0.1.0"
description = $summary_toml
requires-python = ">=3.11"
dependencies = ["zoo"]

[project.optional-dependencies]
test = ["pytest"]

# The one table a plugin needs: zoo imports this module and calls its hook implementations.
[project.entry-points.zoo]
$name = "$module"

[tool.setuptools]
packages = ["$module"]
"""

README = """\
# zoo-$dist

A [zoo](https://example.invalid/zoo) $kind plugin: `$name`.

```bash
pip install -e .            # zoo finds it through the `zoo` entry point
zoo plugins                 # lists `$name` with status ok
$usage
pip install -e '.[test]' && pytest tests
```

`$module/__init__.py` declares the spec (no torch import: listing reads specs only);
`$module/$factory_module.py` builds the thing. Options declared with `Option(..., minimum=, maximum=)`
are checked by zoo before anything is built.
"""

HOOKS = {
    "architecture": '''\
"""zoo plugin: the $name architecture. Hook implementations only declare specs."""

import zoo
from zoo.specs import ArchitectureSpec, Option


@zoo.hookimpl
def zoo_register_architectures():
    return [
        ArchitectureSpec(
            name="$name",
            summary=$summary_py,
            factory="$module.model:build",
            options=(Option("classes", 1, "output channels (1 for binary)", minimum=1, maximum=4096),
                     Option("decoder_channels", 32, "width of the decoder", minimum=1, maximum=4096),
                     Option("dropout", 0.0, "dropout before the head", minimum=0, maximum=1)),
            default_encoder="resnet34",
            paper="",
            # set to the count at the defaults to have `zoo info` show it without building (the test checks it)
            params_at_defaults=None,
        )
    ]
''',
    "encoder": '''\
"""zoo plugin: the $name encoder. Hook implementations only declare specs."""

import zoo
from zoo.specs import EncoderSpec, FeatureInfo, Option


def feature_info(in_channels: int = 3, width: int = 16, depth: int = 4) -> FeatureInfo:
    """What the encoder returns, declared without building it: stage i has width * 2**i channels at
    stride 2**(i + 1)."""
    return FeatureInfo(tuple(width * 2**i for i in range(depth)), tuple(2 ** (i + 1) for i in range(depth)))


@zoo.hookimpl
def zoo_register_encoders():
    return [
        EncoderSpec(
            name="$name",
            summary=$summary_py,
            factory="$module.model:Encoder",
            feature_info=feature_info,
            options=(Option("in_channels", 3, "image channels", minimum=1, maximum=1024),
                     Option("width", 16, "first stage width", minimum=1, maximum=1024),
                     Option("depth", 4, "stages, each halving the resolution", minimum=1, maximum=6)),
        )
    ]
''',
    "loss": '''\
"""zoo plugin: the $name loss. Hook implementations only declare specs."""

import zoo
from zoo.specs import LossSpec, Option


@zoo.hookimpl
def zoo_register_losses():
    return [
        LossSpec(
            name="$name",
            summary=$summary_py,
            factory="$module.loss:Loss",
            options=(Option("gamma", 0.0, "focusing exponent: weight (1 - p_true)**gamma", minimum=0, maximum=10),),
            tasks=("binary", "multiclass", "multilabel"),
        )
    ]
''',
    "dataset": '''\
"""zoo plugin: the $name dataset. Hook implementations only declare specs."""

import zoo
from zoo.specs import DatasetSpec, Option


@zoo.hookimpl
def zoo_register_datasets():
    return [
        DatasetSpec(
            name="$name",
            summary=$summary_py,
            factory="$module.dataset:Dataset",
            options=(Option("count", 16, "train images (a quarter of that for valid and test)", minimum=1,
                            maximum=100_000),
                     Option("size", 64, "image side in pixels", minimum=8, maximum=4096)),
        )
    ]
''',
}

FACTORIES = {
    "architecture": ("model", '''\
"""The $name decoder: every encoder stage projected to one width, resized to the finest and summed,
then a 3x3 conv and a 1x1 head. It is planned from the encoder's declared ``feature_info`` and
wrapped in ``SegmentationModel``, which pads any input to the encoder's stride and crops back."""

import torch
from torch import nn

from zoo.encoders import require_stages
from zoo.layers import ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel


class Decoder(nn.Module):
    def __init__(self, info, classes: int, channels: int, dropout: float) -> None:
        super().__init__()
        require_stages("$name", info, 2)  # raises zoo.errors.IncompatibleEncoder: one line for the user
        self.project = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in info.channels)
        self.fuse = ConvBNReLU(channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(channels, classes, 1)
        self.finest = info.reductions[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = sum(resize_to(p(f), size) for p, f in zip(self.project, features))
        x = self.head(self.dropout(self.fuse(x)))
        return resize_to(x, (size[0] * self.finest, size[1] * self.finest))


def build(encoder: nn.Module, classes: int = 1, decoder_channels: int = 32, dropout: float = 0.0) -> SegmentationModel:
    """``encoder`` is built already; its ``feature_info`` lists each stage's channels and stride."""
    decoder = Decoder(encoder.feature_info, classes, decoder_channels, dropout)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
'''),
    "encoder": ("model", '''\
"""The $name encoder: strided conv-BN-ReLU stages, one feature map per stage."""

from torch import nn

from zoo.encoders import SequentialEncoder
from zoo.layers import ConvBNReLU

from $module import feature_info


class Encoder(SequentialEncoder):
    def __init__(self, in_channels: int = 3, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        self.feature_info = feature_info(in_channels, width, depth)  # the same function the spec declares
        stages, cin = [], in_channels
        for cout in self.feature_info.channels:
            stages.append(nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                                        nn.BatchNorm2d(cout), nn.ReLU(inplace=True), ConvBNReLU(cout, cout, 3)))
            cin = cout
        self.stages = nn.ModuleList(stages)
'''),
    "loss": ("loss", '''\
"""The $name loss: pixel-wise cross-entropy, focal when gamma > 0, for every task type: softmax for
multiclass, sigmoid per channel for binary and multilabel. Ignored pixels (valid == 0) count nothing."""

import torch
import torch.nn.functional as F

from zoo.losses import SegmentationLoss, class_planes, masked_mean


class Loss(SegmentationLoss):
    tasks = ("binary", "multiclass", "multilabel")

    def __init__(self, task=None, gamma: float = 0.0) -> None:
        super().__init__(task)  # self.task says which task this instance serves
        self.gamma = gamma

    def compute(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        probs, planes = class_planes(self.task, logits, target)  # (N, C, H, W) probabilities and 0/1 targets
        if self.task.kind == "multiclass":
            log_true = (F.log_softmax(logits, 1) * planes).sum(1, keepdim=True)
            p_true = (probs * planes).sum(1, keepdim=True)
        else:
            log_true = -F.binary_cross_entropy_with_logits(logits, planes, reduction="none")
            p_true = torch.where(planes > 0, probs, 1 - probs)
        return masked_mean(-(1 - p_true).pow(self.gamma) * log_true, valid)
'''),
    "dataset": ("dataset", '''\
"""The $name dataset: generated discs on noise, so the package runs without any download. Replace
``load`` with reading your files; keep the ``Sample`` contract (uint8 RGB image, a mask of its size)."""

import numpy as np

from zoo.data import Sample, SampleSource

OFFSETS = {"train": 0, "valid": 100_000, "test": 200_000}


class Dataset(SampleSource):
    def __init__(self, split: str, data_dir=None, count: int = 16, size: int = 64) -> None:
        n = count if split == "train" else max(count // 4, 1)
        self.names = [f"{split}-{i:05d}" for i in range(n)]
        self.offset, self.size = OFFSETS[split], size

    def load(self, index: int) -> Sample:
        rng = np.random.default_rng(self.offset + index)  # the same sample every time: the cache relies on it
        y, x = np.mgrid[: self.size, : self.size]
        cy, cx, r = rng.uniform(0.25, 0.75, 2).tolist() + [rng.uniform(0.1, 0.3)]
        mask = ((y / self.size - cy) ** 2 + (x / self.size - cx) ** 2 < r * r).astype(np.uint8)
        noise = rng.integers(0, 80, (self.size, self.size, 3))
        image = (noise + 150 * mask[..., None]).astype(np.uint8)
        return Sample(image, mask)

    def fingerprint(self) -> str:
        return f"{self.offset}-{len(self.names)}-{self.size}"  # changes whenever the samples would
'''),
}

TESTS = {
    "architecture": '''\
    @pytest.mark.parametrize("encoder", ["resnet34", "unet"])
    def test_architecture_contract(encoder):
        encoder_width = {"resnet34": "base_channels", "unet": "base_channels"}[encoder]
        zoo.testing.check_architecture("$name", encoder, decoder_channels=8, **{f"encoder.{encoder_width}": 8})


    def test_declared_parameter_count():
        spec = zoo.default_registry().get("architecture", "$name").spec
        if spec.params_at_defaults is not None:
            assert count_parameters(zoo.create_model("$name")) == spec.params_at_defaults
''',
    "encoder": '''\
    def test_encoder_contract():
        zoo.testing.check_encoder("$name", width=4)


    @pytest.mark.parametrize("architecture", ["unet", "fpn"])
    def test_serves_architectures(architecture):
        zoo.testing.check_architecture(architecture, "$name", export=False, **{"encoder.width": 4})
''',
    "loss": '''\
    def test_loss_contract():
        zoo.testing.check_loss("$name")
        zoo.testing.check_loss("$name(gamma=2)")


    def test_gamma_zero_is_binary_cross_entropy():
        import torch

        logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        torch.testing.assert_close(zoo.create_loss("$name")(logits, target), expected)
''',
    "dataset": '''\
    @pytest.mark.parametrize("split", ["train", "valid", "test"])
    def test_dataset_contract(split):
        zoo.testing.check_dataset("$name", split, size=32)
''',
}

TEST_HEADER = '''\
"""The plugin's own tests: zoo's contract checks (run after installing: pip install -e '.[test]')."""

import pytest

import zoo
import zoo.testing
from zoo.layers import count_parameters


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch):
    """Load this plugin by its entry-point name, whatever else is installed."""
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "$name")
    monkeypatch.setenv("ZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    zoo.default_registry.cache_clear()
    yield
    zoo.default_registry.cache_clear()


'''

USAGE = {
    "architecture": "zoo train $name --encoder resnet34 --epochs 1",
    "encoder": "zoo train unet --encoder $name --epochs 1",
    "loss": "zoo train unet --loss $name --epochs 1",
    "dataset": "zoo train unet --dataset $name --epochs 1",
}


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise OptionError(f"plugin name {name!r} must be lowercase letters, digits and underscores, "
                          "starting with a letter (it becomes the entry point and part of the module name)")
    return name


def new_plugin(name: str, kind: str, directory: Path, summary: str = "") -> list[Path]:
    """Write the package for a ``kind`` plugin called ``name`` into ``directory`` (which must not
    exist or be empty); return the files written."""
    check_name(name)
    if kind not in KINDS:
        raise OptionError(f"unknown plugin kind {kind!r}; valid: {', '.join(KINDS)}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OptionError(f"{directory}: already exists and is not an empty folder; pick another with --out")
    module = f"zoo_{name}"
    factory_module, factory = FACTORIES[kind]
    summary = " ".join((summary or f"a {kind} plugin for zoo").split())
    values = {"name": name, "dist": name.replace("_", "-"), "module": module, "kind": kind, "summary": summary,
              "summary_py": repr(summary), "summary_toml": json.dumps(summary), "factory_module": factory_module}
    values["usage"] = Template(USAGE[kind]).substitute(values)
    tests = TEST_HEADER + textwrap.dedent(TESTS[kind])
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"{module}/__init__.py": HOOKS[kind],
        f"{module}/{factory_module}.py": factory, f"tests/test_{name}.py": tests,
    }
    from zoo.atomic import write_bytes

    written = []
    for relative, template in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, Template(template).substitute(values).encode())
        written.append(path)
    return written
