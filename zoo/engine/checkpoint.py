"""The resume checkpoint without pickle: tensors in ``checkpoint.safetensors`` (model, optimizer
state, RNG states), everything else in ``checkpoint.json``. A shared token ties the two files."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import torch

from zoo.errors import WeightsError

TENSORS, META = "checkpoint.safetensors", "checkpoint.json"


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
                    scheduler: Any, progress: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    token = uuid.uuid4().hex
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim_tensors, optim_meta = _split_optimizer(optimizer.state_dict())
    tensors.update({k: v.detach().cpu().contiguous() for k, v in optim_tensors.items()})
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    meta = {"token": token, "progress": progress, "optimizer": optim_meta,
            "scheduler": scheduler.state_dict() if scheduler is not None else None}
    for name, write in ((TENSORS, lambda p: save_file(tensors, str(p), metadata={"token": token})),
                        (META, lambda p: p.write_text(json.dumps(meta, default=float)))):
        tmp = run_dir / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, run_dir / name)


def load_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states in place; return the progress record."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    tensor_path, meta_path = run_dir / TENSORS, run_dir / META
    if not tensor_path.is_file() or not meta_path.is_file():
        raise WeightsError(f"{run_dir}: no resume checkpoint ({TENSORS} and {META})")
    try:
        meta = json.loads(meta_path.read_text())
        with safe_open(str(tensor_path), framework="pt") as fh:
            token = (fh.metadata() or {}).get("token")
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{run_dir}: unreadable checkpoint ({' '.join(str(exc).split())})") from None
    if token != meta.get("token"):
        raise WeightsError(f"{run_dir}: {TENSORS} and {META} come from different saves")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(_join_optimizer(tensors, meta["optimizer"]))
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return meta["progress"]
