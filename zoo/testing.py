"""The contract checks zoo runs on its built-ins, for plugin test suites.

A plugin's tests become one parametrized call per kind::

    import pytest, zoo, zoo.testing

    @pytest.mark.parametrize("encoder", ["resnet34", "myencoder"])
    def test_my_architecture(encoder):
        zoo.testing.check_architecture("myarch", encoder, width=8)

Each check raises ``AssertionError`` with what is wrong; ``registry`` defaults to the installed one.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch

from zoo import registry_or_default
from zoo.registry import Registry
from zoo.tasks import Task


def check_encoder(name: str, registry: Registry | None = None, **options: Any) -> None:
    """The built encoder declares what it returns: one map per stage with the declared channels at
    the declared reduction, for sizes that are and are not multiples of its stride."""
    from zoo.encoders import check_features
    from zoo.specs import resolve

    registry = registry_or_default(registry)
    entry = registry.get("encoder", name)
    declared = (resolve(entry.spec.feature_info)(entry.member, **entry.spec.resolve_options(options)) if entry.member
                else entry.spec.describe(**options))
    encoder = entry.spec.build(entry.member, **options) if entry.member else entry.spec.build(**options)
    assert encoder.feature_info == declared, f"{name}: built {encoder.feature_info}, declared {declared}"
    stride = declared.total_stride
    for h, w in ((2 * stride, 2 * stride), (3 * stride, 2 * stride)):
        with torch.no_grad():
            features = encoder.eval()(torch.randn(1, encoder_channels(options), h, w))
        check_features(declared, features, h, w)


def encoder_channels(options: dict[str, Any]) -> int:
    return int(options.get("in_channels", options.get("encoder.in_channels", 3)))


def check_architecture(name: str, encoder: str | None = None, registry: Registry | None = None,
                       task: Task | None = None, export: bool = True, **options: Any) -> None:
    """Any input size in, ``(N, channels, H, W)`` logits out; gradients reach every parameter;
    channels_last gives the same logits; bf16 autocast stays finite; a save/load round trip through
    a weights file gives the same logits; ``torch.export`` agrees with eager (``export=False`` skips
    that, the slowest part)."""
    import zoo

    registry = registry_or_default(registry)
    task = task or Task()
    torch.manual_seed(0)
    model = zoo.create_model(name, encoder, registry=registry, task=task, **options)
    channels = encoder_channels(options)
    for h, w in ((64, 64), (63, 77)):
        out = model(torch.randn(2, channels, h, w))
        assert out.shape == (2, task.channels, h, w), f"{name}: logits {tuple(out.shape)} for a {h}x{w} input"
    model.zero_grad()
    model(torch.randn(2, channels, 64, 64)).square().mean().backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not unreached, f"{name}: no gradient reaches {unreached[:5]} (parameters the forward pass never uses)"
    model.eval()
    x = torch.randn(1, channels, 64, 64)
    with torch.no_grad():
        reference = model(x)
        cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, reference, rtol=1e-4, atol=1e-4, msg=f"{name}: channels_last differs")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.isfinite(model(x).float()).all(), f"{name}: bf16 autocast gives non-finite logits"
    model = model.to(memory_format=torch.contiguous_format)
    with TemporaryDirectory() as tmp:
        loaded = zoo.load_model(zoo.save_model(model, Path(tmp) / "m.safetensors"), registry=registry)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), reference, msg=f"{name}: differs after save and load")
    if not export:
        return
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), reference, rtol=1e-4, atol=1e-4,
                                   msg=f"{name}: torch.export differs from eager")


def check_loss(spec: str, registry: Registry | None = None, tasks: tuple[str, ...] | None = None) -> None:
    """For every task the loss serves: a finite scalar, gradients to the logits, none through ignored
    pixels (whose logits may be anything)."""
    from zoo.losses import build_loss

    registry = registry_or_default(registry)
    entry = registry.get("loss", spec.partition("(")[0])
    for kind in tasks or entry.spec.tasks:
        task = Task(kind, ("a", "b", "c")) if kind != "binary" else Task()
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(2, task.channels, 16, 12, generator=g, requires_grad=True)
        target = (torch.randint(0, 3, (2, 16, 12), generator=g) if kind == "multiclass"
                  else (torch.rand(2, task.channels, 16, 12, generator=g) > 0.6).float())
        valid = (torch.rand(2, 1, 16, 12, generator=g) > 0.25).float()
        value = build_loss(spec, registry, task=task)(logits, target, valid)
        assert value.dim() == 0 and torch.isfinite(value), f"{spec} ({kind}): {value}"
        value.backward()
        assert logits.grad.abs().sum() > 0, f"{spec} ({kind}): no gradient reaches the logits"
        assert logits.grad[(valid == 0).expand_as(logits)].abs().max() == 0, f"{spec} ({kind}): ignored pixels pull"


def check_dataset(name: str, split: str = "train", data_dir: str | Path | None = None,
                  registry: Registry | None = None, **options: Any) -> None:
    """The source's samples keep the :class:`zoo.data.Sample` contract for its task: uint8 RGB images,
    masks of the image's size holding the task's classes, unique names, a stable fingerprint."""
    import numpy as np

    registry = registry_or_default(registry)
    entry = registry.get("dataset", name)
    source = entry.spec.build(split, data_dir, **options)
    assert len(source) > 0 and len(set(source.names)) == len(source.names), f"{name}: empty or duplicate names"
    assert source.fingerprint() == source.fingerprint(), f"{name}: the fingerprint changes between calls"
    task = source.task
    for index in range(min(3, len(source))):
        sample = source.load(index)
        image, mask = sample.image, sample.mask
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, f"{name}[{index}]: image {image.shape}"
        assert mask.shape[:2] == image.shape[:2], f"{name}[{index}]: mask {mask.shape} for image {image.shape}"
        if task.kind == "multilabel":
            assert mask.shape[2:] == (task.channels,) and set(np.unique(mask)) <= {0, 1}
        else:
            assert mask.ndim == 2 and int(mask.max()) < len(task.classes) + (task.kind == "binary"), \
                f"{name}[{index}]: mask values up to {int(mask.max())} for {len(task.classes)} classes"
        if sample.valid is not None:
            assert sample.valid.shape == mask.shape[:2] and set(np.unique(sample.valid)) <= {0, 1}
