"""MMEW reader (Ben et al., IEEE TPAMI 2022, doi:10.1109/TPAMI.2021.3067464).

90 fps, 1920x1080 frames under `Micro_Expression/<emotion>/<Filename>/`, where `<emotion>` is the
sheet's `Estimated Emotion` as written. meb relabels `others` as `repression` so MMEW lines up
with CASME II; that rename is the `EMOTION_RENAMES` table below, applied to `Sample.emotion`
only (folders keep the original name) and recorded in `Sample.notes`. `load_mmew` applies the
apex/offset fixes of `calib.fixes.mmew` unless `fixes=False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from calib.fixes import FIX_TABLES

from .cells import pick, require_columns, row_sample, to_text
from .fixing import LoadedSamples, load_fixed
from .frames import find_file
from .sample import Sample
from .tables import DATA_ROW_KEY, read_table

__all__ = [
    "DATASET",
    "SHEET_NAMES",
    "FRAME_DIR",
    "COLUMNS",
    "EMOTION_RENAMES",
    "parse_mmew",
    "load_mmew",
]

DATASET = "mmew"
SHEET_NAMES = ("MMEW_Micro_Exp.xlsx",)
FRAME_DIR = "Micro_Expression"

#: Sheet emotion -> emotion used for training (meb's MMEW loader).
EMOTION_RENAMES: Dict[str, str] = {"others": "repression"}

COLUMNS: Dict[str, Sequence[str]] = {
    "subject": ("Subject",),
    "clip": ("Filename",),
    "onset": ("OnsetFrame", "Onset Frame"),
    "apex": ("ApexFrame", "Apex Frame"),
    "offset": ("OffsetFrame", "Offset Frame"),
    "aus": ("Action Units",),
    "emotion": ("Estimated Emotion",),
}


def parse_mmew(
    rows: Sequence[Mapping[str, Any]],
    *,
    frames_root: Optional[Path] = None,
    renames: Optional[Mapping[str, str]] = None,
) -> List[Sample]:
    """Samples from MMEW sheet rows; `renames` None means `EMOTION_RENAMES` ({} disables it)."""
    renames = EMOTION_RENAMES if renames is None else renames
    require_columns(rows, COLUMNS, DATASET)
    samples = []
    for row in rows:
        subject, clip = to_text(pick(row, COLUMNS["subject"])), to_text(pick(row, COLUMNS["clip"]))
        if not subject and not clip:
            continue
        folder = to_text(pick(row, COLUMNS["emotion"]))
        frame_dir = frames_root / folder / clip if frames_root is not None else None
        sample = row_sample(
            row,
            COLUMNS,
            dataset=DATASET,
            subject=subject,
            clip=clip,
            frame_dir=frame_dir,
            emotion=folder,
        )
        if sample.emotion in renames:
            new = renames[sample.emotion]
            sample = sample.with_note(f"emotion {sample.emotion} -> {new}", emotion=new)
        samples.append(sample)
    return samples


def load_mmew(
    root: Path,
    *,
    sheet: Optional[Path] = None,
    renames: Optional[Mapping[str, str]] = None,
    fixes: bool = True,
) -> LoadedSamples:
    """Read MMEW micro-expressions from its root folder (frames in `root/Micro_Expression`).

    `fixes` applies `calib.fixes.mmew` (see `calib.datasets.fixing.load_fixed`).

    Raises:
        AnnotationFixMismatch: fixes are on and the sheet is not the release they were written
            for.
    """
    root = Path(root)
    sheet = Path(sheet) if sheet is not None else find_file(root, SHEET_NAMES, "MMEW")
    return load_fixed(
        read_table(sheet, index_key=DATA_ROW_KEY),
        lambda rows: parse_mmew(rows, frames_root=root / FRAME_DIR, renames=renames),
        dataset=DATASET,
        columns=COLUMNS,
        table=FIX_TABLES[DATASET],
        enabled=fixes,
        sheet=sheet,
    )
