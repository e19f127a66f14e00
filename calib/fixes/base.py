"""Annotation fixes as data, each checked against what the spreadsheet says before it applies.

A fix is located either by `sample_id` (stable across row moves) or by `row`, the 0-based data
row of the vendor sheet (0 is the row right below the header, blank rows counted; see
`calib.datasets.tables`), which is how the published fixes (tvaranka/meb) are recorded. meb
patches rows blindly (`df.loc[60, "offset"] = 91`), which silently patches the wrong sample when
a sheet release moves rows; here every fix declares a `check` on the old value, and a sheet that
fails one is reported as drift instead of being patched.

`check` says how strong that protection is, strongest first:

- `equals`: the old value is `expected` exactly.
- `missing`: the old cell is empty or not an integer (`/`, `-`); for the "apex missing" fixes.
- `contains:<word>`: the old cell contains `<word>` as a word (case-insensitive).
- `ordered`: the old value is unknown; after the fixes of that row, the frames present are in
  order (onset <= apex <= offset). Catches a moved row only when its frames contradict the fix.
- `any`: the old value is unknown and nothing is checked beyond the row existing.

This module imports nothing from `calib.datasets` at run time: the readers import the tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

from edge.errors import AnnotationFixMismatch

if TYPE_CHECKING:  # pragma: no cover
    from calib.datasets.sample import Sample

__all__ = [
    "Fix",
    "FixOutcome",
    "FIXABLE_FIELDS",
    "CHECKS",
    "OUTCOMES",
    "check_old_value",
    "frames_out_of_order",
    "sample_fix_problem",
    "apply_fixes",
    "check_table",
    "fixes_version",
]

#: Sample fields a fix may change.
FIXABLE_FIELDS = ("onset", "apex", "offset", "emotion", "aus")

#: Check kinds, strongest first; `contains:` takes a word after the colon.
CHECKS = ("equals", "missing", "contains:", "ordered", "any")

#: `FixOutcome.status` values: applied; matched but not applied (fixes disabled); drift.
OUTCOMES = ("applied", "disabled", "drift")


@dataclass(frozen=True)
class Fix:
    """Set `field` to `value` in one sample, located by `sample_id` or by sheet `row`.

    Row-located fixes carry the corrected cell as the vendor would write it (`"R12 + R15"`), so
    the reader parses it like any other cell; sample-id fixes carry the parsed value (a tuple
    for `aus`). `expected` is used by the `equals` check only.
    """

    field: str
    value: Any
    reason: str
    source: str
    sample_id: Optional[str] = None
    row: Optional[int] = None
    check: str = "equals"
    expected: Any = None

    def __post_init__(self) -> None:
        # A malformed table is a programming error in this package, not a user error.
        if (self.sample_id is None) == (self.row is None):
            raise ValueError(f"fix {self!r}: give exactly one of sample_id and row")
        if self.row is not None and (not isinstance(self.row, int) or self.row < 0):
            raise ValueError(f"fix {self!r}: row must be a non-negative int")
        if self.field not in FIXABLE_FIELDS:
            raise ValueError(
                "fix {!r}: field {!r} cannot be fixed (one of {})".format(
                    self, self.field, ", ".join(FIXABLE_FIELDS)
                )
            )
        kind = self.check.split(":", 1)[0] + (":" if ":" in self.check else "")
        if kind not in CHECKS or (kind == "contains:" and not self.check[len(kind) :]):
            raise ValueError(f"fix {self!r}: unknown check {self.check!r} (one of {CHECKS})")
        if self.check != "equals" and self.expected is not None:
            raise ValueError(f"fix {self!r}: expected is only used by the equals check")

    @property
    def location(self) -> str:
        """`row 29` or the sample id, for messages."""
        return f"row {self.row}" if self.row is not None else str(self.sample_id)


@dataclass(frozen=True)
class FixOutcome:
    """What one fix did to one loaded sheet; `status` is one of `OUTCOMES`.

    `target` is the sample id the fix addresses, or `<dataset> row <n>` when that row yields no
    sample (absent, blank or past the end of the sheet).
    """

    fix: Fix
    status: str
    target: str
    message: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return " + ".join(str(v) for v in value)
    return str(value).strip()


def check_old_value(fix: Fix, old: Any) -> Optional[str]:
    """Why `old` (the parsed value before the fix) fails `fix.check`, or None if it passes.

    `ordered` and `any` never fail here; `ordered` is checked after the fix
    (`frames_out_of_order`).
    """
    if fix.check == "equals" and old != fix.expected:
        return f"expected {fix.field} = {fix.expected!r} but the sheet says {old!r}"
    if fix.check == "missing" and _text(old):
        return f"expected {fix.field} to be missing but the sheet says {old!r}"
    if fix.check.startswith("contains:"):
        word = fix.check.split(":", 1)[1]
        if not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", _text(old), re.IGNORECASE):
            return f"expected {fix.field} to contain {word!r} but the sheet says {old!r}"
    return None


def frames_out_of_order(
    onset: Optional[int], apex: Optional[int], offset: Optional[int]
) -> Optional[str]:
    """Why the frames present are not onset <= apex <= offset, or None (the `ordered` check)."""
    present = [
        (n, v) for n, v in (("onset", onset), ("apex", apex), ("offset", offset)) if v is not None
    ]
    for (name_a, a), (name_b, b) in zip(present, present[1:]):
        if a > b:
            return f"after the fix {name_a} {a} is after {name_b} {b}"
    return None


def sample_fix_problem(samples: Sequence[Sample], fix: Fix) -> Tuple[Optional[int], Optional[str]]:
    """(position of the sample `fix` targets, why it does not apply or None).

    Raises:
        ValueError: `fix` is row-located; those apply to sheet rows, in the dataset loaders.
    """
    if fix.sample_id is None:
        raise ValueError(f"fix at {fix.location} is row-located: the dataset loaders apply it")
    where = [i for i, s in enumerate(samples) if s.sample_id == fix.sample_id]
    if len(where) != 1:
        state = "is missing" if not where else "occurs twice"
        return None, f"sample id {fix.sample_id} {state} in the parsed sheet"
    sample = samples[where[0]]
    problem = check_old_value(fix, getattr(sample, fix.field))
    if problem is None and fix.check == "ordered":
        fixed = dataclasses.replace(sample, **{fix.field: fix.value})
        problem = frames_out_of_order(fixed.onset, fixed.apex, fixed.offset)
    return where[0], problem


def apply_fixes(
    samples: Iterable[Sample], fixes: Sequence[Fix]
) -> Tuple[List[Sample], Tuple[Fix, ...]]:
    """Apply sample-id-located `fixes` in order; returns the fixed samples (order kept) and the
    fixes applied.

    Raises:
        AnnotationFixMismatch: a fix targets an absent or duplicated sample id, or its check
            fails on the parsed value (spreadsheet drift).
        ValueError: a fix is row-located (the dataset loaders apply those).
    """
    samples = list(samples)
    for fix in fixes:
        position, problem = sample_fix_problem(samples, fix)
        if problem is not None or position is None:
            raise AnnotationFixMismatch(
                f"fix for {fix.sample_id}: {problem}; the spreadsheet is not the one this fix "
                f"was written for, so re-check it ({fix.reason}; {fix.source})"
            )
        sample = samples[position]
        note = f"fix {fix.field}: {getattr(sample, fix.field)!r} -> {fix.value!r} ({fix.source})"
        samples[position] = sample.with_note(note, **{fix.field: fix.value})
    return samples, tuple(fixes)


def fixes_version(fixes: Sequence[Fix]) -> str:
    """Short sha256 of a fix table, for the bundle manifest."""
    text = "\n".join(repr(dataclasses.astuple(f)) for f in fixes)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _duplicates(fixes: Sequence[Fix]) -> Dict[Tuple[str, str], int]:
    counts: Dict[Tuple[str, str], int] = {}
    for fix in fixes:
        key = (fix.location, fix.field)
        counts[key] = counts.get(key, 0) + 1
    return {k: n for k, n in counts.items() if n > 1}


def check_table(fixes: Sequence[Fix]) -> None:
    """Raise ValueError if a table fixes the same field of the same row or sample twice."""
    twice = _duplicates(fixes)
    if twice:
        raise ValueError(
            "fix table sets {} more than once".format(
                ", ".join(f"{field} at {where}" for where, field in sorted(twice))
            )
        )
