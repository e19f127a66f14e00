"""Annotation fixes as data, checked against what the spreadsheet actually says.

Each fix names the parsed value it expects; if the sheet drifted (a new release already fixed
it, or changed it differently) or the sample vanished, `apply_fixes` refuses instead of patching
the wrong thing. meb patches by row index, which breaks silently when rows move; here fixes are
keyed by `sample_id`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from calib.datasets.sample import Sample
from edge.errors import AnnotationFixMismatch

__all__ = ["Fix", "FIXABLE_FIELDS", "apply_fixes", "fixes_version"]

#: Sample fields a fix may change.
FIXABLE_FIELDS = ("onset", "apex", "offset", "emotion", "aus")


@dataclass(frozen=True)
class Fix:
    """Replace `field` of `sample_id` from `expected` (the parsed value) with `value`."""

    sample_id: str
    field: str
    expected: Any
    value: Any
    reason: str
    source: str


def apply_fixes(
    samples: Iterable[Sample], fixes: Sequence[Fix]
) -> Tuple[List[Sample], Tuple[Fix, ...]]:
    """Apply `fixes` in order; returns the fixed samples (order kept) and the fixes applied.

    Raises:
        AnnotationFixMismatch: a fix targets an absent or duplicated sample id, a field that
            cannot be fixed, or a value other than the one parsed (spreadsheet drift).
    """
    samples = list(samples)
    positions: Dict[str, List[int]] = {}
    for i, sample in enumerate(samples):
        positions.setdefault(sample.sample_id, []).append(i)
    for fix in fixes:
        if fix.field not in FIXABLE_FIELDS:
            raise AnnotationFixMismatch(
                "fix for {}: field {!r} cannot be fixed (one of {})".format(
                    fix.sample_id, fix.field, ", ".join(FIXABLE_FIELDS)
                )
            )
        where = positions.get(fix.sample_id, [])
        if len(where) != 1:
            raise AnnotationFixMismatch(
                "fix for {} ({}): sample id {} in the parsed sheet; is this the spreadsheet the "
                "fix table was written for?".format(
                    fix.sample_id, fix.field, "is missing" if not where else "occurs twice"
                )
            )
        sample = samples[where[0]]
        current = getattr(sample, fix.field)
        if current != fix.expected:
            raise AnnotationFixMismatch(
                f"fix for {fix.sample_id}: expected {fix.field} = {fix.expected!r} but the "
                f"sheet says {current!r}; the spreadsheet changed, so re-check this fix "
                f"({fix.reason}; {fix.source})"
            )
        note = f"fix {fix.field}: {fix.expected!r} -> {fix.value!r} ({fix.source})"
        samples[where[0]] = dataclasses.replace(
            sample, notes=sample.notes + (note,), **{fix.field: fix.value}
        )
    return samples, tuple(fixes)


def fixes_version(fixes: Sequence[Fix]) -> str:
    """Short sha256 of a fix table, for the bundle manifest."""
    text = "\n".join(repr(dataclasses.astuple(f)) for f in fixes)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
