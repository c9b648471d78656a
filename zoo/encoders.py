"""The encoder contract (public API for plugin authors).

An encoder is an ``nn.Module`` with a ``feature_info`` (:class:`zoo.specs.FeatureInfo`) whose
``forward(x)`` returns one feature map per declared stage, from high to low resolution. Its spec
declares the same feature info without building the module, so decoders can be planned cheaply.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from zoo.errors import WeightsError
from zoo.specs import FeatureInfo


class Encoder(nn.Module):
    feature_info: FeatureInfo

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class SequentialEncoder(Encoder):
    """An encoder that is a list of stages run in order, each one's output being a feature map:
    subclasses set ``self.stages`` (an ``nn.ModuleList``) and ``self.feature_info``."""

    stages: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def check_features(info: FeatureInfo, features: list[torch.Tensor], height: int, width: int) -> None:
    """Raise if ``features`` do not match what ``info`` declares for an input of ``height x width``."""
    if len(features) != len(info.channels):
        raise ValueError(f"encoder returned {len(features)} feature maps, declared {len(info.channels)}")
    for f, c, r in zip(features, info.channels, info.reductions):
        expected = (c, -(-height // r), -(-width // r))
        if tuple(f.shape[1:]) != expected and tuple(f.shape[1:]) != (c, height // r, width // r):
            raise ValueError(f"feature of shape {tuple(f.shape)} does not match declared {c}@{r}")


def load_encoder_weights(module: nn.Module, path: str | Path, prefix: str = "") -> None:
    """Load a local ``.safetensors`` state dict into ``module``, ignoring keys it has no use for
    (a classifier head). Pickled checkpoints are refused: zoo never unpickles user files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: encoder weights must be a .safetensors file (pickled checkpoints "
                           "are not loaded); convert with safetensors.torch.save_file")
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    if not usable or missing:
        raise WeightsError(f"{path}: {len(missing)} of the encoder's tensors are missing "
                           f"(e.g. {missing[:3]}); is it a checkpoint of this backbone?")
    wrong = [k for k, v in usable.items() if v.shape != own[k].shape]
    if wrong:
        raise WeightsError(f"{path}: shape mismatch for {wrong[:3]} (in_channels or width differ?)")
    module.load_state_dict(usable, strict=False)
