"""MMEW annotation fixes (Ben et al. 2022, doi:10.1109/TPAMI.2021.3067464).

Transcribed from tvaranka/meb (`meb/datasets/datasets.py` at 56a6f58): 16 rows of
`MMEW_Micro_Exp.xlsx` have an "incorrect apex and offset". Rows are 0-based data rows below the
header (the sheet's first row), blank rows counted. meb does not record the old values, so the
only check is `ordered` (onset <= apex <= offset after the fix): the weakest check short of
none; a sheet whose rows moved passes it unless a moved row's onset contradicts the new apex.
meb's `others -> repression` rename is a relabel, not a fix; it lives in
`calib.datasets.mmew.EMOTION_RENAMES`.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES", "SOURCE", "SOURCE_SHEET", "SOURCE_SHA256"]

SOURCE = "tvaranka/meb meb/datasets/datasets.py@56a6f58"
SOURCE_SHEET: Optional[str] = "MMEW_Micro_Exp.xlsx"
SOURCE_SHA256: Optional[str] = None

_ROWS = (33, 35, 36, 37, 38, 39, 40, 41, 42, 142, 143, 145, 146, 148, 154, 156)
_APEXES = (40, 15, 46, 20, 25, 20, 23, 28, 32, 56, 32, 27, 22, 29, 31, 38)
_OFFSETS = (75, 54, 59, 98, 80, 93, 58, 61, 68, 88, 80, 85, 61, 108, 72, 106)
_REASON = "incorrect apex and offset in file (old values not recorded by meb)"

FIXES: Tuple[Fix, ...] = tuple(
    fix
    for row, apex, offset in zip(_ROWS, _APEXES, _OFFSETS)
    for fix in (
        Fix(row=row, field="apex", value=apex, check="ordered", reason=_REASON, source=SOURCE),
        Fix(row=row, field="offset", value=offset, check="ordered", reason=_REASON, source=SOURCE),
    )
)
