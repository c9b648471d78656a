"""Hook implementations for the built-in losses. No torch import here."""

import zoo
from zoo.specs import LossSpec, Option

PER_IMAGE = Option("per_image", False, "average the loss over images instead of pooling the whole batch")
SMOOTH = Option("smooth", 1.0, "added to the soft true-positive count and to the denominator", minimum=0)


@zoo.hookimpl
def zoo_register_losses() -> list[LossSpec]:
    module = "zoo_plugins.losses"
    return [
        LossSpec("mse", "mean squared error between sigmoid(logits) and the target (the report's loss)",
                 f"{module}.pixelwise:MSELoss", tags=("report", "pixelwise")),
        LossSpec("bce", "binary cross-entropy with logits",
                 f"{module}.pixelwise:BCELoss",
                 options=(Option("pos_weight", None, "weight of positive pixels", type=float, minimum=0, exclusive_minimum=True),),
                 tags=("pixelwise",)),
        LossSpec("focal", "focal loss: -alpha_t (1 - p_t)^gamma log p_t",
                 f"{module}.pixelwise:FocalLoss",
                 options=(Option("alpha", None, "weight of positives in [0, 1] (negatives get 1 - alpha)", type=float, minimum=0,
                                 maximum=1),
                          Option("gamma", 2.0, "focusing exponent; 0 gives bce", minimum=0)),
                 tags=("pixelwise",)),
        LossSpec("dice", "soft Dice loss 1 - (2TP + 2s) / (2TP + FP + FN + 2s), pooled over the batch",
                 f"{module}.overlap:DiceLoss", options=(SMOOTH, PER_IMAGE), tags=("overlap",)),
        LossSpec("jaccard", "soft Jaccard (IoU) loss 1 - (TP + s) / (TP + FP + FN + s)",
                 f"{module}.overlap:JaccardLoss", options=(SMOOTH, PER_IMAGE), tags=("overlap",)),
        LossSpec("tversky", "Tversky loss 1 - (TP + s) / (TP + alpha FP + beta FN + s)",
                 f"{module}.overlap:TverskyLoss",
                 options=(Option("alpha", 0.5, "weight of false positives", minimum=0),
                          Option("beta", 0.5, "weight of false negatives", minimum=0), SMOOTH, PER_IMAGE),
                 tags=("overlap",)),
        LossSpec("lovasz", "binary Lovasz hinge: a convex surrogate of the Jaccard loss",
                 f"{module}.lovasz:LovaszHingeLoss", options=(PER_IMAGE,), tags=("overlap",)),
    ]
