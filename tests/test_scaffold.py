"""`zoo plugin new`: each kind's package, as generated, installs and passes its own tests, and its
parts work together in `zoo train`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import cli, run_zoo
from zoo.scaffold import KINDS


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaffold")
    for kind in KINDS:
        result = cli("plugin", "new", f"my_{kind}", "--kind", kind, "--out", str(root / kind),
                     "--summary", f'a "quoted" {kind}')
        assert result.code == 0 and f"pytest {root / kind / 'tests'}" in result.stdout, result.stderr
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(site), *(str(root / k) for k in KINDS)],
                   check=True, capture_output=True)
    return root, site


@pytest.mark.slow
def test_generated_packages_pass_their_own_tests(scaffolded):
    root, site = scaffolded
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             *(str(root / k / "tests") for k in KINDS)], cwd=root, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "11 passed" in result.stdout


@pytest.mark.slow
def test_generated_parts_train_together(scaffolded, tmp_path):
    _, site = scaffolded
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "ZOO_LOAD_PLUGINS": ",".join(f"my_{k}" for k in KINDS)}
    run_zoo("train", "my_architecture", "--encoder", "my_encoder", "--loss", "my_loss", "--dataset", "my_dataset",
            "--epochs", "1", "--image-size", "32", "--batch-size", "4", "--out", str(tmp_path / "run"), "-q",
            env=env, check=True)
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["Bad-Name"], "invalid value for NAME: plugin name 'Bad-Name' must be lowercase"),
    (["ok", "--kind", "widget"], "unknown kind 'widget'; valid: architecture, encoder, loss, dataset"),
])
def test_bad_names_and_kinds(args, message, tmp_path):
    result = cli("plugin", "new", *args, "--out", str(tmp_path / "p"))
    assert result.code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_refuses_a_non_empty_folder_and_a_file(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    for target in ("taken", "file"):
        result = cli("plugin", "new", "ok", "--out", str(tmp_path / target))
        assert result.code == 2 and "already exists and is not an empty folder" in result.stderr
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
