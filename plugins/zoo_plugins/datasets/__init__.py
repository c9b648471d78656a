"""Hook implementations for the built-in datasets. No torch import here."""

import zoo
from zoo.specs import DatasetSpec, Option


@zoo.hookimpl
def zoo_register_datasets() -> list[DatasetSpec]:
    module = "zoo_plugins.datasets"
    return [
        DatasetSpec(
            "oxford-pet",
            "Oxford-IIIT Pet, pet vs background from the trimaps (official layout; train/valid = trainval i%10)",
            f"{module}.oxford:OxfordPet",
            options=(
                Option("mode", "binary", "binary (pet vs background) or trimap (3 classes: pet, background, "
                       "border, the dataset's own)", choices=("binary", "trimap")),
                Option("border", "foreground", "trimap border (3): its own class / part of the pet, or ignored "
                       "by losses and metrics", choices=("foreground", "ignore")),
                Option("download", False, "fetch the official archives into --data-dir first (checksummed)"),
            ),
            needs_data_dir=True,
            tags=("real", "download"),
        ),
        DatasetSpec(
            "folder",
            "your own images/ and masks/ (same stems; binary, index, palette, colour or one folder per label), "
            "with train/ valid/ test/ subfolders or a seeded split",
            f"{module}.folder:FolderDataset",
            options=(
                Option("mask_threshold", None, "binarize masks as value > threshold (default: require "
                       "0/1 or 0/255)", type=int, minimum=0, maximum=65535),
                Option("valid_fraction", 0.1, "share of samples for valid when there are no split folders", minimum=0,
                       maximum=0.9),
                Option("test_fraction", 0.1, "share of samples for test when there are no split folders", minimum=0,
                       maximum=0.9),
                Option("split_seed", 0, "seed of that split", minimum=0, maximum=2**32 - 1),
                Option("classes", "", "class names of index masks, e.g. background,cat,dog (or classes.json)"),
                Option("palette", "", "RGB colour masks: name:rrggbb pairs, e.g. background:000000,cat:ff0000"),
            ),
            needs_data_dir=True,
            tags=("files",),
        ),
        DatasetSpec(
            "synthetic",
            "procedural textured scenes with shapes and exact masks; deterministic, no files",
            f"{module}.synthetic:Synthetic",
            options=(
                Option("count", 256, "train images (valid and test get count/4 each)", minimum=1),
                Option("size", 128, "side of the generated images (resized to --image-size)", minimum=8, maximum=4096),
                Option("difficulty", "medium", "contrast, noise and distractors", choices=("easy", "medium", "hard")),
                Option("seed", 0, "generator seed", minimum=0, maximum=2**32 - 1),
                Option("mode", "binary", "binary (every shape), multiclass (background + 3 shape kinds) or "
                       "multilabel (one plane per kind)", choices=("binary", "multiclass", "multilabel")),
            ),
            tags=("offline",),
        ),
    ]
