"""The one table of plugin kinds: what each is called, its hook, its spec class and its listing command."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.specs import (ArchitectureSpec, CallbackSpec, DatasetSpec, EncoderFamilySpec, EncoderSpec, LossSpec,
                       OptimizerSpec, PretrainedModelSpec, RecipeSpec, SchedulerSpec, Spec)


@dataclass(frozen=True)
class Kind:
    name: str  # as in messages: "unknown architecture 'x'"
    plural: str  # registry.toml alias tables, table titles
    hook: str  # the hook that returns this kind's specs
    specs: tuple[type[Spec], ...]  # what that hook may return
    command: str  # the CLI command that lists them

    @property
    def spec(self) -> type[Spec]:
        return self.specs[0]


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("architecture", "architectures", "zoo_register_architectures", (ArchitectureSpec,), "list-models"),
    Kind("encoder", "encoders", "zoo_register_encoders", (EncoderSpec, EncoderFamilySpec), "list-encoders"),
    Kind("loss", "losses", "zoo_register_losses", (LossSpec,), "list-losses"),
    Kind("dataset", "datasets", "zoo_register_datasets", (DatasetSpec,), "list-datasets"),
    Kind("optimizer", "optimizers", "zoo_register_optimizers", (OptimizerSpec,), "list-optimizers"),
    Kind("scheduler", "schedulers", "zoo_register_schedulers", (SchedulerSpec,), "list-schedulers"),
    Kind("callback", "callbacks", "zoo_register_callbacks", (CallbackSpec,), "list-callbacks"),
    Kind("recipe", "recipes", "zoo_register_recipes", (RecipeSpec,), "list-recipes"),
    Kind("pretrained", "pretrained", "zoo_register_pretrained", (PretrainedModelSpec,), "list-models --pretrained"),
)}

BY_PLURAL: dict[str, Kind] = {k.plural: k for k in KINDS.values()}
