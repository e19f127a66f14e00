"""Numerical agreement between two executions of one model (numpy only, runs on the device).

Used after export (ONNX Runtime vs PyTorch), after simplification (simplified vs exported), and
on the device (engine vs the bundle's reference outputs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Sequence

import numpy as np

from edge.errors import ParityError
from edge.metrics import row_cosines

__all__ = ["ParityReport", "compare_outputs", "compare_runs"]


@dataclass(frozen=True)
class ParityReport:
    """Worst-case error over all compared outputs and samples."""

    reference: str
    candidate: str
    samples: int
    max_abs_error: float
    mean_abs_error: float
    max_rel_error: float
    min_cosine: float
    top1_agreement: float
    tolerance: float
    passed: bool

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"{self.candidate} vs {self.reference}: max |diff| {self.max_abs_error:.2e} (tolerance {self.tolerance:.0e}), top-1 agreement {self.top1_agreement:.0%} on {self.samples} samples"

    def raise_if_failed(self) -> ParityReport:
        if not self.passed:
            raise ParityError(
                f"{self.candidate} disagrees with {self.reference}: max |diff| {self.max_abs_error:.3e} exceeds tolerance {self.tolerance:.0e} "
                f"(mean {self.mean_abs_error:.2e}, top-1 agreement {self.top1_agreement:.0%} over {self.samples} samples)"
            )
        return self


def compare_outputs(
    reference: Sequence[Mapping[str, np.ndarray]],
    candidate: Sequence[Mapping[str, np.ndarray]],
    *,
    tolerance: float,
    reference_name: str,
    candidate_name: str,
) -> ParityReport:
    """Compare per-sample output dicts; logits are rows of the first output per sample."""
    if len(reference) != len(candidate) or not reference:
        raise ParityError(
            f"parity needs the same non-zero number of samples (got {len(reference)} and {len(candidate)})"
        )
    max_abs = mean_acc = max_rel = 0.0
    count = 0
    min_cos = 1.0
    agree = rows = 0
    for ref, cand in zip(reference, candidate):
        for name, ref_value in ref.items():
            if name not in cand:
                raise ParityError(f"{candidate_name} has no output {name!r}")
            r = np.asarray(ref_value, dtype=np.float64)
            c = np.asarray(cand[name], dtype=np.float64)
            if r.shape != c.shape:
                raise ParityError(
                    f"output {name!r}: {reference_name} has shape {r.shape}, {candidate_name} has {c.shape}"
                )
            if not np.all(np.isfinite(c)):
                raise ParityError(f"{candidate_name} produced NaN or Inf in {name!r}")
            diff = np.abs(r - c)
            max_abs = max(max_abs, float(diff.max(initial=0.0)))
            mean_acc += float(diff.sum())
            count += diff.size
            max_rel = max(max_rel, float((diff / np.maximum(np.abs(r), 1e-6)).max(initial=0.0)))
            r2, c2 = r.reshape(r.shape[0], -1), c.reshape(c.shape[0], -1)
            if r2.shape[0]:
                min_cos = min(min_cos, float(row_cosines(r2, c2).min()))
            agree += int(np.sum(r2.argmax(axis=1) == c2.argmax(axis=1)))
            rows += r2.shape[0]
    return ParityReport(
        reference=reference_name,
        candidate=candidate_name,
        samples=len(reference),
        max_abs_error=max_abs,
        mean_abs_error=mean_acc / max(count, 1),
        max_rel_error=max_rel,
        min_cosine=min_cos,
        top1_agreement=agree / max(rows, 1),
        tolerance=tolerance,
        passed=max_abs <= tolerance,
    )


def compare_runs(
    reference_runner,
    candidate_runner,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    tolerance: float,
) -> ParityReport:
    """Run both (active) runners on every feed dict and compare."""
    ref = [reference_runner.infer(f) for f in feeds]
    cand = [candidate_runner.infer(f) for f in feeds]
    return compare_outputs(
        ref,
        cand,
        tolerance=tolerance,
        reference_name=reference_runner.executor,
        candidate_name=candidate_runner.executor,
    )
