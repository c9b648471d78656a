"""`zoo train`."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated, Optional

import typer

from zoo.cli._common import Overrides, Quiet, parse_overrides


def train(
    architecture: Annotated[Optional[str], typer.Argument(help="Architecture (zoo list-models); default unet.")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="Encoder (zoo list-encoders); default: the architecture's.")] = None,
    encoder_weights: Annotated[Optional[str], typer.Option(help="What the encoder starts from: none (default), "
                                                           "imagenet, a published tag (zoo info ENCODER), "
                                                           "hf://ORG/NAME or a local .safetensors file/folder.")] = None,
    init: Annotated[Optional[str], typer.Option(help="Start from a trained model: a run directory, .safetensors, "
                                                "hf://ORG/NAME[@REV] or a pretrained name (strict on the encoder; "
                                                "a head of another class count is re-initialized).")] = None,
    loss: Annotated[Optional[str], typer.Option(help="Loss spec, e.g. mse, bce+dice, '0.3*bce+0.7*dice'.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (zoo list-datasets); default synthetic.")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Folder of the dataset's files.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (default 10); with --resume, may extend the run.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Global batch size (default 8), split across processes.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default 0.01).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd (momentum 0.9, as the report), adam, adamw or a "
                                                     "plugin's (zoo list-optimizers).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="cosine (default), poly, onecycle, step, constant or a "
                                                     "plugin's (zoo list-schedulers); stepped per optimizer step.")] = None,
    warmup_epochs: Annotated[Optional[float], typer.Option(help="Linear warmup over this many epochs.")] = None,
    warmup_steps: Annotated[Optional[int], typer.Option(help="Linear warmup over this many optimizer steps.")] = None,
    lr_by_epoch: Annotated[Optional[bool], typer.Option("--lr-by-epoch", help="One learning rate per epoch "
                                                        "instead of per step (zoo 0.1's runs).")] = None,
    clip_grad: Annotated[Optional[float], typer.Option(help="Clip the global gradient norm to this.")] = None,
    accumulate: Annotated[Optional[int], typer.Option(help="Batches per optimizer step (effective batch = "
                                                      "batch size x N).")] = None,
    ema: Annotated[Optional[float], typer.Option(help="Keep a moving average of the weights with this decay "
                                                 "(e.g. 0.999); validated and saved beside the model.")] = None,
    encoder_lr_mult: Annotated[Optional[float], typer.Option(help="Encoder learning rate = lr x this.")] = None,
    freeze_encoder_epochs: Annotated[Optional[int], typer.Option(help="Train only the decoder for this many "
                                                                 "epochs.")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Stop after this many validations without improvement "
                                                    "of --monitor.")] = None,
    min_delta: Annotated[Optional[float], typer.Option(help="Smallest change that counts as an improvement.")] = None,
    val_every: Annotated[Optional[int], typer.Option(help="Validate every N epochs (and after the last).")] = None,
    log: Annotated[Optional[str], typer.Option(help="Loggers, comma-separated: jsonl (default), csv, tensorboard, "
                                               "or a plugin's (zoo list-callbacks); none for no log files.")] = None,
    log_every: Annotated[Optional[int], typer.Option(help="Steps between reads of the loss (default 50).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Square training size (default 256, as the report).")] = None,
    keep_aspect: Annotated[Optional[bool], typer.Option("--keep-aspect/--stretch",
                                                        help="Pad to square instead of stretching (default stretch).")] = None,
    crop: Annotated[Optional[int], typer.Option(help="Train on random CROP x CROP windows of the images at their "
                                                "own size (cached natively) instead of resizing them.")] = None,
    max_side: Annotated[Optional[int], typer.Option(help="With --crop: shrink images whose long side exceeds "
                                                    "this when caching.")] = None,
    rescale: Annotated[Optional[str], typer.Option(help="With --crop: random rescale range LO,HI before each "
                                                   "crop (e.g. 0.5,2.0).")] = None,
    val_tile: Annotated[Optional[int], typer.Option(help="With --crop: validate in tiles of this side "
                                                    "(default: whole images).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay (default 0).")] = None,
    augment: Annotated[Optional[str], typer.Option(help="Comma list of flip, affine, color; or none.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    amp: Annotated[Optional[bool], typer.Option("--amp/--no-amp", help="Mixed precision (default: on for CUDA).")] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last",
                                                          help="NHWC memory format (default on).")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile", help="torch.compile the model.")] = None,
    deterministic: Annotated[Optional[bool], typer.Option("--deterministic", help="Deterministic kernels.")] = None,
    sync_bn: Annotated[Optional[bool], typer.Option("--sync-bn", help="SyncBatchNorm under DDP.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default 0).")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Class names, comma-separated: rename the dataset's "
                                                   "classes, or declare those of index masks (also -o classes=).")] = None,
    recipe: Annotated[Optional[str], typer.Option(help="Training preset under the other flags: default or "
                                                  "report (zoo list-recipes).")] = None,
    monitor: Annotated[Optional[str], typer.Option(help="Metrics-row key that picks the best epoch, 'key' or "
                                                   "'key:min' (default: valid_dice for binary, valid_miou else).")] = None,
    out: Annotated[Optional[str], typer.Option(help="Run directory (default runs/ARCH-TIMESTAMP).")] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue the run in this directory exactly.")] = None,
    config: Annotated[Optional[str], typer.Option(help="TOML file with the same keys as these flags.")] = None,
    nproc: Annotated[Optional[int], typer.Option(help="Launch N processes with torchrun (DDP).")] = None,
    options: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Train a model and write a run directory (weights, config, metrics, pictures)."""
    if nproc is not None and nproc < 1:
        raise typer.BadParameter(f"{nproc}: must be a positive number of processes", param_hint="--nproc")
    if nproc and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        _launch_torchrun(nproc)
        return
    from zoo.engine.train import train as run_training

    flags = dict(architecture=architecture, encoder=encoder, encoder_weights=encoder_weights, init=init, loss=loss, dataset=dataset, data_dir=data_dir,
                 epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, scheduler=scheduler,
                 image_size=image_size, keep_aspect=keep_aspect, crop=crop, max_side=max_side, rescale=rescale,
                 val_tile=val_tile, weight_decay=weight_decay, augment=augment, device=device, amp=amp, channels_last=channels_last,
                 compile=compile, deterministic=deterministic, sync_bn=sync_bn, seed=seed, classes=classes,
                 monitor=monitor, recipe=recipe, warmup_epochs=warmup_epochs, warmup_steps=warmup_steps, lr_by_epoch=lr_by_epoch,
                 clip_grad=clip_grad,
                 accumulate=accumulate, ema=ema, encoder_lr_mult=encoder_lr_mult,
                 freeze_encoder_epochs=freeze_encoder_epochs, patience=patience, min_delta=min_delta,
                 val_every=val_every, log=log, log_every=log_every,
                 options=parse_overrides(options))
    if resume:
        given = [k for k, v in flags.items() if v not in (None, {}) and k != "epochs"]
        if given or config:
            raise typer.BadParameter(f"--resume continues the run as configured; only --epochs may change "
                                     f"(got {', '.join(given or ['--config'])})", param_hint="--resume")
        result = run_training(resume=resume, epochs=epochs, quiet=quiet)
    else:
        result = run_training(out=out, config_file=config, quiet=quiet, **flags)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    best = result.best
    if best:
        from zoo.engine.progress import describe

        print(f"best {describe(best)} at epoch {best['epoch']}")
    print(f"run: {result.run_dir}")


def _launch_torchrun(nproc: int) -> None:
    """Re-run this very command under torchrun with ``nproc`` processes (minus --nproc)."""
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        argv.append(arg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "zoo", *argv]
    raise typer.Exit(subprocess.call(cmd))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
