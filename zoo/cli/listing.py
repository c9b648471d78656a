"""`zoo list-*`, `zoo info`, `zoo plugins`: read specs only, so they never import torch."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from zoo.cli._common import JsonFlag, Overrides, Pattern, parse_overrides, print_json, stdout_console
from zoo import registry_or_default
from zoo.kinds import KINDS
from zoo.registry import Entry, Registry
from zoo.specs import ArchitectureSpec, EncoderFamilySpec, EncoderSpec, PretrainedModelSpec, RecipeSpec



def _entry_json(entry: Entry) -> dict[str, Any]:
    return {"name": entry.name, "kind": entry.kind, "plugin": entry.plugin, "qualified": entry.qualified,
            "summary": entry.summary, "tags": list(entry.spec.tags),
            "options": {o.name: o.default for o in entry.spec.options}}


def _show(kind: str, pattern: str | None, as_json: bool, expand: bool = False) -> None:
    registry = registry_or_default()
    entries = registry.entries(kind, pattern, expand_families=expand)
    if as_json:
        print_json([_entry_json(e) for e in entries])
        return
    from rich.table import Table

    table = Table(title=KINDS[kind].plural + (f" matching {pattern!r}" if pattern else ""), title_justify="left")
    for column in ("name", "plugin", "summary", "tags"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(e.name, e.plugin, e.summary, ", ".join(e.spec.tags))
    console = stdout_console()
    console.print(table)
    if not expand:
        for fam in registry.families(kind):
            console.print(f"+ {fam.plugin}: {fam.spec.summary}; list them with --all "
                          f"(e.g. `zoo {KINDS[kind].command} 'convnext*' --all`)")


def _lister(kind: str, doc: str):
    """The `zoo list-*` command of a kind: names, plugins, summaries, tags (or JSON)."""
    def command(pattern: Pattern = None, as_json: JsonFlag = False) -> None:
        _show(kind, pattern, as_json)
    command.__doc__ = doc
    return command


def _published_json(spec: PretrainedModelSpec) -> dict[str, Any]:
    return {"location": spec.location, "sha256": spec.sha256, "architecture": spec.architecture,
            "encoder": spec.encoder, "dataset": spec.dataset, "metrics": dict(spec.metrics), "license": spec.license}


def list_models(
    pattern: Pattern = None,
    as_json: JsonFlag = False,
    pretrained: Annotated[bool, typer.Option("--pretrained", help="List published, trained models instead "
                                             "(zoo eval/predict NAME, zoo train --init NAME).")] = False,
) -> None:
    """List architectures (or, with --pretrained, published trained models)."""
    if not pretrained:
        _show("architecture", pattern, as_json)
        return
    entries = registry_or_default().entries("pretrained", pattern)
    rows = [{**_entry_json(e), **_published_json(e.spec)} for e in entries]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="pretrained models" + (f" matching {pattern!r}" if pattern else ""), title_justify="left")
    for column in ("name", "plugin", "model", "dataset", "metrics", "location"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["plugin"], " on ".join(x for x in (r["architecture"], r["encoder"]) if x),
                      r["dataset"], ", ".join(f"{k} {v:.3f}" for k, v in r["metrics"].items()), r["location"])
    console = stdout_console()
    console.print(table)
    if not rows:
        console.print("none registered; a plugin lists them with the zoo_register_pretrained hook")


LISTED = {
    "loss": "List losses. Combine them in --loss as e.g. '0.3*bce+0.7*dice' or 'focal(gamma=3)+dice'.",
    "dataset": "List datasets.",
    "optimizer": "List optimizers (--optimizer).",
    "scheduler": "List learning-rate schedules (--scheduler); options as -o scheduler.NAME=VALUE.",
    "callback": "List training callbacks and loggers (--log a,b).",
    "recipe": "List training recipes (--recipe NAME); `zoo info NAME` shows what one sets.",
}


def list_encoders(
    pattern: Pattern = None,
    as_json: JsonFlag = False,
    all_: Annotated[bool, typer.Option("--all", help="Also list every member of encoder families "
                                       "(every timm backbone; imports timm).")] = False,
) -> None:
    """List encoders (backbones)."""
    _show("encoder", pattern, as_json, expand=all_)


def plugins(as_json: JsonFlag = False) -> None:
    """List every plugin: name, version, distribution, hooks and status (errors on their own lines)."""
    infos = registry_or_default().plugins
    rows = [{"name": p.name, "module": p.module, "distribution": p.distribution, "version": p.version,
             "builtin": p.builtin, "hooks": list(p.hooks), "status": p.status, "error": p.error,
             "warning": p.warning} for p in infos]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="plugins", title_justify="left")
    for column in ("name", "distribution", "version", "hooks", "status"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["distribution"] or "-", r["version"] or "-",
                      ", ".join(h.removeprefix("zoo_register_") for h in r["hooks"]), r["status"])
    stdout_console().print(table)
    for r in rows:  # plain lines: a long message stays one line instead of wrapping inside a cell
        if r["error"] or r["warning"]:
            print(f"{r['name']}: {r['status']}: {r['error'] or r['warning']}")


def _format_count(n: int) -> str:
    return f"{n / 1e6:.2f}M ({n:,})"


def _info_json(entry: Entry, registry: Registry, params: int | None) -> dict[str, Any]:
    data = _entry_json(entry)
    spec = entry.spec
    data["options"] = [{"name": o.name, "default": o.default, "help": o.help,
                        "choices": list(o.choices) if o.choices else None} for o in spec.options]
    info = registry.plugin_info(entry.plugin)
    data["distribution"] = info.distribution if info else ""
    data["version"] = info.version if info else ""
    if isinstance(spec, ArchitectureSpec):
        data["default_encoder"] = spec.default_encoder
        enc = registry.get("encoder", spec.default_encoder).spec
        data["encoder_options"] = [{"name": o.name, "default": o.default, "help": o.help} for o in enc.options]
        data["params_at_defaults"] = spec.params_at_defaults
        data["paper"] = spec.paper
        data["accepted_encoders"] = _accepted_encoders(spec, registry)
    if isinstance(spec, EncoderSpec):
        fi = spec.describe()
        data["feature_info"] = {"channels": list(fi.channels), "reductions": list(fi.reductions)}
    if isinstance(spec, EncoderFamilySpec) and entry.member:
        from zoo.specs import resolve

        fi = resolve(spec.feature_info)(entry.member)
        data["feature_info"] = {"channels": list(fi.channels), "reductions": list(fi.reductions)}
    if entry.kind == "encoder":
        owner = "zoo's built-in" if info is not None and info.builtin else f"{data['distribution'] or '?'}'s"
        data["implementation"] = (f"{entry.member!r} of the {entry.plugin} family" if entry.member
                                  else f"{owner} (plugin {entry.plugin})")
        data["also"] = registry.alternatives(entry)
        data["pretrained_weights"] = [{"tag": w.tag, "repo": w.repo, "file": w.filename, "license": w.license,
                                       "summary": w.summary} for w in spec.weights(entry.member)]
    if isinstance(spec, PretrainedModelSpec):
        data.update(_published_json(spec))
    if isinstance(spec, RecipeSpec):
        data["recipe_version"] = spec.version
        data["settings"] = spec.build()
    if params is not None:
        data["params"] = params
    return data


def _accepted_encoders(spec: ArchitectureSpec, registry: Registry) -> list[str]:
    """Encoders that declare what the architecture needs (a dilation for an ``output_stride``), from
    their specs alone; a family is shown as ``plugin:*``."""
    needs = spec.option("output_stride")
    fits = lambda s: needs is None or s.option("output_stride") is not None  # noqa: E731
    names = [e.name for e in registry.entries("encoder") if fits(e.spec)]
    return names + [f"{f.plugin}:*" for f in registry.families("encoder") if fits(f.spec)]


def _measure(entry: Entry, registry: Registry, options: dict[str, Any], size: int) -> tuple[int, float]:
    """Parameters, and FLOPs of one forward pass on a size x size image (torch's flop counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from zoo.api import count_parameters, create_model

    model = create_model(entry.qualified, registry=registry, **options).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, model.config.options.get("encoder.in_channels", 3), size, size))
    return count_parameters(model), float(counter.get_total_flops())


def _print_options(console: Any, title: str, options: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("option", "default", "help"):
        table.add_column(column, overflow="fold")
    for o in options:
        table.add_row(o["name"], repr(o["default"]), o["help"] or "")
    console.print(table)


def info(
    name: Annotated[str, typer.Argument(help="A registered name (or plugin:name).")],
    as_json: JsonFlag = False,
    params: Annotated[bool, typer.Option("--params", help="Build the architecture with the given options, "
                                         "count its parameters and GFLOPs (imports torch).")] = False,
    size: Annotated[int, typer.Option(help="Input side for --params GFLOPs (one 3-channel image).")] = 256,
    options: Overrides = None,
) -> None:
    """Show what a name is: kind, plugin, summary, paper, options with defaults, the encoders an
    architecture accepts (and its parameters and GFLOPs at an input size)."""
    from zoo.errors import UnknownNameError

    registry = registry_or_default()
    entries = registry.find(name)
    if not entries:
        raise UnknownNameError("name", name, registry.all_names())
    results = []
    for entry in entries:
        count = flops = None
        if params and entry.kind == "architecture":
            count, flops = _measure(entry, registry, parse_overrides(options), size)
        data = _info_json(entry, registry, count)
        if flops is not None:
            data["gflops"], data["gflops_size"] = round(flops / 1e9, 3), size
        results.append(data)
    if as_json:
        print_json(results if len(results) > 1 else results[0])
        return
    console = stdout_console()
    for data in results:
        console.print(f"[bold]{data['name']}[/bold]  {data['kind']} from plugin {data['plugin']} "
                      f"({data['distribution'] or '?'} {data['version']})")
        console.print(f"  {data['summary']}")
        if data["tags"]:
            console.print(f"  tags: {', '.join(data['tags'])}")
        if "default_encoder" in data:
            console.print(f"  default encoder: {data['default_encoder']}")
            if data["params_at_defaults"]:
                console.print(f"  parameters at defaults: {_format_count(data['params_at_defaults'])}")
            if data.get("paper"):
                console.print(f"  paper: {data['paper']}")
        if "params" in data:
            console.print(f"  parameters with the given options: {_format_count(data['params'])}")
        if "gflops" in data:
            console.print(f"  GFLOPs for one {data['gflops_size']}x{data['gflops_size']} image: {data['gflops']}")
        if data.get("accepted_encoders"):
            console.print(f"  encoders it accepts: {', '.join(data['accepted_encoders'])}")
        if "implementation" in data:
            also = f"; also {', '.join(data['also'])} (name it so)" if data["also"] else ""
            console.print(f"  implementation: {data['implementation']}{also}")
        if data.get("pretrained_weights"):
            tags = [w["tag"] for w in data["pretrained_weights"]]
            shown = ", ".join(tags[:8]) + (f", ... ({len(tags)})" if len(tags) > 8 else "")
            console.print(f"  --encoder-weights: imagenet (= {tags[0]}), {shown}, a hf://ORG/NAME repo or a "
                          ".safetensors file")
        if "location" in data:
            console.print(f"  location: {data['location']}" + (f" (sha256 {data['sha256'][:12]}...)"
                                                                 if data["sha256"] else ""))
        if "feature_info" in data:
            fi = data["feature_info"]
            console.print("  stages (channels@reduction): "
                          + ", ".join(f"{c}@{r}" for c, r in zip(fi["channels"], fi["reductions"])))
        if "settings" in data:
            console.print(f"  recipe version {data['recipe_version']}; sets (flags override each):")
            for key, value in data["settings"].items():
                console.print(f"    --{key.replace('_', '-')} {value}")
        if data["options"]:
            _print_options(console, "options", data["options"])
        if data.get("encoder_options"):
            _print_options(console, f"options of the default encoder {data['default_encoder']!r}",
                           data["encoder_options"])


def register(app: typer.Typer) -> None:
    for kind, doc in LISTED.items():
        app.command(KINDS[kind].command)(_lister(kind, doc))
    app.command("list-models")(list_models)
    app.command("list-encoders")(list_encoders)
    app.command("plugins")(plugins)
    app.command("info")(info)
