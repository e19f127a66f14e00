"""Which parts of a model must stay in higher precision, decided by measurement.

A candidate group is a module of the FP32 graph (`/main_branch/layer2.0/`, `/vit_pos/`, a
single top-level node such as `/Sub`). Its cost is the accuracy drop removed by keeping it in
FP32 while everything else is INT8 (re-quantized, not patched, so the measurement is the model
that would ship). `meet_budget` keeps the costliest groups in FP32, one at a time, until the
drop is within the budget, and fails naming the best drop reached when it cannot be met.

Drop: `1 - top-1 agreement with FP32`, or the UAR lost against FP32 when labels exist.

Evidence on the demo MMNet (target TensorRT 10, opset 17; onnxruntime quantizer, 32 synthetic
calibration samples, the bundle's 40 validation clips; `benchmarks/bench_quant.py` re-measures):

    kept in FP32                          top-1 agreement   mean |logit diff|
    nothing                               0.550             0.968
    /vit_pos/ (ViT branch)                0.550             0.966
    /main_branch/fc/ (100,352-wide Gemm)  0.525             0.968
    /main_branch/Add (fusion Add)         0.550             0.967
    all three (the fact sheet's advice)   0.525             0.967
    /Sub + /conv_act/                     0.700             1.009
    /main_branch/                         0.725             0.758
    /Sub + /conv_act/ + /main_branch/     1.000             0.004

`bench_quant.py` with 256 calibration samples (one run, 2-core x86 host): all-INT8 agreement
NNCF 0.675 / ORT 0.625 at 2.57x / 3.33x FP32's speed on ORT CPU; with `MMNET_HIGH_PRECISION`
kept in FP32 both reach 1.000 at 1.17x / 1.11x.

So the fact sheet's suspects are refuted: the ViT branch, the fusion Add and the big Gemm cost
nothing measurable. The loss is spread over the motion path. With one group in INT8 and the rest
FP32 (NNCF, 64 samples): /Sub 0.775, /conv_act/ 0.825, /main_branch/conv1/ 0.850,
/main_branch/layer1.0/ 0.725 (each of its nodes alone 0.85-0.95); layers 2-4, the fc and the ViT
branch 1.000. The motion features are sparse and heavy-tailed (after conv_act: max 52, p99.9
8.6, median 0; a per-tensor INT8 scale gives them ~18 dB SQNR), and quantile or histogram
ranges did not help. The demo's FP32 decisions themselves flip for 22.5% of the validation clips
under 0.25 gray levels of input noise (`bench_quant` prints this), so no INT8 placement of the
motion path can keep 99% agreement with this demo. `MMNET_HIGH_PRECISION` is the measured
default; with a trained checkpoint, `--max-accuracy-drop` re-ranks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.metrics import classification_metrics, logit_errors, top1_agreement
from quantize.int8 import Feeds, node_scope, quantize_model

__all__ = [
    "MMNET_HIGH_PRECISION",
    "Measurement",
    "GroupCost",
    "BudgetResult",
    "candidate_groups",
    "make_evaluator",
    "rank_groups",
    "meet_budget",
]

log = logging.getLogger(__name__)

#: MMNet's measured default: node-name prefixes kept in FP32 (see the module docstring).
MMNET_HIGH_PRECISION = ("/Sub", "/conv_act/", "/main_branch/")

#: Ops whose inputs a quantizer turns into INT8; a group without one has nothing to keep.
QUANTIZABLE = ("Conv", "Gemm", "MatMul", "Add", "Mul", "Sub", "Concat")


@dataclass(frozen=True)
class Measurement:
    """One quantized model judged against FP32."""

    drop: float
    agreement: float
    mean_abs_error: float

    def to_dict(self) -> Dict[str, float]:
        return {
            "drop": round(self.drop, 6),
            "top1_agreement": round(self.agreement, 6),
            "mean_abs_error": round(self.mean_abs_error, 6),
        }


@dataclass(frozen=True)
class GroupCost:
    """What quantizing one group costs: the drop removed when it alone stays in FP32."""

    group: str
    cost: float
    error_cost: float
    kept: Measurement

    def to_dict(self) -> Dict[str, Any]:
        return {"group": self.group, "cost": round(self.cost, 6),
                "error_cost": round(self.error_cost, 6), "kept": self.kept.to_dict()}  # fmt: skip


@dataclass
class BudgetResult:
    """The groups kept in higher precision, in order, with the drop after each one."""

    max_accuracy_drop: float
    baseline: Measurement
    kept: List[Tuple[str, Measurement]]
    ranking: List[GroupCost]

    @property
    def excluded(self) -> Tuple[str, ...]:
        return tuple(group for group, _ in self.kept)

    @property
    def final(self) -> Measurement:
        return self.kept[-1][1] if self.kept else self.baseline

    def to_dict(self) -> Dict[str, Any]:
        previous = self.baseline.drop
        kept = []
        for group, measured in self.kept:
            kept.append({"group": group, "drop_after": round(measured.drop, 6),
                         "cost": round(previous - measured.drop, 6)})  # fmt: skip
            previous = measured.drop
        return {
            "max_accuracy_drop": self.max_accuracy_drop,
            "all_int8": self.baseline.to_dict(),
            "kept_in_fp32": kept,
            "final": self.final.to_dict(),
            "ranking": [g.to_dict() for g in self.ranking],
        }


def _group_of(scope: str) -> str:
    parts = scope.strip("/").split("/")
    if len(parts) <= 1:
        return scope
    return "/" + "/".join(parts[:2]) + ("/" if len(parts) > 2 else "")


def candidate_groups(model: Any) -> Dict[str, Tuple[str, ...]]:
    """Module-level groups of quantizable nodes: `/main_branch/layer1.0/` -> node names.

    Top-level modules with sub-modules are split one level down (`/main_branch/conv1/`,
    `/main_branch/Add`); a simplifier-renamed node joins the module its parameters name.
    """
    inits = [t.name for t in model.graph.initializer]
    groups: Dict[str, List[str]] = {}
    for node in model.graph.node:
        if node.op_type not in QUANTIZABLE:
            continue
        scope = node_scope(node, inits)
        groups.setdefault(_group_of(scope), []).append(node.name)
    return {k: tuple(v) for k, v in sorted(groups.items())}


def _run(model: Any, feeds: Feeds) -> np.ndarray:
    ort = require("onnxruntime", purpose="measuring quantization loss")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    output = session.get_outputs()[0].name
    return np.concatenate([session.run([output], feed)[0] for feed in feeds])


def make_evaluator(
    fp32_model: Any,
    calibration: Feeds,
    validation: Feeds,
    *,
    quantizer: str = "nncf",
    labels: Optional[np.ndarray] = None,
    class_names: Sequence[str] = (),
) -> Callable[[Sequence[str]], Measurement]:
    """`evaluate(kept_in_fp32)`: re-quantize with those nodes excluded, measure on ORT CPU.

    `validation` must be disjoint from `calibration`. With `labels`, the drop is the UAR lost
    against FP32 (negative when INT8 happens to do better); otherwise 1 - top-1 agreement.
    """
    if not validation:
        raise EdgeBuildError("the accuracy budget needs validation samples; got none")
    reference = _run(fp32_model, validation)
    ref_uar = None
    if labels is not None:
        ref_uar = classification_metrics(reference, labels, class_names)["uar"]

    def evaluate(kept: Sequence[str]) -> Measurement:
        model, _ = quantize_model(fp32_model, calibration, quantizer=quantizer, exclude=kept)
        logits = _run(model, validation)
        agreement = top1_agreement(reference, logits)
        if ref_uar is not None:
            drop = ref_uar - classification_metrics(logits, labels, class_names)["uar"]
        else:
            drop = 1.0 - agreement
        error = logit_errors(reference, logits)["mean_abs_error"]
        return Measurement(drop=float(drop), agreement=agreement, mean_abs_error=error)

    return evaluate


def rank_groups(
    groups: Sequence[str],
    evaluate: Callable[[Sequence[str]], Measurement],
    *,
    baseline: Optional[Measurement] = None,
    always: Sequence[str] = (),
) -> List[GroupCost]:
    """Groups, costliest first (drop removed, then logit error removed, when kept in FP32).

    `always`: groups kept in FP32 in every measurement, the ranked one added to them.
    """
    base = baseline if baseline is not None else evaluate(tuple(always))
    costs = []
    for group in groups:
        kept = evaluate((*always, group))
        costs.append(
            GroupCost(
                group=group,
                cost=base.drop - kept.drop,
                error_cost=base.mean_abs_error - kept.mean_abs_error,
                kept=kept,
            )
        )
        log.info("sensitivity %s: drop %.4f -> %.4f", group, base.drop, kept.drop)
    return sorted(costs, key=lambda c: (-c.cost, -c.error_cost, c.group))


def meet_budget(
    max_accuracy_drop: float,
    groups: Sequence[str],
    evaluate: Callable[[Sequence[str]], Measurement],
    *,
    start: Sequence[str] = (),
) -> BudgetResult:
    """Keep groups in FP32, most sensitive first, until the drop is within the budget.

    Args:
        max_accuracy_drop: absolute budget (0.01 = one point of agreement or UAR).
        groups: candidate groups (`candidate_groups`), as node names or prefixes.
        evaluate: see `make_evaluator`; called once per group to rank, then once per step.
        start: groups always kept in FP32 (e.g. the ModelSpec's precision hints).

    Raises:
        EdgeBuildError: the budget is negative, or not met even with every group kept.
    """
    if not np.isfinite(max_accuracy_drop) or max_accuracy_drop < 0:
        raise EdgeBuildError(
            f"--max-accuracy-drop must be a non-negative number, got {max_accuracy_drop}"
        )
    kept: List[str] = list(start)
    baseline = evaluate(tuple(kept))
    result = BudgetResult(max_accuracy_drop, baseline, [], [])
    if baseline.drop <= max_accuracy_drop:
        return result
    remaining = [g for g in groups if g not in kept]
    result.ranking = rank_groups(remaining, evaluate, baseline=baseline, always=tuple(kept))
    best = baseline
    for cost in result.ranking:
        kept.append(cost.group)
        measured = cost.kept if len(kept) == len(start) + 1 else evaluate(tuple(kept))
        result.kept.append((cost.group, measured))
        best = measured if measured.drop < best.drop else best
        if measured.drop <= max_accuracy_drop:
            return result
    raise EdgeBuildError(
        f"INT8 accuracy budget not met: drop {best.drop:.4f} at best (all-INT8 "
        f"{baseline.drop:.4f}) with {len(kept)} group(s) kept in FP32, budget "
        f"{max_accuracy_drop:.4f}; raise --max-accuracy-drop or build fp16"
    )
