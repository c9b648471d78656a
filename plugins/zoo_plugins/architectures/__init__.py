"""Hook implementations for the report's two architectures. No torch import here."""

import zoo
from zoo.specs import ArchitectureSpec, Option

CLASSES = Option("classes", 1, "output channels (1 for binary segmentation)", minimum=1, maximum=4096)


@zoo.hookimpl
def zoo_register_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="unet",
            summary="UNet of the report: skip concatenation, ConvTranspose up, decoder widths = encoder widths",
            factory="zoo_plugins.architectures.unet:build_unet",
            options=(CLASSES,),
            default_encoder="unet",
            params_at_defaults=31_037_633,
            tags=("report", "cnn"),
        ),
        ArchitectureSpec(
            name="resnet34_unet",
            summary="ResNet34-UNet of the report: Block(C, C/2) bottleneck, light concat-then-upsample decoder",
            factory="zoo_plugins.architectures.resnet34_unet:build_resnet34_unet",
            options=(CLASSES, Option("decoder_channels", 32, "width of every decoder Block", minimum=1, maximum=4096)),
            default_encoder="resnet34",
            params_at_defaults=24_720_284,
            tags=("report", "cnn", "residual"),
        ),
    ]
