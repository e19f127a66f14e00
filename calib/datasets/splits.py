"""Leave-one-subject-out folds, the protocol every micro-expression paper reports."""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

from .sample import Sample

__all__ = ["subject_key", "loso_splits"]


def subject_key(sample: Sample) -> str:
    """`dataset/subject`: subjects of different datasets are different people in composites."""
    return f"{sample.dataset}/{sample.subject}"


def loso_splits(samples: Iterable[Sample]) -> List[Tuple[str, List[Sample], List[Sample]]]:
    """One `(subject_key, train, test)` fold per subject, sorted by key; sample order kept."""
    samples = list(samples)
    groups: Dict[str, List[Sample]] = {}
    for sample in samples:
        groups.setdefault(subject_key(sample), []).append(sample)
    return [
        (key, [s for s in samples if subject_key(s) != key], groups[key]) for key in sorted(groups)
    ]
