"""Files from the Hugging Face Hub through ``huggingface_hub`` and its cache (``HF_HOME``,
``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, ``HF_TOKEN``), with one-line errors.

The environment is read at each call, not at import, so a process (or a test) that sets
``HF_HUB_OFFLINE`` or ``HF_ENDPOINT`` after importing zoo gets what it set.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError, ZooError

SCHEME = "hf://"
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _hf() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors  # (submodules the package does not import itself)
    except ImportError:  # pragma: no cover - a dependency of timm, so normally present
        raise ZooError("the Hugging Face Hub needs huggingface_hub: pip install 'zoo[hub]'") from None
    # huggingface_hub reads HF_HUB_OFFLINE once, at its import; zoo follows the environment of each call
    huggingface_hub.constants.HF_HUB_OFFLINE = offline()
    return huggingface_hub


def cache_dir() -> Path:
    """Where huggingface_hub keeps downloads: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def is_hub_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_url(url: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME[@REV]`` as (``ORG/NAME``, REV or None)."""
    repo, _, revision = url.removeprefix(SCHEME).partition("@")
    if not _REPO.match(repo) or "@" in revision or url.endswith("@"):
        raise UsageError(f"{url}: a hub model is hf://ORG/NAME or hf://ORG/NAME@REVISION")
    return repo, revision or None


def url(repo: str, revision: str | None = None) -> str:
    return f"{SCHEME}{repo}" + (f"@{revision}" if revision else "")


def download(repo: str, filename: str, revision: str | None = None, *, what: str,
             required: bool = True) -> Path | None:
    """The local path of ``filename`` in hub repo ``repo``: from the cache, downloading it first when
    online. ``what`` names the thing it is for in errors (``encoder 'resnet34' weights 'imagenet'``).
    A missing file is None when not ``required``."""
    hf = _hf()
    errors = hf.errors
    where = f"{filename} of {url(repo, revision)}"
    try:
        return Path(hf.hf_hub_download(repo, filename, revision=revision, cache_dir=cache_dir(),
                                       local_files_only=offline(), endpoint=endpoint()))
    except errors.LocalEntryNotFoundError:  # offline, or the hub unreachable, and not in the cache
        if not required:
            return None
        why = "HF_HUB_OFFLINE is set" if offline() else "the hub cannot be reached"
        raise WeightsError(f"{what}: {where} is not in the Hugging Face cache ({cache_dir()}) and {why}; "
                           f"fetch it where there is a network (hf download {repo} {filename}) into the same "
                           "HF_HOME, or pass the local .safetensors file instead") from None
    except errors.RevisionNotFoundError:
        raise WeightsError(f"{what}: {url(repo, revision)}: no such revision on the hub") from None
    except errors.RepositoryNotFoundError:
        raise WeightsError(f"{what}: {url(repo)}: no such repository on the hub (a private one needs HF_TOKEN)") \
            from None
    except errors.EntryNotFoundError:
        if not required:
            return None
        raise WeightsError(f"{what}: {url(repo, revision)} has no {filename}") from None
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise WeightsError(f"{what}: the hub answered {status} for {where}") from None


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str, what: str) -> None:
    """Raise unless the file's sha256 is ``expected`` (nothing to check when it is empty)."""
    if expected and (got := sha256(path)) != expected:
        raise WeightsError(f"{what}: {path} has sha256 {got[:12]}..., expected {expected[:12]}...; the file is "
                           "corrupt or was replaced (delete it from the cache to download it again)")


# What a run shares: the best model and how it was made; not the resume state (checkpoint.safetensors)
# nor the last epoch's or averaged weights (model.safetensors already is the average when that was better).
SHARED = ("README.md", "config.json", "model.safetensors", "metrics.jsonl", "curves.png", "samples.png",
          "confusion.json", "confusion.png")


def shared_files(run_dir: Path) -> list[str]:
    """The files of ``run_dir`` a push uploads, in a stable order."""
    found = [name for name in SHARED if (run_dir / name).is_file()]
    found += sorted(p.name for p in run_dir.glob("eval-*.json")) + sorted(p.name for p in run_dir.glob("confusion-*.png"))
    return found


def download_model(location: str, which: str = "model") -> Path:
    """A hub model folder (``hf://ORG/NAME[@REV]``) in the local cache: its ``WHICH.safetensors``
    and, when the repo has them, ``config.json`` and ``README.md``. Returns the weights file."""
    repo, revision = parse_url(location)
    what = f"model {location}"
    weights = download(repo, f"{which}.safetensors", revision, what=what)
    for name in ("config.json", "README.md"):
        download(repo, name, revision, what=what, required=False)
    return weights


def push(run_dir: Path, repo: str, *, files: list[str], private: bool = False, revision: str | None = None,
         message: str = "", token: str | None = None) -> str:
    """Upload ``files`` of ``run_dir`` to hub repo ``repo`` (created when missing) in one commit; the
    commit's URL. The client's own checks and errors apply (authentication, README metadata)."""
    hf = _hf()
    api = hf.HfApi(endpoint=endpoint(), token=token)
    operations = [hf.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(run_dir / name)) for name in files]
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.create_commit(repo, operations, commit_message=message or f"Upload {run_dir.name} with zoo",
                                 revision=revision)
    except hf.errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = " (log in with `hf auth login` or set HF_TOKEN)" if status in (401, 403) else ""
        raise ZooError(f"zoo push {url(repo)}: the hub answered {status}: {first}{hint}") from None
    return str(info.commit_url)
