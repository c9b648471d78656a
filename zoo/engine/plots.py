"""The run's pictures: training curves, validation samples, overlays and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.tasks import Task

CURVES = ("valid_dice", "valid_iou", "valid_miou", "valid_mdice")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict], path: Path) -> None:
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [row["train_loss"] for row in history], marker="o")
    left.set(title="train loss", xlabel="epoch")
    for key in (k for k in CURVES if history and k in history[0]):
        right.plot(epochs, [row[key] for row in history], marker="o", label=key.removeprefix("valid_"))
    right.set(title="validation", xlabel="epoch", ylim=(0, 1))
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)


def colorize(labels: np.ndarray, task: Task) -> np.ndarray:
    """Class indices (H, W) -> RGB by the task's colours; binary 0/1 -> black/white as in round 1;
    multilabel planes (H, W, C) -> each label's colour, averaged where labels overlap."""
    if task.kind == "binary":
        return np.repeat((labels * 255).astype(np.uint8)[..., None], 3, axis=2)
    colors = np.array(task.colors, np.float32)
    if task.kind == "multiclass":
        return colors[labels].astype(np.uint8)
    weight = labels.astype(np.float32)
    total = weight.sum(-1, keepdims=True)
    return np.where(total > 0, weight @ colors / np.maximum(total, 1), 0).astype(np.uint8)


def overlay(image: np.ndarray, labels: np.ndarray, task: Task | None = None, alpha: float = 0.45,
            rows: int = 512) -> np.ndarray:
    """``image`` uint8 (H, W, 3) tinted where ``labels`` predict a class (binary: red foreground;
    multiclass: each class but the first in its colour; multilabel: every label present). Done
    ``rows`` at a time, so a 20000-pixel-wide picture never exists in float."""
    task = task or Task()
    out = np.empty_like(image)
    for top in range(0, image.shape[0], rows):
        band, lab = image[top:top + rows].astype(np.float32), labels[top:top + rows]
        if task.kind == "binary":
            where, colour = lab > 0, np.broadcast_to(np.array((255, 40, 40), np.float32), band.shape)
        elif task.kind == "multiclass":
            where, colour = lab > 0, colorize(lab, task).astype(np.float32)
        else:
            where, colour = lab.any(-1), colorize(lab, task).astype(np.float32)
        band[where] = band[where] * (1 - alpha) + colour[where] * alpha
        out[top:top + rows] = band.astype(np.uint8)
    return out


def with_legend(picture: np.ndarray, task: Task) -> np.ndarray:
    """A strip under ``picture`` naming each class beside its colour (not for binary masks)."""
    if task.kind == "binary":
        return picture
    from PIL import Image, ImageDraw

    row = 18
    width = picture.shape[1]
    per_row = max(1, width // 120)
    rows = -(-len(task.classes) // per_row)
    legend = Image.new("RGB", (width, rows * row + 4), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for i, (name, colour) in enumerate(zip(task.classes, task.colors)):
        x, y = (i % per_row) * (width // per_row) + 4, (i // per_row) * row + 3
        draw.rectangle((x, y, x + 12, y + 12), fill=tuple(colour), outline=(0, 0, 0))
        draw.text((x + 16, y), name, fill=(0, 0, 0))
    return np.concatenate([picture, np.asarray(legend)], axis=0)


def sample_grid(images: np.ndarray, truths: np.ndarray, preds: np.ndarray, path: Path, task: Task | None = None) -> None:
    """One row per sample: image | truth | prediction | prediction over the image."""
    from PIL import Image

    task = task or Task()
    rows = [np.concatenate([image, colorize(truth, task), colorize(pred, task), overlay(image, pred, task)], axis=1)
            for image, truth, pred in zip(images, truths, preds)]
    Image.fromarray(with_legend(np.concatenate(rows, axis=0), task)).save(path, format="PNG")


def plot_confusion(metrics: dict[str, Any], task: Task, path: Path) -> None:
    """The confusion matrix (rows = truth, normalized per row, counts written in each cell); one 2x2
    matrix per label for multilabel."""
    plt = _pyplot()
    matrix = np.asarray(metrics["confusion_matrix"], dtype=np.float64)
    names = list(metrics["classes"])
    blocks = [(matrix[i], ["no", "yes"], name) for i, name in enumerate(names)] if task.kind == "multilabel" \
        else [(matrix, names, "")]
    size = max(3.5, 0.6 * matrix.shape[-1] + 2)
    fig, axes = plt.subplots(1, len(blocks), figsize=(size * len(blocks), size), squeeze=False)
    for ax, (counts, labels, title) in zip(axes[0], blocks):
        share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
        ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
               xlabel="prediction", ylabel="truth", title=title)
        for (r, c), value in np.ndenumerate(counts):
            ax.text(c, r, f"{share[r, c]:.2f}\n{int(value)}", ha="center", va="center", fontsize=7,
                    color="white" if share[r, c] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)
