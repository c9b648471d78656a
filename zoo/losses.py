"""Loss base class, shared functional pieces and composition (public API for loss plugins).

Every loss takes logits ``(N, 1, H, W)``, float targets in {0, 1} of the same shape and an optional
``valid`` mask (1 = pixel counts), and returns a scalar computed in float32, whatever autocast says.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from zoo.errors import LossSpecError, OptionError
from zoo.lossspec import Term, format_loss_spec, parse_loss_spec
from zoo.registry import Registry


class BinaryLoss(nn.Module):
    """Subclasses implement :meth:`compute` on float32 (or float64) tensors; ``valid`` is a float mask or None."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
        # fp16/bf16 go up to fp32; float64 stays (the formula tests run in it)
        dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.compute(logits.to(dtype), target.to(dtype), None if valid is None else valid.to(dtype))

    def compute(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


def masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over the valid pixels (all pixels when ``valid`` is None)."""
    if valid is None:
        return values.mean()
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def soft_counts(
    probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None, per_image: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft true positives, false positives and false negatives over the batch, or per image."""
    if valid is not None:
        probs, target = probs * valid, target * valid
    dims = tuple(range(1, probs.dim())) if per_image else tuple(range(probs.dim()))
    tp = (probs * target).sum(dims)
    return tp, (probs.sum(dims) - tp), (target.sum(dims) - tp)


class WeightedSum(nn.Module):
    """``sum(weight_i * loss_i)``: what a spec like ``0.3*bce+0.7*dice`` builds."""

    def __init__(self, terms: list[nn.Module], weights: list[float], spec: str = "") -> None:
        super().__init__()
        self.terms = nn.ModuleList(terms)
        self.weights = list(weights)
        self.spec = spec

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return sum(w * term(logits, target, valid) for w, term in zip(self.weights, self.terms))

    def extra_repr(self) -> str:
        return self.spec


def resolve_loss_terms(spec: str, registry: Registry, overrides: dict[str, str] | None = None,
                       provenance: dict | None = None) -> list[Term]:
    """Parse ``spec`` and check every name and option against the registry. ``overrides`` (from
    ``-o``) apply to each term whose loss declares the key. Returns terms with canonical names:
    bare where the name is unique, ``plugin:name`` otherwise."""
    terms = []
    for term in parse_loss_spec(spec):
        entry = registry.require("loss", term.name, provenance)
        kwargs = dict(term.kwargs)
        for key, value in (overrides or {}).items():
            if entry.spec.option(key) is not None:
                kwargs[key] = value
        try:
            entry.spec.resolve_options(kwargs)
        except OptionError as exc:
            raise LossSpecError(f"in loss spec {spec!r}: {exc}") from None
        unique = sum(e.name == entry.name for e in registry.entries("loss")) == 1
        terms.append(Term(term.weight, entry.name if unique else entry.qualified, kwargs))
    return terms


def qualified_terms(terms: list[Term], registry: Registry) -> list[Term]:
    """The same terms with every name as ``plugin:name``, as a run records them for resume."""
    return [replace(t, name=registry.get("loss", t.name).qualified) for t in terms]


def build_loss(spec: str, registry: Registry, overrides: dict[str, str] | None = None) -> nn.Module:
    terms = resolve_loss_terms(spec, registry, overrides)
    modules = [registry.get("loss", t.name).spec.build(**t.kwargs) for t in terms]
    if len(terms) == 1 and terms[0].weight == 1.0:
        modules[0].spec = format_loss_spec(terms)
        return modules[0]
    return WeightedSum(modules, [t.weight for t in terms], format_loss_spec(terms))
