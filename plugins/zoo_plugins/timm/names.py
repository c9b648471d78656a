"""timm's model names and published weights, without importing timm where a file can answer.

`zoo info bce` or a typo asks every encoder family whether it has the name; importing timm (and
torch) for that took 2.6 s. The names are saved once per installed timm version, read from
importlib.metadata without importing it, so a later look-up reads one small file.
"""

from __future__ import annotations

import importlib.metadata
import os
from functools import lru_cache

from zoo.paths import default_cache_dir
from zoo.specs import WeightsSpec


@lru_cache(maxsize=1)
def model_names() -> tuple[str, ...]:
    version = importlib.metadata.version("timm")
    saved = default_cache_dir() / f"timm-{version}-models.txt"
    try:
        names = tuple(saved.read_text().split())
        if names:
            return names
    except OSError:
        pass
    import timm

    names = tuple(timm.list_models())
    try:  # a cache: a read-only home only costs the import next time
        saved.parent.mkdir(parents=True, exist_ok=True)
        partial = saved.with_name(f".{saved.name}.{os.getpid()}.partial")
        partial.write_text("\n".join(names) + "\n")
        os.replace(partial, saved)
    except OSError:
        pass
    return names


def pretrained_weights(name: str) -> list[WeightsSpec]:
    """timm's published weights of model ``name`` on the Hugging Face Hub, its default first (what
    `--encoder-weights imagenet` picks), each with the normalization of its pretrained config."""
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    cfgs = get_arch_pretrained_cfgs(name)
    default = get_pretrained_cfg(name)
    first = getattr(default, "tag", None)
    ordered = sorted(cfgs.items(), key=lambda item: item[0].partition(".")[2] != first)
    specs = []
    for full, cfg in ordered:
        if not cfg.hf_hub_id:  # only a URL to a pickle: not loadable here
            continue
        mean = tuple(float(v) for v in cfg.mean)
        specs.append(WeightsSpec(full.partition(".")[2] or "default", cfg.hf_hub_id,
                                 cfg.hf_hub_filename or "model.safetensors", mean=mean,
                                 std=tuple(float(v) for v in cfg.std), license=str(cfg.license or ""),
                                 summary=f"timm {full}"))
    return specs
