"""Every timm backbone with ``features_only`` as a zoo encoder, resolved on demand: listing the zoo
does not import timm; `zoo list-encoders --all` and using a member do. A bare name resolves here only
when no other encoder (a built-in ``resnet34``) has it; ``timm:NAME`` picks timm's."""

import zoo
from zoo.specs import EncoderFamilySpec, Option


@zoo.hookimpl
def zoo_register_encoders() -> list[EncoderFamilySpec]:
    return [
        EncoderFamilySpec(
            name="timm",
            summary="timm backbone (features_only)",
            factory="zoo_plugins.timm.encoder:TimmEncoder",
            names="zoo_plugins.timm.names:model_names",
            pretrained="zoo_plugins.timm.names:pretrained_weights",
            feature_info="zoo_plugins.timm.encoder:feature_info",
            options=(
                Option("in_channels", 3, "image channels (timm adapts the stem)", minimum=1, maximum=1024),
                Option("weights", "", "local .safetensors checkpoint of the timm model, loaded by timm (its key "
                   "remapping and input-channel adaptation apply); --encoder-weights fetches published ones"),
                Option("out_indices", (), "stages to use, e.g. 1,2,3,4 (default: all)", minimum=0),
                Option("output_stride", 32, "total stride: 16 or 8 dilate the last stages where the model can",
                       choices=(8, 16, 32)),
                Option("depth", 0, "use only the first N default stages (0: all); the rest is not built",
                       minimum=0, maximum=8),
            ),
            tags=("timm",),
        )
    ]
