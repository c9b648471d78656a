"""The run's pictures: training curves and validation samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [row["train_loss"] for row in history], marker="o")
    left.set(title="train loss", xlabel="epoch")
    for key in ("valid_dice", "valid_iou"):
        right.plot(epochs, [row[key] for row in history], marker="o", label=key.removeprefix("valid_"))
    right.set(title="validation (per image)", xlabel="epoch", ylim=(0, 1))
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), alpha: float = 0.45) -> np.ndarray:
    """``image`` uint8 (H, W, 3) with ``mask`` (H, W) in {0, 1} tinted in ``colour``."""
    tinted = image.astype(np.float32)
    tinted[mask > 0] = tinted[mask > 0] * (1 - alpha) + np.array(colour, np.float32) * alpha
    return tinted.astype(np.uint8)


def sample_grid(images: np.ndarray, truths: np.ndarray, preds: np.ndarray, path: Path) -> None:
    """One row per sample: image | truth | prediction | prediction over the image."""
    from PIL import Image

    rows = []
    for image, truth, pred in zip(images, truths, preds):
        gray = lambda m: np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=2)  # noqa: E731
        rows.append(np.concatenate([image, gray(truth), gray(pred), overlay(image, pred)], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, format="PNG")
