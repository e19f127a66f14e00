"""CASME II reader (Yan et al., PLoS ONE 2014, doi:10.1371/journal.pone.0086041).

26 subjects filmed at 200 fps. Frames: raw `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg` or
cropped `Cropped/sub01/EP02_01f/reg_img46.jpg`. Sheet quirks handled here: `Subject` is an int
(1 -> `sub01`), two header cells are blank (`Unnamed: 2`, `Unnamed: 6`), AUs carry laterality
(`4+L10`), and some `ApexFrame` cells are empty or `/` (None when parsed; `load_casme2` fills
the known ones from `calib.fixes.casme2` unless `fixes=False`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from calib.fixes import FIX_TABLES
from edge.errors import CalibrationError

from .cells import parse_subject_clip_rows, to_int, to_text
from .fixing import LoadedSamples, load_fixed
from .frames import find_file
from .sample import Sample
from .tables import DATA_ROW_KEY, read_table

__all__ = ["DATASET", "SHEET_NAMES", "FRAME_DIRS", "COLUMNS", "parse_casme2", "load_casme2"]

DATASET = "casme2"

#: Spreadsheet names seen in the wild, preferred first.
SHEET_NAMES = (
    "CASME2-coding-20190701.xlsx",
    "CASME2-coding-updated.xlsx",
    "CASME2-coding-20140508.xlsx",
    "CASME2_label_Ver_2.xls",
)

#: Frame roots under the dataset root, per flavour, preferred first (MMNet, vendor, meb).
FRAME_DIRS = {
    "cropped": ("Cropped-updated/Cropped", "Cropped", "Cropped_original"),
    "raw": ("CASME2_RAW_selected",),
}

COLUMNS: Dict[str, Sequence[str]] = {
    "subject": ("Subject",),
    "clip": ("Filename",),
    "onset": ("OnsetFrame", "Onset Frame"),
    "apex": ("ApexFrame", "Apex Frame"),
    "offset": ("OffsetFrame", "Offset Frame"),
    "aus": ("Action Units", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


def _subject(value: Any) -> str:
    number = to_int(value)
    return f"sub{number:02d}" if number is not None else to_text(value)


def parse_casme2(
    rows: Sequence[Mapping[str, Any]], *, frames_root: Optional[Path] = None
) -> List[Sample]:
    """Samples from CASME II coding-sheet rows; frame dirs are `frames_root/subXX/<Filename>`.

    Raises:
        CalibrationError: a required column is absent.
    """
    return parse_subject_clip_rows(
        rows, COLUMNS, dataset=DATASET, subject_of=_subject, frames_root=frames_root
    )


def _frames_root(root: Path, frames: str) -> Path:
    if frames not in FRAME_DIRS:
        raise CalibrationError(
            "CASME II frames must be one of {}, not {!r}".format(", ".join(FRAME_DIRS), frames)
        )
    for name in FRAME_DIRS[frames]:
        if (root / name).is_dir():
            return root / name
    raise CalibrationError(
        "no CASME II {} frame folder in {}; looked for: {}".format(
            frames, root, ", ".join(FRAME_DIRS[frames])
        )
    )


def load_casme2(
    root: Path, *, frames: str = "cropped", sheet: Optional[Path] = None, fixes: bool = True
) -> LoadedSamples:
    """Read CASME II from its root folder (spreadsheet found by `SHEET_NAMES` unless given).

    `fixes` applies `calib.fixes.casme2` (see `calib.datasets.fixing.load_fixed`).

    Raises:
        AnnotationFixMismatch: fixes are on and the sheet is not the release they were written
            for.
    """
    root = Path(root)
    sheet = Path(sheet) if sheet is not None else find_file(root, SHEET_NAMES, "CASME II")
    frames_root = _frames_root(root, frames)
    return load_fixed(
        read_table(sheet, index_key=DATA_ROW_KEY),
        lambda rows: parse_casme2(rows, frames_root=frames_root),
        dataset=DATASET,
        columns=COLUMNS,
        table=FIX_TABLES[DATASET],
        enabled=fixes,
        sheet=sheet,
    )
