"""A third-party zoo plugin. Hook implementations only declare specs; the code that builds things
lives in modules named by lazy "module:attribute" references, imported only when used."""

import zoo
from zoo.specs import ArchitectureSpec, CallbackSpec, DatasetSpec, EncoderSpec, FeatureInfo, LossSpec, Option


def tiny_feature_info(in_channels: int = 3, width: int = 8) -> FeatureInfo:
    return FeatureInfo((width, 2 * width, 4 * width), (2, 4, 8))


@zoo.hookimpl
def zoo_register_encoders():
    return [
        EncoderSpec(
            name="tiny",
            summary="three strided conv stages (example plugin)",
            factory="zoo_plugin_example.encoder:TinyEncoder",
            feature_info=tiny_feature_info,
            options=(Option("in_channels", 3, "image channels"), Option("width", 8, "first stage width")),
        )
    ]


@zoo.hookimpl
def zoo_register_losses():
    return [
        LossSpec(
            name="boundary_bce",
            summary="BCE weighted up near mask boundaries (example plugin)",
            factory="zoo_plugin_example.loss:BoundaryBCE",
            options=(Option("boost", 4.0, "extra weight of boundary pixels"),),
        )
    ]


@zoo.hookimpl
def zoo_register_datasets():
    return [
        DatasetSpec(
            name="stripes",
            summary="vertical bands whose bright half is foreground (example plugin)",
            factory="zoo_plugin_example.dataset:Stripes",
            options=(Option("count", 16, "train images"), Option("size", 32, "image side")),
        )
    ]


@zoo.hookimpl
def zoo_register_architectures():
    return [
        ArchitectureSpec(
            name="sumseg",
            summary="every encoder stage projected, resized to the finest and summed (example plugin)",
            factory="zoo_plugin_example.architecture:build_sumseg",
            options=(Option("classes", 1, "output channels", minimum=1),
                     Option("width", 16, "width of the projections", minimum=1, maximum=1024)),
            default_encoder="tiny",
        )
    ]


@zoo.hookimpl
def zoo_register_callbacks():
    return [
        CallbackSpec(
            name="textlog",
            summary="one line per validation in RUN/example-log.txt (example plugin)",
            factory="zoo_plugin_example.logger:TextLogger",
            options=(Option("keys", "train_loss,valid_dice", "metrics-row keys to write"),),
        )
    ]
