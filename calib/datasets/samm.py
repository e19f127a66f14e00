"""SAMM reader (Davison et al., IEEE TAFFC 2018, doi:10.1109/TAFFC.2016.2573832).

Grey-scale 200 fps frames `SAMM/006/006_1_2/006_05562.jpg` (replicate to 3 channels before a
model). The coding sheet has a text preamble; its header (row index 12) is found by content.
`Subject` is an int (6 -> `006`). Known sheet errors (an offset, missing apexes, AU cells with
"or") are fixed by `load_samm` from `calib.fixes.samm` unless `fixes=False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from calib.fixes import FIX_TABLES

from .cells import parse_subject_clip_rows, to_int, to_text
from .fixing import LoadedSamples, load_fixed
from .frames import find_file
from .sample import Sample
from .tables import DATA_ROW_KEY, read_table

__all__ = ["DATASET", "SHEET_NAMES", "FRAME_DIRS", "COLUMNS", "parse_samm", "load_samm"]

DATASET = "samm"

#: Spreadsheet names; the dated variant's suffix is unknown, so only the v2 name is listed.
SHEET_NAMES = ("SAMM_Micro_FACS_Codes_v2.xlsx",)

#: Frame roots under the dataset root, preferred first ("." is the root itself).
FRAME_DIRS = ("SAMM", ".")

COLUMNS: Dict[str, Sequence[str]] = {
    "subject": ("Subject",),
    "clip": ("Filename",),
    "onset": ("Onset Frame", "OnsetFrame"),
    "apex": ("Apex Frame", "ApexFrame"),
    "offset": ("Offset Frame", "OffsetFrame"),
    "aus": ("Action Units",),
    "emotion": ("Estimated Emotion",),
}


def _subject(value: Any) -> str:
    number = to_int(value)
    return f"{number:03d}" if number is not None else to_text(value)


def parse_samm(
    rows: Sequence[Mapping[str, Any]], *, frames_root: Optional[Path] = None
) -> List[Sample]:
    """Samples from SAMM sheet rows; frame dirs are `frames_root/<006>/<Filename>`."""
    return parse_subject_clip_rows(
        rows, COLUMNS, dataset=DATASET, subject_of=_subject, frames_root=frames_root
    )


def load_samm(root: Path, *, sheet: Optional[Path] = None, fixes: bool = True) -> LoadedSamples:
    """Read SAMM from its root folder (frames in `root/SAMM/` or directly in `root`).

    `fixes` applies `calib.fixes.samm` (see `calib.datasets.fixing.load_fixed`).

    Raises:
        AnnotationFixMismatch: fixes are on and the sheet is not the release they were written
            for.
    """
    root = Path(root)
    sheet = Path(sheet) if sheet is not None else find_file(root, SHEET_NAMES, "SAMM")
    frames_root = next((root / d for d in FRAME_DIRS if (root / d).is_dir()), root)
    return load_fixed(
        read_table(sheet, index_key=DATA_ROW_KEY),
        lambda rows: parse_samm(rows, frames_root=frames_root),
        dataset=DATASET,
        columns=COLUMNS,
        table=FIX_TABLES[DATASET],
        enabled=fixes,
        sheet=sheet,
    )
