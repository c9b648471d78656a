"""Small frozen specs that plugins return from their hooks.

Nothing here imports torch: listing the zoo reads specs only, and a spec points at the code
that builds its thing through a lazy ``"module:attribute"`` reference.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from zoo.errors import OptionError, PluginError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def resolve(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import a ``"module:attribute"`` reference; callables pass through unchanged."""
    if callable(ref):
        return ref
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise PluginError(f"lazy reference {ref!r} must look like 'module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot load {ref!r}: {exc}") from exc
    return target


@dataclass(frozen=True)
class Option:
    """One keyword a factory accepts, with its default; the type is the default's unless given.

    Numbers may declare bounds (``minimum``/``maximum``, inclusive unless ``exclusive_minimum``);
    floats must always be finite. Tuples of integers apply the bounds to every element.
    """

    name: str
    default: Any
    help: str = ""
    type: type | None = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    flag: str | None = None  # how the user names it when it is not an `-o` option (`--lr`)

    @property
    def value_type(self) -> type | None:
        if self.type is not None:
            return self.type
        return None if self.default is None else type(self.default)

    def parse(self, raw: str) -> Any:
        """Turn a command-line string into a value of the option's type."""
        text = raw.strip()
        if text.lower() in {"none", "null"} and (self.default is None or self.type is not None):
            return self.check(None, raw)
        kind = self.value_type
        try:
            if kind is bool:
                low = text.lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError
                value: Any = low in _TRUE
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            elif kind is tuple:
                value = tuple(int(v) for v in text.strip("()[]").split(",") if v.strip())
            elif kind is str or kind is None:
                value = text.strip("'\"")
            else:
                value = kind(text)
        except ValueError:
            raise self.error(raw, f"must be {self.describe()}") from None
        return self.check(value, raw)

    def check(self, value: Any, raw: str | None = None) -> Any:
        """Validate a Python value (from the API, a TOML file or :meth:`parse`); ``raw`` is what the user typed."""
        shown = value if raw is None else raw
        kind = self.value_type
        if value is None:
            if self.default is None:
                return None
            raise self.error(shown, f"must be {self.describe()}, not None")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is tuple and isinstance(value, list):
            value = tuple(value)
        if kind is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(shown, f"must be {self.describe()}")
        if self.choices is not None and value not in self.choices:
            raise self.error(shown, f"must be one of {', '.join(map(str, self.choices))}")
        if kind in (int, float) and not self._in_range(value) or kind is tuple and not all(
                isinstance(v, int) and self._in_range(v) for v in value):
            raise self.error(shown, f"must be {self.describe()}")
        return value

    def _in_range(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.minimum is not None and (value < self.minimum or self.exclusive_minimum and value == self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def describe(self) -> str:
        """What a valid value is, for messages: 'a positive integer', 'a number in [0, 1]'."""
        kind = self.value_type
        if kind not in (int, float, tuple):
            return _type_name(kind)
        noun = {int: "integer", float: "finite number", tuple: "comma-separated integers"}[kind]
        low, high, strict = self.minimum, self.maximum, self.exclusive_minimum
        if low == 0 and high is None:
            text = f"a positive {noun}" if strict else f"a non-negative {noun}"
        elif low == 1 and high is None and kind is int:
            text = f"a positive {noun}"
        elif low is not None and high is not None:
            text = f"a{'n' if noun[0] == 'i' else ''} {noun} in {'(' if strict else '['}{_num(low)}, {_num(high)}]"
        elif low is not None:
            text = f"a{'n' if noun[0] == 'i' else ''} {noun} {'>' if strict else '>='} {_num(low)}"
        elif high is not None:
            text = f"a{'n' if noun[0] == 'i' else ''} {noun} <= {_num(high)}"
        else:
            text = _type_name(kind)
        if kind is tuple and text.startswith("a "):
            text = "comma-separated integers, each " + text.removeprefix("a ").replace(noun, "")
            text = " ".join(text.split())
        return text

    def error(self, shown: Any, what: str) -> OptionError:
        if self.flag:
            given = f"{self.flag} {shown}"
        else:
            given = f"-o {self.name}={shown}" if isinstance(shown, str) else f"{self.name}={shown!r}"
        return OptionError(f"{given}: {self.name} {what}")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _type_name(kind: type | None) -> str:
    return {bool: "true or false", int: "an integer", float: "a finite number",
            tuple: "comma-separated integers"}.get(kind, "a string" if kind in (str, None) else kind.__name__)


@dataclass(frozen=True)
class Spec:
    """What every kind of plugin contribution has in common."""

    kind: ClassVar[str] = ""

    name: str
    summary: str
    factory: str | Callable[..., Any]
    options: tuple[Option, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in " :+*()=,"):
            raise PluginError(f"{self.kind} name {self.name!r} must be non-empty without spaces or ':+*()=,'")
        names = [o.name for o in self.options]
        if len(names) != len(set(names)):
            raise PluginError(f"{self.kind} {self.name!r} declares an option twice: {names}")

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def resolve_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names are an error listing the valid ones."""
        values = self.defaults()
        for key, value in given.items():
            opt = self.option(key)
            if opt is None:
                valid = ", ".join(o.name for o in self.options) or "none"
                raise OptionError(f"{self.kind} {self.name!r} has no option {key!r} (valid: {valid})")
            values[key] = opt.parse(value) if isinstance(value, str) else opt.check(value)
        return values

    def build(self, *args: Any, **options: Any) -> Any:
        return resolve(self.factory)(*args, **self.resolve_options(options))


@dataclass(frozen=True)
class FeatureInfo:
    """Channels and reduction (stride) of each encoder stage, from high to low resolution."""

    channels: tuple[int, ...]
    reductions: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.channels or len(self.channels) != len(self.reductions):
            raise PluginError(f"feature info needs one channel count per reduction: {self}")
        if any(c <= 0 for c in self.channels) or any(r <= 0 for r in self.reductions):
            raise PluginError(f"feature channels and reductions must be positive: {self}")
        if any(b < a for a, b in zip(self.reductions, self.reductions[1:])):
            raise PluginError(f"feature reductions must never decrease: {self.reductions}")

    @property
    def total_stride(self) -> int:
        return self.reductions[-1]


@dataclass(frozen=True)
class ArchitectureSpec(Spec):
    """A segmentation network; ``factory(encoder, **options)`` returns an ``nn.Module`` of logits."""

    kind: ClassVar[str] = "architecture"

    default_encoder: str = ""
    params_at_defaults: int | None = None  # checked against the built model by the contract tests
    paper: str = ""  # where the architecture comes from, as `zoo info` shows it


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightsSpec:
    """One published set of an encoder's weights: a ``.safetensors`` file in a Hugging Face Hub repo,
    and how images must be normalized for it (on the 0..1 scale; ``input_range`` says what 0 and 1
    are). The first an encoder lists is what ``--encoder-weights imagenet`` picks."""

    tag: str  # e.g. "tv_in1k"; `--encoder-weights TAG`
    repo: str  # hub repo id, e.g. "timm/resnet34.tv_in1k"
    filename: str = "model.safetensors"
    revision: str | None = None  # a commit, branch or tag of the repo; None: main
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    input_range: tuple[float, float] = (0.0, 1.0)
    sha256: str = ""  # of the file, checked after the download when given
    license: str = ""
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.tag or not self.repo or not self.filename.endswith(".safetensors"):
            raise PluginError(f"weights spec {self.tag!r} of {self.repo!r} needs a tag, a repo and a .safetensors file")


@dataclass(frozen=True)
class EncoderSpec(Spec):
    """A backbone; ``feature_info(**options)`` describes its stages without building it; its
    factory takes ``weights`` (a local ``.safetensors`` path) to start from; ``pretrained`` lists
    the published weights ``--encoder-weights`` can name."""

    kind: ClassVar[str] = "encoder"

    feature_info: str | Callable[..., FeatureInfo] = ""
    pretrained: tuple[WeightsSpec, ...] = ()

    def weights(self, member: str | None = None) -> list[WeightsSpec]:
        return list(self.pretrained)

    def describe(self, **options: Any) -> FeatureInfo:
        return resolve(self.feature_info)(**self.resolve_options(options))


@dataclass(frozen=True)
class EncoderFamilySpec(Spec):
    """Many encoders served by one factory (e.g. every timm backbone), named by ``names()``.

    Members are resolved on demand, so listing the zoo does not import the family's library.
    ``factory(member, **options)`` builds one; ``feature_info(member, **options)`` describes it.
    """

    kind: ClassVar[str] = "encoder"

    names: str | Callable[[], list[str]] = ""
    feature_info: str | Callable[..., FeatureInfo] = ""
    pretrained: str | Callable[[str], list[WeightsSpec]] = ""  # member -> its published weights

    def members(self) -> list[str]:
        return list(resolve(self.names)())

    def weights(self, member: str | None = None) -> list[WeightsSpec]:
        return list(resolve(self.pretrained)(member)) if self.pretrained and member else []


@dataclass(frozen=True)
class LossSpec(Spec):
    """A loss; ``factory(**options)`` returns an ``nn.Module(logits, target, valid=None) -> scalar``.
    A loss that serves more than the binary task lists them in ``tasks``; its factory then also
    receives ``task`` (a :class:`zoo.tasks.Task`)."""

    kind: ClassVar[str] = "loss"

    tasks: tuple[str, ...] = ("binary",)


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """A dataset; ``factory(split, data_dir, **options)`` returns a :class:`zoo.data.SampleSource`."""

    kind: ClassVar[str] = "dataset"

    splits: tuple[str, ...] = ("train", "valid", "test")
    needs_data_dir: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerSpec(Spec):
    """An optimizer; ``factory(param_groups, lr=, momentum=, weight_decay=, **options)`` returns a
    ``torch.optim.Optimizer`` (``momentum`` and ``weight_decay`` are the run's flags; a factory that
    has no use for momentum ignores it)."""

    kind: ClassVar[str] = "optimizer"


@dataclass(frozen=True)
class SchedulerSpec(Spec):
    """A learning-rate schedule; ``factory(**options)`` returns ``factor(step, total, steps_per_epoch)``,
    the multiplier of the base learning rate at optimizer step ``step`` of ``total`` (after warmup).
    A pure function of its arguments, so a resumed run (even with more epochs) needs no saved state."""

    kind: ClassVar[str] = "scheduler"


@dataclass(frozen=True)
class CallbackSpec(Spec):
    """A training callback (a logger, a monitor); ``factory(**options)`` returns a
    :class:`zoo.engine.callbacks.Callback`. ``--log NAME`` selects it."""

    kind: ClassVar[str] = "callback"


@dataclass(frozen=True)
class RecipeSpec(Spec):
    """A named, versioned training preset: ``factory()`` returns the run settings it sets (the keys of
    ``zoo train``'s flags, plugin options in an ``options`` table), e.g. read from a TOML file the
    plugin ships. Flags and ``--config`` files override it key by key."""

    kind: ClassVar[str] = "recipe"

    version: str = "1"


@dataclass(frozen=True)
class PretrainedModelSpec(Spec):
    """A published, trained model: ``zoo eval/predict NAME``, ``zoo train --init NAME`` and
    ``zoo.load_model(NAME)`` fetch ``location`` (``hf://ORG/NAME[@REV]``, a run directory or a
    ``.safetensors`` file) and check the weights file against ``sha256``. The rest is shown by
    ``zoo list-models --pretrained``; the weights' own header says what the model is."""

    kind: ClassVar[str] = "pretrained"

    factory: str | Callable[..., Any] = ""  # nothing to build: the weights file rebuilds the model
    location: str = ""
    sha256: str = ""
    architecture: str = ""
    encoder: str = ""
    dataset: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    license: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.location:
            raise PluginError(f"pretrained model {self.name!r} needs a location (hf://ORG/NAME, a run or a file)")
        if self.sha256 and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise PluginError(f"pretrained model {self.name!r}: sha256 must be 64 lowercase hex digits")
