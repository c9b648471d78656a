"""Hook implementations for the report's two encoders. Stage layouts are computed here in plain
Python, so listing and planning never build (or import) a network."""

import zoo
from zoo.specs import EncoderSpec, FeatureInfo, Option, WeightsSpec

IN_CHANNELS = Option("in_channels", 3, "image channels (1 for grayscale)", minimum=1, maximum=1024)
BASE_CHANNELS = Option("base_channels", 64, "width of the first stage (doubles per stage)", minimum=1,
                       maximum=4096)
WEIGHTS = Option("weights", "", "local .safetensors file with encoder weights (--encoder-weights fetches "
                 "published ones)")

# timm's resnet34 checkpoints on the Hugging Face Hub: the key names of zoo's ResNet34 (fc.* unused).
# torchvision's weights come first, so `imagenet` means what it means in torchvision and smp.
RESNET34_WEIGHTS = tuple(
    WeightsSpec(tag, f"timm/resnet34.{tag}", license=license, summary=summary) for tag, license, summary in (
        ("tv_in1k", "bsd-3-clause", "torchvision's ImageNet-1k weights (73.3% top-1)"),
        ("a1_in1k", "apache-2.0", "timm, ResNet strikes back A1 recipe (76.4% top-1 at 288 px)"),
        ("a2_in1k", "apache-2.0", "timm, ResNet strikes back A2 recipe"),
        ("a3_in1k", "apache-2.0", "timm, ResNet strikes back A3 recipe"),
        ("bt_in1k", "apache-2.0", "timm, bag-of-tricks recipe"),
        ("gluon_in1k", "apache-2.0", "GluonCV's ImageNet-1k weights"),
    ))


def unet_feature_info(in_channels: int = 3, base_channels: int = 64, depth: int = 5, weights: str = "") -> FeatureInfo:
    return FeatureInfo(tuple(base_channels * 2**i for i in range(depth)), tuple(2**i for i in range(depth)))


def resnet34_feature_info(in_channels: int = 3, base_channels: int = 64, weights: str = "", output_stride: int = 32,
                          depth: int = 5) -> FeatureInfo:
    """The stem (stride 2) and layer1..layer4 (strides 4..32; dilated beyond ``output_stride``)."""
    channels = (base_channels, *(base_channels * 2**i for i in range(4)))
    reductions = (2, *(min(4 * 2**i, output_stride) for i in range(4)))
    return FeatureInfo(channels[:depth], reductions[:depth])


@zoo.hookimpl
def zoo_register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            name="unet",
            summary="UNet encoder of the report: DoubleConv stages with max-pool, widths 64..1024",
            factory="zoo_plugins.encoders.unet:UNetEncoder",
            feature_info=unet_feature_info,
            options=(IN_CHANNELS, BASE_CHANNELS,
                     Option("depth", 5, "number of stages, the last being the bottleneck", minimum=1, maximum=8),
                     WEIGHTS),
            tags=("report",),
        ),
        EncoderSpec(
            name="resnet34",
            summary="ResNet34 of the report: 7x7 stem, max-pool, 3-4-6-3 basic blocks (torchvision/timm key names); "
                    "features at strides 2..32",
            factory="zoo_plugins.encoders.resnet:ResNet34Encoder",
            feature_info=resnet34_feature_info,
            options=(IN_CHANNELS, BASE_CHANNELS, WEIGHTS,
                     Option("output_stride", 32, "total stride: 16 or 8 dilate the last stages (atrous, as DeepLab)",
                            choices=(8, 16, 32)),
                     Option("depth", 5, "stages returned: the stem (stride 2), then layer1..layer4 (strides 4..32); "
                            "later ones are not built", minimum=1, maximum=5)),
            tags=("report", "residual", "dilatable", "pretrained"),
            pretrained=RESNET34_WEIGHTS,
        ),
    ]
