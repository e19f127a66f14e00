"""Measured accuracy loss of a reduced-precision model against FP32, on the validation split.

ONNX Runtime on the CPU executes both models; the result names that executor, because these are
host-side proxy numbers, not TensorRT numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from edge.metrics import compare_to_reference
from edge.runtime.ort import OrtRunner
from edge.spec import ModelSpec

__all__ = ["logits_on", "measure_against_fp32"]


def logits_on(path: Path, feeds: List[Mapping[str, np.ndarray]], spec: ModelSpec):
    """Logits of the ONNX model at `path` for every feed, and the executor's name.

    The file runs as `OrtRunner` runs it on the CPU (INT8 Q/DQ lowered to integer kernels), the
    arithmetic the INT8 placement search judged and `edge-bench` reports; the executor's name
    says so.
    """
    name = spec.outputs[0].name
    with OrtRunner(path) as runner:
        logits = np.concatenate([runner.infer(f)[name] for f in feeds])
        return logits.astype(np.float64), runner.executor


def measure_against_fp32(
    path: Path,
    fp32_logits: np.ndarray,
    feeds: List[Mapping[str, np.ndarray]],
    spec: ModelSpec,
    *,
    labels: Optional[np.ndarray],
    logits: Optional[np.ndarray] = None,
) -> Dict[str, Any]:
    """Top-1 agreement, logit errors and (with labels) accuracy/UAR/UF1 deltas vs FP32.

    `logits`: the file's logits on `feeds` when the caller already ran exactly this file as
    `logits_on` runs it (the INT8 placement search did); saves a pass.
    """
    if logits is None:
        logits, executor = logits_on(path, feeds, spec)
    else:
        if len(logits) != len(feeds):
            raise ValueError(f"{len(feeds)} feeds but {len(logits)} precomputed logits")
        logits = np.asarray(logits, np.float64)
        with OrtRunner(path) as runner:
            executor = runner.executor
    result = compare_to_reference(fp32_logits, logits, class_names=spec.class_names, labels=labels)
    result["executor"] = executor
    return result
