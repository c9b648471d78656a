"""Batches from the cache, straight to the training device; augmentation and normalization run on
whole batches there. Every random draw comes from a generator seeded by (seed, epoch, step, rank),
so a resumed run sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from zoo.data.cache import CachedSplit
from zoo.data.native import crop_batch
from zoo.errors import OptionError
from zoo.specs import IMAGENET_MEAN, IMAGENET_STD

AUGMENTATIONS = ("flip", "affine", "color")


@dataclass(frozen=True)
class Augment:
    """Which augmentations run and how strong. ``parse("flip,affine")``; ``"none"`` turns all off."""

    hflip: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0  # degrees, either way
    translate: float = 0.0  # fraction of the size
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "Augment":
        names = [n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"]
        unknown = [n for n in names if n not in AUGMENTATIONS]
        if unknown:
            raise OptionError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)} or none")
        kwargs: dict = {}
        if "flip" in names:
            kwargs["hflip"] = 0.5
        if "affine" in names:
            kwargs.update(scale=(0.8, 1.25), rotate=10.0, translate=0.1)
        if "color" in names:
            kwargs.update(brightness=0.2, contrast=0.2, saturation=0.2)
        return cls(**kwargs)

    @property
    def active(self) -> bool:
        return self != Augment()

    @property
    def geometric(self) -> bool:
        return self.scale != (1.0, 1.0) or bool(self.rotate) or bool(self.translate)


_LUMA: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _luma(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Rec. 601 luma weights, made once per device: a per-step host-to-device copy would sync a GPU."""
    if (device, dtype) not in _LUMA:
        _LUMA[device, dtype] = torch.tensor([0.299, 0.587, 0.114], dtype=dtype, device=device).view(1, 3, 1, 1)
    return _LUMA[device, dtype]


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor, aug: Augment, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``images`` float in [0, 1] (N, 3, H, W); ``masks`` float (N, C, H, W) (class indices or label
    planes) and ``valid`` float (N, 1, H, W). Geometry moves all three alike (masks nearest); pixels
    brought in from outside become invalid."""
    n, device = images.shape[0], images.device
    if aug.hflip:
        flip = (torch.rand(n, generator=gen, device=device) < aug.hflip).view(n, 1, 1, 1)
        images, masks, valid = (torch.where(flip, t.flip(-1), t) for t in (images, masks, valid))
    if aug.geometric:
        zoom = _uniform(n, *aug.scale, gen, device)
        angle = _uniform(n, -aug.rotate, aug.rotate, gen, device) * (math.pi / 180)
        shift = _uniform(2 * n, -aug.translate, aug.translate, gen, device).view(n, 2) * 2
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack((torch.stack((cos, -sin, shift[:, 0]), 1), torch.stack((sin, cos, shift[:, 1]), 1)), 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        both = F.grid_sample(torch.cat((masks, valid), 1), grid, mode="nearest", padding_mode="zeros", align_corners=False)
        masks, valid = both[:, :-1], both[:, -1:]
    if aug.brightness or aug.contrast or aug.saturation:
        view = (n, 1, 1, 1)
        images = images * _uniform(n, 1 - aug.brightness, 1 + aug.brightness, gen, device).view(view)
        gray = (images * _luma(images.device, images.dtype)).sum(1, keepdim=True)
        images = gray + (images - gray) * _uniform(n, 1 - aug.saturation, 1 + aug.saturation, gen, device).view(view)
        mean = gray.mean((2, 3), keepdim=True)
        images = mean + (images - mean) * _uniform(n, 1 - aug.contrast, 1 + aug.contrast, gen, device).view(view)
        images = images.clamp(0, 1)
    return images, masks, valid


class Normalize:
    """``(x - 255 mean) / (255 std)`` for float images in [0, 255], as one fused multiply-add."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, device: torch.device | str = "cpu") -> None:
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale, self.shift = 1 / (std_t * 255), -mean_t / std_t

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images, self.scale)


@dataclass
class Batch:
    images: torch.Tensor  # float (N, 3, H, W), normalized
    masks: torch.Tensor  # the loss target: binary float (N, 1, H, W), multiclass long (N, H, W), multilabel float (N, C, H, W)
    valid: torch.Tensor | None  # float (N, 1, H, W) or None when every pixel counts
    indices: np.ndarray


_END = object()


@dataclass
class _Failed:
    error: BaseException


def step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1, np.uint64)[0] >> 1)


class BatchLoader:
    """Iterates a cached split in batches on ``device``. Training order is a permutation seeded by
    (seed, epoch), padded to a multiple of ``world`` and strided by ``rank`` (as DistributedSampler);
    evaluation is in order, each rank taking every ``world``-th sample without padding."""

    def __init__(self, split: CachedSplit, batch_size: int, device: torch.device, *, train: bool,
                 augment: Augment = Augment(), mean=IMAGENET_MEAN, std=IMAGENET_STD, seed: int = 0,
                 rank: int = 0, world: int = 1, channels_last: bool = False, crop: int | None = None,
                 rescale: tuple[float, float] | None = None) -> None:
        """``crop``: batches of random ``crop`` x ``crop`` windows of a split cached at native size
        (rescaled by a factor from ``rescale`` first), drawn from the seeded per-step generator."""
        self.split, self.batch_size, self.device, self.train = split, batch_size, device, train
        self.crop, self.rescale = crop, rescale
        self.augment = augment if train else Augment()
        self.seed, self.rank, self.world, self.channels_last = seed, rank, world, channels_last
        self.normalize = Normalize(mean, std, device)
        self.pin = device.type == "cuda"

    def indices(self, epoch: int) -> np.ndarray:
        n = len(self.split)
        if not self.train:
            return np.arange(self.rank, n, self.world)
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        total = math.ceil(n / self.world) * self.world
        order = np.concatenate([order, order[: total - n]])
        return order[self.rank::self.world]

    def __len__(self) -> int:
        return math.ceil(len(self.indices(0)) / self.batch_size)

    def _gather(self, idx: np.ndarray, epoch: int = 0, step: int = 0) -> tuple[torch.Tensor, ...]:
        if self.crop is not None:
            rng = np.random.default_rng(step_seed(self.seed, epoch, step, self.rank) + 1)
            arrays = list(crop_batch(self.split, idx, self.crop, self.rescale, rng))
        else:
            order = np.argsort(idx, kind="stable")  # read the memmap in file order, then restore ours
            sorted_idx = idx[order]
            back = np.argsort(order, kind="stable")
            arrays = [self.split.images[sorted_idx][back], self.split.masks[sorted_idx][back]]
            if self.split.valid is not None:
                arrays.append(self.split.valid[sorted_idx][back])
        tensors = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
        return tuple(t.pin_memory() for t in tensors) if self.pin else tensors

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """Batches of ``epoch`` from ``start_step`` on. A thread gathers the next batches while the
        current one trains; its errors are raised here, and it stops whenever this generator ends
        (exhausted, closed early, or left by an exception)."""
        idx = self.indices(epoch)
        chunks = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)][start_step:]
        ready: queue.Queue = queue.Queue(maxsize=2)
        stopped = threading.Event()

        def put(item: object) -> bool:
            while not stopped.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:  # host-side gathers overlap the previous step's compute
            try:
                for k, chunk in enumerate(chunks):
                    if not put((chunk, self._gather(chunk, epoch, start_step + k))):
                        return
                put(_END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                put(_Failed(exc))

        worker = threading.Thread(target=produce, daemon=True, name="zoo-batches")
        worker.start()
        step = start_step
        try:
            while True:
                item = ready.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                chunk, host = item
                yield self._to_device(chunk, host, epoch, step)
                step += 1
        finally:
            stopped.set()
            while not ready.empty():  # drop gathered (possibly pinned) batches so the thread can end
                ready.get_nowait()
            worker.join(timeout=10)

    def _to_device(self, chunk: np.ndarray, host: tuple[torch.Tensor, ...], epoch: int, step: int) -> Batch:
        dev = [t.to(self.device, non_blocking=True) for t in host]
        # NHWC uint8 viewed as NCHW is already channels_last in memory: no copy for such models
        images = dev[0].permute(0, 3, 1, 2).float()
        masks = dev[1].permute(0, 3, 1, 2).float() if dev[1].dim() == 4 else dev[1].unsqueeze(1).float()
        valid = dev[2].unsqueeze(1).float() if len(dev) > 2 else None
        if self.augment.active:
            gen = torch.Generator(device=self.device).manual_seed(step_seed(self.seed, epoch, step, self.rank))
            ones = valid if valid is not None else torch.ones_like(masks[:, :1])
            images, masks, ones = augment_batch(images / 255, masks, ones, self.augment, gen)
            images = images * 255
            valid = ones if valid is not None or self.augment.geometric else None
        images = self.normalize(images)
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.split.task.kind == "multiclass":
            masks = masks[:, 0].round().long()
        return Batch(images.contiguous(memory_format=memory), masks, valid, chunk)
