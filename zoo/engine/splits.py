"""What a run derives from its data: the task (with --classes), class weights from pixel
frequencies, and the sample picture of a split cached at native size."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from zoo.errors import UsageError
from zoo.tasks import Task


def resolve_task(declared: Task, names: str | None, dataset: str) -> Task:
    """The dataset's task, with ``--classes`` names when given (the same number of them)."""
    if not names:
        return declared
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if wanted == list(declared.classes):
        return declared
    if len(wanted) != len(declared.classes):
        raise UsageError(f"--classes {names}: {dataset} has {len(declared.classes)} classes "
                         f"({', '.join(declared.classes)}); give that many names")
    return declared.with_classes(wanted)


def resolve_auto_weights(term, split, task: Task):
    """``class_weights=auto``: inverse class frequency on the train split, normalized to mean 1
    (a class absent from it gets the mean weight), written into the spec so the run records it."""
    if term.kwargs.get("class_weights", "").strip("'\"") != "auto":
        return term
    counts = class_pixel_counts(split, task)
    freq = counts / max(counts.sum(), 1)
    weights = np.where(freq > 0, 1 / np.maximum(freq, 1e-12), 0)
    present = weights > 0
    weights = np.where(present, weights / weights[present].mean(), 1.0)
    text = ",".join(f"{w:.4g}" for w in weights)
    return replace(term, kwargs={**term.kwargs, "class_weights": f"'{text}'"})


def native_samples(predictor, split, count: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``count`` images of a native split predicted at their own size, then image, truth
    and prediction resized to ``size`` (keeping the aspect) for one picture."""
    from zoo.data.cache import resize_sample
    from zoo.data.source import Sample

    images, masks, preds = [], [], []
    for i in range(count):
        image, mask = np.asarray(split.images[i]), np.asarray(split.masks[i])
        pred = predictor(image).mask
        shown, truth, _ = resize_sample(Sample(image, mask), size, keep_aspect=True)
        _, predicted, _ = resize_sample(Sample(image, pred.astype(mask.dtype)), size, keep_aspect=True)
        images.append(shown), masks.append(truth), preds.append(predicted)
    return np.stack(images), np.stack(masks), np.stack(preds)


def class_pixel_counts(split, task: Task) -> np.ndarray:
    """Valid pixels of each metric class in a cached split, read in chunks."""
    n = len(task.metric_classes)
    counts = np.zeros(n, np.float64)
    for masks, valid in split.pixel_blocks():
        if task.kind == "multilabel":
            weight = 1 if valid is None else valid[:, None]
            counts += (masks * weight).sum(0)
        else:
            counts += np.bincount((masks if valid is None else masks[valid]).reshape(-1), minlength=n)[:n]
    return counts
