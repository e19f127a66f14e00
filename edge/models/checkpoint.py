"""Read a state_dict from disk without executing pickled code.

`.safetensors` files are read with safetensors; anything else with
`torch.load(weights_only=True)`, which refuses arbitrary Python objects. Each way a file can be
wrong (absent, truncated, pickled code, not a state_dict) gets its own one-line error.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Dict, Mapping, Tuple, Union

from edge._lazy import require
from edge.errors import CheckpointError

__all__ = ["read_state_dict", "strip_prefix", "WRAPPER_KEYS"]

#: Keys under which training scripts commonly nest the state_dict.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def read_state_dict(path: Union[str, Path]) -> Dict[str, object]:
    """Load the tensors of a checkpoint file as a flat `{name: torch.Tensor}` dict."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint is empty (0 bytes)")
    torch = require("torch", purpose="loading checkpoints")
    if path.suffix == ".safetensors":
        data = _read_safetensors(path)
    else:
        data = _read_torch(path, torch)
    return _unwrap(path, data, torch)


def _read_safetensors(path: Path) -> Mapping[str, object]:
    safetensors_torch = require("safetensors.torch", purpose="reading .safetensors checkpoints")
    try:
        return safetensors_torch.load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError types
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc


def _read_torch(path: Path, torch) -> object:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            raise CheckpointError(
                f"{path}: the file holds pickled Python objects, not only tensors; mer-edge never "
                "executes pickled code. Re-save it with torch.save(model.state_dict(), path) "
                "or as .safetensors"
            ) from exc
        raise CheckpointError(
            f"{path}: truncated or not a PyTorch checkpoint ({_first_line(text)})"
        ) from exc
    except Exception as exc:  # torch surfaces corrupt files as many exception types
        raise CheckpointError(
            f"{path}: truncated or not a PyTorch checkpoint ({_first_line(str(exc))})"
        ) from exc


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


def _unwrap(path: Path, data: object, torch) -> Dict[str, object]:
    """Accept a bare state_dict or one nested under a conventional key."""
    if isinstance(data, Mapping):
        for key in WRAPPER_KEYS:
            inner = data.get(key)
            if isinstance(inner, Mapping) and inner and _all_tensors(inner, torch):
                return dict(inner)
        if data and _all_tensors(data, torch):
            return dict(data)
    kind = type(data).__name__
    raise CheckpointError(
        "{}: expected a state_dict (a mapping of names to tensors{}), got {}".format(
            path, ", possibly under " + "/".join(WRAPPER_KEYS), kind
        )
    )


def _all_tensors(mapping: Mapping, torch) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in mapping.items())


def strip_prefix(state: Mapping[str, object], prefix: str = "module.") -> Tuple[Dict, bool]:
    """Remove a DataParallel-style prefix when every key carries it."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}, True
    return dict(state), False
