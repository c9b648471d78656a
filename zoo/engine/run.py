"""One training run's components, built from a config: every name and option is checked before
anything is built, then the data, the model for the data's task, the loss, the optimizer."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator

import numpy as np
import torch

from zoo.api import count_parameters, create_dataset, create_model, model_header, save_model
from zoo.atomic import save_atomic, write_json
from zoo.card import write_card
from zoo.data.pipeline import Augment, BatchLoader
from zoo.engine.evaluate import NativeValidation
from zoo.engine.splits import native_samples, resolve_auto_weights, resolve_task
from zoo.engine.callbacks import Callbacks, Control, EarlyStopping, TrainState
from zoo.engine.checkpoint import save_checkpoint
from zoo.engine.config import RunConfig
from zoo.engine.device import DistInfo, amp_dtype, autocast, pick_device, set_determinism
from zoo.engine.ema import ModelEMA
from zoo.engine.init import apply_init, starting_weights
from zoo.engine.optim import Schedule, build_optimizer
from zoo.engine.plots import plot_confusion, plot_curves, sample_grid
from zoo.engine.rundir import RunDirectory
from zoo.engine.state import Progress, resolve_monitor
from zoo.errors import DataError, OptionError, UsageError
from zoo.faults import reached
from zoo.losses import build_loss, qualified_terms, resolve_loss_terms
from zoo.lossspec import format_loss_spec, parse_loss_spec
from zoo.metrics import decode
from zoo.models import Preprocessing
from zoo.options import route_options
from zoo.plugins import zoo_version
from zoo.registry import Registry


class Run:
    """One training run's components, built from a config. Every name and option is checked before
    anything is built; nothing is written to the run directory here."""

    def __init__(self, config: RunConfig, registry: Registry, dist: DistInfo,
                 resolved: dict[str, str] | None = None, provenance: dict[str, Any] | None = None, *,
                 starting: bool = True) -> None:
        """``starting``: the weights start from --encoder-weights / --init (a resume restores them)."""
        self.config, self.dist, self.registry = config, dist, registry
        given = lambda kind: getattr(config, kind) if getattr(config, kind) is not None else registry.default(kind)  # noqa: E731
        names = resolved or {"architecture": given("architecture"), "encoder": config.encoder, "loss": given("loss"),
                             "dataset": given("dataset")}
        get = lambda kind, name: registry.require(kind, name, provenance)  # noqa: E731
        arch = get("architecture", names["architecture"])
        enc = get("encoder", names["encoder"] or arch.spec.default_encoder)
        data = get("dataset", names["dataset"])
        losses = [get("loss", t.name) for t in parse_loss_spec(names["loss"])]
        optim = get("optimizer", names.get("optimizer") or config.optimizer or registry.default("optimizer"))
        sched = get("scheduler", names.get("scheduler") or config.scheduler or registry.default("scheduler"))
        loggers = [get("callback", n) for n in dict.fromkeys(n.strip() for n in config.log.split(","))
                   if n and n != "none"]
        config.optimizer, config.scheduler = optim.name, sched.name  # config.json names what ran
        options = dict(config.options)
        class_names = config.classes or options.pop("classes", None)  # names, not the head's channel count
        if class_names and data.spec.option("classes") is not None:
            options["dataset.classes"] = class_names
        routed = route_options(options, {"model": arch.spec, "encoder": enc.spec,
                                         "loss": [e.spec for e in losses], "dataset": data.spec,
                                         "optimizer": optim.spec, "scheduler": sched.spec,
                                         "log": [e.spec for e in loggers]})
        arch.spec.resolve_options(routed["model"])  # validate now: building comes after the checks
        enc.spec.resolve_options(routed["encoder"])
        optimizer_options = optim.spec.resolve_options(routed["optimizer"])
        schedule_options = sched.spec.resolve_options(routed["scheduler"])
        self.callbacks = Callbacks({e.name: e.spec.build(**{k: v for k, v in routed["log"].items()
                                                            if e.spec.option(k) is not None}) for e in loggers})
        if config.freeze_encoder_epochs and config.encoder_lr_mult == 0:
            raise OptionError("--encoder-lr-mult 0 freezes the encoder for good; --freeze-encoder-epochs is then moot")
        terms = resolve_loss_terms(names["loss"], registry, routed["loss"], provenance)
        dataset_options = data.spec.resolve_options(routed["dataset"])
        if config.batch_size % dist.world:
            raise OptionError(f"--batch-size {config.batch_size} must be a multiple of the {dist.world} processes")
        self.device = pick_device(config.device, dist.local_rank)
        if config.sync_bn and self.device.type != "cuda":
            raise UsageError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPU modules only")
        if data.spec.needs_data_dir and config.data_dir is None and not dataset_options.get("download"):
            raise UsageError(f"dataset {data.name!r} needs --data-dir (a folder of its files)")

        # fetched before any data work, so a missing file fails at once
        self.encoder_weights, init = starting_weights(config, enc, registry, routed["encoder"], starting)

        set_determinism(config.seed, config.deterministic)
        with self._rank0_first("building the data cache"):
            splits = {s: create_dataset(data.qualified, s, config.data_dir, image_size=config.image_size,
                                        keep_aspect=config.keep_aspect, cache_dir=config.cache_dir,
                                        native=config.crop is not None, max_side=config.max_side,
                                        registry=registry, **routed["dataset"]) for s in ("train", "valid")}
        self.task = resolve_task(splits["train"].cached.task, class_names, data.name)
        for split in splits.values():
            split.cached.task = self.task
        model_options = {**{f"model.{k}": v for k, v in routed["model"].items() if k != "classes"},
                         **{f"encoder.{k}": v for k, v in routed["encoder"].items()}}
        # a model trained on crops predicts at the images' own pixels; one trained resized, resized
        preprocessing = Preprocessing(config.crop or config.image_size, config.keep_aspect, tuple(config.mean),
                                      tuple(config.std), "native" if config.crop else "train", config.max_side)
        self.model = create_model(arch.qualified, enc.qualified, registry=registry, task=self.task,
                                  preprocessing=preprocessing, encoder_weights=self.encoder_weights, **model_options)
        self.init = apply_init(self.model, init) if init else None
        terms = [resolve_auto_weights(t, splits["train"].cached, self.task) for t in terms]
        self.loss_fn = build_loss(format_loss_spec(terms), registry, task=self.task)
        self.monitor = resolve_monitor(config.monitor, self.task)
        if config.patience is not None:  # a function of the history: every rank decides alike
            self.callbacks.named["early_stopping"] = EarlyStopping(self.monitor, config.patience, config.min_delta)
        self.channels_last = config.channels_last if config.channels_last is not None else True
        self.dtype = amp_dtype(self.device, config.amp)
        if config.amp is None:  # detected once and recorded, so a resume elsewhere keeps the precision
            config.amp = self.dtype is not None
        common = dict(mean=config.mean, std=config.std, rank=dist.rank, world=dist.world,
                      channels_last=self.channels_last)
        self.train_loader = BatchLoader(splits["train"].cached, config.batch_size // dist.world, self.device,
                                        train=True, augment=Augment.parse(config.augment), seed=config.seed,
                                        crop=config.crop, rescale=config.rescale_range(), **common)
        if config.crop:
            self.valid_loader = NativeValidation(splits["valid"].cached, self.device, tile=config.val_tile,
                                                 batch_size=config.eval_batch_size or config.batch_size, rank=dist.rank,
                                                 world=dist.world, channels_last=self.channels_last)
        else:
            self.valid_loader = BatchLoader(splits["valid"].cached, config.eval_batch_size or config.batch_size,
                                            self.device, train=False, **common)
        self.valid_split = splits["valid"].cached
        unique = lambda entry: entry.name if len(registry.entries(entry.kind, entry.qualified)) == 1 else entry.qualified  # noqa: E731
        self.record = {
            "zoo_version": zoo_version(),
            "run": config.to_dict(),
            "model": self.model.config.to_dict(),
            "task": self.task.to_dict(),
            "loss": self.loss_fn.spec,
            # what resume rebuilds: qualified names, so a plugin installed later cannot make them ambiguous
            "resolved": {"architecture": arch.qualified, "encoder": enc.qualified, "dataset": data.qualified,
                         "loss": format_loss_spec(qualified_terms(terms, registry)), "optimizer": optim.qualified,
                         "scheduler": sched.qualified},
            "dataset": {"name": unique(data), "split_sizes": {s: len(d) for s, d in splits.items()},
                        "options": splits["train"].options, "image_size": config.image_size,
                        "keep_aspect": config.keep_aspect, "mean": list(config.mean), "std": list(config.std)},
            "plugins": {"architecture": registry.provenance(arch.plugin),
                        "encoder": registry.provenance(enc.plugin),
                        "loss": [registry.provenance(e.plugin) for e in losses],
                        "dataset": registry.provenance(data.plugin),
                        "optimizer": registry.provenance(optim.plugin),
                        "scheduler": registry.provenance(sched.plugin),
                        "callbacks": [registry.provenance(e.plugin) for e in loggers]},
            "parameters": count_parameters(self.model),
            "world_size": dist.world,
            "precision": str(self.dtype).removeprefix("torch.") if self.dtype is not None else "float32",
        }
        if self.encoder_weights is not None:
            self.record["encoder_weights"] = self.encoder_weights.to_dict()
        if self.init is not None:
            self.record["init"] = self.init
        self.control, self.config_view, self.run_dir = Control(), MappingProxyType(config.to_dict()), Path(".")
        self.tally = None
        self._prepare_model(optim, optimizer_options)
        self.schedule = Schedule.build(sched, config, len(self.train_loader), schedule_options)

    @contextmanager
    def _rank0_first(self, what: str) -> Iterator[None]:
        """Rank 0 does the work while the others wait, then they do it (reading what rank 0 built).
        A failure on any rank ends every rank with one error instead of a hang at a barrier."""
        if not self.dist.enabled:
            yield
            return
        import torch.distributed as dist

        def agree(error: str | None) -> None:
            gathered: list[str | None] = [None] * self.dist.world
            dist.all_gather_object(gathered, error)
            failed = [(rank, e) for rank, e in enumerate(gathered) if e]
            if failed and error is None:
                rank, message = failed[0]
                raise DataError(f"rank {rank} failed while {what}: {message}")

        # two rounds: rank 0 works while the others wait in round 1, then they work in round 2
        if not self.dist.main:
            agree(None)
        try:
            yield
        except Exception as exc:
            agree(str(exc))
            raise
        agree(None)
        if self.dist.main:
            agree(None)

    def _prepare_model(self, optim, optimizer_options: dict[str, Any]) -> None:
        model = self.model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.dist.enabled and self.config.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.plain = model
        self.encoder_frozen = False
        self._wrap(model)
        self.optimizer = build_optimizer(optim, self.plain, self.config, optimizer_options)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.ema = ModelEMA(self.plain, self.config.ema) if self.config.ema is not None else None

    def _wrap(self, model: torch.nn.Module) -> None:
        """The module the steps run: DDP around the model (buffers are not broadcast every forward: rank
        0's are broadcast before each validation), compiled when asked."""
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
        self.net = torch.compile(model) if self.config.compile else model

    # ---- saving (rank 0) ------------------------------------------------------------------
    def commit(self, run_dir: RunDirectory, progress: Progress) -> None:
        """The checkpoint: after this returns, a resume continues from ``progress``."""
        reached("save:checkpoint")
        progress.callbacks = self.callbacks.state_dict()
        extra = {f"ema.{k}": v for k, v in self.ema.state_dict().items()} if self.ema is not None else {}
        save_checkpoint(run_dir.path, self.plain, self.optimizer, self.scaler, asdict(progress), extra)

    def write_derived(self, run_dir: RunDirectory, progress: Progress, improved: bool) -> None:
        """Everything rebuilt from the checkpoint: weights, metrics, pictures."""
        reached("save:derived")
        save_model(self.plain, run_dir / "last.safetensors", epoch=progress.epoch, step=progress.step)
        best = progress.best()
        if self.ema is not None:
            save_model(self.ema.model, run_dir / "model_ema.safetensors", epoch=progress.epoch, step=progress.step)
        if improved and best is not None:
            key = progress.monitor.partition(":")[0]
            weights = self.ema.model if self.ema is not None and progress.ema_is_better(best) else self.plain
            save_model(weights, run_dir / "model.safetensors", epoch=best["epoch"],
                       weights="ema" if weights is not self.plain else "model", **{key: best.get(key)})
        if progress.history:
            save_atomic(run_dir / "curves.png", lambda tmp: plot_curves(progress.history, tmp))
            self.draw_samples(run_dir / "samples.png")
        if improved and best is not None and "confusion_matrix" in best:
            write_json(run_dir / "confusion.json", {k: best[k] for k in ("epoch", "classes", "confusion_matrix")})
            save_atomic(run_dir / "confusion.png", lambda tmp: plot_confusion(best, self.task, tmp))
        write_card(run_dir.path)

    def reconcile(self, run_dir: RunDirectory, progress: Progress) -> None:
        """After a resume: rewrite what a kill between the last checkpoint and its derived files
        may have left stale. ``model.safetensors`` is rewritten when the checkpoint is the best epoch's."""
        best = progress.best()
        stale = best is not None and progress.step == 0 and best["epoch"] == progress.epoch and \
            model_header(run_dir / "model.safetensors").get("epoch") != str(best["epoch"])
        self.write_derived(run_dir, progress, stale)

    @torch.no_grad()
    def draw_samples(self, path: Path) -> None:
        count = min(self.config.samples, len(self.valid_split))
        if count == 0:
            return
        was_training = self.plain.training
        self.plain.eval()
        if isinstance(self.valid_loader, NativeValidation):  # predicted at their size, drawn at the crop's
            images, masks, preds = native_samples(self.valid_loader.predictor(self.plain, self.dtype),
                                                  self.valid_split, count, self.config.crop)
        else:
            images = np.array(self.valid_split.images[:count])
            batch = self.valid_loader.normalize(torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float())
            with autocast(self.device, self.dtype):
                preds = decode(self.task, self.plain(batch)).cpu().numpy()
            if self.task.kind == "multilabel":
                preds = preds.transpose(0, 2, 3, 1)
            masks = np.asarray(self.valid_split.masks[:count])
        self.plain.train(was_training)
        save_atomic(path, lambda tmp: sample_grid(images, masks, preds, tmp, self.task))

    # ---- events and state --------------------------------------------------------------------
    def state(self, progress: Progress, **extra: Any) -> TrainState:
        epoch = extra.pop("epoch", progress.epoch + 1)
        return TrainState(epoch=epoch, epochs=self.config.epochs, step=progress.step,
                          steps_per_epoch=len(self.train_loader),
                          global_step=progress.epoch * self.schedule.steps_per_epoch
                          + -(-progress.step // self.config.accumulate),
                          lr=extra.pop("lr", self.optimizer.param_groups[0]["lr"]), run_dir=self.run_dir,
                          model=self.plain, history=tuple(progress.history), config=self.config_view,
                          is_main=self.dist.main, control=self.control, **extra)

    def emit(self, event: str, progress: Progress, **extra: Any) -> None:
        self.callbacks(event, self.state(progress, **extra))

    def agree(self, *flags: bool) -> list[bool]:
        """Every rank stops (or fails) together, or collectives would hang."""
        if not self.dist.enabled:
            return list(flags)
        import torch.distributed as dist

        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t)
        return [bool(v > 0) for v in t.tolist()]

    def set_encoder_frozen(self, frozen: bool) -> None:
        """``--freeze-encoder-epochs``: the encoder gets no gradients (its BatchNorm statistics still
        follow the data). Under DDP the wrapper is rebuilt, since it registers what has gradients."""
        if not self.config.freeze_encoder_epochs or frozen == self.encoder_frozen:
            return
        self.plain.encoder.requires_grad_(not frozen)
        self.encoder_frozen = frozen
        if self.dist.enabled:
            self._wrap(self.plain)
