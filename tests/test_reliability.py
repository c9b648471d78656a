"""Runs that survive interrupts, full disks and a second process: exact resume, the run lock,
restart in place, and what the run directory holds at every stop."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, cli
from zoo.engine.rundir import RunDirectory
from zoo.engine.train import train
from zoo.errors import Interrupted, RunLockedError, UsageError, ZooError

# deterministic CPU kernels, augmentation on (its draws must replay too), 4 steps per epoch
DET = dict(architecture="unet", loss="bce", dataset="synthetic", epochs=2, image_size=32, batch_size=4,
           deterministic=True, device="cpu", augment="flip,affine,color",
           options={"base_channels": "4", "count": "16", "size": "32"})


def rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_s")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / f"{which}.safetensors"))


def assert_same_run(a: Path, b: Path) -> None:
    assert rows(a) == rows(b)
    for which in ("last", "model"):
        wa, wb = weights(a, which), weights(b, which)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), which


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    train(out=run, **DET)
    return run


def signal_at(position: tuple[int, int], sig: int):
    def on_step(epoch, step, loss):
        if (epoch, step) == position:
            os.kill(os.getpid(), sig)
    return on_step


@pytest.mark.parametrize("position, sig", [
    ((0, 1), signal.SIGINT),   # first epoch, first step
    ((0, 3), signal.SIGTERM),  # first epoch, a later step; schedulers send SIGTERM
    pytest.param((1, 2), signal.SIGINT, marks=pytest.mark.slow),  # a later epoch
    pytest.param((0, 4), signal.SIGINT, marks=pytest.mark.slow),  # after the last step: honoured once saved
])
def test_interrupt_then_resume_is_bitwise_exact(straight, tmp_path, position, sig):
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted, match=rf"continue with: zoo train --resume {cut}$") as err:
        train(out=cut, on_step=signal_at(position, sig), **DET)
    assert err.value.exit_code == 130
    epoch, step = position if position[1] < 4 else (position[0] + 1, 0)
    assert f"interrupted at epoch {epoch + 1}, step {step}" in str(err.value)
    train(resume=cut)
    assert_same_run(cut, straight)


def test_second_interrupt_inside_optimizer_step_writes_nothing(straight, tmp_path):
    """Two Ctrl-C: the second lands inside optimizer.step(); no file may change after it."""
    cut = tmp_path / "cut"
    snapshot: dict[str, bytes] = {}
    calls = {"n": 0}

    def pre_step(optimizer, args, kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # epoch 2, step 2: epoch 1 is saved
            snapshot.update({p.name: p.read_bytes() for p in cut.iterdir() if p.is_file()})
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(pre_step)
    try:
        with pytest.raises(Interrupted, match="stopped at once by a second interrupt without saving; the last saved "
                                              "state is kept; continue with: zoo train --resume"):
            train(out=cut, **DET)
    finally:
        handle.remove()
    assert {p.name: p.read_bytes() for p in cut.iterdir() if p.is_file()} == snapshot
    train(resume=cut)
    assert_same_run(cut, straight)


def test_interrupt_before_any_save_restarts_in_place(straight, tmp_path):
    cut = tmp_path / "cut"

    def twice(epoch, step, loss):
        if (epoch, step) == (0, 2):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match=rf"before anything was saved; start it again with the same command \(--out {cut}\)"):
        train(out=cut, on_step=twice, **DET)
    assert sorted(p.name for p in cut.iterdir()) == [".lock", "config.json"]
    with pytest.warns(UserWarning, match="never saved a state; restarting it in place"):
        train(out=cut, **DET)
    assert_same_run(cut, straight)


def test_resume_without_saved_state_starts_over(straight, tmp_path):
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(out=cut, on_step=lambda e, s, v: (e, s) == (0, 1) and (_ := os.kill(os.getpid(), signal.SIGINT)
                                                                      or os.kill(os.getpid(), signal.SIGINT)), **DET)
    with pytest.warns(UserWarning, match="nothing was saved before the run stopped; starting it over"):
        train(resume=cut)
    assert_same_run(cut, straight)


@pytest.mark.slow
def test_resume_with_more_epochs_follows_the_new_schedule(tmp_path):
    run = tmp_path / "run"
    train(out=run, **{**DET, "epochs": 1, "lr": 1.0})
    train(resume=run, epochs=3)
    # 4 steps per epoch; a row's lr is its last step's: cosine over 4 steps, then over 12 from step 5 on
    cosine = lambda k, n: (1 + math.cos(math.pi * k / n)) / 2  # noqa: E731
    assert [r["lr"] for r in rows(run)] == pytest.approx([cosine(3, 4), cosine(7, 12), cosine(11, 12)])
    assert json.loads((run / "config.json").read_text())["run"]["epochs"] == 3
    train(resume=run)  # a plain resume keeps the new length: nothing left to do
    assert len(rows(run)) == 3


def test_saved_run_is_not_overwritten_and_other_folders_are_refused(straight, tmp_path):
    with pytest.raises(UsageError, match="already holds a run with saved state"):
        train(out=straight, **DET)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(UsageError, match="holds other files \\(cat.jpg, ...\\) and is not a zoo run"):
        train(out=tmp_path / "photos", **DET)
    (tmp_path / "notes").mkdir()  # a README.md of the user's own is not a model card to overwrite
    (tmp_path / "notes" / "README.md").write_text("my notes")
    with pytest.raises(UsageError, match="holds other files \\(README.md, ...\\)"):
        train(out=tmp_path / "notes", **DET)
    (tmp_path / "file").write_text("x")
    result = cli("train", "--out", str(tmp_path / "file"), "--epochs", "1")
    assert (result.code, result.stderr) == (2, f"zoo: error: --out {tmp_path / 'file'}: exists and is not a directory\n")
    result = cli("train", "--out", str(tmp_path / "file" / "run"), "--epochs", "1", "--image-size", "32",
                 "-o", "base_channels=4", "-o", "count=8", "-q")
    assert (result.code, result.stderr) == (1, f"zoo: error: {tmp_path / 'file' / 'run'}: Not a directory\n")


def test_a_live_run_owns_its_directory(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create()
    run.acquire()
    try:
        with pytest.raises(RunLockedError, match=rf"in use by another zoo process \(pid {os.getpid()} on "):
            RunDirectory(tmp_path / "run").acquire()
        result = cli("train", "--resume", str(tmp_path / "run"))  # no config yet: refused before the lock
        assert result.code == 2
    finally:
        run.release()
    RunDirectory(tmp_path / "run").acquire()  # released: the next owner gets it


@pytest.mark.slow  # a real process killed with SIGKILL
def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from zoo.engine.rundir import RunDirectory; r = RunDirectory(sys.argv[1]); "
        "r.create(); r.acquire(); print('locked', flush=True); time.sleep(60)"), str(tmp_path / "run")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match=rf"pid {holder.pid}"):
        RunDirectory(tmp_path / "run").acquire()
    holder.kill()
    holder.wait()
    RunDirectory(tmp_path / "run").acquire()


def test_bad_input_creates_nothing(tmp_path):
    for args in (["--loss", "nope"], ["-o", "count=0"], ["--lr", "nan"], ["--encoder", "resnet35"]):
        result = cli("train", "unet", "--out", str(tmp_path / "run"), *args)
        assert result.code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert not (tmp_path / "run").exists()


def test_invalid_config_json_names_the_file(straight, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    (run / "config.json").write_text("{ not json")
    for args in (["eval", str(run), "--split", "valid"], ["train", "--resume", str(run)]):
        result = cli(*args)
        assert result.code == 1 and result.stderr.startswith(f"zoo: error: {run / 'config.json'}: not a valid JSON")


# ---- a real full disk and a read-only folder (a tmpfs mounted for the test) ---------------------
def test_full_disk_mid_run_keeps_the_last_state_and_resumes(straight, small_disk):
    run = small_disk / "run"

    def fill_after_first_epoch(row):
        if row["epoch"] == 1:
            free = shutil.disk_usage(small_disk).free
            (small_disk / "filler").write_bytes(b"\0" * (free - 4096))

    with pytest.raises(ZooError, match=r"cannot write .*: No space left on device; the last complete state is kept"):
        train(out=run, on_epoch=fill_after_first_epoch, **DET)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers
    assert len(rows(run)) == 1
    (small_disk / "filler").unlink()
    train(resume=run)
    assert_same_run(run, straight)


def test_read_only_folder_is_one_line(small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = cli("train", "unet", "--out", str(small_disk / "run"), "--epochs", "1", "--image-size", "32",
                 "-o", "base_channels=4", "-o", "count=8", "-q")
    assert (result.code, result.stderr) == (1, f"zoo: error: {small_disk / 'run'}: Read-only file system\n")
