"""Loss base classes, shared functional pieces and composition (public API for loss plugins).

A loss takes logits ``(N, C, H, W)``, a target and an optional ``valid`` mask ``(N, 1, H, W)``
(1 = the pixel counts) and returns a scalar computed in float32 whatever autocast says. The target
follows the task (:class:`zoo.tasks.Task`): binary ``(N, 1, H, W)`` float 0/1, multiclass
``(N, H, W)`` class indices (any value where ``valid`` is 0), multilabel ``(N, C, H, W)`` float 0/1.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import LossSpecError, OptionError
from zoo.lossspec import Term, format_loss_spec, parse_loss_spec
from zoo.registry import Registry
from zoo.specs import resolve
from zoo.tasks import TASK_KINDS, Task


class SegmentationLoss(nn.Module):
    """A loss for the tasks in ``tasks``; subclasses implement :meth:`compute` on float32 (or
    float64) tensors. ``self.task`` says which task this instance serves."""

    tasks: ClassVar[tuple[str, ...]] = TASK_KINDS

    def __init__(self, task: Task | None = None) -> None:
        super().__init__()
        self.task = task or Task()
        if self.task.kind not in self.tasks:
            raise LossSpecError(f"{type(self).__name__} cannot serve a {self.task.kind} task "
                                f"(it serves {', '.join(self.tasks)})")

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        expected = logits.shape[:1] + logits.shape[2:] if self.task.kind == "multiclass" else logits.shape
        if target.shape != expected:
            raise ValueError(f"{self.task.kind} logits {tuple(logits.shape)} need a target of shape {tuple(expected)}, "
                             f"got {tuple(target.shape)}")
        # fp16/bf16 go up to fp32; float64 stays (the formula tests run in it)
        dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
        target = target.long() if self.task.kind == "multiclass" else target.to(dtype)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.compute(logits.to(dtype), target, None if valid is None else valid.to(dtype))

    def compute(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


class BinaryLoss(SegmentationLoss):
    """A binary-only loss (round 1's plugin API): ``compute(logits, target, valid)`` on tensors of one shape."""

    tasks = ("binary",)


def masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over the valid pixels (all pixels when ``valid`` is None)."""
    if valid is None:
        return values.mean()
    valid = valid.expand_as(values)
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def class_planes(task: Task, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and 0/1 targets as ``(N, C, H, W)`` planes: sigmoid for binary and multilabel,
    softmax and one-hot for multiclass."""
    if task.kind == "multiclass":
        onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
        return torch.softmax(logits, 1), onehot.to(logits.dtype)
    return torch.sigmoid(logits), target


def soft_counts(
    probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None, per_image: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft true positives, false positives and false negatives per class (dim 1), summed over the
    batch ``(C,)`` or per image ``(N, C)``."""
    if valid is not None:
        probs, target = probs * valid, target * valid
    dims = (2, 3) if per_image else (0, 2, 3)
    tp = (probs * target).sum(dims)
    return tp, (probs.sum(dims) - tp), (target.sum(dims) - tp)


def parse_class_weights(text: str, task: Task) -> torch.Tensor | None:
    """``"1,2,5"`` -> one weight per class the task scores (binary: background, foreground);
    ``""`` -> None. ``auto`` is resolved from the train split by the engine before a loss is built."""
    if not text:
        return None
    if text == "auto":
        raise LossSpecError("class_weights=auto is measured on the train split: zoo train resolves it, "
                            "the Python API needs the weights themselves")
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise LossSpecError(f"class_weights={text!r}: expected comma-separated numbers") from None
    n = len(task.metric_classes)
    if len(values) != n or any(not v >= 0 or v == float("inf") for v in values) or not any(values):
        raise LossSpecError(f"class_weights={text!r}: expected {n} non-negative finite numbers, one per class "
                            f"({', '.join(task.metric_classes)})")
    return torch.tensor(values)


def weighted_class_mean(per_class: torch.Tensor, weights: torch.Tensor | None, task: Task) -> torch.Tensor:
    """Mean over the class dimension (last), weighted; a binary loss has only the foreground's term."""
    if weights is None:
        return per_class.mean()
    w = weights.to(per_class)[1:] if task.kind == "binary" else weights.to(per_class)
    return (per_class * w).sum(-1).mean() / w.sum().clamp_min(1e-12)


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


def build_loss(spec: str, registry: Registry, overrides: dict[str, str] | None = None,
               task: Task | None = None) -> "WeightedSum":
    """The module a spec such as ``0.3*bce+0.7*dice`` names, for ``task`` (binary by default). A loss
    that cannot serve the task says so by name."""
    task = task or Task()
    terms = resolve_loss_terms(spec, registry, overrides)
    modules = []
    for term in terms:
        entry = registry.get("loss", term.name)
        if task.kind not in entry.spec.tasks:
            raise LossSpecError(f"loss {entry.name!r} cannot serve a {task.kind} task (it serves "
                                f"{', '.join(entry.spec.tasks)})")
        factory, options = resolve(entry.spec.factory), entry.spec.resolve_options(term.kwargs)
        binary_only = tuple(entry.spec.tasks) == ("binary",)
        modules.append(factory(**options) if binary_only else factory(task=task, **options))
    return WeightedSum(modules, [t.weight for t in terms], format_loss_spec(terms))
