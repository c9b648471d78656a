"""`zoo eval`, `zoo predict`, `zoo export`: commands on a trained run or weights file."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zoo.cli._common import JsonFlag, Overrides, Quiet, parse_overrides, print_json, stdout_console
from zoo.errors import ZooError

Weights = Annotated[str, typer.Argument(help="Run directory or .safetensors file.")]
Which = Annotated[str, typer.Option("--weights", help="In a run directory: model (best) or last.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
# how the model sees an image: shared by predict and eval --full-res
Tile = Annotated[Optional[str], typer.Option(help="Sliding-window size, H or HxW (implies --resolution native).")]
Overlap = Annotated[float, typer.Option(help="Overlap of neighbouring windows, a fraction of the tile.")]
Stride = Annotated[Optional[str], typer.Option(help="Window step, H or HxW (instead of --overlap).")]
Blend = Annotated[str, typer.Option(help="Window weights: gaussian, linear or constant.")]
Resolution = Annotated[Optional[str], typer.Option(help="native: the image's own pixels; train: resized to the "
                                                   "training size (default without --tile).")]
Scale = Annotated[float, typer.Option(help="Resize by this factor before native inference, and back after.")]
Tta = Annotated[str, typer.Option(help="Test-time augmentation: none, flip or d4 (8 rotations/flips), "
                                  "averaged as probabilities.")]


def eval_(
    path: Weights,
    split: Annotated[str, typer.Option(help="train, valid or test.")] = "test",
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the run's).")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Folder of the dataset's files.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Default: the run's.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 8,
    threshold: Annotated[float, typer.Option(help="Probability threshold.")] = 0.5,
    output: Annotated[Optional[str], typer.Option(help="JSON file (default: eval-SPLIT.json beside the weights).")] = None,
    which: Which = "model",
    device: Device = "auto",
    options: Overrides = None,
    full_res: Annotated[bool, typer.Option("--full-res", help="Predict each image at its original size "
                                           "(whole or tiled) and score against its original mask.")] = False,
    tile: Tile = None,
    overlap: Overlap = 0.25,
    stride: Stride = None,
    blend: Blend = "gaussian",
    resolution: Resolution = None,
    scale: Scale = 1.0,
    tta: Tta = "none",
    as_json: JsonFlag = False,
) -> None:
    """Score a model rebuilt from its files alone: IoU, Dice, precision and recall per class, their
    means, pixel accuracy and the confusion matrix (JSON and PNG beside the weights). By default at
    the training size, as validation scored it; --full-res at the images' own size."""
    from zoo.engine.evaluate import evaluate

    inference = {"tile": tile, "overlap": overlap, "stride": stride, "blend": blend, "resolution": resolution,
                 "scale": scale, "tta": tta}
    result = evaluate(path, split=split, dataset=dataset, data_dir=data_dir, options=parse_overrides(options),
                      which=which, image_size=image_size, batch_size=batch_size, device=device,
                      threshold=threshold, output=output, full_res=full_res, inference=inference)
    if as_json:
        print_json(result)
        return
    console = stdout_console()
    console.print(per_class_table(result))
    console.print(f"pixel accuracy {_fmt(result['pixel_accuracy'])}"
                  + (f"; per image: dice {result['dice']:.4f}, iou {result['iou']:.4f} ({result['images']} images)"
                     if "dice" in result else ""))
    console.print(f"written: {result['output']}, {result['confusion_png']}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def per_class_table(result: dict):
    """IoU, Dice, precision and recall per class, their mean over classes and the pixel-accumulated
    (micro) figures, from the split's confusion counts."""
    from rich.table import Table

    table = Table(title=f"{result['architecture']} on {result['dataset']} {result['split']} ({result['task']})",
                  title_justify="left")
    for column in ("class", "IoU", "Dice", "precision", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for i, name in enumerate(result["classes"]):
        table.add_row(name, *(_fmt(result[f"{k}_per_class"][i]) for k in ("iou", "dice", "precision", "recall")))
    table.add_section()
    table.add_row("mean", _fmt(result["miou"]), _fmt(result["mdice"]), "", "")
    table.add_row("micro", _fmt(result["iou_micro"]), _fmt(result["dice_micro"]), "", "")
    return table


def predict(
    path: Weights,
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively), globs "
                                                "('tiles/**/*.tif') or .txt lists of paths.")],
    out: Annotated[str, typer.Option(help="Output folder.")] = "predictions",
    tile: Tile = None,
    overlap: Overlap = 0.25,
    stride: Stride = None,
    blend: Blend = "gaussian",
    resolution: Resolution = None,
    scale: Scale = 1.0,
    tta: Tta = "none",
    threshold: Annotated[float, typer.Option(help="Probability threshold.")] = 0.5,
    overlay: Annotated[bool, typer.Option(help="Also write NAME.overlay.png.")] = True,
    probs: Annotated[bool, typer.Option("--probs", help="Also write the per-class probabilities.")] = False,
    probs_format: Annotated[str, typer.Option(help="npy: NAME.probs.npy, float16 (C, H, W); png16: "
                                              "NAME.probs[.CLASS].png, 16-bit, p x 65535.")] = "npy",
    batch_size: Annotated[int, typer.Option(help="Windows (or images) per forward pass.")] = 8,
    workers: Annotated[Optional[int], typer.Option(help="Decoding processes (default: spare cores, "
                                                   "at most 4; 0 decodes in this process).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Training size to resize to (default: the run's).")] = None,
    which: Which = "model",
    device: Device = "auto",
    quiet: Quiet = False,
    as_json: JsonFlag = False,
) -> None:
    """Write NAME.mask.png (at the input's size) and NAME.overlay.png per input image, mirroring
    folders. Without --tile the model sees each image at the training size (as in training); with
    --tile at its own pixels, in blended windows, in memory bounded by the tile. Files that cannot be
    read are listed at the end (exit 1); the others are all predicted."""
    import sys

    from zoo.inference import Predictor

    predictor = Predictor(path, device=device, tile=tile, overlap=overlap, stride=stride, blend=blend,
                          resolution=resolution, scale=scale, tta=tta, batch_size=batch_size, threshold=threshold,
                          which=which, image_size=image_size)
    result = predictor.predict_folder(inputs, out, overlay=overlay, probs=probs_format if probs else None,
                                      workers=workers, progress=not quiet and not as_json and sys.stderr.isatty())
    if as_json:
        print_json({"written": result.written, "failed": result.failed, "seconds": result.seconds,
                    "inference": predictor.settings.describe()})
    else:
        for item in result.written:
            what = f"foreground {item['foreground']:.1%}" if "foreground" in item else \
                ", ".join(item.get("classes_present", [])) or "per-label masks"
            print(f"{item['input']} -> {item.get('mask', item.get('overlay', out))} ({what})")
    if result.failed:
        names = ", ".join(f"{f['input']} ({f['reason']})" for f in result.failed)
        raise ZooError(f"{len(result.failed)} of {len(result.failed) + len(result.written)} inputs could not be "
                       f"predicted: {names}")


def export(
    path: Weights,
    format: Annotated[str, typer.Option("--format", help="onnx.")] = "onnx",
    out: Annotated[Optional[str], typer.Option(help="Output file (default: beside the weights).")] = None,
    which: Which = "model",
) -> None:
    """Export to ONNX with dynamic batch, height and width."""
    from zoo.engine.export import export as run_export

    print(run_export(path, out, fmt=format, which=which))


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
    app.command("predict")(predict)
    app.command("export")(export)
