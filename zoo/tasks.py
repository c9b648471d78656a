"""What a model predicts: one object that losses, metrics, the data pipeline, predict and export
consult, instead of ``if binary`` branches.

- ``binary``: one logit channel, sigmoid; masks hold 0/1.
- ``multiclass``: N logit channels, softmax; masks hold a class index per pixel.
- ``multilabel``: N independent sigmoid channels; masks hold N binary planes.

Pixels that count for nothing (``ignore_index`` in a dataset's masks, padding) are carried as a
separate ``valid`` mask, which every loss and metric honours.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import OptionError

TASK_KINDS = ("binary", "multiclass", "multilabel")
IGNORE_INDEX = 255


def default_colors(count: int) -> tuple[tuple[int, int, int], ...]:
    """Distinct colours: black for a first 'background'-like class is left to the dataset."""
    colors = []
    for i in range(count):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colors)


@dataclass(frozen=True)
class Task:
    kind: str = "binary"
    classes: tuple[str, ...] = ("foreground",)  # binary: the one foreground class
    colors: tuple[tuple[int, int, int], ...] = field(default=())
    ignore_index: int = IGNORE_INDEX  # the mask value that marks a pixel as ignored

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise OptionError(f"task {self.kind!r}: choose one of {', '.join(TASK_KINDS)}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise OptionError(f"task {self.kind}: class names must be given once each, got {list(self.classes)}")
        if self.kind == "binary" and len(self.classes) != 1:
            raise OptionError(f"a binary task has one (foreground) class, got {list(self.classes)}")
        if self.kind == "multiclass" and len(self.classes) < 2:
            raise OptionError(f"a multiclass task needs at least 2 classes, got {list(self.classes)}")
        if not self.colors:
            object.__setattr__(self, "colors", default_colors(len(self.classes)))
        if len(self.colors) != len(self.classes):
            raise OptionError(f"{len(self.colors)} colours for {len(self.classes)} classes")
        object.__setattr__(self, "colors", tuple(tuple(int(v) for v in c) for c in self.colors))
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def channels(self) -> int:
        """Logit channels the model's head must produce."""
        return 1 if self.kind == "binary" else len(self.classes)

    @property
    def metric_classes(self) -> tuple[str, ...]:
        """The classes metrics report: a binary task scores background and foreground."""
        return ("background", *self.classes) if self.kind == "binary" else self.classes

    @property
    def default_monitor(self) -> str:
        """The validation figure that picks the best epoch (binary keeps round 1's Dice)."""
        return "valid_dice" if self.kind == "binary" else "valid_miou"

    def with_classes(self, names: list[str] | tuple[str, ...]) -> "Task":
        """The same task with other class names (``--classes``): same count unless the dataset left it open."""
        return Task(self.kind, tuple(names), self.colors if len(names) == len(self.classes) else (), self.ignore_index)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": list(self.classes), "colors": [list(c) for c in self.colors],
                "ignore_index": self.ignore_index}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Task":
        """A task from config.json; a round-1 run (no task recorded) was binary."""
        if not data:
            return cls()
        return cls(data.get("kind", "binary"), tuple(data.get("classes") or ("foreground",)),
                   tuple(tuple(c) for c in data.get("colors") or ()), int(data.get("ignore_index", IGNORE_INDEX)))
