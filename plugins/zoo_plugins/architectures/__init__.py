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
        _decoder("fpn", "fpn", "Feature Pyramid Network: top-down pathway + panoptic-FPN segmentation head",
                 (_channels("pyramid_channels", 256, "width of the top-down pathway"),
                  _channels("segmentation_channels", 128, "width of each level's conv-GN-ReLU blocks"), DROPOUT,
                  Option("merge", "add", "how levels are merged", choices=("add", "cat"))),
                 23_155_393, "Lin et al., Feature Pyramid Networks for Object Detection, CVPR 2017; Kirillov et al., "
                 "Panoptic Feature Pyramid Networks, CVPR 2019", ("cnn", "pyramid")),
        _decoder("deeplabv3", "deeplab", "DeepLabV3: ASPP on a dilated encoder (output stride 8)", _deeplab(8, False),
                 26_007_105, "Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, arXiv 2017",
                 ("cnn", "atrous")),
        _decoder("deeplabv3plus", "deeplab", "DeepLabV3+: separable ASPP (output stride 16) + a stride-4 decoder",
                 _deeplab(16, True), 22_437_457, "Chen et al., Encoder-Decoder with Atrous Separable Convolution for "
                 "Semantic Image Segmentation, ECCV 2018", ("cnn", "atrous")),
        _decoder("pspnet", "pspnet", "PSPNet: pyramid pooling (bins 1, 2, 3, 6) on the stride-8 stage",
                 (_channels("psp_out_channels", 512, "width after the pyramid pooling module"), DROPOUT,
                  Option("encoder_depth", 3, "encoder stages used, up to stride 2**depth (unused ones are not built)",
                         choices=(3, 4, 5))),
                 1_501_217, "Zhao et al., Pyramid Scene Parsing Network, CVPR 2017", ("cnn", "pyramid")),
        _decoder("linknet", "linknet", "LinkNet: light transposed-conv blocks added to the encoder's skips",
                 (_channels("prefinal_channels", 32, "width of the last block"),), 21_771_937,
                 "Chaurasia and Culurciello, LinkNet: Exploiting Encoder Representations for Efficient Semantic "
                 "Segmentation, VCIP 2017", ("cnn", "light")),
        _decoder("pan", "pan", "PAN: feature pyramid attention on the deepest stage, global attention upsampling to "
                 "stride 4",
                 (_channels("decoder_channels", 32, "width of the attention modules"),
                  Option("output_stride", 16, "encoder output stride (16 dilates the last stage)", choices=(16, 32))),
                 21_475_426, "Li et al., Pyramid Attention Network for Semantic Segmentation, BMVC 2018", ("cnn", "attention")),
        ArchitectureSpec(
            name="dpt",
            summary="DPT: four stages reassembled into a stride 4-32 pyramid, fused by residual conv units "
                    "(for ViTs; hierarchical encoders work too)",
            factory="zoo_plugins.architectures.dpt:build_dpt",
            options=(CLASSES,
                     Option("intermediate_channels", (256, 512, 1024, 1024), "width of each level's projection "
                            "before resampling, shallow to deep", minimum=1, maximum=4096),
                     _channels("fusion_channels", 256, "width of the fusion blocks and the head"),
                     Option("dropout", 0.1, "dropout before the head's last conv", minimum=0, maximum=1)),
            default_encoder="timm:vit_base_patch16_224", params_at_defaults=116_285_953,
            paper="Ranftl et al., Vision Transformers for Dense Prediction, ICCV 2021", tags=("transformer", "vit"),
        ),
        _decoder("segformer", "segformer", "SegFormer's all-MLP decoder: per-stage projections fused at stride 4",
                 (_channels("segmentation_channels", 256, "width of the projections and the fusion"),), 21_876_545,
                 "Xie et al., SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers, "
                 "NeurIPS 2021", ("mlp", "transformer-ready")),
        _decoder("upernet", "upernet", "UPerNet: pyramid pooling on the deepest stage + FPN over the others, fused",
                 (_channels("decoder_channels", 256, "width of the PPM, FPN and fusion"),), 29_597_505,
                 "Xiao et al., Unified Perceptual Parsing for Scene Understanding, ECCV 2018", ("cnn", "pyramid")),
        _decoder("unetplusplus", "unetplusplus", "UNet++: nested dense skip pathways between encoder and decoder",
                 (Option("decoder_channels", (256, 128, 64, 32, 16), "widths of the main decoder path, deep to "
                         "shallow, one per encoder stage", minimum=1, maximum=4096),), 26_078_609,
                 "Zhou et al., UNet++: A Nested U-Net Architecture for Medical Image Segmentation, DLMIA 2018",
                 ("cnn", "nested")),
        _decoder("manet", "manet", "MA-Net: position attention on the deepest stage, multi-scale fusion attention "
                 "blocks up the decoder",
                 (Option("decoder_channels", (256, 128, 64, 32, 16), "widths of the decoder blocks, deep to shallow, "
                         "one per encoder stage", minimum=1, maximum=4096),
                  Option("pab_channels", 64, "width of the position attention's queries and keys", minimum=1,
                         maximum=4096),
                  Option("reduction", 16, "squeeze-excitation reduction", minimum=1, maximum=1024)), 31_783_633,
                 "Fan et al., MA-Net: A Multi-Scale Attention Network for Liver and Tumor Segmentation, IEEE Access "
                 "2020", ("cnn", "attention")),
    ]


def _decoder(name: str, module: str, summary: str, options: tuple[Option, ...], params: int, paper: str,
             tags: tuple[str, ...]) -> ArchitectureSpec:
    """A decoder on resnet34 by default, built by ``zoo_plugins.architectures.MODULE:build_NAME``."""
    return ArchitectureSpec(name=name, summary=summary, factory=f"zoo_plugins.architectures.{module}:build_{name}",
                            options=(CLASSES, *options), default_encoder="resnet34", params_at_defaults=params,
                            paper=paper, tags=tags)


def _channels(name: str, default: int, text: str) -> Option:
    return Option(name, default, text, minimum=1, maximum=4096)


DROPOUT = Option("dropout", 0.2, "dropout before the head", minimum=0, maximum=1)


def _deeplab(output_stride: int, separable: bool) -> tuple[Option, ...]:
    return (_channels("decoder_channels", 256, "width of ASPP and the decoder"),
            Option("atrous_rates", "12,24,36", "dilation rates of the ASPP branches"),
            Option("output_stride", output_stride, "encoder output stride (its last stages dilated)", choices=(8, 16)),
            Option("aspp_separable", separable, "depthwise-separable ASPP convs"),
            Option("aspp_dropout", 0.5, "dropout after the ASPP projection", minimum=0, maximum=1))
