"""A rich progress bar per epoch on stderr, with the loss and images/s."""

from __future__ import annotations

from typing import Any


class EpochBar:
    def __init__(self, show: bool, epoch: int, epochs: int, steps: int) -> None:
        self.show, self.epoch, self.epochs, self.steps = show, epoch, epochs, steps
        self.progress = None

    def __enter__(self) -> "EpochBar":
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn(f"epoch {self.epoch + 1}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  {task.fields[speed]:.1f} img/s"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.steps, loss=float("nan"), speed=0.0)
        return self

    def show_step(self, step: int, loss: float, speed: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=loss, speed=speed)

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    @staticmethod
    def summary(row: dict[str, Any], epochs: int, monitor: str = "valid_dice") -> None:
        import sys

        print(f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.4f}  {describe(row, monitor)}  "
              f"{row['seconds']:.1f}s  {row['images_per_s']:.1f} img/s", file=sys.stderr)


def describe(row: dict[str, Any], monitor: str = "valid_dice") -> str:
    """The validation figures of a metrics row in a few words: Dice and IoU, or mIoU and mDice."""
    if "valid_dice" in row:
        text = f"valid dice {row['valid_dice']:.4f}  iou {row['valid_iou']:.4f}"
    elif "valid_miou" in row:
        text = f"valid miou {row['valid_miou']:.4f}  mdice {row['valid_mdice']:.4f}"
    else:
        return "not validated (--val-every)"
    key = monitor.partition(":")[0]
    if key not in ("valid_dice", "valid_miou") and isinstance(row.get(key), (int, float)):
        text += f"  {key} {row[key]:.4f}"
    return text
