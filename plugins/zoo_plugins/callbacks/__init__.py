"""Hook implementations for the built-in callbacks: metric loggers and the progress bar."""

import zoo
from zoo.specs import CallbackSpec, Option


@zoo.hookimpl
def zoo_register_callbacks() -> list[CallbackSpec]:
    module = "zoo_plugins.callbacks"
    return [
        CallbackSpec("jsonl", "metrics.jsonl (one row per epoch) and steps.jsonl (lr of every step, loss per "
                     "logging interval)", f"{module}.files:JsonlLogger", tags=("default",)),
        CallbackSpec("csv", "metrics.csv: one row per epoch, one column per number", f"{module}.files:CsvLogger"),
        CallbackSpec("tensorboard", "TensorBoard event files under RUN/tensorboard: loss, lr, validation metrics, "
                     "sample predictions (pip install 'zoo[tensorboard]')", f"{module}.tensorboard:TensorBoardLogger",
                     options=(Option("images", True, "add samples.png (validation predictions) at every save"),)),
        CallbackSpec("progress", "a rich progress bar per epoch on stderr and a summary line per epoch",
                     f"{module}.progress:ProgressBar"),
    ]
