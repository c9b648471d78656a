"""`zoo train`: compose architecture, encoder, loss and dataset from the registry into a run.

Order of writes, which is what makes a run survive a kill at any moment: ``config.json`` before
the first step (a run that never saved restarts in place); at each epoch end the checkpoint (the
commit point), then the files derived from it (``last``/``model.safetensors``, ``metrics.jsonl``,
pictures), which a resume rewrites from the checkpoint.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from zoo import registry_or_default
from zoo.api import save_model
from zoo.engine.checkpoint import restore_checkpoint
from zoo.engine.config import RunConfig, load_config
from zoo.engine.device import DistInfo, init_distributed, restored_process_state, retained_heap
from zoo.engine.run import Run
from zoo.engine.rundir import CONFIG, RunDirectory
from zoo.engine.signals import HardStop, StopFlag
from zoo.engine.state import Progress
from zoo.engine.callbacks import TrainState
from zoo.errors import Interrupted, RunNotice, TrainingError, ZooError
from zoo.registry import Registry


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, Any]]
    best: dict[str, Any] | None


def resolved_names(record: dict[str, Any]) -> dict[str, str]:
    """The qualified names a run was built from (zoo 0.1 runs recorded plugins beside bare names)."""
    if "resolved" in record:
        return dict(record["resolved"])
    model, plugins = record.get("model", {}), record.get("plugins", {})
    qualify = lambda name, plugin: f"{plugin}:{name}" if plugin else name  # noqa: E731
    return {"architecture": qualify(model.get("architecture"), model.get("architecture_plugin")),
            "encoder": qualify(model.get("encoder"), model.get("encoder_plugin")),
            "loss": record.get("loss") or record["run"]["loss"],
            "dataset": qualify(record["run"]["dataset"], plugins.get("dataset", {}).get("plugin"))}


def recorded_plugins(record: dict[str, Any] | None) -> dict[str, Any]:
    """plugin name -> {distribution, version}, from a run's config.json."""
    found: dict[str, Any] = {}
    for value in (record or {}).get("plugins", {}).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and item.get("plugin"):
                found[item["plugin"]] = item
    return found


def _default_out(config: RunConfig) -> Path:
    name = (config.architecture or "run").replace(":", "-")
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


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
    ``resume`` continues a run directory exactly where it stopped (``epochs`` may change: the
    learning-rate schedule follows the new length); a run that never saved starts over there."""
    registry = registry_or_default(registry)
    record: dict[str, Any] | None = None
    if resume is not None:
        run_dir = RunDirectory(resume)
        record = run_dir.read_config()
        # a run written before per-step schedules keeps its per-epoch learning rates
        config = RunConfig.from_dict({"lr_by_epoch": True, **record["run"]}, str(run_dir / CONFIG))
        if overrides.get("epochs") is not None:
            config.epochs = overrides["epochs"]
        config.validate()
    else:
        config = (config.validate() if config is not None else load_config(config_file, dict(overrides), registry))
        run_dir = RunDirectory(out if out is not None else _default_out(config))
        run_dir.check_new_run()  # fail before any work; checked again under the lock
    dist = init_distributed(config.device)
    try:
        with restored_process_state():
            starting = record is None or not run_dir.saved  # a resume restores every weight from the checkpoint
            run = Run(config, registry, dist, resolved_names(record) if record else None, recorded_plugins(record),
                      starting=starting)
            progress = _open_run(run, run_dir, record, dist)
            run.run_dir = run_dir.path
            _loop(run, run_dir, progress, dist, quiet, on_step, on_epoch)
    finally:
        run_dir.release()
        if dist.enabled:
            import torch.distributed as tdist

            if tdist.is_initialized():
                if sys.exc_info()[0] is None:
                    tdist.barrier()  # rank 0 may still be writing files: leave together
                if dist.owns_group:  # a group the caller made is the caller's
                    tdist.destroy_process_group()
    return TrainResult(run_dir.path, progress.history, progress.best())


def _open_run(run: Run, run_dir: RunDirectory, record: dict[str, Any] | None, dist: DistInfo) -> Progress:
    """Own the directory and bring it to the state training starts from."""
    if dist.main:
        run_dir.create()
        run_dir.acquire()
    if record is None:  # a new run, or a restart in place of one that never saved
        if dist.main:
            if run_dir.check_new_run():
                run_dir.clear_unsaved()
                warnings.warn(f"{run_dir}: the run there never saved a state; restarting it in place", RunNotice)
            run_dir.write_config(run.record)
        return Progress(monitor=run.monitor)
    if not run_dir.saved:
        if dist.main:
            warnings.warn(f"{run_dir}: nothing was saved before the run stopped; starting it over", RunNotice)
            run_dir.clear_unsaved()
            run_dir.write_config({**record, "run": run.config.to_dict()})
        return Progress(monitor=run.monitor)
    progress = Progress(**{"monitor": run.monitor, **restore_checkpoint(run_dir.path, run.plain, run.optimizer,
                                                                         run.scaler, run.ema)})
    run.callbacks.load_state_dict(progress.callbacks)
    if dist.main:
        if record["run"].get("epochs") != run.config.epochs:
            run_dir.write_config({**record, "run": {**record["run"], "epochs": run.config.epochs}})
        run.reconcile(run_dir, progress)
    return progress


def _loop(run: Run, run_dir: RunDirectory, progress: Progress, dist: DistInfo, quiet: bool,
          on_step: Callable[[int, int, float | None], None] | None,
          on_epoch: Callable[[dict[str, Any]], None] | None) -> None:
    from zoo.engine.steps import finish_epoch, train_epoch

    config, stop = run.config, StopFlag()
    if dist.main and not quiet and "progress" not in run.callbacks.named:
        run.callbacks.named["progress"] = run.registry.get("callback", "progress").spec.build()

    def interrupted(what: str) -> Interrupted:
        return Interrupted(f"{what}; continue with: zoo train --resume {run_dir}")

    run.emit("on_train_start", progress)
    hard_stop = False
    try:
        with stop.installed(), retained_heap(run.device.type == "cpu"):
            while progress.epoch < config.epochs and not _stopped_early(run, progress):
                finished = train_epoch(run, progress, stop, on_step)
                if not finished:
                    _check_loss(run, progress)
                    if dist.main:
                        run.commit(run_dir, progress)
                        save_model(run.plain, run_dir / "last.safetensors", epoch=progress.epoch, step=progress.step)
                    raise interrupted(f"interrupted at epoch {progress.epoch + 1}, step {progress.step}; "
                                      f"state saved in {run_dir}")
                run.emit("on_epoch_end", progress)
                row = finish_epoch(run, progress)
                improved = progress.end_epoch(row)
                # progress has moved to the next epoch: the events name the one just finished
                run.emit("on_validation_end", progress, metrics=TrainState.frozen(row), epoch=progress.epoch)
                if dist.main:
                    run.commit(run_dir, progress)
                    run.write_derived(run_dir, progress, improved)
                    run.emit("on_checkpoint_saved", progress, epoch=progress.epoch)
                if on_epoch is not None:
                    on_epoch(row)
                if stop.requested:  # arrived during validation or the save: the epoch is saved
                    raise interrupted(f"interrupted at epoch {progress.epoch + 1}, step 0; state saved in {run_dir}")
    except KeyboardInterrupt as exc:  # a second interrupt (or one outside our handler): write nothing
        hard_stop = True
        what = "stopped at once by a second interrupt" if isinstance(exc, HardStop) else "interrupted"
        if run_dir.saved:
            raise interrupted(f"{what} without saving; the last saved state is kept") from None
        raise Interrupted(f"{what} before anything was saved; start it again with the same command "
                          f"(--out {run_dir})") from None
    except OSError as exc:
        target = exc.filename or run_dir
        raise ZooError(f"cannot write {target}: {exc.strerror or exc}; the last complete state is kept — "
                       f"free the space or fix the folder, then continue with: zoo train --resume {run_dir}") from None
    finally:
        if not hard_stop:  # after a second Ctrl-C nothing is written, by callbacks neither
            run.emit("on_train_end", progress)


def _check_loss(run: Run, progress: Progress) -> None:
    """Before saving a stopped epoch: its loss sum is read, and must be finite."""
    import math

    if run.tally is not None:
        progress.loss_sum = run.tally.read()[0]
        if not math.isfinite(progress.loss_sum):
            raise TrainingError(f"loss became non-finite in epoch {progress.epoch + 1}; nothing was saved after "
                                "the last good state (try a lower --lr, --clip-grad or --warmup-epochs)")


def _stopped_early(run: Run, progress: Progress) -> bool:
    """A callback asked to stop (early stopping), now or before the run was resumed."""
    stopping = run.callbacks.named.get("early_stopping")
    if run.control.stop_reason is None and stopping is not None and progress.history:
        if stopping.stale_validations(progress.history) >= stopping.patience:
            run.control.stop_reason = "early stopping criterion already met"
    if run.control.stop_reason is not None:
        warnings.warn(f"{run.control.stop_reason}; training ends at epoch {progress.epoch}", RunNotice)
        return True
    return False
