"""The hooks a zoo plugin implements. Each returns a list of specs from :mod:`zoo.specs`."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_register_architectures() -> list:
    """Return a list of :class:`zoo.specs.ArchitectureSpec`."""


@hookspec
def zoo_register_encoders() -> list:
    """Return a list of :class:`zoo.specs.EncoderSpec` or :class:`zoo.specs.EncoderFamilySpec`."""


@hookspec
def zoo_register_losses() -> list:
    """Return a list of :class:`zoo.specs.LossSpec`."""


@hookspec
def zoo_register_datasets() -> list:
    """Return a list of :class:`zoo.specs.DatasetSpec`."""


@hookspec
def zoo_register_optimizers() -> list:
    """Return a list of :class:`zoo.specs.OptimizerSpec`."""


@hookspec
def zoo_register_schedulers() -> list:
    """Return a list of :class:`zoo.specs.SchedulerSpec`."""


@hookspec
def zoo_register_callbacks() -> list:
    """Return a list of :class:`zoo.specs.CallbackSpec`."""


@hookspec
def zoo_register_recipes() -> list:
    """Return a list of :class:`zoo.specs.RecipeSpec`."""


@hookspec
def zoo_register_pretrained() -> list:
    """Return a list of :class:`zoo.specs.PretrainedModelSpec` (published, trained models)."""
