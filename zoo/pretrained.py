"""``--encoder-weights``: what an encoder starts from, resolved to a local ``.safetensors`` file and
the normalization its images need.

``imagenet`` or a tag names one of the encoder's published weights (:class:`zoo.specs.WeightsSpec`),
fetched through the Hugging Face cache; ``hf://ORG/NAME[@REV]`` names any hub repo holding a
``model.safetensors``; anything else is a local file or folder. Pickled checkpoints are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import hub
from zoo.errors import UsageError, WeightsError
from zoo.specs import IMAGENET_MEAN, IMAGENET_STD, WeightsSpec

PICKLES = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".tar")
CONVERT = ("convert it once, where you trust it: load FILE with torch (weights_only=True) and write the state dict "
           "with safetensors.torch.save_file")


@dataclass(frozen=True)
class EncoderWeights:
    """Resolved weights: the local file, where it came from and the normalization it was trained with."""

    file: Path
    source: str  # hf://timm/resnet34.tv_in1k, or the path given
    tag: str = ""  # the published tag ("tv_in1k"); empty for a file
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    input_range: tuple[float, float] = (0.0, 1.0)
    license: str = ""
    normalization_known: bool = True  # False: a bare file, ImageNet's assumed

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "tag": self.tag, "file": self.file.name, "sha256": hub.sha256(self.file),
                "mean": list(self.mean), "std": list(self.std), "input_range": list(self.input_range),
                "license": self.license}


def check_safetensors(path: Path, what: str) -> Path:
    """``path`` when it is a readable ``.safetensors`` file; one-line errors otherwise."""
    if path.suffix.lower() in PICKLES:
        raise WeightsError(f"{what}: {path} is a pickled checkpoint, which zoo never loads (it can run code); "
                           + CONVERT.replace("FILE", str(path.with_suffix(""))))
    if path.suffix != ".safetensors":
        raise WeightsError(f"{what}: {path} is not a .safetensors file")
    if not path.is_file():
        raise WeightsError(f"{what}: {path}: no such file")
    return path


def _normalization(config_file: Path | None) -> dict[str, Any] | None:
    """mean/std from a timm-style config.json (``pretrained_cfg``) beside the weights, if any."""
    if config_file is None or not config_file.is_file():
        return None
    try:
        data = json.loads(config_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    cfg = data.get("pretrained_cfg", data) if isinstance(data, dict) else {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) and all(s > 0 for s in std):
        return {"mean": tuple(float(v) for v in mean), "std": tuple(float(v) for v in std),
                "license": str(data.get("license", cfg.get("license", "")) or "")}
    return None


def _from_file(path: Path, source: str, what: str, config_file: Path | None = None) -> EncoderWeights:
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if (path / "model.safetensors").is_file():
            found = [path / "model.safetensors"]
        if len(found) != 1:
            pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLES)
            extra = f" (only pickled {pickled[0]}; {CONVERT.replace('FILE', pickled[0])})" if pickled else ""
            raise WeightsError(f"{what}: {path} holds {len(found) or 'no'} .safetensors files; name one{extra}")
        config_file, path = path / "config.json", found[0]
    check_safetensors(path, what)
    norm = _normalization(config_file or path.parent / "config.json")
    if norm is None:
        return EncoderWeights(path, source, normalization_known=False)
    return EncoderWeights(path, source, mean=norm["mean"], std=norm["std"], license=norm["license"])


def _published(spec: WeightsSpec, what: str) -> EncoderWeights:
    file = hub.download(spec.repo, spec.filename, spec.revision, what=what)
    hub.verify(file, spec.sha256, what)
    return EncoderWeights(file, hub.url(spec.repo, spec.revision), spec.tag, tuple(spec.mean), tuple(spec.std),
                          tuple(spec.input_range), spec.license)


def resolve_encoder_weights(entry, value: str | None) -> EncoderWeights | None:
    """``value`` (none, imagenet, a tag, hf://..., a path) for the registry entry of an encoder."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    value = value.strip()
    what = f"--encoder-weights {value} (encoder {entry.name!r})"
    if hub.is_hub_url(value):
        try:
            repo, revision = hub.parse_url(value)
        except UsageError as exc:
            raise UsageError(f"--encoder-weights {exc}") from None
        file = hub.download(repo, "model.safetensors", revision, what=what)
        config = hub.download(repo, "config.json", revision, what=what, required=False)
        return _from_file(file, value, what, config)
    path = Path(value).expanduser()
    if path.exists() or "/" in value or path.suffix.lower() in (*PICKLES, ".safetensors"):
        return _from_file(path, value, what)
    published = entry.spec.weights(entry.member)
    if not published:
        raise UsageError(f"{what}: this encoder has no published weights; pass a local .safetensors file")
    if value.lower() == "imagenet":
        return _published(published[0], f"encoder {entry.name!r} weights 'imagenet' ({published[0].tag})")
    for spec in published:
        if value in (spec.tag, f"{entry.name}.{spec.tag}"):
            return _published(spec, f"encoder {entry.name!r} weights {spec.tag!r}")
    tags = [s.tag for s in published]
    shown = ", ".join(tags[:12]) + (f", ... ({len(tags)} in all)" if len(tags) > 12 else "")
    raise UsageError(f"{what}: unknown tag; choose imagenet, one of {shown}, a hf://ORG/NAME repo or a local file")
