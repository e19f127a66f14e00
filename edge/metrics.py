"""Classification and agreement metrics, numpy only: the one definition every report uses.

Runs on the device as well as the host, so the model card, edge-build's measurements, edge-bench
and the parity checks all compute accuracy, UAR, UF1, top-1 agreement and logit errors the same
way.

Conventions are scikit-learn's, which is what MER papers report with and what the tests use as
the oracle:

- UAR is `balanced_accuracy_score`: recall averaged over the classes present in the labels.
- UF1 is `f1_score(average="macro")`: F1 = 2TP / (2TP + FP + FN) averaged over the classes
  present in the labels *or* the predictions. This is MEGC's UF1 (mean per-class F1 over the
  classes) whenever every class is labelled, as in a pooled LOSO evaluation; on a subset where a
  class is only predicted, its false positives count as an F1 of 0 instead of being dropped,
  which would reward predicting classes that are not there.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edge.errors import EdgeBuildError

__all__ = [
    "confusion_matrix",
    "per_class_recall",
    "per_class_f1",
    "accuracy",
    "uar",
    "uf1",
    "label_metrics",
    "top1_agreement",
    "row_cosines",
    "logit_errors",
    "classification_metrics",
    "compare_to_reference",
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


def label_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], num_classes: Optional[int] = None
) -> Dict[str, float]:
    """Sample count, accuracy, UAR and UF1 of predicted class indices against labels."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if num_classes is None:
        num_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    cm = confusion_matrix(t, p, max(num_classes, 1))
    return {
        "samples": int(t.size),
        "accuracy": accuracy(cm),
        "uar": uar(cm),
        "uf1": uf1(cm),
    }


def _same_shape(ref: np.ndarray, cand: np.ndarray) -> None:
    if ref.shape != cand.shape:
        raise EdgeBuildError(
            f"reference logits have shape {ref.shape}, candidate logits {cand.shape}"
        )


def top1_agreement(reference_logits: Any, candidate_logits: Any) -> float:
    """Fraction of samples whose arg-max class is the same."""
    ref = _as_logits(reference_logits, "reference")
    cand = _as_logits(candidate_logits, "candidate")
    _same_shape(ref, cand)
    return float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1)))


def row_cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Cosine similarity per row of two [rows, values] arrays; 1 for two zero rows, 0 for one."""
    nr = np.linalg.norm(reference, axis=1)
    nc = np.linalg.norm(candidate, axis=1)
    dot = np.sum(reference * candidate, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            (nr == 0) & (nc == 0), 1.0, np.where((nr == 0) | (nc == 0), 0.0, dot / (nr * nc))
        )


def logit_errors(reference_logits: Any, candidate_logits: Any) -> Dict[str, float]:
    """Max and mean |diff| over all logits, and the min and mean per-sample cosine."""
    ref = _as_logits(reference_logits, "reference")
    cand = _as_logits(candidate_logits, "candidate")
    _same_shape(ref, cand)
    diff = np.abs(ref - cand)
    cosine = row_cosines(ref, cand)
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
