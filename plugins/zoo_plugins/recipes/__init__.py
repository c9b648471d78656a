"""Hook implementations for the built-in training recipes, TOML presets shipped beside this module."""

import zoo
from zoo.specs import RecipeSpec


@zoo.hookimpl
def zoo_register_recipes() -> list[RecipeSpec]:
    loader = "zoo_plugins.recipes.files"
    return [
        RecipeSpec("default", "zoo's general recipe: AdamW 1e-3 with cosine decay, ce+dice, horizontal flips, bf16 "
                   "where native", f"{loader}:default", version="2", tags=("default",)),
        RecipeSpec("report", "the lab report's recipe exactly: MSE, SGD momentum 0.9 at a constant 0.01, 256 px, "
                   "no augmentation, fp32", f"{loader}:report", version="1", tags=("report",)),
    ]
