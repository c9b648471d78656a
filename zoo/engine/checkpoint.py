"""The resume state as one file, replaced in one step: ``checkpoint.safetensors`` holds the model,
the optimizer's tensors and the RNG states as tensors, and progress (epoch, step, history),
optimizer settings and the GradScaler state as JSON in its header. No pickle.

A kill at any moment leaves either the previous complete file or the new one. Runs written by
zoo 0.1 (``checkpoint.safetensors`` + ``checkpoint.json`` tied by a token) are still read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zoo.atomic import read_json, write_bytes
from zoo.errors import WeightsError

CHECKPOINT = "checkpoint.safetensors"
LEGACY_META = "checkpoint.json"
FORMAT = "2"


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, values = {}, {}
    for pid, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                values[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "values": values}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = tensor
    for name, value in meta["values"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler | None, progress: dict[str, Any],
                    extra: dict[str, torch.Tensor] | None = None) -> Path:
    """``extra``: more named tensors (the weights average as ``ema.*``), given back by restore."""
    from safetensors.torch import save

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    optim_tensors, optim_meta = _split_optimizer(optimizer.state_dict())
    tensors.update({k: v.detach().cpu().contiguous() for k, v in optim_tensors.items()})
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    meta = {"zoo_checkpoint": FORMAT, "progress": json.dumps(progress), "optimizer": json.dumps(optim_meta, default=float),
            "scaler": json.dumps(scaler.state_dict() if scaler is not None else {})}
    # serialized here and written by Python, so a full disk is an OSError naming the file
    return write_bytes(run_dir / CHECKPOINT, save(tensors, metadata=meta))


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / CHECKPOINT).is_file()


def read_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata (``progress``, ``optimizer``, ``scaler``) of the run's checkpoint."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise WeightsError(f"{run_dir}: no resume checkpoint ({CHECKPOINT})")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable checkpoint ({' '.join(str(exc).split())})") from None
    if header.get("zoo_checkpoint") == FORMAT:
        meta = {key: json.loads(header[key]) for key in ("progress", "optimizer", "scaler")}
        return tensors, meta
    legacy = run_dir / LEGACY_META  # zoo 0.1: two files tied by a token
    if not legacy.is_file():
        raise WeightsError(f"{path}: not a zoo checkpoint (no progress in its header)")
    meta = read_json(legacy, "checkpoint")
    if meta.get("token") != header.get("token"):
        raise WeightsError(f"{run_dir}: {CHECKPOINT} and {LEGACY_META} come from different saves")
    return tensors, {"progress": meta["progress"], "optimizer": meta["optimizer"], "scaler": {}}


def restore_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler | None, ema=None) -> dict[str, Any]:
    """Restore model, optimizer, scaler, weights average and RNG states in place; return the progress
    record. A run that turns ``--ema`` on at resume starts its average from the restored weights."""
    tensors, meta = read_checkpoint(run_dir)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(_join_optimizer(tensors, meta["optimizer"]))
    if ema is not None:
        saved = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        ema.load_state_dict(saved or model.state_dict())
    if scaler is not None and meta["scaler"]:
        scaler.load_state_dict(meta["scaler"])
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return meta["progress"]
