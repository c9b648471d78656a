"""The crash harness: a real `zoo train` process is SIGKILLed at named points of its saves and at
random times, then resumed (or, when nothing was saved, restarted with the same command). Every
recovered run must end bitwise equal to the run that was never killed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, cli

ARGS = ["train", "unet", "--loss", "bce", "--dataset", "synthetic", "--epochs", "2", "--image-size", "32",
        "--batch-size", "4", "--deterministic", "--device", "cpu", "-o", "base_channels=4", "-o", "count=16",
        "-o", "size=32", "-q"]


def zoo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zoo", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_s")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def state(run: Path) -> tuple[list[dict], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    return rows(run), load_file(str(run / "last.safetensors")), load_file(str(run / "model.safetensors"))


def same(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                for x, y in zip(a[1:], b[1:]))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[tuple, list[str]]:
    """The uninterrupted run's end state, and every point its saves and loop passed."""
    folder = tmp_path_factory.mktemp("reference")
    trace = folder / "points.txt"
    done = finish(zoo(*ARGS, "--out", str(folder / "run"), env={"ZOO_TRACE_POINTS": str(trace)}))
    assert done.returncode == 0, done.stderr
    return state(folder / "run"), trace.read_text().splitlines()


def recover(run: Path) -> subprocess.CompletedProcess:
    """What a user does after a kill: resume a run with a checkpoint, else the same command again.
    Run in this process through the CLI's entry point (the kill is what needs a real process; this
    saves an interpreter start per point)."""
    args = ["train", "--resume", str(run), "-q"] if (run / "checkpoint.safetensors").is_file() else \
        [*ARGS, "--out", str(run)]
    result = cli(*args)
    return subprocess.CompletedProcess(args, result.code, result.stdout, result.stderr)


def kill_at(point: str, tmp_path: Path) -> Path:
    run, flag = tmp_path / "run", tmp_path / "paused"
    proc = zoo(*ARGS, "--out", str(run), env={"ZOO_PAUSE_AT": point, "ZOO_PAUSE_FILE": str(flag)})
    deadline = time.time() + 120
    while not flag.exists():
        assert proc.poll() is None, f"ended before reaching {point}: {proc.stderr.read()}"
        assert time.time() < deadline, f"never reached {point}"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return run


def occurrences(points: list[str]) -> list[str]:
    """Each point as NAME#N: the N-th time the process passed it."""
    seen: dict[str, int] = {}
    named = []
    for point in points:
        seen[point] = seen.get(point, 0) + 1
        named.append(f"{point}#{seen[point]}")
    return named


def save_points(points: list[str]) -> list[str]:
    """Every point inside a save (each file's write and replace, the checkpoint commit), plus the
    first steps and a validation: kills before, during and between all writes. The pictures, pure
    derived files, are killed before their replace only (after it is the same rename as the others')."""
    picture = lambda p: p.startswith(("write:curves.png:replaced", "write:samples.png:replaced",  # noqa: E731
                                      "write:confusion.png:replaced"))
    return [p for p in occurrences(points)
            if (not p.startswith("step:") or p in ("step:1:1#1", "step:2:3#1")) and not picture(p)]


# a few representative points run with `make test`; all of them (and random times) under -m slow
FAST_POINTS = ["step:1:2#1", "write:checkpoint.safetensors:complete#1", "write:last.safetensors:complete#2"]


@pytest.mark.slow
@pytest.mark.parametrize("point", FAST_POINTS)
def test_kill_at_a_save_point_then_recover(reference, tmp_path, point):
    expected, points = reference
    assert point in occurrences(points)
    run = kill_at(point, tmp_path)
    done = recover(run)
    assert done.returncode == 0, done.stderr
    assert same(state(run), expected)


@pytest.mark.slow
def test_kill_at_every_save_point(reference, tmp_path):
    expected, points = reference
    tried = save_points(points)
    assert len(tried) >= 25  # config, 2 epochs x (checkpoint, last, model, metrics) x 2 sides, pictures, steps
    lost = []
    for i, point in enumerate(tried):
        run = kill_at(point, tmp_path / str(i))
        done = recover(run)
        if done.returncode != 0 or "Traceback" in done.stderr or not same(state(run), expected):
            lost.append((point, done.stderr[-300:]))
    assert lost == [], lost
    print(f"\nkill points tried: {len(tried)}, runs lost: {len(lost)}")


@pytest.mark.slow
def test_kill_at_random_times(reference, tmp_path):
    expected, _ = reference
    rng = random.Random(12)
    lost = []
    for i in range(3):
        run = tmp_path / str(i) / "run"
        proc = zoo(*ARGS, "--out", str(run))
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = recover(run) if run.exists() else finish(zoo(*ARGS, "--out", str(run)))
        if done.returncode != 0 or not same(state(run), expected):
            lost.append((i, done.stderr[-300:]))
    assert lost == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_a_step_of_a_real_process_resumes_exactly(reference, tmp_path, sig):
    """Ctrl-C / SIGTERM delivered to a real process paused before epoch 2's second step."""
    expected, _ = reference
    run, flag = tmp_path / "run", tmp_path / "paused"
    proc = zoo(*ARGS, "--out", str(run), env={"ZOO_PAUSE_AT": "step:2:2", "ZOO_PAUSE_FILE": str(flag)})
    while not flag.exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(sig)
    flag.unlink()  # let it go on: it must stop before that step's forward pass
    done = finish(proc)
    assert done.returncode == 130
    assert done.stderr == (f"zoo: error: interrupted at epoch 2, step 1; state saved in {run}; "
                           f"continue with: zoo train --resume {run}\n")
    assert finish(zoo("train", "--resume", str(run), "-q")).returncode == 0
    assert same(state(run), expected)
