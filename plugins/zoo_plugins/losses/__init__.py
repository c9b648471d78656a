"""Hook implementations for the built-in losses. No torch import here."""

import zoo
from zoo.specs import LossSpec, Option

ALL = ("binary", "multiclass", "multilabel")
SIGMOID = ("binary", "multilabel")
PER_IMAGE = Option("per_image", False, "average the loss over images instead of pooling the whole batch")
SMOOTH = Option("smooth", 1.0, "added to the soft true-positive count and to the denominator", minimum=0)
CLASS_WEIGHTS = Option("class_weights", "", "one weight per class (binary: background,foreground), e.g. 1,2,5; "
                       "'auto' = inverse frequency on the train split")


@zoo.hookimpl
def zoo_register_losses() -> list[LossSpec]:
    module = "zoo_plugins.losses"
    return [
        LossSpec("mse", "mean squared error between sigmoid(logits) and the target (the report's loss)",
                 f"{module}.pixelwise:MSELoss", tags=("report", "pixelwise"), tasks=SIGMOID),
        LossSpec("bce", "binary cross-entropy with logits (per label for multilabel)",
                 f"{module}.pixelwise:BCELoss",
                 options=(Option("pos_weight", None, "weight of positive pixels", type=float, minimum=0,
                                 exclusive_minimum=True),),
                 tags=("pixelwise",), tasks=SIGMOID),
        LossSpec("ce", "cross-entropy: softmax for multiclass, sigmoid for binary and multilabel",
                 f"{module}.pixelwise:CELoss",
                 options=(CLASS_WEIGHTS, Option("label_smoothing", 0.0, "mass moved uniformly to the other classes",
                                                minimum=0, maximum=1)),
                 tags=("pixelwise",), tasks=ALL),
        LossSpec("focal", "focal loss: -alpha_t (1 - p_t)^gamma log p_t (softmax for multiclass)",
                 f"{module}.pixelwise:FocalLoss",
                 options=(Option("alpha", None, "weight of positives in [0, 1] (negatives get 1 - alpha)", type=float,
                                 minimum=0, maximum=1),
                          Option("gamma", 2.0, "focusing exponent; 0 gives bce", minimum=0), CLASS_WEIGHTS),
                 tags=("pixelwise",), tasks=ALL),
        LossSpec("dice", "soft Dice loss 1 - (2TP + 2s) / (2TP + FP + FN + 2s) per class, pooled over the batch",
                 f"{module}.overlap:DiceLoss", options=(SMOOTH, PER_IMAGE, CLASS_WEIGHTS), tags=("overlap",), tasks=ALL),
        LossSpec("jaccard", "soft Jaccard (IoU) loss 1 - (TP + s) / (TP + FP + FN + s) per class",
                 f"{module}.overlap:JaccardLoss", options=(SMOOTH, PER_IMAGE, CLASS_WEIGHTS), tags=("overlap",),
                 tasks=ALL),
        LossSpec("tversky", "Tversky loss 1 - (TP + s) / (TP + alpha FP + beta FN + s) per class",
                 f"{module}.overlap:TverskyLoss",
                 options=(Option("alpha", 0.5, "weight of false positives", minimum=0),
                          Option("beta", 0.5, "weight of false negatives", minimum=0), SMOOTH, PER_IMAGE,
                          CLASS_WEIGHTS),
                 tags=("overlap",), tasks=ALL),
        LossSpec("lovasz", "Lovasz hinge (binary, per label) or Lovasz-softmax (multiclass): a convex IoU surrogate",
                 f"{module}.lovasz:LovaszLoss", options=(PER_IMAGE, CLASS_WEIGHTS), tags=("overlap",), tasks=ALL),
    ]
