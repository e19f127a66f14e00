"""Read a state_dict from disk without executing pickled code.

`.safetensors` files are read with safetensors; anything else with
`torch.load(weights_only=True)`, which refuses arbitrary Python objects. Each way a file can be
wrong (absent, truncated, pickled code, not a state_dict) gets its own one-line error.

The project's own checkpoint format is a `.safetensors` file whose metadata carries
`mer_edge.arch` and `mer_edge.config` (the architecture's config dataclass as JSON), so a
checkpoint says which model it belongs to; `write_checkpoint` / `read_metadata` handle it, and
`check_state_dict` / `nonfinite_keys` are the strict checks every loader applies.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

from edge._lazy import require
from edge.errors import CheckpointError

__all__ = [
    "read_state_dict",
    "strip_prefix",
    "WRAPPER_KEYS",
    "META_ARCH",
    "META_CONFIG",
    "read_metadata",
    "write_checkpoint",
    "check_state_dict",
    "nonfinite_keys",
    "config_fields_from_json",
]

#: safetensors metadata keys of the project's checkpoint format.
META_ARCH = "mer_edge.arch"
META_CONFIG = "mer_edge.config"

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


def read_metadata(path: Union[str, Path]) -> Dict[str, str]:
    """The string metadata of a `.safetensors` file ({} for other files or none stored)."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file() or path.stat().st_size == 0:
        return {}
    safetensors = require("safetensors", purpose="reading .safetensors checkpoints")
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own SafetensorError types
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc


def write_checkpoint(
    state: Mapping[str, Any], path: Union[str, Path], *, arch: str, config_json: str
) -> Path:
    """Save tensors as `.safetensors` with the project metadata; written atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: the mer-edge checkpoint format needs a .safetensors name")
    safetensors_torch = require("safetensors.torch", purpose="saving checkpoints")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        safetensors_torch.save_file(
            tensors, str(tmp), metadata={META_ARCH: arch, META_CONFIG: config_json}
        )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def check_state_dict(
    expected: Mapping[str, Any], state: Mapping[str, Any], path: Path, what: str
) -> None:
    """Strict key and shape check; every missing, unexpected or mis-shaped tensor is named."""
    # BatchNorm's step counter does not affect inference; some exporters drop it.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if problems:
        raise CheckpointError(
            "{}: state_dict does not match {}: {}".format(path, what, "; ".join(problems))
        )
    wrong = [
        f"{k} {list(v.shape)} (expected {list(expected[k].shape)})"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise CheckpointError(
            "{}: {} tensor(s) have the wrong shape for {}: {}".format(
                path, len(wrong), what, "; ".join(wrong)
            )
        )


def nonfinite_keys(state: Mapping[str, Any]) -> List[str]:
    """Names of floating-point tensors holding NaN or Inf."""
    torch = require("torch", purpose="checking checkpoints")
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def config_fields_from_json(cls: Any, text: str, where: str) -> Dict[str, Any]:
    """Keyword arguments of config dataclass `cls` from its JSON; lists become tuples."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{where}: config metadata is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: config metadata is not a JSON object")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"{where}: unknown config field(s): {', '.join(unknown)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
