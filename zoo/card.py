"""The model card: a run directory's ``README.md``, as the Hugging Face Hub shows a model folder.

Written from the run's own files (config.json, the checkpoint's history, eval-*.json) after every
epoch and every eval, and by `zoo card RUN`; nothing in it is typed by hand except the licence,
which is kept from the card already there when none is given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from zoo.atomic import read_json, write_bytes
from zoo.errors import UsageError

CARD = "README.md"
_LICENSE = re.compile(r"^license:\s*(\S+)\s*$", re.M)


def _history(run_dir: Path) -> list[dict[str, Any]]:
    """Epoch rows: from the checkpoint's header (the source of truth), else metrics.jsonl."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(run_dir / "checkpoint.safetensors"), framework="numpy") as fh:
            return list(json.loads((fh.metadata() or {})["progress"])["history"])
    except (SafetensorError, OSError, KeyError, ValueError, TypeError):
        pass
    rows = []
    try:
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    return rows


def _evals(run_dir: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(run_dir.glob("eval-*.json")):
        try:
            data = read_json(path, "eval result")
        except Exception:  # a half-written or foreign file does not stop the card
            continue
        if isinstance(data, dict) and "classes" in data:
            found.append(data)
    return found


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _existing_license(run_dir: Path) -> str | None:
    try:
        match = _LICENSE.search((run_dir / CARD).read_text().split("\n---", 1)[0])
    except OSError:
        return None
    return match.group(1) if match else None


def render_card(run_dir: str | Path, *, repo: str | None = None, license: str | None = None) -> str:
    """The card's Markdown. ``repo`` (``ORG/NAME``) fills the usage snippet's ``hf://`` address."""
    run_dir = Path(run_dir)
    if license is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        raise UsageError(f"--license {license!r}: a Hugging Face licence identifier such as mit, apache-2.0, "
                         "cc-by-4.0 or other")
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise UsageError(f"{run_dir}: no config.json there (not a zoo run directory)")
    record = read_json(config_file, "run config")
    run, model, data = record.get("run", {}), record.get("model", {}), record.get("dataset", {})
    task = record.get("task") or model.get("task") or {}
    prep = model.get("preprocessing", {})
    arch, encoder, dataset = model.get("architecture", "?"), model.get("encoder", "?"), data.get("name", "?")
    license = license or _existing_license(run_dir) or "other"
    classes = task.get("classes") or ["foreground"]
    history = _history(run_dir)
    monitor = (run.get("monitor") or ("valid_dice" if task.get("kind", "binary") == "binary" else "valid_miou"))
    key, _, direction = monitor.partition(":")
    scored = [r for r in history if isinstance(r.get(key), (int, float))]
    best = (min if direction == "min" else max)(scored, key=lambda r: r[key]) if scored else None
    where = f"hf://{repo}" if repo else str(run_dir)

    tags = ["zoo", "semantic-segmentation", "image-segmentation", arch, encoder, task.get("kind", "binary")]
    front = ["---", "library_name: zoo", f"license: {license}", "pipeline_tag: image-segmentation",
             "tags:", *[f"- {t}" for t in dict.fromkeys(tags)], "datasets:", f"- {dataset}", "---", ""]
    weights = record.get("encoder_weights")
    init = record.get("init")
    start = (f"initialized from `{init['source']}` ({init['architecture']} on {init['encoder']}, "
             f"decoder {init['decoder']})" if init else
             f"{weights['source']}" + (f" ({weights['tag']})" if weights.get("tag") else "") if weights else
             "trained from scratch")
    params = record.get("parameters")
    sizes = data.get("split_sizes", {})
    size = f"{prep.get('image_size', run.get('image_size', '?'))} px" + (
        ", native resolution (trained on crops)" if prep.get("resolution") == "native" else
        (", padded to square" if prep.get("keep_aspect") else ", resized to square"))
    recipe = ", ".join(f"{k} {v}" for k, v in (
        ("recipe", run.get("recipe")), ("optimizer", run.get("optimizer")), ("lr", run.get("lr")),
        ("scheduler", run.get("scheduler")), ("epochs", run.get("epochs")), ("batch", run.get("batch_size")),
        ("loss", record.get("loss") or run.get("loss")), ("augment", run.get("augment")),
        ("precision", record.get("precision"))) if v not in (None, ""))
    rows = [("architecture", f"{arch} (plugin {model.get('architecture_plugin', '?')})"),
            ("encoder", f"{encoder} (plugin {model.get('encoder_plugin', '?')}); {start}"),
            ("parameters", f"{params / 1e6:.2f}M ({params:,})" if isinstance(params, int) else "-"),
            ("task", f"{task.get('kind', 'binary')}: {', '.join(classes)}"),
            ("input", f"RGB, {size}, normalized with mean {prep.get('mean')} and std {prep.get('std')} on 0..1"),
            ("dataset", f"{dataset}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + " images"),
            ("training", recipe),
            ("best epoch", f"{best['epoch']} of {len(history)} ({key} {best[key]:.4f})" if best else "-"),
            ("zoo", record.get("zoo_version", "?"))]
    lines = [*front, f"# {arch} on {encoder} — {dataset}", "",
             f"A {task.get('kind', 'binary')} semantic segmentation model trained with zoo.", "",
             "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "", "## Results", ""]
    evals = _evals(run_dir)
    if evals:
        lines += ["| split | protocol | mIoU | mDice | pixel accuracy |", "|---|---|---|---|---|"]
        lines += [f"| {e.get('split')} | {e.get('protocol', 'train-size')} | {_fmt(e.get('miou'))} | "
                  f"{_fmt(e.get('mdice'))} | {_fmt(e.get('pixel_accuracy'))} |" for e in evals]
        first = evals[-1]
        lines += ["", f"Per class ({first.get('split')} split):", "", "| class | IoU | Dice | precision | recall |",
                  "|---|---|---|---|---|"]
        lines += [f"| {name} | " + " | ".join(_fmt((first.get(f"{m}_per_class") or [None] * len(first["classes"]))[i])
                                             for m in ("iou", "dice", "precision", "recall")) + " |"
                  for i, name in enumerate(first["classes"])]
    elif best:
        lines += [f"Not evaluated on a test split yet (`zoo eval {run_dir}`); validation at the best epoch:", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in best.items() if k.startswith("valid_") and
                  isinstance(v, (int, float))]
    else:
        lines += ["No epoch has finished yet."]
    for picture, title in (("curves.png", "Training curves"), ("samples.png", "Validation samples")):
        if (run_dir / picture).is_file():
            lines += ["", f"## {title}", "", f"![{title.lower()}]({picture})"]
    lines += ["", "## Usage", "", "```python", "import zoo", "",
              f'model = zoo.load_model("{where}")  # rebuilds the network from the files alone',
              f'predictor = zoo.Predictor("{where}")', 'mask = predictor("image.jpg").mask  # (H, W) labels', "```",
              "", "```bash", f"zoo predict {where} images/ --out predictions",
              f"zoo eval {where} --split test", f"zoo train {arch} --init {where}  # fine-tune", "```", "",
              "## Provenance", "", "Plugins this model needs (zoo names the one to install if it is missing):", ""]
    plugins = model.get("plugins") or {}
    lines += [f"- {name}: {p.get('distribution') or '?'} {p.get('version') or ''}".rstrip()
              for name, p in plugins.items()] or ["- zoo's built-ins"]
    return "\n".join(lines) + "\n"


def write_card(run_dir: str | Path, *, repo: str | None = None, license: str | None = None) -> Path:
    """Write (replace, atomically) the run's README.md; its path."""
    run_dir = Path(run_dir)
    return write_bytes(run_dir / CARD, render_card(run_dir, repo=repo, license=license).encode())
