"""A loaded model with its spec, and the project-format load/save shared by configured models.

Architectures without an official training codebase (AFNet-M, FAMNet) describe themselves with
a frozen config dataclass. Their checkpoints are `.safetensors` files whose metadata names the
architecture and carries that config as JSON (`edge.models.checkpoint`), so loading never
guesses. A plain state_dict without that metadata (`torch.save(model.state_dict())`, `.pt`,
`.pth` or `.safetensors`) is accepted too: it is checked against the default config (with the
class names given, if any), and any difference is reported key by key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

from edge._lazy import require
from edge.errors import CheckpointError, EdgeBuildError
from edge.models.checkpoint import (
    META_ARCH,
    META_CONFIG,
    check_state_dict,
    nonfinite_keys,
    read_metadata,
    read_state_dict,
    strip_prefix,
    write_checkpoint,
)
from edge.spec import ModelSpec

__all__ = [
    "LoadedModel",
    "load_configured",
    "build_configured",
    "save_configured",
    "load_demo",
]


@dataclass
class LoadedModel:
    """A model ready for export, with its spec and what loading found."""

    model: Any
    spec: ModelSpec
    info: Dict[str, object]


def build_configured(
    config: Any, build: Callable[[Any], Any], spec_for: Callable[[Any], ModelSpec], seed: int
) -> LoadedModel:
    """A seeded, untrained model (no trained weights ship for these architectures)."""
    torch = require("torch", purpose="building models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(config).eval()
    info = {
        "trained": False,
        "seed": seed,
        "checkpoint": None,
        "checkpoint_sha256": None,
        "config": dataclasses.asdict(config),
    }
    return LoadedModel(model=model, spec=spec_for(config), info=info)


def load_configured(
    path: Union[str, Path],
    *,
    arch: str,
    default: Any,
    build: Callable[[Any], Any],
    spec_for: Callable[[Any], ModelSpec],
    class_names: Optional[Sequence[str]] = None,
    overrides: Optional[Dict[str, Any]] = None,
) -> LoadedModel:
    """Load a checkpoint of `arch`: config from its metadata, else `default`; strict checks.

    Args:
        path: `.safetensors` (project format or plain) or a torch state_dict file.
        arch: the architecture name the metadata must carry.
        default: the config for files without mer-edge metadata.
        build: config -> `nn.Module`.
        spec_for: config -> ModelSpec.
        class_names: relabel the classes (same count as the checkpoint's logits).
        overrides: config fields that do not change the weights (e.g. AFNet-M's mask_mode).

    Raises:
        CheckpointError: unreadable file, other architecture, bad config, missing/unexpected
            keys, wrong shapes, NaN/Inf weights; the message names the file.
    """
    from edge.bundle import sha256_file

    path = Path(path)
    raw = read_state_dict(path)
    meta = read_metadata(path)
    found = meta.get(META_ARCH)
    if found is not None and found != arch:
        raise CheckpointError(f"{path}: a {found!r} checkpoint, not {arch!r} (per its metadata)")
    if META_CONFIG in meta:
        config = type(default).from_json(meta[META_CONFIG], where=str(path))
        source = "checkpoint metadata"
        if class_names is not None:
            relabelled = spec_for(config).with_class_names(class_names)
            config = dataclasses.replace(config, class_names=relabelled.class_names)
    else:
        config = default
        source = f"default {arch} config (the file has no {META_CONFIG} metadata)"
        if class_names is not None:
            config = _replace(config, path, class_names=tuple(str(n) for n in class_names))
    if overrides:
        config = _replace(config, path, **overrides)
    state, had_prefix = strip_prefix(raw)
    model = build(config)
    what = f"{arch} {config.variant} ({source})"
    check_state_dict(model.state_dict(), state, path, what)
    bad = nonfinite_keys(state)
    if bad:
        raise CheckpointError(
            "{}: NaN or Inf in {} tensor(s): {}".format(path, len(bad), ", ".join(bad))
        )
    model.load_state_dict(state, strict=False)
    model.eval()
    info = {
        "trained": True,
        "checkpoint": str(path),
        "checkpoint_sha256": sha256_file(path),
        "stripped_prefix": "module." if had_prefix else None,
        "config": dataclasses.asdict(config),
        "config_source": source,
    }
    return LoadedModel(model=model, spec=spec_for(config), info=info)


def _replace(config: Any, path: Path, **changes: Any) -> Any:
    try:
        return dataclasses.replace(config, **changes)
    except (EdgeBuildError, TypeError) as exc:  # the config's own validation, a bad field
        raise CheckpointError(f"{path}: {exc}") from exc


def save_configured(
    model_or_loaded: Any, path: Union[str, Path], *, arch: str, config_type: type
) -> Path:
    """Write a configured model (or a LoadedModel) in the project checkpoint format."""
    model = getattr(model_or_loaded, "model", model_or_loaded)
    config = getattr(model, "config", None)
    if not isinstance(config, config_type):
        raise CheckpointError(
            f"{path}: cannot save {type(model).__name__}: it has no mer-edge config "
            f"(build it as the {arch} model class, then load_state_dict your weights)"
        )
    return write_checkpoint(model.state_dict(), path, arch=arch, config_json=config.to_json())


def load_demo(
    path: Path, load: Callable[[Path], LoadedModel], seeded: Callable[[], LoadedModel]
) -> LoadedModel:
    """The shipped demo asset with its model card, or the seeded untrained model without it."""
    if not path.is_file():
        return seeded()
    loaded = load(path)
    card = path.with_suffix(".json")
    loaded.info["demo_card"] = (
        json.loads(card.read_text(encoding="utf-8")) if card.is_file() else None
    )
    return loaded
