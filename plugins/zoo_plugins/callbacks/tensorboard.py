"""TensorBoard event files under ``RUN/tensorboard`` (torch.utils.tensorboard; the tensorboard
package is the optional extra ``zoo[tensorboard]``). On resume, events after the checkpoint's step
are purged, so curves never hold a step twice."""

from __future__ import annotations

from zoo.engine.callbacks import Callback, TrainState
from zoo.errors import UsageError


class TensorBoardLogger(Callback):
    def __init__(self, images: bool = True) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise UsageError("--log tensorboard needs the tensorboard package: pip install 'zoo[tensorboard]'") \
                from None
        self.images = images
        self.writer = None

    def on_train_start(self, state: TrainState) -> None:
        self.purge = state.global_step + 1 if state.global_step else None

    def _open(self, state: TrainState) -> bool:
        """The writer, made at the first event to write (main process only)."""
        if self.writer is None and state.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(state.run_dir / "tensorboard"), purge_step=getattr(self, "purge", None))
        return self.writer is not None

    def on_step_end(self, state: TrainState) -> None:
        # with --accumulate, several batches end at one optimizer step: its first report stands
        if state.global_step == getattr(self, "last_step", None) or not self._open(state):
            return
        self.last_step = state.global_step
        self.writer.add_scalar("train/lr", state.lr, state.global_step)
        if state.loss is not None:
            self.writer.add_scalar("train/loss", state.loss, state.global_step)

    def on_validation_end(self, state: TrainState) -> None:
        if state.metrics is None or not self._open(state):
            return
        for key, value in state.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epoch",):
                group = "valid" if "valid_" in key else "train" if key.startswith("train_") else "run"
                self.writer.add_scalar(f"{group}/{key}", value, state.global_step)

    def on_checkpoint_saved(self, state: TrainState) -> None:
        if not self._open(state):
            return
        samples = state.run_dir / "samples.png"
        if self.images and samples.is_file():
            import numpy as np
            from PIL import Image

            with Image.open(samples) as image:
                self.writer.add_image("valid/samples", np.asarray(image.convert("RGB")), state.global_step,
                                      dataformats="HWC")
        self.writer.flush()

    def on_train_end(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
