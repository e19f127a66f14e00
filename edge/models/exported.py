"""Load a `torch.export` program (`.pt2`) without executing pickled code.

`torch.export.load` (torch 2.13, `torch/export/pt2_archive/_package.py`) unpickles several
archive members with `weights_only=False`: pickled weights and tensor constants, the sample
inputs after a failed safe load (`torch._export.serde.serialize.deserialize_torch_artifact`),
custom objects (`torch._C._pickle_load_obj`) and opaque objects (`pickle.loads`); an archive
may also carry AOTInductor shared libraries. So before torch sees the file:

* members that can only be loaded by running their code are refused: AOTInductor or ExecuTorch
  payloads, custom/opaque object constants, and the pre-2.7 archive format;
* the load itself runs with `TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`, torch's documented switch that
  turns every `torch.load` into the restricted unpickler whatever its call site asks, so a
  tampered weight or sample-input member fails to load instead of running.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zipfile
from pathlib import Path
from typing import Any, Iterator, Union

from edge._lazy import require
from edge.errors import CheckpointError

__all__ = ["load_exported_program", "exported_module"]

_ENV = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
_LOCK = threading.Lock()


@contextlib.contextmanager
def _weights_only_everywhere() -> Iterator[None]:
    with _LOCK:  # the switch is process-wide: one load at a time
        before = os.environ.get(_ENV)
        os.environ[_ENV] = "1"
        try:
            yield
        finally:
            if before is None:
                del os.environ[_ENV]
            else:
                os.environ[_ENV] = before


def _refuse_code_members(path: Path) -> None:
    constants = require("torch.export.pt2_archive.constants", purpose="reading .pt2 programs")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path}: not a torch.export archive ({exc}); save it with torch.export.save"
        ) from None
    # Members sit under one root folder (`<archive name>/...`).
    inner = [n.split("/", 1)[1] if "/" in n else n for n in names]
    if constants.ARCHIVE_VERSION_PATH not in inner:
        raise CheckpointError(
            f"{path}: no {constants.ARCHIVE_VERSION_PATH}: not a torch.export.save archive of "
            "torch >= 2.7 (older archives are refused: they load through pickle); re-save it "
            "with torch.export.save"
        )
    code = [
        name
        for name, short in zip(names, inner)
        if short.startswith((constants.AOTINDUCTOR_DIR, constants.EXECUTORCH_DIR))
        or (
            short.startswith(constants.CONSTANTS_DIR)
            and Path(short).name.startswith(
                (constants.CUSTOM_OBJ_FILENAME_PREFIX, constants.OPAQUE_OBJ_FILENAME_PREFIX)
            )
        )
    ]
    if code:
        raise CheckpointError(
            "{}: holds members that load by running code ({}); mer-edge loads only programs "
            "of tensors: export the model without custom objects or compiled packages".format(
                path, ", ".join(code[:5])
            )
        )


def load_exported_program(path: Union[str, Path]) -> Any:
    """The `ExportedProgram` in `path`, loaded without running pickled code.

    Raises:
        CheckpointError: not a torch.export archive, members that need code to load, or a
            member the restricted unpickler refuses (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    torch = require("torch", purpose="loading torch.export programs")
    _refuse_code_members(path)
    try:
        with _weights_only_everywhere():
            return torch.export.load(str(path))
    except Exception as exc:  # UnpicklingError, RuntimeError, KeyError from a damaged archive
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: cannot be loaded as a torch.export program without running pickled code: "
            f"{detail}"
        ) from None


def exported_module(program: Any) -> Any:
    """`program.module()` wrapped so the TorchScript ONNX exporter and `TorchRunner` can drive
    it: they call `.eval()` / `.train(False)`, which the unlifted module refuses; the mode was
    fixed when the program was exported, so those calls are no-ops here."""
    torch = require("torch", purpose="running torch.export programs")

    class ExportedModule(torch.nn.Module):
        def __init__(self, module: Any) -> None:
            super().__init__()
            self.program = module

        def forward(self, *args: Any) -> Any:
            return self.program(*args)

        def train(self, mode: bool = True) -> Any:  # the exported mode is fixed
            return self

    return ExportedModule(program.module())
