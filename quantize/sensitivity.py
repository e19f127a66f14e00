"""Which parts of a model must stay out of INT8, decided by measurement on the validation data.

A candidate group is a module of the FP32 graph (`/main_branch/layer2.0/`, `/vit_pos/`, a single
top-level node such as `/Sub`). The build starts from every Conv/Gemm/MatMul in INT8 and keeps a
group in higher precision only when the accuracy budget proves it must: every measurement
re-quantizes the model (it is the model that would ship, not a patched one) and runs it on ONNX
Runtime against FP32 on each validation tier. A ModelSpec's precision hints seed the search (they
are tried first, which is cheap when they are right) but never decide it: a seeded group that the
budget does not need goes back to INT8.

The rule (issue 19), per validation tier (standard, hard): INT8 must agree with FP32 at least as
often as FP32 agrees with itself under 0.5 gray levels of input noise (the noise floor), and its
drop must stay within the budget. Drop: the UAR lost against FP32 when labels exist, else
`1 - top-1 agreement`; the worst tier counts. The floor is the mean over several seeded noise
draws: one draw on 100 clips moves by a clip or two between seeds, as much as INT8's own loss.
`docs/quantization.md` has the measured placements.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.metrics import classification_metrics, logit_errors, top1_agreement
from quantize.int8 import Feeds, node_scope, quantize_model, resolve_nodes

__all__ = [
    "Measurement",
    "GroupCost",
    "BudgetResult",
    "candidate_groups",
    "groups_reading_int8",
    "executed_copy",
    "make_evaluator",
    "rank_groups",
    "meet_budget",
]

log = logging.getLogger(__name__)


#: Ops whose inputs a quantizer turns into INT8; a group without one has nothing to keep.
QUANTIZABLE = ("Conv", "Gemm", "MatMul", "Add", "Mul", "Sub", "Concat")


#: Slack for comparing measured fractions with the budget and the floor (float rounding only).
EPS = 1e-9


@dataclass(frozen=True)
class Measurement:
    """One quantized model judged against FP32."""

    drop: float
    agreement: float
    mean_abs_error: float
    tiers: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: how far the worst tier's agreement is below FP32's own noise floor (0: none is)
    shortfall: float = 0.0

    def meets(self, max_accuracy_drop: float) -> bool:
        """The fidelity rule: drop within the budget and every tier at or above its floor."""
        return self.drop <= max_accuracy_drop + EPS and self.shortfall <= EPS

    def excess(self, max_accuracy_drop: float) -> float:
        """How far from meeting the rule: drop over the budget plus agreement under the floor."""
        return max(0.0, self.drop - max_accuracy_drop) + self.shortfall

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "drop": round(self.drop, 6),
            "top1_agreement": round(self.agreement, 6),
            "mean_abs_error": round(self.mean_abs_error, 6),
            "floor_shortfall": round(self.shortfall, 6),
        }
        if self.tiers:
            data["tiers"] = {
                name: {k: round(v, 6) for k, v in values.items()}
                for name, values in self.tiers.items()
            }
        return data


@dataclass(frozen=True)
class GroupCost:
    """What quantizing one group costs: the drop (and the agreement under the noise floor)
    removed when it alone stays out of INT8."""

    group: str
    cost: float
    error_cost: float
    kept: Measurement
    shortfall_cost: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {"group": self.group, "cost": round(self.cost, 6),
                "shortfall_cost": round(self.shortfall_cost, 6),
                "error_cost": round(self.error_cost, 6), "kept": self.kept.to_dict()}  # fmt: skip


@dataclass
class BudgetResult:
    """The groups kept out of INT8, in the order they were added, with the drop after each one."""

    max_accuracy_drop: float
    baseline: Measurement
    kept: List[Tuple[str, Measurement]]
    ranking: List[GroupCost]
    #: seeded groups (precision hints) the budget did not need: they went back to INT8
    readmitted: List[str] = field(default_factory=list)
    #: how the kept set was found: "all-int8", "seeded", "ranked" or "bypass-ranked"
    search: str = "all-int8"
    evaluations: int = 0
    final_measurement: Optional[Measurement] = None
    #: group -> the drop added if that group alone went back to INT8 (measured while pruning)
    costs: Dict[str, float] = field(default_factory=dict)
    #: group -> the floor shortfall added if that group alone went back to INT8
    shortfall_costs: Dict[str, float] = field(default_factory=dict)
    #: how the noise floor was measured (`Evaluator.floor_record`); None without one
    noise_floor: Optional[Dict[str, Any]] = None

    @property
    def excluded(self) -> Tuple[str, ...]:
        return tuple(group for group, _ in self.kept)

    @property
    def final(self) -> Measurement:
        if self.final_measurement is not None:
            return self.final_measurement
        return self.kept[-1][1] if self.kept else self.baseline

    def to_dict(self) -> Dict[str, Any]:
        previous = self.baseline
        kept = []
        for group, measured in self.kept:
            cost = self.costs.get(group, previous.drop - measured.drop)
            shortfall = self.shortfall_costs.get(group, previous.shortfall - measured.shortfall)
            kept.append({"group": group, "drop_after": round(measured.drop, 6),
                         "floor_shortfall_after": round(measured.shortfall, 6),
                         "cost": round(cost, 6), "shortfall_cost": round(shortfall, 6)})  # fmt: skip
            previous = measured
        return {
            "max_accuracy_drop": self.max_accuracy_drop,
            "rule": "every tier: agreement >= FP32's noise floor and drop <= max_accuracy_drop",
            "noise_floor": self.noise_floor,
            "search": self.search,
            "evaluations": self.evaluations,
            "all_int8": self.baseline.to_dict(),
            "kept_out_of_int8": kept,
            "readmitted_to_int8": list(self.readmitted),
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


def groups_reading_int8(groups: Mapping[str, Sequence[str]], quantized: Any) -> List[str]:
    """The groups with a node that reads INT8 (an input from a DequantizeLinear) in the
    all-INT8 `quantized` model: keeping any other group out of INT8 changes nothing, so
    ranking it would only cost a quantization."""
    dq_outputs = {
        o for n in quantized.graph.node if n.op_type == "DequantizeLinear" for o in n.output
    }
    reading = {
        n.name for n in quantized.graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and any(i in dq_outputs for i in n.input)
    }  # fmt: skip
    return [group for group, nodes in groups.items() if reading.intersection(nodes)]


def executed_copy(model: Any) -> Any:
    """The copy of a quantized model that ONNX Runtime CPU runs, as `OrtRunner` runs it: Q/DQ
    lowered to the integer kernels (`edge.runtime.ort_lowering`). The search judges INT8 on the
    arithmetic `edge-bench` reports, about 3x faster than the file as written (whose float Convs
    on dequantized values differ from it by a few hundredths of a logit on MMNet)."""
    from edge.runtime.ort_lowering import lower_for_cpu

    onnx = require("onnx", purpose="measuring quantization loss")
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    lower_for_cpu(lowered)
    return lowered


def _run(model: Any, feeds: Feeds) -> np.ndarray:
    ort = require("onnxruntime", purpose="measuring quantization loss")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    output = session.get_outputs()[0].name
    return np.concatenate([session.run([output], feed)[0] for feed in feeds])


#: One validation tier: batch-1 feeds and their labels (None: judged by agreement alone).
Tier = Tuple[Feeds, Optional[np.ndarray]]
#: (tier name, its feeds, draw) -> the feeds with that draw's input noise (e.g. 0.5 gray levels,
#: seed + draw); the name lets noise that goes on a tier's frames (flow models) find them.
Noise = Callable[[str, Feeds, int], Feeds]
#: Noise draws the floor is averaged over, by default. On 100 clips single draws ranged over
#: several clips; on the 300-clip hard tier they differ by about one clip (MMNet 0.960, 0.963,
#: 0.960, 0.967), so the mean of 3 is within 0.2 point of the mean of 4, far inside the clip
#: sample's own error, and a first build runs 300 fewer FP32 passes (docs/quantization.md).
DEFAULT_NOISE_DRAWS = 3
#: Clips the cheap ranking (`Evaluator.bypass_ranking`) measures each group on: those, over all
#: tiers, with the smallest FP32 top-2 logit margin, where INT8 error can flip a decision.
BYPASS_PROBE_CLIPS = 64


def lowest_margin(reference: np.ndarray, n: int) -> np.ndarray:
    """Indices (ascending) of the `n` rows of `reference` logits with the smallest top-2 margin
    (all rows for n = 0 or n >= len)."""
    if n == 0 or n >= len(reference):
        return np.arange(len(reference))
    top2 = np.sort(reference, axis=1)[:, -2:]
    return np.sort(np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[:n])


class Evaluator:
    """`evaluate(kept)`: re-quantize with `kept` out of INT8 and measure it on every tier.

    Quantized models are cached by their exclusion, so the build writes the model the search
    measured instead of quantizing it once more. A tier's noise floor costs `noise_draws` FP32
    passes, so it is measured once, and only when an INT8 model first changes a decision on
    that tier: a model that agrees on every clip is at or above any floor. With `cache_dir`
    and a `noise_id` naming the noise, each draw's agreement is also kept on disk under the
    digest of the FP32 model, the tier's feeds, the noise and the ONNX Runtime version, so a
    rebuild of the same model on the same data does not pay for it again.
    """

    def __init__(
        self,
        fp32_model: Any,
        calibration: Feeds,
        tiers: Mapping[str, Tier],
        *,
        quantizer: str = "nncf",
        class_names: Sequence[str] = (),
        settings: Optional[Mapping[str, Any]] = None,
        report: Optional[Callable[[str], None]] = None,
        noise: Optional[Noise] = None,
        noise_draws: int = DEFAULT_NOISE_DRAWS,
        reference: Optional[Mapping[str, np.ndarray]] = None,
        cache_dir: Optional[Path] = None,
        noise_id: Optional[str] = None,
    ) -> None:
        if not tiers or not any(feeds for feeds, _ in tiers.values()):
            raise EdgeBuildError("the accuracy budget needs validation samples; got none")
        if noise is not None and noise_draws < 1:
            raise EdgeBuildError(f"the noise floor needs at least one draw, got {noise_draws}")
        self._fp32 = fp32_model
        self._calibration = calibration
        self._quantizer = quantizer
        self._class_names = tuple(class_names)
        self._settings = dict(settings or {})
        self._tiers = {name: tier for name, tier in tiers.items() if tier[0]}
        #: where the search's time went: quantize, evaluate, noise_floor, fp32_reference (s)
        self.seconds: Dict[str, float] = {}
        start = time.perf_counter()
        given = dict(reference or {})
        self._reference = {
            name: np.asarray(given[name]) if name in given else _run(fp32_model, feeds)
            for name, (feeds, _) in self._tiers.items()
        }
        for name, (feeds, _) in self._tiers.items():
            if len(self._reference[name]) != len(feeds):
                raise EdgeBuildError(
                    f"{name} tier: {len(feeds)} clips but {len(self._reference[name])} FP32 "
                    "reference logits"
                )
        self._add_time("fp32_reference", start)
        self._ref_uar = {
            name: classification_metrics(self._reference[name], labels, class_names)["uar"]
            for name, (_, labels) in self._tiers.items()
            if labels is not None
        }
        self._noise = noise
        self.noise_draws = noise_draws
        self._cache_dir = Path(cache_dir) if cache_dir is not None and noise_id else None
        self._noise_id = noise_id
        #: tier -> draws read from the cache instead of measured
        self.floor_cached: Dict[str, int] = {}
        self._digests: Dict[str, str] = {}
        #: tier -> FP32's agreement with itself under each noise draw (measured when needed)
        self.floor_draws: Dict[str, List[float]] = {}
        self._models: Dict[Tuple[str, ...], Tuple[Any, Dict[str, Any]]] = {}
        self._measured: Dict[Tuple[str, ...], Measurement] = {}
        #: exclusion -> tier -> the INT8 logits measured (the build reuses the final ones)
        self.logits: Dict[Tuple[str, ...], Dict[str, np.ndarray]] = {}
        self._report = report
        self.calls = 0

    def variant(self, **settings: Any) -> Evaluator:
        """The same tiers, references and noise floor with other quantization settings (e.g.
        `bias_correction=False`): the floor is FP32's and is measured once for both."""
        other = copy.copy(self)
        other._settings = {**self._settings, **settings}
        other._models, other._measured, other.logits = {}, {}, {}
        return other

    @property
    def settings(self) -> Dict[str, Any]:
        return dict(self._settings)

    def _probe(self) -> List[Tuple[Dict[str, np.ndarray], np.ndarray]]:
        """The BYPASS_PROBE_CLIPS lowest-margin clips over all tiers: (feed, FP32 logits)."""
        rows = [(feed, ref) for name, (feeds, _) in self._tiers.items()
                for feed, ref in zip(feeds, self._reference[name])]  # fmt: skip
        margins = np.stack([ref for _, ref in rows])
        return [rows[i] for i in lowest_margin(margins, BYPASS_PROBE_CLIPS)]

    def _probe_measure(self, model: Any, probe) -> Measurement:
        start = time.perf_counter()
        logits = _run(executed_copy(model), [feed for feed, _ in probe])
        self._add_time("bypass_ranking", start)
        reference = np.stack([ref for _, ref in probe])
        agreement = top1_agreement(reference, logits)
        return Measurement(
            drop=1.0 - agreement,
            agreement=agreement,
            mean_abs_error=float(np.mean((logits - reference) ** 2)),
        )

    def bypass_ranking(
        self, groups: Sequence[str], *, always: Sequence[str] = ()
    ) -> List[GroupCost]:
        """Groups, the most INT8 error first: each taken alone out of the already-quantized
        model (`always` kept out) by `quantize.bypass`, without re-calibrating, and measured
        on the lowest-margin probe clips. One evaluation per group instead of one calibration,
        for models with more groups than the search may quantize; `mean_abs_error` of these
        measurements is the logit MSE on the probe clips, and `error_cost` what the group's
        bypass removed of it."""
        from quantize.bypass import bypass_int8

        base_model = self.quantized(tuple(always))[0]
        members = candidate_groups(self._fp32)
        probe = self._probe()
        base = self._probe_measure(base_model, probe)
        costs = []
        for group in groups:
            nodes = members.get(group) or resolve_nodes(self._fp32, [group])
            kept = self._probe_measure(bypass_int8(base_model, self._fp32, nodes), probe)
            costs.append(GroupCost(
                group=group, cost=kept.agreement - base.agreement,
                error_cost=base.mean_abs_error - kept.mean_abs_error, kept=kept,
            ))  # fmt: skip
        return sorted(costs, key=lambda c: (-c.error_cost, -c.cost, c.group))

    @property
    def noise_floor(self) -> Dict[str, float]:
        """tier -> FP32's mean agreement with itself over the noise draws (measured tiers)."""
        return {name: float(np.mean(draws)) for name, draws in self.floor_draws.items()}

    def floor(self, tier: str) -> Optional[float]:
        """The tier's noise floor, measured on first use; None without a noise model."""
        if self._noise is None:
            return None
        if tier not in self.floor_draws:
            start = time.perf_counter()
            self.floor_draws[tier] = [self._floor_draw(tier, d) for d in range(self.noise_draws)]
            self._add_time("noise_floor", start)
        return self.noise_floor[tier]

    def _floor_draw(self, tier: str, draw: int) -> float:
        """FP32's agreement with itself under noise draw `draw`, from the cache when there."""
        feeds, _ = self._tiers[tier]
        path = None
        if self._cache_dir is not None:
            path = self._cache_dir / f"noise-floor-{self._floor_key(tier, draw)}.json"
            try:
                value = float(json.loads(path.read_text())["agreement"])
                self.floor_cached[tier] = self.floor_cached.get(tier, 0) + 1
                return value
            except (OSError, ValueError, KeyError, TypeError):
                pass  # absent or damaged: measured again
        value = float(
            top1_agreement(self._reference[tier], _run(self._fp32, self._noise(tier, feeds, draw)))
        )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_text(json.dumps({"agreement": value, "tier": tier, "draw": draw}))
            os.replace(partial, path)
        return value

    def _add_time(self, what: str, start: float) -> None:
        self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - start

    def _floor_key(self, tier: str, draw: int) -> str:
        ort = require("onnxruntime", purpose="measuring quantization loss")
        if tier not in self._digests:
            digest = hashlib.sha256(self._fp32.SerializeToString())
            for feed in self._tiers[tier][0]:
                for name in sorted(feed):
                    digest.update(name.encode())
                    digest.update(np.ascontiguousarray(feed[name]).tobytes())
            self._digests[tier] = digest.hexdigest()
        words = f"{self._digests[tier]}|{self._noise_id}|draw {draw}|onnxruntime {ort.__version__}"
        return hashlib.sha256(words.encode()).hexdigest()[:20]

    def floor_record(self) -> Optional[Dict[str, Any]]:
        """The floors for the manifest: mean and per-draw agreement of every measured tier."""
        if self._noise is None:
            return None
        return {
            "draws": self.noise_draws,
            "read_from_cache": dict(self.floor_cached),
            "tiers": {
                name: {"mean": round(float(np.mean(d)), 6), "draws": [round(v, 6) for v in d]}
                for name, d in self.floor_draws.items()
            },
            "not_measured": sorted(
                (name for name in self._tiers if name not in self.floor_draws),
            ),
        }

    def quantized(self, kept: Sequence[str]) -> Tuple[Any, Dict[str, Any]]:
        key = tuple(kept)
        if key not in self._models:
            start = time.perf_counter()
            self._models[key] = quantize_model(
                self._fp32, self._calibration, quantizer=self._quantizer, exclude=key,
                **self._settings,
            )  # fmt: skip
            self._add_time("quantize", start)
        return self._models[key]

    def __call__(self, kept: Sequence[str]) -> Measurement:
        key = tuple(kept)
        if key in self._measured:
            return self._measured[key]
        self.calls += 1
        model = executed_copy(self.quantized(key)[0])
        per_tier: Dict[str, Dict[str, float]] = {}
        self.logits[key] = {}
        for name, (feeds, labels) in self._tiers.items():
            start = time.perf_counter()
            logits = _run(model, feeds)
            self._add_time("evaluate", start)
            self.logits[key][name] = logits
            reference = self._reference[name]
            agreement = top1_agreement(reference, logits)
            if name in self._ref_uar:
                uar = classification_metrics(logits, labels, self._class_names)["uar"]
                drop = self._ref_uar[name] - uar
            else:
                drop = 1.0 - agreement
            per_tier[name] = {
                "drop": float(drop),
                "agreement": float(agreement),
                "mean_abs_error": float(logit_errors(reference, logits)["mean_abs_error"]),
            }
            # agreeing on every clip is at or above any floor: no need to measure it
            floor = self.floor(name) if agreement < 1.0 else None
            if floor is not None:
                per_tier[name]["noise_floor"] = floor
                per_tier[name]["floor_shortfall"] = max(0.0, floor - float(agreement))
        measured = Measurement(
            drop=max(t["drop"] for t in per_tier.values()),
            agreement=min(t["agreement"] for t in per_tier.values()),
            mean_abs_error=float(np.mean([t["mean_abs_error"] for t in per_tier.values()])),
            tiers=per_tier,
            shortfall=max(t.get("floor_shortfall", 0.0) for t in per_tier.values()),
        )
        self._measured[key] = measured
        line = "quantization {}: {} kept out of INT8, drop {:.2%} ({})".format(
            self.calls,
            ", ".join(key) if key else "nothing",
            measured.drop,
            ", ".join(_tier_words(t, v) for t, v in per_tier.items()),
        )
        log.info(line)
        if self._report is not None:
            self._report(line)
        return measured


def _tier_words(name: str, values: Mapping[str, float]) -> str:
    words = f"{name} agreement {values['agreement']:.1%}"
    if "noise_floor" in values:
        words += f" vs FP32 noise floor {values['noise_floor']:.1%}"
    return words


def make_evaluator(
    fp32_model: Any,
    calibration: Feeds,
    validation: Feeds,
    *,
    quantizer: str = "nncf",
    labels: Optional[np.ndarray] = None,
    class_names: Sequence[str] = (),
    extra_tiers: Optional[Mapping[str, Tier]] = None,
    settings: Optional[Mapping[str, Any]] = None,
    report: Optional[Callable[[str], None]] = None,
    noise: Optional[Noise] = None,
    noise_draws: int = DEFAULT_NOISE_DRAWS,
    reference: Optional[Mapping[str, np.ndarray]] = None,
    cache_dir: Optional[Path] = None,
    noise_id: Optional[str] = None,
) -> Evaluator:
    """An `Evaluator` over the standard `validation` tier and any `extra_tiers` (e.g. hard).

    Each tier must be disjoint from `calibration`. With labels, a tier's drop is the UAR lost
    against FP32 (negative when INT8 happens to do better); otherwise 1 - top-1 agreement.
    With `noise` ((feeds, draw) -> perturbed feeds, e.g. 0.5 gray levels seeded by the draw),
    each tier also gets FP32's noise floor, the mean over `noise_draws` draws of FP32's
    agreement with itself, and a tier whose INT8 agreement is below it fails the rule however
    small its drop. `reference`: FP32 logits per tier the caller already has (saves a pass).
    `cache_dir` + `noise_id`: keep each floor draw on disk (see `Evaluator`).
    """
    tiers: Dict[str, Tier] = {"standard": (list(validation), labels)}
    tiers.update(extra_tiers or {})
    return Evaluator(
        fp32_model, calibration, tiers, quantizer=quantizer, class_names=class_names,
        settings=settings, report=report, noise=noise, noise_draws=noise_draws,
        reference=reference, cache_dir=cache_dir, noise_id=noise_id,
    )  # fmt: skip


def rank_groups(
    groups: Sequence[str],
    evaluate: Callable[[Sequence[str]], Measurement],
    *,
    baseline: Optional[Measurement] = None,
    always: Sequence[str] = (),
) -> List[GroupCost]:
    """Groups, costliest first: drop plus floor shortfall removed, then logit error removed,
    when the group alone stays out of INT8.

    `always`: groups kept out of INT8 in every measurement, the ranked one added to them.
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
                shortfall_cost=base.shortfall - kept.shortfall,
            )
        )
        log.info("sensitivity %s: drop %.4f -> %.4f, floor shortfall %.4f -> %.4f",
                 group, base.drop, kept.drop, base.shortfall, kept.shortfall)  # fmt: skip
    return sorted(costs, key=lambda c: (-(c.cost + c.shortfall_cost), -c.error_cost, c.group))


def _calls(evaluate: Callable[..., Any]) -> int:
    return int(getattr(evaluate, "calls", 0))


def _floor_record(evaluate: Callable[..., Any]) -> Optional[Dict[str, Any]]:
    record = getattr(evaluate, "floor_record", None)
    return record() if callable(record) else None


def _judged(measured: Measurement) -> str:
    """`drop 0.0100`, plus the tiers under their noise floor."""
    words = f"drop {measured.drop:.4f}"
    under = [
        f"{name} agreement {t['agreement']:.3f} < FP32 noise floor {t['noise_floor']:.3f}"
        for name, t in measured.tiers.items()
        if t.get("floor_shortfall", 0.0) > EPS
    ]
    return words + (" (" + "; ".join(under) + ")" if under else "")


def meet_budget(
    max_accuracy_drop: float,
    groups: Sequence[str],
    evaluate: Callable[[Sequence[str]], Measurement],
    *,
    start: Sequence[str] = (),
    seed: Sequence[str] = (),
    max_quantizations: Optional[int] = None,
) -> BudgetResult:
    """Keep the fewest groups out of INT8 that meet the fidelity rule on every tier: drop
    within the budget and agreement at or above FP32's noise floor (`Measurement.meets`).

    All-INT8 (plus `start`) is measured first. When it misses the rule, the `seed` groups
    (a ModelSpec's precision hints) are tried together; if they meet it, each one goes back to
    INT8 unless the rule then fails. Otherwise every group is ranked by what keeping it alone
    saves, and groups are kept costliest first until the rule holds, then pruned the same way.

    Args:
        max_accuracy_drop: absolute budget (0.01 = one point of UAR or agreement).
        groups: candidate groups (`candidate_groups`), as node names or prefixes.
        evaluate: see `make_evaluator`.
        start: groups the user keeps out of INT8 in every measurement (never pruned).
        seed: groups to try first; kept only where the measurement needs them.
        max_quantizations: when ranking every group would take more quantizations than this
            (each one is a full calibration), an evaluator with `bypass_ranking` ranks them
            without calibrating and the search stops at this many measurements; any other
            evaluator is refused, naming the drops reached so far. None: no limit.

    Raises:
        EdgeBuildError: the budget is negative, the rule is not met even with every group
            kept, or its ranking would exceed `max_quantizations`.
    """
    if not np.isfinite(max_accuracy_drop) or max_accuracy_drop < 0:
        raise EdgeBuildError(
            f"--max-accuracy-drop must be a non-negative number, got {max_accuracy_drop}"
        )
    forced = tuple(start)
    baseline = evaluate(forced)
    result = BudgetResult(max_accuracy_drop, baseline, [], [])
    if baseline.meets(max_accuracy_drop):
        result.evaluations = _calls(evaluate)
        result.noise_floor = _floor_record(evaluate)
        return result
    seeded = [g for g in seed if g not in forced]
    if seeded:
        measured = evaluate(forced + tuple(seeded))
        if measured.meets(max_accuracy_drop):
            result.search = "seeded"
            result.kept = [(g, measured) for g in seeded]
            return _prune(result, forced, evaluate)
    result.search = "ranked"
    kept: List[str] = []
    remaining = [g for g in groups if g not in forced]
    needed = _calls(evaluate) + len(remaining)
    cheap_ranking = getattr(evaluate, "bypass_ranking", None)
    if max_quantizations is not None and needed > max_quantizations and cheap_ranking:
        return _bypass_ranked(result, forced, remaining, evaluate, max_quantizations)
    if max_quantizations is not None and needed > max_quantizations:
        raise EdgeBuildError(
            f"INT8 fidelity rule (drop within {max_accuracy_drop:.2%}, agreement at or above "
            "FP32's noise floor) not met by all-INT8 "
            f"({_judged(baseline)})"
            + (" or by the precision hints" if seeded else "")
            + f"; ranking its {len(remaining)} module groups would take about {needed} "
            f"quantizations (limit {max_quantizations}). "
            + (
                "Agreement is under FP32's noise floor: judge by the budget alone with "
                "--noise-floor-draws 0, raise --max-search-quantizations, or build fp16"
                if baseline.drop <= max_accuracy_drop + EPS
                else "Raise --max-accuracy-drop, raise --max-search-quantizations, or build fp16"
            )
        )
    result.ranking = rank_groups(remaining, evaluate, baseline=baseline, always=forced)
    best = baseline
    for cost in result.ranking:
        kept.append(cost.group)
        measured = cost.kept if len(kept) == 1 else evaluate(forced + tuple(kept))
        result.kept.append((cost.group, measured))
        if measured.excess(max_accuracy_drop) < best.excess(max_accuracy_drop):
            best = measured
        if measured.meets(max_accuracy_drop):
            return _prune(result, forced, evaluate)
    raise EdgeBuildError(
        f"INT8 accuracy budget not met: {_judged(best)} at best (all-INT8 {_judged(baseline)}) "
        f"with {len(forced) + len(kept)} group(s) kept out of INT8, budget "
        f"{max_accuracy_drop:.4f}; raise --max-accuracy-drop or build fp16"
    )


def module_families(groups: Sequence[str]) -> Dict[str, List[str]]:
    """Groups by top-level module, repeated blocks together: `/amnet2d_layers.0/.../` and
    `/amnet2d_layers.3/.../` -> `/amnet2d_layers.`, `/fusion/Add` -> `/fusion/`; a node at
    the top level (`/Concat`) is its own family. Each key is a prefix `resolve_nodes` takes."""
    families: Dict[str, List[str]] = {}
    for group in groups:
        parts = group.strip("/").split("/")
        if len(parts) == 1:
            key = group
        else:
            head = re.sub(r"\.\d+$", ".", parts[0])
            key = "/" + head + ("" if head.endswith(".") else "/")
        families.setdefault(key, []).append(group)
    return families


def _bypass_ranked(
    result: BudgetResult,
    forced: Tuple[str, ...],
    remaining: Sequence[str],
    evaluate: Any,
    max_quantizations: int,
) -> BudgetResult:
    """Too many groups to rank by re-quantizing each: rank them by `Evaluator.bypass_ranking`
    (no calibration) and keep out, most error first, those whose bypass lowered the error, one
    re-quantization each, until the rule holds or `max_quantizations` is spent; then prune.

    Whole module families (`module_families`) are tried first: where INT8 error is spread over
    a branch (FAMNet's 2D branch: 34 groups), adding its groups one at a time runs out of
    quantizations long before the branch is out. Groups one by one come second."""
    budget = result.max_accuracy_drop
    result.search = "bypass-ranked"
    best = result.baseline
    stages = [list(remaining)]
    families = module_families(remaining)
    if len(families) < len(remaining):
        stages.insert(0, list(families))
    kept: List[str] = []
    for candidates in stages:
        ranking = evaluate.bypass_ranking(candidates, always=forced)
        result.ranking.extend(ranking)
        kept, result.kept = [], []
        for cost in ranking:
            if cost.error_cost <= 0 or _calls(evaluate) >= max_quantizations:
                break
            kept.append(cost.group)
            measured = evaluate(forced + tuple(kept))
            result.kept.append((cost.group, measured))
            if measured.excess(budget) < best.excess(budget):
                best = measured
            if measured.meets(budget):
                return _prune(result, forced, evaluate, max_quantizations)
    raise EdgeBuildError(
        f"INT8 fidelity rule (drop within {budget:.2%}, agreement at or above FP32's noise "
        f"floor) not met: {_judged(best)} at best (all-INT8 {_judged(result.baseline)}) with "
        f"up to {len(forced) + len(kept)} group(s) kept out of INT8 in the order a cheap "
        f"ranking of {len(remaining)} groups gave, within {max_quantizations} quantizations; "
        "raise --max-search-quantizations or --max-accuracy-drop, or build fp16"
    )


def _prune(
    result: BudgetResult,
    forced: Tuple[str, ...],
    evaluate: Callable[[Sequence[str]], Measurement],
    max_quantizations: Optional[int] = None,
) -> BudgetResult:
    """Return each kept group to INT8, last added first, where the rule still holds (while
    `max_quantizations` allows another measurement)."""
    kept = [group for group, _ in result.kept]
    final = result.kept[-1][1]
    for group in reversed(list(kept)):
        if max_quantizations is not None and _calls(evaluate) >= max_quantizations:
            break
        trial = [g for g in kept if g != group]
        measured = evaluate(forced + tuple(trial))
        result.costs[group] = measured.drop - final.drop
        result.shortfall_costs[group] = measured.shortfall - final.shortfall
        if measured.meets(result.max_accuracy_drop):
            kept = trial
            final = measured
            result.readmitted.append(group)
    result.kept = [(g, m) for g, m in result.kept if g in kept]
    result.final_measurement = final
    result.evaluations = _calls(evaluate)
    result.noise_floor = _floor_record(evaluate)
    return result
