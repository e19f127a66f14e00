"""Check samples against their frames and report every problem as data.

Never raises on a bad sample and never prints: the CLI or report decides which issue kinds warn
and which fail. Samples from a dataset loader also carry what its annotation-fix table did
(`LoadedSamples.fix_outcomes`): fixes applied, fixes that match but were disabled, and fixes
that do not match the sheet (drift) are listed as issues too. Images are decoded with OpenCV
when it is importable, else only their existence and non-zero size are checked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from calib.fixes.base import FixOutcome

from .frames import frame_index
from .sample import Sample

__all__ = ["Issue", "ISSUE_KINDS", "validate"]

#: Every `Issue.kind` `validate` can report.
ISSUE_KINDS = (
    "duplicate_id",
    "onset_missing",
    "apex_missing",
    "offset_missing",
    "onset_after_offset",
    "apex_out_of_range",
    "emotion_missing",
    "aus_ambiguous",
    "frame_dir_unknown",
    "frame_dir_missing",
    "frame_missing",
    "image_unreadable",
    "video_unreadable",
    "frame_count",
    "fix_applied",
    "fix_disabled",
    "fix_drift",
)


@dataclass(frozen=True)
class Issue:
    """One problem with one sample; `kind` is one of `ISSUE_KINDS`."""

    sample_id: str
    kind: str
    message: str


def _cv2() -> Optional[Any]:
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


def _readable(path: Path, cv2: Optional[Any]) -> bool:
    try:
        if path.stat().st_size == 0:
            return False
        if cv2 is None:
            return True
        import numpy as np

        return (
            cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED) is not None
        )
    except (OSError, ValueError):
        return False


def _annotation_issues(s: Sample) -> List[Issue]:
    issues = []
    for name in ("onset", "apex", "offset"):
        if getattr(s, name) is None:
            issues.append(Issue(s.sample_id, name + "_missing", f"no integer {name} frame"))
    if s.onset is not None and s.offset is not None:
        if s.onset > s.offset:
            msg = f"onset {s.onset} is after offset {s.offset}"
            issues.append(Issue(s.sample_id, "onset_after_offset", msg))
        elif s.apex is not None and not s.onset <= s.apex <= s.offset:
            msg = f"apex {s.apex} is outside [{s.onset}, {s.offset}]"
            issues.append(Issue(s.sample_id, "apex_out_of_range", msg))
    if not s.emotion:
        issues.append(Issue(s.sample_id, "emotion_missing", "no emotion label"))
    ambiguous = [au for au in s.aus if " " in au]
    if ambiguous:
        msg = "action unit cell is not a plain list: {}".format(", ".join(ambiguous))
        issues.append(Issue(s.sample_id, "aus_ambiguous", msg))
    return issues


def _video_issues(s: Sample, cv2: Optional[Any]) -> List[Issue]:
    if cv2 is None:
        return []
    capture = cv2.VideoCapture(str(s.frame_dir))
    try:
        if not capture.isOpened():
            return [Issue(s.sample_id, "video_unreadable", f"cannot open {s.frame_dir}")]
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    last = max((f for f in (s.onset, s.apex, s.offset) if f is not None), default=None)
    if count > 0 and last is not None and last >= count:
        msg = f"frame {last} is past the end of {s.frame_dir} ({count} frames)"
        return [Issue(s.sample_id, "frame_missing", msg)]
    return []


def _frame_issues(s: Sample, cv2: Optional[Any], decode: bool) -> List[Issue]:
    if s.frame_dir is None:
        return [Issue(s.sample_id, "frame_dir_unknown", "no frame folder for this sample")]
    frame_dir = Path(s.frame_dir)
    if frame_dir.is_file():
        return _video_issues(s, cv2)
    if not frame_dir.is_dir():
        return [Issue(s.sample_id, "frame_dir_missing", f"{frame_dir} does not exist")]
    index = frame_index(frame_dir)
    roles: Dict[int, List[str]] = {}
    for name in ("onset", "apex", "offset"):
        number = getattr(s, name)
        if number is not None:
            roles.setdefault(number, []).append(name)
    issues = []
    for number, names in roles.items():
        path = index.get(number)
        if path is None:
            msg = f"{'/'.join(names)} frame {number} not in {frame_dir}"
            issues.append(Issue(s.sample_id, "frame_missing", msg))
        elif decode and not _readable(path, cv2):
            issues.append(Issue(s.sample_id, "image_unreadable", f"cannot decode {path}"))
    if s.onset is not None and s.offset is not None and s.onset <= s.offset:
        expected = s.offset - s.onset + 1
        found = sum(1 for n in index if s.onset <= n <= s.offset)
        if found != expected:
            msg = f"{found} of {expected} frames {s.onset}..{s.offset} present in {frame_dir}"
            issues.append(Issue(s.sample_id, "frame_count", msg))
    return issues


def validate(
    samples: Iterable[Sample],
    *,
    decode: bool = True,
    fix_outcomes: Optional[Sequence[FixOutcome]] = None,
) -> List[Issue]:
    """All issues of all samples, in sample order, then one per annotation-fix outcome.

    Args:
        samples: samples to check.
        decode: decode the onset, apex and offset images (OpenCV if importable).
        fix_outcomes: what the fix tables did; None means `samples.fix_outcomes` when the
            samples came from a dataset loader, else none.
    """
    if fix_outcomes is None:
        fix_outcomes = getattr(samples, "fix_outcomes", ())
    cv2 = _cv2() if decode else None
    issues: List[Issue] = []
    counts: Dict[str, int] = {}
    for s in samples:
        counts[s.sample_id] = counts.get(s.sample_id, 0) + 1
        if counts[s.sample_id] == 2:
            issues.append(Issue(s.sample_id, "duplicate_id", "sample id occurs more than once"))
        issues.extend(_annotation_issues(s))
        issues.extend(_frame_issues(s, cv2, decode))
    issues.extend(Issue(o.target, "fix_" + o.status, o.message) for o in fix_outcomes)
    return issues
