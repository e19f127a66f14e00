"""Accuracy loss of a candidate (FP16, INT8, an engine) against the FP32 reference, numpy only.

Runs on the device as well as the host. Without labels the candidate is judged by how far its
logits and its top-1 decisions move from the reference's; with labels, accuracy, UAR and UF1
(the MEGC metrics for imbalanced micro-expression classes) are computed for both and the
candidate's deltas reported.

Conventions (those of scikit-learn, so numbers match what MER papers report with it):
UAR is `balanced_accuracy_score`: recall averaged over the classes present in the labels.
UF1 is `f1_score(average="macro")`: F1 = 2TP / (2TP + FP + FN) averaged over the classes present
in the labels or the predictions.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from edge.errors import EdgeBuildError

__all__ = [
    "confusion_matrix",
    "per_class_recall",
    "per_class_f1",
    "accuracy",
    "uar",
    "uf1",
    "top1_agreement",
    "logit_errors",
    "classification_metrics",
    "compare_to_reference",
    "with_pixel_noise",
]


def _as_logits(logits: Any, what: str) -> np.ndarray:
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise EdgeBuildError(f"{what}: expected logits [samples, classes], got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise EdgeBuildError(f"{what}: logits contain NaN or Inf")
    return array


def _as_labels(labels: Any, num_classes: int, what: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise EdgeBuildError(
            f"{what}: labels must be a 1-D integer array, got {array.dtype} {array.shape}"
        )
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise EdgeBuildError(
            f"{what}: labels must lie in [0, {num_classes - 1}], got {int(array.min())}..{int(array.max())}"
        )
    return array.astype(np.int64)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    t = _as_labels(y_true, num_classes, "confusion_matrix")
    p = _as_labels(y_pred, num_classes, "confusion_matrix")
    if t.shape != p.shape:
        raise EdgeBuildError(f"confusion_matrix: {t.size} labels but {p.size} predictions")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """TP / support per class; NaN where a class has no samples."""
    support = cm.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def uar(cm: np.ndarray) -> float:
    """Unweighted average recall over the classes that have samples."""
    recall = per_class_recall(cm)
    present = ~np.isnan(recall)
    return float(recall[present].mean()) if present.any() else float("nan")


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """2TP / (2TP + FP + FN) per class; NaN where a class is neither labelled nor predicted."""
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, np.nan)


def uf1(cm: np.ndarray) -> float:
    """Unweighted mean F1 over the classes labelled or predicted at least once."""
    f1 = per_class_f1(cm)
    seen = ~np.isnan(f1)
    return float(f1[seen].mean()) if seen.any() else float("nan")


def top1_agreement(reference_logits: Any, candidate_logits: Any) -> float:
    """Fraction of samples whose arg-max class is the same."""
    ref = _as_logits(reference_logits, "reference")
    cand = _as_logits(candidate_logits, "candidate")
    _same_shape(ref, cand)
    return float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1)))


def _same_shape(ref: np.ndarray, cand: np.ndarray) -> None:
    if ref.shape != cand.shape:
        raise EdgeBuildError(
            f"reference logits have shape {ref.shape}, candidate logits {cand.shape}"
        )


def logit_errors(reference_logits: Any, candidate_logits: Any) -> Dict[str, float]:
    """Max and mean |diff| over all logits, and the min and mean per-sample cosine."""
    ref = _as_logits(reference_logits, "reference")
    cand = _as_logits(candidate_logits, "candidate")
    _same_shape(ref, cand)
    diff = np.abs(ref - cand)
    nr = np.linalg.norm(ref, axis=1)
    nc = np.linalg.norm(cand, axis=1)
    dot = np.sum(ref * cand, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(
            (nr == 0) & (nc == 0), 1.0, np.where((nr == 0) | (nc == 0), 0.0, dot / (nr * nc))
        )
    return {
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
        "min_cosine": float(cosine.min()),
        "mean_cosine": float(cosine.mean()),
    }


def _nan_to_none(values: np.ndarray) -> List[Optional[float]]:
    return [None if np.isnan(v) else float(v) for v in values]


def classification_metrics(logits: Any, labels: Any, class_names: Sequence[str]) -> Dict[str, Any]:
    """Accuracy, UAR, UF1, per-class recall (None for absent classes) and the confusion matrix."""
    scores = _as_logits(logits, "classification_metrics")
    if scores.shape[1] != len(class_names):
        raise EdgeBuildError(
            f"{scores.shape[1]} logits per sample but {len(class_names)} class names"
        )
    y = _as_labels(labels, len(class_names), "classification_metrics")
    if y.size != scores.shape[0]:
        raise EdgeBuildError(f"{y.size} labels for {scores.shape[0]} samples")
    cm = confusion_matrix(y, scores.argmax(axis=1), len(class_names))
    return {
        "accuracy": accuracy(cm),
        "uar": uar(cm),
        "uf1": uf1(cm),
        "per_class_recall": dict(zip(class_names, _nan_to_none(per_class_recall(cm)))),
        "support": dict(zip(class_names, (int(v) for v in cm.sum(axis=1)))),
        "confusion": cm.tolist(),
    }


def compare_to_reference(
    reference_logits: Any,
    candidate_logits: Any,
    *,
    class_names: Sequence[str],
    labels: Optional[Any] = None,
) -> Dict[str, Any]:
    """Everything a report needs about one candidate against the FP32 reference.

    Returns:
        `top1_agreement`, `logits` (errors), `confusion_vs_reference` (rows: reference
        prediction, columns: candidate prediction), and with labels `reference` and
        `candidate` metrics plus `delta` (candidate - reference) for accuracy, UAR and UF1.
    """
    ref = _as_logits(reference_logits, "reference")
    cand = _as_logits(candidate_logits, "candidate")
    _same_shape(ref, cand)
    n = len(class_names)
    if ref.shape[1] != n:
        raise EdgeBuildError(f"{ref.shape[1]} logits per sample but {n} class names")
    out: Dict[str, Any] = {
        "samples": int(ref.shape[0]),
        "top1_agreement": top1_agreement(ref, cand),
        "logits": logit_errors(ref, cand),
        "confusion_vs_reference": confusion_matrix(
            ref.argmax(axis=1), cand.argmax(axis=1), n
        ).tolist(),
        "labels": labels is not None,
        "reference": None,
        "candidate": None,
        "delta": None,
    }
    if labels is not None:
        ref_m = classification_metrics(ref, labels, class_names)
        cand_m = classification_metrics(cand, labels, class_names)
        out["reference"] = ref_m
        out["candidate"] = cand_m
        out["delta"] = {k: cand_m[k] - ref_m[k] for k in ("accuracy", "uar", "uf1")}
    return out


def with_pixel_noise(
    feeds: Sequence[Mapping[str, np.ndarray]],
    std: Sequence[float],
    gray_levels: float,
    *,
    seed: int = 0,
) -> List[Dict[str, np.ndarray]]:
    """`feeds` with Gaussian noise of `gray_levels` (of 255) added to every image input.

    Image inputs are the NCHW/NCTHW tensors with one channel per entry of `std`, the
    normalisation's per-channel std, so the noise is in pixel units before normalising. Used to
    measure how stable FP32 decisions are under noise far below a camera's own: a model whose
    decisions flip there cannot be expected to keep them under INT8 rounding either.
    """
    rng = np.random.default_rng(seed)
    scale = np.asarray(std, np.float64)
    noisy = []
    for feed in feeds:
        out = {}
        for name, value in feed.items():
            value = np.asarray(value)
            if value.dtype.kind == "f" and value.ndim >= 4 and value.shape[1] == len(scale):
                sigma = (gray_levels / 255.0 / scale).reshape((1, -1) + (1,) * (value.ndim - 2))
                value = (value + rng.standard_normal(value.shape) * sigma).astype(value.dtype)
            out[name] = value
        noisy.append(out)
    return noisy
