"""Device, precision and distributed set-up."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from zoo.errors import UsageError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # zoo created the process group, so zoo destroys it

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_hint: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (nothing to do otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    owns = not dist.is_initialized()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), owns)
    if owns:
        use_cuda = torch.cuda.is_available() and device_hint in ("auto", "cuda") or device_hint.startswith("cuda")
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return info


def pick_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` prefers CUDA (this process's local rank), then MPS, then CPU."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available on this machine (use cpu or auto)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        elif device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16), read from /proc/cpuinfo;
    elsewhere bf16 autocast is emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """bf16 where supported, else fp16 (with a GradScaler); None for full precision.
    Default (``amp=None``): on where the device computes bf16 natively (CUDA; CPUs with AVX512-BF16
    or AMX), off elsewhere."""
    if amp is None:
        amp = device.type == "cuda" or device.type == "cpu" and cpu_has_native_bf16()
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def restored_process_state():
    """Put back what training changes process-wide: cuDNN's benchmark/deterministic flags, PyTorch's
    deterministic-algorithms mode and the cuBLAS workspace variable."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]


def set_determinism(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


# glibc's mallopt parameters. Setting any of them ends glibc's dynamic mmap threshold for the
# process, so on exit they go to what that threshold converges to for large buffers (32 MB, trim
# at twice that), not to the 128 KB start value, which would mmap every batch-sized allocation.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_AFTER = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 * 1024 * 1024, _M_TRIM_THRESHOLD: 64 * 1024 * 1024}


def _libc():
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


@contextlib.contextmanager
def retained_heap(enabled: bool = True):
    """Keep freed memory in the process heap while CPU training runs.

    Each training step allocates and frees hundreds of MB of activations; glibc hands blocks that
    large back to the kernel (munmap) and the next step page-faults them in again, which costs a
    quarter of a CPU step here. Serving them from a heap that is never trimmed removes that cost;
    the process keeps its peak memory until the block ends. ``ZOO_NO_RETAINED_HEAP=1`` turns it off.
    """
    libc = _libc() if enabled and os.environ.get("ZOO_NO_RETAINED_HEAP", "") in ("", "0") else None
    if libc is None:
        yield False
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield True
    finally:
        for param, value in _AFTER.items():
            libc.mallopt(param, value)
        libc.malloc_trim(0)
