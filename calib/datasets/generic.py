"""A user's own clips: a folder of clips plus a CSV of labels, for data outside the vendors.

Each clip is a sub-folder of numbered frames (numbers as in the file names) or a video file
(frame numbers are 0-based indices). CSV columns: `clip`, `onset`, `apex`, `label`, optional
`subject` (default `unknown`, which makes LOSO a single fold) and `offset` (default: the last
frame number of a frame folder, None for a video). Malformed input fails loudly, naming the file
and the CSV line, since a silently skipped row would shift calibration statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from edge.errors import CalibrationError

from .cells import to_text
from .frames import frame_number as _frame_number
from .frames import frame_paths
from .sample import Sample
from .tables import read_table

__all__ = [
    "DATASET",
    "LABELS_FILE",
    "REQUIRED_COLUMNS",
    "VIDEO_SUFFIXES",
    "parse_generic",
    "load_generic",
]

DATASET = "generic"
LABELS_FILE = "labels.csv"
REQUIRED_COLUMNS = ("clip", "onset", "apex", "label")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
_LINE = "_line"  # read_table's line-number key; absent when rows come from elsewhere


def _frame(value: Any, column: str, where: str, required: bool) -> Optional[int]:
    text = to_text(value)
    if not text and not required:
        return None
    try:
        return int(text)
    except ValueError:
        raise CalibrationError(
            f"{where}: {column} must be an integer frame number, got {text!r}"
        ) from None


def _clip_path(root: Path, clip: str) -> Optional[Path]:
    path = root / clip
    if path.is_dir() or (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES):
        return path
    for suffix in VIDEO_SUFFIXES:
        if path.with_name(path.name + suffix).is_file():
            return path.with_name(path.name + suffix)
    return None


def parse_generic(
    rows: Sequence[Mapping[str, Any]], root: Path, *, source: str = LABELS_FILE
) -> List[Sample]:
    """Samples from label rows, with clips resolved under `root`.

    Raises:
        CalibrationError: a required column is missing, a frame is not an integer, a label is
            empty, or a clip is neither a folder nor a video under `root`. Messages name
            `source` and the CSV line (the header is line 1).
    """
    root = Path(root)
    rows = [{str(k).strip().lower(): v for k, v in row.items()} for row in rows]
    if not rows:
        raise CalibrationError(f"{source}: no label rows")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise CalibrationError(
            "{}: missing column(s) {}; required: {} (optional: subject, offset)".format(
                source, ", ".join(missing), ", ".join(REQUIRED_COLUMNS)
            )
        )
    samples = []
    for position, row in enumerate(rows, start=2):
        where = f"{source} line {row.get(_LINE, position)}"
        clip, label = to_text(row["clip"]), to_text(row["label"]).lower()
        if not clip or not label:
            raise CalibrationError(f"{where}: clip and label must not be empty")
        path = _clip_path(root, clip)
        if path is None:
            raise CalibrationError(
                "{}: unknown clip {!r}: no folder or video ({}) of that name in {}".format(
                    where, clip, "/".join(VIDEO_SUFFIXES), root
                )
            )
        offset = _frame(row.get("offset"), "offset", where, required=False)
        if offset is None and path.is_dir():
            numbers = [_frame_number(p) for p in frame_paths(path)]
            offset = max((n for n in numbers if n is not None), default=None)
        samples.append(
            Sample(
                dataset=DATASET,
                subject=to_text(row.get("subject")) or "unknown",
                clip=clip,
                onset=_frame(row["onset"], "onset", where, required=True),
                apex=_frame(row["apex"], "apex", where, required=True),
                offset=offset,
                emotion=label,
                frame_dir=path,
            )
        )
    return samples


def load_generic(root: Path, *, labels: Optional[Path] = None) -> List[Sample]:
    """Read clips under `root` labelled by `labels` (default `root/labels.csv`)."""
    root = Path(root)
    labels = Path(labels) if labels is not None else root / LABELS_FILE
    rows: List[Dict[str, Any]] = read_table(labels, header_row=0, row_key=_LINE)
    return parse_generic(rows, root, source=str(labels))
