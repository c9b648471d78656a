"""``zoo train --init SOURCE``: start a run from a trained model's weights (a run directory, a
``.safetensors`` file, ``hf://ORG/NAME`` or a published model's name).

The encoder must fit exactly (every tensor, every shape): a silently random encoder is the one
failure fine-tuning must not have. The decoder is loaded where it is the same architecture, tensor
by tensor; what differs in shape (the head, when the class count differs) keeps its fresh
initialization, with a note saying so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import RunNotice, WeightsError
from zoo.models import ModelConfig


@dataclass(frozen=True)
class InitSource:
    location: str
    weights: Path
    config: ModelConfig


def starting_weights(config, encoder_entry, registry, encoder_options: dict[str, Any], starting: bool):
    """What a run's weights start from: (--encoder-weights resolved, --init opened), each None when
    not asked for or when ``starting`` is False (a resume restores the weights). Sets the config's
    mean/std, when not given, to what the starting weights were trained with (else ImageNet's)."""
    from zoo.pretrained import check_safetensors, resolve_encoder_weights
    from zoo.specs import IMAGENET_MEAN, IMAGENET_STD

    if encoder_options.get("weights"):  # -o weights=FILE: checked now, not after the data is cached
        check_safetensors(Path(str(encoder_options["weights"])).expanduser(), "-o weights")
    weights = resolve_encoder_weights(encoder_entry, config.encoder_weights) if starting else None
    init = open_init(config.init, registry) if config.init and starting else None
    start = weights or (init.config.preprocessing if init else None)
    config.mean = tuple(config.mean or (start.mean if start else IMAGENET_MEAN))
    config.std = tuple(config.std or (start.std if start else IMAGENET_STD))
    return weights, init


def open_init(location: str, registry) -> InitSource:
    from zoo.api import read_model_config, weights_path

    weights = weights_path(location, "model", registry)
    return InitSource(location, weights, read_model_config(weights))


def apply_init(model, source: InitSource) -> dict[str, Any]:
    """Load ``source`` into ``model`` (in place); what was loaded and what was not, for config.json."""
    from safetensors.torch import load_file

    from zoo.hub import sha256

    state = load_file(str(source.weights))
    own = model.state_dict()
    there, here = source.config, model.config
    encoder = [k for k in own if k.startswith("encoder.")]
    missing = [k for k in encoder if k not in state]
    wrong = [k for k in encoder if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        example = (missing or wrong)[0]
        raise WeightsError(f"--init {source.location}: its encoder ({there.encoder}) does not fit this run's "
                           f"({here.encoder}): {len(missing)} tensors missing, {len(wrong)} of other shapes "
                           f"(e.g. {example!r}); use the same encoder and encoder options")
    loaded = {k: state[k] for k in encoder}
    fresh: list[str] = []
    same_architecture = there.architecture == here.architecture
    if same_architecture:
        for key in own:
            if key in loaded:
                continue
            if key in state and state[key].shape == own[key].shape:
                loaded[key] = state[key]
            else:
                fresh.append(key)
    model.load_state_dict(loaded, strict=False)
    classes = (len(there.task.classes), len(here.task.classes))
    if not same_architecture:
        warnings.warn(f"--init {source.location}: loaded its encoder only; its decoder ({there.architecture}) "
                      f"does not fit {here.architecture}, which starts fresh", RunNotice)
    elif fresh:
        why = f"{classes[0]} classes there, {classes[1]} here" if classes[0] != classes[1] else "other shapes"
        warnings.warn(f"--init {source.location}: {len(fresh)} tensors re-initialized ({why}): "
                      f"{', '.join(fresh[:4])}{', ...' if len(fresh) > 4 else ''}", RunNotice)
    return {"source": source.location, "file": source.weights.name, "sha256": sha256(source.weights),
            "architecture": there.architecture, "encoder": there.encoder, "task": there.task.kind,
            "classes": list(there.task.classes), "loaded": len(loaded), "reinitialized": fresh,
            "decoder": "loaded" if same_architecture else "not loaded"}
