"""The hot loop: training steps and the end of an epoch.

Nothing in a step waits for the device: the loss is summed on the device (float64) and read once
per logging interval (``--log-every``) and at the epoch's end, where a non-finite sum stops the run
before anything is saved; under DDP the ranks agree on stop requests and bad losses at those reads
only. Stop requests are honoured at optimizer-step boundaries (between accumulation windows), where
the state resumes exactly.
"""

from __future__ import annotations

import math
import time
from contextlib import closing, nullcontext
from typing import TYPE_CHECKING, Any, Callable

import torch

from zoo.engine.device import autocast
from zoo.engine.evaluate import score
from zoo.engine.signals import StopFlag
from zoo.engine.state import Progress
from zoo.errors import TrainingError
from zoo.faults import reached

if TYPE_CHECKING:
    from zoo.engine.run import Run


class LossTally:
    """The epoch's loss sum on the device; ``read()`` is the only host synchronization."""

    def __init__(self, device: torch.device, start: float, seen: int) -> None:
        self.sum = torch.tensor(start, dtype=torch.float64, device=device)
        self.seen = seen  # images: known on the host
        self.read_sum, self.read_seen = start, seen

    def add(self, loss: torch.Tensor, images: int) -> None:
        self.sum += loss.detach().to(torch.float64) * images
        self.seen += images

    def read(self) -> tuple[float, float]:
        """(the epoch's sum so far, the mean over the images since the last read)."""
        total = self.sum.item()
        mean = (total - self.read_sum) / max(self.seen - self.read_seen, 1)
        self.read_sum, self.read_seen = total, self.seen
        return total, mean


def train_epoch(run: "Run", progress: Progress, stop: StopFlag,
                on_step: Callable[[int, int, float | None], None] | None) -> bool:
    """Run the epoch's remaining batches; False when a stop request ended it early."""
    config = run.config
    run.set_encoder_frozen(progress.epoch < config.freeze_encoder_epochs)
    run.net.train()
    batches = len(run.train_loader)
    window_size = config.accumulate
    tally = LossTally(run.device, progress.loss_sum, progress.seen)
    run.tally = tally
    started = time.perf_counter() - progress.seconds
    lr = run.schedule.lr(progress.epoch, progress.step // window_size)
    with closing(run.train_loader.epoch(progress.epoch, progress.step)) as stream:
        for batch in stream:
            reached(f"step:{progress.epoch + 1}:{progress.step + 1}")
            start = progress.step - progress.step % window_size
            if progress.step == start:  # a window begins: the state here resumes exactly
                if not run.dist.enabled and stop.requested is not None:
                    return False
                lr = run.schedule.apply(run.optimizer, progress.epoch, start // window_size)
            window = min(window_size, batches - start)
            last = progress.step + 1 - start == window
            with (nullcontext() if last or not run.dist.enabled else run.net.no_sync()):
                with autocast(run.device, run.dtype):
                    logits = run.net(batch.images)
                    loss = run.loss_fn(logits, batch.masks, batch.valid)
                tally.add(loss, len(batch.indices))
                run.scaler.scale(loss / window if window > 1 else loss).backward()
            if last:
                optimizer_step(run)
            progress.step += 1
            progress.seen = tally.seen
            progress.seconds = time.perf_counter() - started
            value = None
            if progress.step % config.log_every == 0 or progress.step == batches:
                value = check_interval(run, progress, tally, stop)
                if value is None:  # the ranks agreed to stop (DDP)
                    return False
            run.emit("on_step_end", progress, lr=lr, loss=value)
            if on_step is not None:
                on_step(progress.epoch, progress.step, value)
    return True


def optimizer_step(run: "Run") -> None:
    if run.config.clip_grad is not None:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.plain.parameters(), run.config.clip_grad, foreach=True)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update(run.plain)


def check_interval(run: "Run", progress: Progress, tally: LossTally, stop: StopFlag) -> float | None:
    """Read the loss (one sync); a non-finite sum ends the run with nothing saved after the last good
    state. Under DDP the ranks also agree here on stopping: None means stop now."""
    total, mean = tally.read()
    progress.loss_sum = total
    bad, stopping = run.agree(not math.isfinite(total), stop.requested is not None)
    if bad:
        raise TrainingError(f"loss became {mean if not math.isfinite(mean) else 'non-finite'} in epoch "
                            f"{progress.epoch + 1} by step {progress.step}; nothing was saved after the last good "
                            "state (try a lower --lr, --clip-grad or --warmup-epochs)")
    if stopping and run.dist.enabled and progress.step % run.config.accumulate == 0:
        return None
    return mean


def validates(config, epoch: int) -> bool:
    """Whether epoch ``epoch`` (0-based) ends with a validation: every ``--val-every``-th and the last."""
    return (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs


def finish_epoch(run: "Run", progress: Progress) -> dict[str, Any]:
    """The epoch's metrics row: mean training loss over every rank, then validation of the model (and
    of its moving average) when this epoch validates."""
    totals = torch.tensor([progress.loss_sum, float(progress.seen)], dtype=torch.float64, device=run.device)
    if run.dist.enabled:
        import torch.distributed as dist

        dist.all_reduce(totals)
        # every rank validates with rank 0's BatchNorm statistics, the ones that are saved
        for buffer in run.plain.buffers():
            dist.broadcast(buffer, src=0)
    lr = run.optimizer.param_groups[0]["lr"] / run.optimizer.param_groups[0].get("lr_mult", 1.0)
    loss_sum, seen = totals.tolist()
    row: dict[str, Any] = {"epoch": progress.epoch + 1, "train_loss": loss_sum / max(seen, 1)}
    if validates(run.config, progress.epoch):
        reached(f"validate:{progress.epoch + 1}")
        # the plain module, not the DDP wrapper: a rank with no validation batch must not stall
        # the others in a forward-time buffer broadcast; counts are summed over ranks in score()
        row.update(metric_columns(run, score(run.plain, run.valid_loader, run.task, run.dtype)))
        if run.ema is not None:
            ema = metric_columns(run, score(run.ema.model, run.valid_loader, run.task, run.dtype))
            row.update({f"ema_{k}": v for k, v in ema.items() if k.startswith("valid_")})
    row.update({"lr": lr, "seconds": round(progress.seconds, 3),
                "images_per_s": round(seen / max(progress.seconds, 1e-9), 2)})
    return row


def metric_columns(run: "Run", metrics: dict[str, Any]) -> dict[str, Any]:
    if run.task.kind == "binary":  # round 1's row, unchanged
        return {"valid_dice": metrics["dice"], "valid_iou": metrics["iou"],
                "valid_dice_dataset": metrics["dice_dataset"], "valid_iou_dataset": metrics["iou_dataset"]}
    columns = {f"valid_{k}": metrics[k] for k in ("miou", "mdice", "pixel_accuracy", "iou_per_class",
                                                   "dice_per_class")}
    columns.update({"classes": metrics["classes"], "confusion_matrix": metrics["confusion_matrix"]})
    return columns
