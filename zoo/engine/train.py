"""`zoo train`: compose architecture, encoder, loss and dataset from the registry into a run.

The run directory holds everything needed to continue or use it: config.json, model.safetensors
(best validation Dice), last.safetensors, the resume checkpoint, metrics.jsonl and two pictures.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from zoo import registry_or_default
from zoo.api import create_dataset, create_model, save_model, unwrap
from zoo.data.pipeline import Augment, BatchLoader
from zoo.engine.checkpoint import load_checkpoint, save_checkpoint
from zoo.engine.config import RunConfig, load_config
from zoo.engine.device import (DistInfo, amp_dtype, autocast, init_distributed, pick_device, retained_heap,
                               set_determinism)
from zoo.engine.evaluate import score
from zoo.engine.plots import plot_curves, sample_grid
from zoo.errors import Interrupted, OptionError, TrainingError, UsageError
from zoo.losses import build_loss
from zoo.lossspec import parse_loss_spec
from zoo.options import route_options
from zoo.plugins import zoo_version
from zoo.registry import Registry


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, Any]]
    best: dict[str, Any] | None


@dataclass
class Progress:
    """Where training stands; saved in the checkpoint. ``step`` counts finished steps of ``epoch``."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def best(self) -> dict[str, Any] | None:
        return max(self.history, key=lambda row: row["valid_dice"], default=None)

    def end_epoch(self, row: dict[str, Any]) -> bool:
        """Record the finished epoch's row, start the next; True when the row is the best so far."""
        best = self.best()
        self.history.append(row)
        self.epoch, self.step, self.loss_sum, self.seen, self.seconds = self.epoch + 1, 0, 0.0, 0, 0.0
        return best is None or row["valid_dice"] > best["valid_dice"]


class StopFlag:
    """First Ctrl-C asks the loop to stop at the next step boundary (so the saved state is
    consistent); a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):  # noqa: ANN001
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _make_optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _plugin_record(registry: Registry, plugin: str) -> dict[str, str]:
    info = registry.plugin_info(plugin)
    return {"plugin": plugin, "distribution": info.distribution if info else "", "version": info.version if info else ""}


class Run:
    """One training run's components, built from a config (plain attributes, no hidden state)."""

    def __init__(self, config: RunConfig, run_dir: Path, registry: Registry, dist: DistInfo) -> None:
        self.config, self.run_dir, self.dist = config, run_dir, dist
        self.device = pick_device(config.device, dist.local_rank)
        set_determinism(config.seed, config.deterministic)
        arch = registry.get("architecture", config.architecture)
        enc = registry.get("encoder", config.encoder or arch.spec.default_encoder)
        data = registry.get("dataset", config.dataset)
        losses = [registry.get("loss", t.name) for t in parse_loss_spec(config.loss)]
        routed = route_options(config.options, {"model": arch.spec, "encoder": enc.spec,
                                                "loss": [e.spec for e in losses], "dataset": data.spec})
        model_options = {**{f"model.{k}": v for k, v in routed["model"].items()},
                         **{f"encoder.{k}": v for k, v in routed["encoder"].items()}}
        self.model = create_model(arch.qualified, enc.qualified, registry=registry, **model_options)
        self.loss_fn = build_loss(config.loss, registry, routed["loss"])
        if config.batch_size % dist.world:
            raise OptionError(f"--batch-size {config.batch_size} must be a multiple of the {dist.world} processes")
        with self._rank0_first():
            splits = {s: create_dataset(data.qualified, s, config.data_dir, image_size=config.image_size,
                                        keep_aspect=config.keep_aspect, cache_dir=config.cache_dir,
                                        registry=registry, **routed["dataset"]) for s in ("train", "valid")}
        self.channels_last = config.channels_last if config.channels_last is not None else True
        self.dtype = amp_dtype(self.device, config.amp)
        common = dict(mean=config.mean, std=config.std, rank=dist.rank, world=dist.world,
                      channels_last=self.channels_last)
        self.train_loader = BatchLoader(splits["train"].cached, config.batch_size // dist.world, self.device,
                                        train=True, augment=Augment.parse(config.augment), seed=config.seed, **common)
        self.valid_loader = BatchLoader(splits["valid"].cached, config.eval_batch_size or config.batch_size,
                                        self.device, train=False, **common)
        self.valid_split = splits["valid"].cached
        self.record = {
            "zoo_version": zoo_version(),
            "run": config.to_dict(),
            "model": self.model.zoo_config,
            "loss": getattr(self.loss_fn, "spec", config.loss),
            "dataset": {"name": data.name, "split_sizes": {s: len(d) for s, d in splits.items()},
                        "options": splits["train"].options, "image_size": config.image_size,
                        "keep_aspect": config.keep_aspect, "mean": list(config.mean), "std": list(config.std)},
            "plugins": {"architecture": _plugin_record(registry, arch.plugin),
                        "encoder": _plugin_record(registry, enc.plugin),
                        "loss": [_plugin_record(registry, e.plugin) for e in losses],
                        "dataset": _plugin_record(registry, data.plugin)},
            "world_size": dist.world,
        }
        self._prepare_model()

    @contextmanager
    def _rank0_first(self) -> Iterator[None]:
        """Rank 0 builds the data cache while the others wait, then they open it."""
        import torch.distributed as dist

        if self.dist.enabled and not self.dist.main:
            dist.barrier()
        yield
        if self.dist.enabled and self.dist.main:
            dist.barrier()

    def _prepare_model(self) -> None:
        model = self.model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.config.sync_bn and self.device.type != "cuda":
            raise UsageError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPU modules only")
        if self.dist.enabled:
            if self.config.sync_bn:
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.net = torch.compile(model) if self.config.compile else model
        self.plain = unwrap(model)
        self.optimizer = _make_optimizer(self.config, self.plain.parameters())
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.config.epochs)
                          if self.config.scheduler == "cosine" else None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    # ---- saving ------------------------------------------------------------------------------
    def save_state(self, progress: Progress) -> None:
        if not self.dist.main:
            return
        save_model(self.plain, self.run_dir / "last.safetensors", epoch=progress.epoch, step=progress.step)
        save_checkpoint(self.run_dir, self.plain, self.optimizer, self.scheduler, progress.__dict__)

    def write_epoch(self, progress: Progress, row: dict[str, Any], improved: bool) -> None:
        if not self.dist.main:
            return
        if improved:
            save_model(self.plain, self.run_dir / "model.safetensors", epoch=row["epoch"], valid_dice=row["valid_dice"])
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        self.save_state(progress)
        plot_curves(progress.history, self.run_dir / "curves.png")
        self.draw_samples()

    @torch.no_grad()
    def draw_samples(self) -> None:
        count = min(self.config.samples, len(self.valid_split))
        if count == 0:
            return
        images = np.array(self.valid_split.images[:count])
        batch = self.valid_loader.normalize(torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float())
        was_training = self.plain.training
        self.plain.eval()
        with autocast(self.device, self.dtype):
            preds = (self.plain(batch) > 0).float()[:, 0].cpu().numpy()
        self.plain.train(was_training)
        sample_grid(images, np.asarray(self.valid_split.masks[:count]), preds, self.run_dir / "samples.png")

    # ---- training ----------------------------------------------------------------------------
    def _agree(self, *flags: bool) -> list[bool]:
        """Every rank stops (or fails) together, or collectives would hang."""
        if not self.dist.enabled:
            return list(flags)
        import torch.distributed as dist

        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t)
        return [bool(v > 0) for v in t.tolist()]

    def train_epoch(self, progress: Progress, stop: StopFlag, bar: Callable[[Progress, float], None],
                    on_step: Callable[[int, int, float], None] | None) -> None:
        self.net.train()
        started = time.perf_counter() - progress.seconds
        for batch in self.train_loader.epoch(progress.epoch, progress.step):
            with autocast(self.device, self.dtype):
                logits = self.net(batch.images)
                loss = self.loss_fn(logits, batch.masks, batch.valid)
            value = loss.item()
            bad, stopping = self._agree(not math.isfinite(value), stop.requested)
            if stopping:  # before this step is applied: the saved state stays at a step boundary
                raise KeyboardInterrupt
            if bad:  # save nothing: this forward pass already moved the BatchNorm statistics
                last = self.run_dir / "last.safetensors"
                kept = f"the last good weights are in {last}" if last.is_file() else "no epoch had finished yet"
                raise TrainingError(f"loss became {value} at epoch {progress.epoch + 1}, step {progress.step + 1}; "
                                    f"{kept} (try a lower --lr)")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            progress.step += 1
            progress.loss_sum += value * len(batch.indices)
            progress.seen += len(batch.indices)
            progress.seconds = time.perf_counter() - started
            bar(progress, value)
            if on_step is not None:
                on_step(progress.epoch, progress.step, value)

    def finish_epoch(self, progress: Progress) -> dict[str, Any]:
        totals = torch.tensor([progress.loss_sum, float(progress.seen)], dtype=torch.float64, device=self.device)
        if self.dist.enabled:
            import torch.distributed as dist

            dist.all_reduce(totals)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        metrics = score(self.net, self.valid_loader, self.dtype)
        loss_sum, seen = totals.tolist()
        return {
            "epoch": progress.epoch + 1, "train_loss": loss_sum / max(seen, 1),
            "valid_dice": metrics["dice"], "valid_iou": metrics["iou"],
            "valid_dice_dataset": metrics["dice_dataset"], "valid_iou_dataset": metrics["iou_dataset"],
            "lr": lr, "seconds": round(progress.seconds, 3),
            "images_per_s": round(seen / max(progress.seconds, 1e-9), 2),
        }


def _new_run_dir(config: RunConfig, out: str | Path | None) -> Path:
    if out is None:
        out = Path("runs") / f"{config.architecture}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(out)
    if (run_dir / "checkpoint.json").exists() or (run_dir / "metrics.jsonl").exists():
        raise UsageError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
    return run_dir


def _resume_config(run_dir: Path, epochs: int | None) -> RunConfig:
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise UsageError(f"--resume {run_dir}: no config.json there (not a zoo run directory)")
    config = RunConfig.from_dict(json.loads(config_file.read_text())["run"], str(config_file))
    return replace(config, epochs=epochs).validate() if epochs else config


def train(
    config: RunConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    config_file: str | Path | None = None,
    registry: Registry | None = None,
    quiet: bool = True,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a model; ``overrides`` are RunConfig fields (``epochs=2``, ``options={"base_channels": "8"}``).
    ``resume`` continues a run directory exactly where it stopped (``epochs`` may be raised)."""
    registry = registry_or_default(registry)
    if resume is not None:
        run_dir = Path(resume)
        config = _resume_config(run_dir, overrides.get("epochs"))
    else:
        config = config or load_config(config_file, dict(overrides))
        run_dir = _new_run_dir(config, out)
    dist = init_distributed(config.device)
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(config, run_dir, registry, dist)
    progress = Progress()
    if resume is not None:
        progress = Progress(**load_checkpoint(run_dir, run.plain, run.optimizer, run.scheduler))
        if dist.main:  # the checkpoint's history wins over rows a crash may have written after it
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in progress.history))
    elif dist.main:
        (run_dir / "config.json").write_text(json.dumps(run.record, indent=2, default=str) + "\n")

    from zoo.engine.progress import EpochBar

    stop = StopFlag()
    show = dist.main and not quiet
    try:
        with stop.installed(), retained_heap(run.device.type == "cpu"):
            while progress.epoch < config.epochs:
                with EpochBar(show, progress.epoch, config.epochs, len(run.train_loader)) as bar:
                    run.train_epoch(progress, stop, bar.update, on_step)
                row = run.finish_epoch(progress)
                improved = progress.end_epoch(row)
                run.write_epoch(progress, row, improved)
                if show:
                    EpochBar.summary(row, config.epochs)
                if on_epoch is not None:
                    on_epoch(row)
    except KeyboardInterrupt:
        run.save_state(progress)
        raise Interrupted(f"interrupted at epoch {progress.epoch + 1}, step {progress.step}; state saved in "
                          f"{run_dir}; continue with: zoo train --resume {run_dir}") from None
    finally:
        if dist.enabled:
            import torch.distributed as tdist

            if tdist.is_initialized():
                if sys.exc_info()[0] is None:
                    tdist.barrier()  # rank 0 may still be writing files: leave together
                tdist.destroy_process_group()
    return TrainResult(run_dir, progress.history, progress.best())
