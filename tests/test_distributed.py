"""DDP on CPU: torchrun with two gloo processes, against one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli, run_zoo

ARGS = ["train", "unet", "--dataset", "synthetic", "--image-size", "64", "-o", "base_channels=8", "-o", "count=32",
        "--augment", "none", "--batch-size", "8", "-q"]


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "zoo", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_two_processes_match_one_and_resume(tmp_path):
    # `zoo train --nproc 2` re-runs itself under torchrun
    ddp = run_zoo(*ARGS, "--epochs", "1", "--nproc", "2", "--out", str(tmp_path / "ddp"), env={"OMP_NUM_THREADS": "1"})
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert ddp.stdout.count("run: ") == 1  # only rank 0 reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2
    single = run_zoo(*ARGS, "--epochs", "1", "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    (a,), (b,) = rows(tmp_path / "ddp"), rows(tmp_path / "one")
    # same samples per global step; only BatchNorm sees 4 images per process instead of 8
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.05)
    assert a["valid_dice"] == pytest.approx(b["valid_dice"], abs=0.05)
    scored = json.loads(run_zoo("eval", str(tmp_path / "ddp"), "--split", "valid", "--json", check=True).stdout)
    assert scored["dice"] == pytest.approx(a["valid_dice"], abs=1e-9)
    resumed = torchrun("train", "--resume", str(tmp_path / "ddp"), "--epochs", "2", "-q")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["epoch"] for r in rows(tmp_path / "ddp")] == [1, 2]


def test_sync_bn_needs_cuda(tmp_path):
    result = cli(*ARGS, "--epochs", "1", "--sync-bn", "--device", "cpu", "--out", str(tmp_path / "r"))
    assert result.code == 2 and "--sync-bn needs CUDA" in result.stderr


@pytest.mark.slow
def test_empty_validation_shard_does_not_hang(tmp_path):
    """One validation image for two processes: rank 1 validates nothing and must not stall rank 0."""
    result = torchrun("train", "unet", "--dataset", "synthetic", "--image-size", "32", "-o", "base_channels=4",
                      "-o", "count=4", "--batch-size", "2", "--epochs", "1", "--out", str(tmp_path / "r"), "-q")
    assert result.returncode == 0, result.stderr[-2000:]
    assert rows(tmp_path / "r")[0]["valid_dice"] >= 0


@pytest.mark.slow
def test_rank0_failing_to_build_the_cache_ends_every_rank_cleanly(tmp_path):
    from tests.conftest import make_dist

    source = ("import os, zoo\nfrom zoo.specs import DatasetSpec\nfrom zoo.errors import DataError\n"
              "def build(split, data_dir=None):\n"
              "    if os.environ.get('RANK') == '0':\n"
              "        raise DataError('the disk of rank 0 is gone')\n"
              "    from zoo_plugins.datasets.synthetic import Synthetic\n"
              "    return Synthetic(split, count=8, size=32)\n"
              "@zoo.hookimpl\ndef zoo_register_datasets():\n"
              "    return [DatasetSpec('flaky', 'fails on rank 0', build)]\n")
    make_dist(tmp_path / "site", "zoo-flaky", {"flaky": "zoo_flaky"}, {"zoo_flaky": source})
    env_path = os.pathsep.join([str(tmp_path / "site"), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "zoo", "train",
         "unet", "--dataset", "flaky", "--image-size", "32", "-o", "base_channels=4", "--epochs", "1", "--out",
         str(tmp_path / "r"), "-q"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": env_path, "ZOO_LOAD_PLUGINS": "flaky"})
    assert result.returncode != 0
    # both ranks print one line each (to one stderr, so they may interleave)
    assert result.stderr.count("zoo: error:") == 2
    assert "zoo: error: rank 0 failed while building the data cache: the disk of rank 0 is gone" in result.stderr
    assert "zoo: error: the disk of rank 0 is gone" in result.stderr
    # torchrun's launcher prints its own ChildFailedError traceback; none may come from zoo's code
    assert f'File "{ROOT / "zoo"}' not in result.stderr and "zoo_plugins" not in result.stderr
