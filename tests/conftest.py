from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = ROOT.parent / "shared" / "data" / "oxford-pet-sample"
EXAMPLE = ROOT / "examples" / "zoo-plugin-example"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """Every test: a shared scratch cache, no debug tracebacks, fault points off, and only zoo's
    built-ins: entry-point plugins stay off unless a test loads one by name, so the suite passes
    whatever else is installed."""
    cache = tmp_path_factory.getbasetemp() / "zoo-cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    for name in ("ZOO_LOAD_PLUGINS", "ZOO_DEBUG", "ZOO_PAUSE_AT", "ZOO_TRACE_POINTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    import zoo

    zoo.default_registry.cache_clear()
    yield
    zoo.default_registry.cache_clear()


def builtin_registry():
    """zoo's built-ins alone: what tests parametrize over at collection time, before the autouse
    fixture turns entry-point autoload off, so installed plugins never add cases."""
    from zoo import build_registry
    from zoo.plugins import make_plugin_manager

    return build_registry(*make_plugin_manager(entry_points=False))


@pytest.fixture
def registry():
    """A fresh registry per test: the built-ins (autoload is off in tests)."""
    from zoo import build_registry

    return build_registry()


@pytest.fixture(scope="session")
def example_site(tmp_path_factory) -> Path:
    """The example plugin really installed (pip --target), as a folder to put on sys.path."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture
def with_example(example_site, monkeypatch):
    """The installed example plugin visible to importlib.metadata (entry points) and imports, and
    loaded by name."""
    monkeypatch.syspath_prepend(str(example_site))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "example")
    yield example_site
    for name in [m for m in sys.modules if m.startswith("zoo_plugin_example")]:
        del sys.modules[name]


def run_zoo(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """`python -m zoo ARGS` in a subprocess: real exit codes, real stderr."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=full_env,
                          check=check, cwd=ROOT)


def make_dist(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A minimal installed distribution: modules plus a dist-info declaring `zoo` entry points."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[zoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def cli(*args: str) -> CliResult:
    """`zoo ARGS` in this process (no interpreter start-up): its exit code, stdout and stderr."""
    import contextlib
    import io

    from zoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MB file system (tmpfs) that a test can fill or make read-only; skipped where the
    machine does not allow mounting."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)
