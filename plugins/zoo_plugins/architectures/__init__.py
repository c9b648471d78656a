"""Hook implementations for the built-in architectures. No torch import here."""

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
        ArchitectureSpec(
            name="fpn", summary="Feature Pyramid Network: top-down pathway + panoptic-FPN segmentation head",
            factory="zoo_plugins.architectures.fpn:build_fpn",
            options=(CLASSES, _channels("pyramid_channels", 256, "width of the top-down pathway"),
                     _channels("segmentation_channels", 128, "width of each level's conv-GN-ReLU blocks"), DROPOUT,
                     Option("merge", "add", "how levels are merged", choices=("add", "cat"))),
            default_encoder="resnet34", params_at_defaults=23_155_393,
            paper="Lin et al., Feature Pyramid Networks for Object Detection, CVPR 2017; Kirillov et al., "
                  "Panoptic Feature Pyramid Networks, CVPR 2019", tags=("cnn", "pyramid")),
        ArchitectureSpec(
            name="deeplabv3", summary="DeepLabV3: ASPP on a dilated encoder (output stride 8)",
            factory="zoo_plugins.architectures.deeplab:build_deeplabv3",
            options=_deeplab(8, False), default_encoder="resnet34", params_at_defaults=26_007_105,
            paper="Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, arXiv 2017",
            tags=("cnn", "atrous")),
        ArchitectureSpec(
            name="deeplabv3plus", summary="DeepLabV3+: separable ASPP (output stride 16) + a stride-4 decoder",
            factory="zoo_plugins.architectures.deeplab:build_deeplabv3plus",
            options=_deeplab(16, True), default_encoder="resnet34", params_at_defaults=22_437_457,
            paper="Chen et al., Encoder-Decoder with Atrous Separable Convolution for Semantic Image "
                  "Segmentation, ECCV 2018", tags=("cnn", "atrous")),
        ArchitectureSpec(
            name="pspnet", summary="PSPNet: pyramid pooling (bins 1, 2, 3, 6) on the stride-8 stage",
            factory="zoo_plugins.architectures.pspnet:build_pspnet",
            options=(CLASSES, _channels("psp_out_channels", 512, "width after the pyramid pooling module"), DROPOUT,
                     Option("encoder_depth", 3, "encoder stages used, up to stride 2**depth (unused ones are not "
                            "built)", choices=(3, 4, 5))),
            default_encoder="resnet34", params_at_defaults=1_501_217,
            paper="Zhao et al., Pyramid Scene Parsing Network, CVPR 2017", tags=("cnn", "pyramid")),
        ArchitectureSpec(
            name="linknet", summary="LinkNet: light transposed-conv blocks added to the encoder's skips",
            factory="zoo_plugins.architectures.linknet:build_linknet",
            options=(CLASSES, _channels("prefinal_channels", 32, "width of the last block")),
            default_encoder="resnet34", params_at_defaults=21_771_937,
            paper="Chaurasia and Culurciello, LinkNet: Exploiting Encoder Representations for Efficient Semantic "
                  "Segmentation, VCIP 2017", tags=("cnn", "light")),
        ArchitectureSpec(
            name="segformer", summary="SegFormer's all-MLP decoder: per-stage projections fused at stride 4",
            factory="zoo_plugins.architectures.segformer:build_segformer",
            options=(CLASSES, _channels("segmentation_channels", 256, "width of the projections and the fusion")),
            default_encoder="resnet34", params_at_defaults=21_876_545,
            paper="Xie et al., SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers, "
                  "NeurIPS 2021", tags=("mlp", "transformer-ready")),
        ArchitectureSpec(
            name="upernet", summary="UPerNet: pyramid pooling on the deepest stage + FPN over the others, fused",
            factory="zoo_plugins.architectures.upernet:build_upernet",
            options=(CLASSES, _channels("decoder_channels", 256, "width of the PPM, FPN and fusion")),
            default_encoder="resnet34", params_at_defaults=29_597_505,
            paper="Xiao et al., Unified Perceptual Parsing for Scene Understanding, ECCV 2018", tags=("cnn", "pyramid")),
        ArchitectureSpec(
            name="unetplusplus", summary="UNet++: nested dense skip pathways between encoder and decoder",
            factory="zoo_plugins.architectures.unetplusplus:build_unetplusplus",
            options=(CLASSES, Option("decoder_channels", (256, 128, 64, 32, 16), "widths of the main decoder path, "
                                     "deep to shallow, one per encoder stage", minimum=1, maximum=4096)),
            default_encoder="resnet34", params_at_defaults=26_078_609,
            paper="Zhou et al., UNet++: A Nested U-Net Architecture for Medical Image Segmentation, DLMIA 2018",
            tags=("cnn", "nested")),
    ]


def _channels(name: str, default: int, text: str) -> Option:
    return Option(name, default, text, minimum=1, maximum=4096)


DROPOUT = Option("dropout", 0.2, "dropout before the head", minimum=0, maximum=1)


def _deeplab(output_stride: int, separable: bool) -> tuple[Option, ...]:
    return (CLASSES, _channels("decoder_channels", 256, "width of ASPP and the decoder"),
            Option("atrous_rates", "12,24,36", "dilation rates of the ASPP branches"),
            Option("output_stride", output_stride, "encoder output stride (its last stages dilated)", choices=(8, 16)),
            Option("aspp_separable", separable, "depthwise-separable ASPP convs"),
            Option("aspp_dropout", 0.5, "dropout after the ASPP projection", minimum=0, maximum=1))
