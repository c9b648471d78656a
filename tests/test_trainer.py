"""The training engine's options: schedules against torch's, accumulation against a bigger batch,
EMA against a hand-computed update, early stopping, callbacks (built-in, third-party, failing),
exact resume with all of them on, no host syncs per step, and the process left as it was found."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import threading
from pathlib import Path

import pytest
import torch

import zoo
from tests.conftest import make_dist
from tests.test_reliability import assert_same_run, rows, signal_at, weights
from zoo.engine.callbacks import EarlyStopping, TrainState
from zoo.engine.config import RunConfig
from zoo.engine.ema import ModelEMA
from zoo.engine.optim import Schedule
from zoo.engine.train import train
from zoo.errors import Interrupted

TINY = dict(architecture="unet", loss="bce", dataset="synthetic", image_size=32, batch_size=4, device="cpu",
            deterministic=True, augment="flip", options={"base_channels": "4", "count": "16", "size": "32"})


# ---- schedules ---------------------------------------------------------------------------------
def _schedule(name: str, epochs: int = 3, batches: int = 7, lr: float = 0.1, **config) -> Schedule:
    run = RunConfig(epochs=epochs, lr=lr, **config).validate()
    return Schedule.build(zoo.default_registry().get("scheduler", name), run, batches, {})


def _torch_lrs(make, steps: int) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def _ours(schedule: Schedule) -> list[float]:
    return [schedule.lr(e, s) for e in range(schedule.epochs) for s in range(schedule.steps_per_epoch)]


@pytest.mark.parametrize("name, oracle", [
    ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=21)),
    ("poly", lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=21, power=0.9)),
    ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7 * 10, gamma=0.1)),
    ("onecycle", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=21)),
    ("constant", lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0)),
])
def test_schedules_step_by_step_against_torch(name, oracle):
    schedule = _schedule(name)  # 3 epochs x 7 optimizer steps
    assert schedule.steps_per_epoch == 7
    assert _ours(schedule) == pytest.approx(_torch_lrs(oracle, 21), rel=1e-9, abs=1e-12)


def test_step_schedule_decays_every_n_epochs():
    registry = zoo.default_registry()
    schedule = Schedule.build(registry.get("scheduler", "step"), RunConfig(epochs=4, lr=1.0).validate(), 5,
                              {"every_epochs": 2, "factor": 0.5})
    lrs = _ours(schedule)
    assert lrs[:10] == [1.0] * 10 and lrs[10:] == [0.5] * 10


def test_warmup_then_schedule_over_the_rest():
    schedule = _schedule("poly", warmup_epochs=1)  # 7 warmup steps, then poly over 14
    lrs = _ours(schedule)
    assert lrs[:7] == pytest.approx([0.1 * (i + 1) / 8 for i in range(7)])
    assert lrs[7:] == pytest.approx([0.1 * (1 - i / 14) ** 0.9 for i in range(14)])
    assert _schedule("cosine", warmup_steps=3).warmup == 3


def test_accumulation_counts_optimizer_steps():
    schedule = _schedule("cosine", accumulate=2)  # 7 batches -> 4 optimizer steps per epoch
    assert schedule.steps_per_epoch == 4


def test_round_one_runs_keep_one_rate_per_epoch():
    schedule = _schedule("cosine", lr_by_epoch=True)
    assert [schedule.lr(e, s) for e in range(3) for s in (0, 6)] == pytest.approx(
        [0.1, 0.1, 0.075, 0.075, 0.025, 0.025])


# ---- EMA, early stopping -------------------------------------------------------------------------
def test_ema_matches_a_hand_computed_update():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(5.0)
    ema.update(model)
    state = ema.state_dict()
    for name, p in model.named_parameters():
        torch.testing.assert_close(state[name], 0.9 * start[name] + 0.1 * p.detach())
    assert torch.equal(state["1.running_mean"], torch.full((2,), 5.0))  # buffers are copied


def _state(history) -> TrainState:
    return TrainState(epoch=len(history), epochs=99, step=0, steps_per_epoch=1, global_step=0, lr=0.1,
                      run_dir=Path("."), model=None, history=tuple(history), config={})


def test_early_stopping_on_a_scripted_sequence():
    stopper = EarlyStopping("valid_dice", patience=2, min_delta=0.01)
    values = [0.5, 0.6, 0.605, 0.609, 0.7, 0.70, 0.71]  # +0.005 and +0.009 are not improvements
    stopped_at = None
    for n in range(1, len(values) + 1):
        state = _state([{"epoch": i + 1, "valid_dice": v} for i, v in enumerate(values[:n])])
        stopper.on_validation_end(state)
        if state.control.stop_reason:
            stopped_at = n
            break
    assert stopped_at == 4
    loss = EarlyStopping("train_loss:min", patience=1)
    assert loss.stale_validations([{"train_loss": 1.0}, {"train_loss": 0.5}, {"train_loss": 0.7}]) == 1
    assert loss.stale_validations([{"train_loss": 1.0}, {"epoch": 2}, {"train_loss": 0.9}]) == 0  # no validation: skip


def test_early_stopping_ends_the_run_and_a_resume_does_not_restart_it(tmp_path):
    run = tmp_path / "r"
    with pytest.warns(UserWarning, match="early stopping: train_loss has not improved"):
        result = train(out=run, epochs=6, monitor="train_loss:max", patience=2, **TINY)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]  # the loss falls: "max" never improves after 1
    with pytest.warns(UserWarning, match="early stopping criterion already met"):
        again = train(resume=run)
    assert len(again.history) == 3


# ---- accumulation ------------------------------------------------------------------------------
def test_accumulation_equals_the_bigger_batch(tmp_path):
    """No BatchNorm (GroupNorm-free plain convs: the example-free `unet` has BN, so a norm-free
    model is compared through a registered plugin), no augmentation: 2 x 4 images == 8 images."""
    from zoo.registry import build_registry
    from zoo.plugins import make_plugin_manager
    from tests import plain_model_plugin

    pm, infos = make_plugin_manager(entry_points=False)
    pm.register(plain_model_plugin, name="plain")
    registry = build_registry(pm, infos)
    common = dict(TINY, architecture="plain", augment="none", epochs=2, lr=0.05, loss="bce", amp=False, options={
        "count": "16", "size": "32"})
    big = train(out=tmp_path / "big", registry=registry, **{**common, "batch_size": 8})
    small = train(out=tmp_path / "acc", registry=registry, **{**common, "batch_size": 4, "accumulate": 2})
    wa, wb = weights(tmp_path / "big"), weights(tmp_path / "acc")
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6)
    assert [r["train_loss"] for r in big.history] == pytest.approx([r["train_loss"] for r in small.history],
                                                                   rel=1e-5)


# ---- callbacks ---------------------------------------------------------------------------------
def test_csv_and_jsonl_loggers_write_what_they_promise(tmp_path):
    result = train(out=tmp_path / "r", epochs=2, log="jsonl,csv", log_every=2, scheduler="poly",
                   warmup_steps=2, **TINY)
    with open(tmp_path / "r" / "metrics.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in table] == [1, 2]
    assert [float(r["valid_dice"]) for r in table] == pytest.approx([r["valid_dice"] for r in result.history])
    steps = [json.loads(line) for line in (tmp_path / "r" / "steps.jsonl").read_text().splitlines()]
    assert [s["global_step"] for s in steps] == list(range(1, 9))  # 4 steps per epoch, every one
    assert [("loss" in s) for s in steps] == [False, True] * 4  # read every 2nd step
    schedule = _schedule("poly", epochs=2, batches=4, lr=0.001, warmup_steps=2)  # the default recipe's lr
    assert [s["lr"] for s in steps] == pytest.approx([schedule.lr(e, s) for e in range(2) for s in range(4)])


def test_tensorboard_event_files_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(out=tmp_path / "r", epochs=2, log="tensorboard", log_every=1, **TINY)
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "valid/valid_dice", "train/train_loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/lr")] == list(range(1, 9))
    assert [e.step for e in events.Scalars("valid/valid_dice")] == [4, 8]
    assert "valid/samples" in tags["images"]


def test_a_failing_callback_is_disabled_with_one_message(tmp_path):
    from zoo.registry import build_registry
    from zoo.plugins import make_plugin_manager
    from tests import plain_model_plugin

    pm, infos = make_plugin_manager(entry_points=False)
    pm.register(plain_model_plugin, name="plain")
    registry = build_registry(pm, infos)
    with pytest.warns(UserWarning) as caught:
        result = train(out=tmp_path / "r", registry=registry, epochs=2, log="jsonl,broken", **TINY)
    messages = [str(w.message) for w in caught if "broken" in str(w.message)]
    assert messages == ["callback 'broken' raised in on_step_end: RuntimeError: boom; it is disabled for the rest "
                        "of this run"]
    assert len(result.history) == 2 and (tmp_path / "r" / "metrics.jsonl").is_file()


def test_a_third_party_callback_through_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_dist(site, "zoo-filelog", {"filelog": "zoo_filelog"}, {"zoo_filelog": FILELOG})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "filelog")
    registry = zoo.build_registry()
    assert registry.get("callback", "filelog").plugin == "filelog"
    train(out=tmp_path / "r", registry=registry, epochs=2, log="filelog", **TINY)
    lines = (tmp_path / "r" / "filelog.txt").read_text().splitlines()
    assert lines[0] == "start" and lines[-1] == "end" and lines.count("validated") == 2


FILELOG = '''
import zoo
from zoo.specs import CallbackSpec


class FileLog:
    def on_train_start(self, state):
        self.path = state.run_dir / "filelog.txt"
        self.path.write_text("start\\n")

    def _add(self, text):
        with open(self.path, "a") as fh:
            fh.write(text + "\\n")

    def on_step_end(self, state): pass
    def on_epoch_end(self, state): pass
    def on_validation_end(self, state): self._add("validated")
    def on_checkpoint_saved(self, state): pass
    def on_train_end(self, state): self._add("end")
    def state_dict(self): return {}
    def load_state_dict(self, state): pass


@zoo.hookimpl
def zoo_register_callbacks():
    return [CallbackSpec("filelog", "lines in RUN/filelog.txt", FileLog)]
'''


# ---- exact resume with every option on ----------------------------------------------------------
ALL_ON = dict(TINY, epochs=3, scheduler="poly", warmup_epochs=1, ema=0.9, accumulate=2, clip_grad=1.0,
              log="jsonl,csv,tensorboard", patience=3, encoder_lr_mult=0.5, log_every=1, augment="flip,affine,color",
              optimizer="adamw", lr=0.003)


@pytest.fixture(scope="module")
def all_on(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("all-on") / "run"
    train(out=run, **ALL_ON)
    return run


@pytest.mark.parametrize("position", [(0, 2), pytest.param((1, 2), marks=pytest.mark.slow),
                                      pytest.param((2, 4), marks=pytest.mark.slow)])
def test_resume_is_exact_with_every_option_on(all_on, tmp_path, position):
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(out=cut, on_step=signal_at(position, signal.SIGINT), **ALL_ON)
    train(resume=cut)
    assert_same_run(cut, all_on)
    wa, wb = weights(cut, "model_ema"), weights(all_on, "model_ema")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert untimed_csv(cut) == untimed_csv(all_on)
    assert (cut / "steps.jsonl").read_text() == (all_on / "steps.jsonl").read_text()
    assert all("ema_valid_dice" in r for r in rows(cut))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(cut / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()  # the steps after the checkpoint ran twice; their first events were purged
    assert [e.step for e in events.Scalars("train/lr")] == list(range(1, 7))  # 3 epochs x 2 optimizer steps


def untimed_csv(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in csv.DictReader(fh)]


# ---- no host syncs per step ----------------------------------------------------------------------
SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


def test_host_syncs_per_epoch_do_not_grow_with_the_steps(monkeypatch, tmp_path):
    """Count, on the training thread, every call from zoo's code (the engine, losses, models, plugins)
    to a Tensor method that copies to the host while an epoch's steps run: with 4 and with 16 steps
    per epoch the count is the same. (torch.optim's own ``.item()`` on its CPU step counters is not a
    device sync and not zoo's.)"""
    from zoo.engine import steps as steps_module

    counts: dict[str, int] = {}
    active = threading.local()
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, __original=original, __name=name, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if getattr(active, "on", False) and caller.split(".")[0] in ("zoo", "zoo_plugins"):
                counts[__name] = counts.get(__name, 0) + 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    real = steps_module.train_epoch

    def counted(*args, **kwargs):
        active.on = True
        try:
            return real(*args, **kwargs)
        finally:
            active.on = False

    monkeypatch.setattr(steps_module, "train_epoch", counted)
    per_run = []
    for count in ("16", "64"):  # 4 and 16 steps per epoch
        counts.clear()
        train(out=tmp_path / count, epochs=1, log_every=1000,
              **{**TINY, "options": {**TINY["options"], "count": count}})
        per_run.append(dict(counts))
    assert per_run[0] == per_run[1] and sum(per_run[0].values()) <= 2, per_run


# ---- the process as it was found -----------------------------------------------------------------
def test_training_restores_process_wide_settings(tmp_path):
    before = (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
              os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    train(out=tmp_path / "r", epochs=1, **TINY)  # deterministic=True flips all three inside
    assert (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
            os.environ.get("CUBLAS_WORKSPACE_CONFIG")) == before


def test_the_issue_command_line_trains_and_resumes(tmp_path):
    pytest.importorskip("tensorboard")
    from tests.conftest import cli

    run = tmp_path / "run"
    args = ["train", "unet", "--warmup-epochs", "1", "--scheduler", "poly", "--ema", "0.999", "--accumulate", "2",
            "--clip-grad", "1", "--log", "tensorboard,csv", "--patience", "3", "--image-size", "32", "--epochs", "2",
            "-o", "base_channels=4", "-o", "count=16", "-o", "size=32", "--out", str(run), "-q"]
    first = cli(*args)
    assert first.code == 0, first.stderr
    more = cli("train", "--resume", str(run), "--epochs", "3", "-q")
    assert more.code == 0, more.stderr
    config = json.loads((run / "config.json").read_text())["run"]
    assert (config["scheduler"], config["ema"], config["accumulate"], config["log"]) == ("poly", 0.999, 2,
                                                                                        "tensorboard,csv")
    with open(run / "metrics.csv") as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3]
    assert {p.name for p in run.iterdir()} >= {"model_ema.safetensors", "tensorboard", "metrics.csv"}
