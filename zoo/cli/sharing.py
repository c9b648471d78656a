"""`zoo card`, `zoo push`: a run directory as a Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli._common import JsonFlag, print_json

Run = Annotated[str, typer.Argument(help="Run directory.")]
License = Annotated[Optional[str], typer.Option(help="Licence identifier for the card (mit, apache-2.0, "
                                                "cc-by-4.0, ...); default: the card's, else other.")]


def card(
    run: Run,
    repo: Annotated[Optional[str], typer.Option(help="ORG/NAME the usage snippet points at (default: the run "
                                                "directory).")] = None,
    license: License = None,
) -> None:
    """Regenerate RUN/README.md, the model card: architecture, encoder, parameters, data, recipe, test
    metrics, curves, usage. Training and eval keep it current; this rewrites it (with a licence)."""
    from zoo.card import write_card

    print(write_card(Path(run), repo=_repo(repo) if repo is not None else None, license=license))


def _repo(value: str) -> str:
    from zoo import hub

    repo, revision = hub.parse_url(value if hub.is_hub_url(value) else hub.SCHEME + value)
    if revision:
        raise typer.BadParameter(f"{value}: give ORG/NAME (the revision goes in --revision)", param_hint="REPO")
    return repo


def push(
    run: Run,
    repo: Annotated[str, typer.Argument(help="Hub repository, ORG/NAME (created if missing).")],
    revision: Annotated[Optional[str], typer.Option(help="Branch to commit to (default main).")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = False,
    message: Annotated[Optional[str], typer.Option(help="Commit message.")] = None,
    license: License = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; contact nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Upload a run to the Hugging Face Hub: weights, config.json, the model card (regenerated for
    ORG/NAME), metrics and pictures; not the resume checkpoint. HF_TOKEN / `hf auth login` authenticate,
    HF_ENDPOINT picks the server. Load it back with zoo.load_model("hf://ORG/NAME")."""
    from zoo import hub
    from zoo.card import write_card
    from zoo.errors import UsageError

    repo = _repo(repo)
    run_dir = Path(run)
    for required in ("config.json", "model.safetensors"):
        if not (run_dir / required).is_file():
            raise UsageError(f"{run_dir}: no {required} there; push a run that finished an epoch")
    write_card(run_dir, repo=repo, license=license)
    files = hub.shared_files(run_dir)
    sizes = {name: (run_dir / name).stat().st_size for name in files}
    result = {"repo": repo, "revision": revision or "main", "files": sizes, "url": None, "dry_run": dry_run}
    if not dry_run:
        result["url"] = hub.push(run_dir, repo, files=files, private=private, revision=revision,
                                 message=message or "")
    if as_json:
        print_json(result)
        return
    for name, size in sizes.items():
        print(f"{'would upload' if dry_run else 'uploaded'} {name} ({size:,} bytes)")
    if not dry_run:
        print(f"committed: {result['url']}")
        print(f'load it with: zoo.load_model("{hub.url(repo)}")')


def register(app: typer.Typer) -> None:
    app.command("card")(card)
    app.command("push")(push)
