"""CASME II annotation fixes (Yan et al. 2014, doi:10.1371/journal.pone.0086041).

Transcribed from tvaranka/meb (`meb/datasets/datasets.py` at 56a6f58), which patches the coding
sheet by row. Rows are 0-based data rows below the header (the header is the sheet's first row),
blank rows counted; see `calib.fixes.base`. The sheet release meb read is not named in our
sources, so no file name or sha256 is pinned: the checks decide. 21 `ApexFrame` cells are
missing (checked: `missing`) and get meb's optical-flow apex; row 60's offset is "a mistake in
file" with the old value unknown (checked: `ordered`, and row 60 is also one of the
apex-missing rows, whose `missing` check locates it).
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES", "SOURCE", "SOURCE_SHEET", "SOURCE_SHA256"]

SOURCE = "tvaranka/meb meb/datasets/datasets.py@56a6f58"
SOURCE_SHEET: Optional[str] = None
SOURCE_SHA256: Optional[str] = None

_APEX_ROWS = (29, 35, 43, 45, 51, 53, 60, 117, 118, 126, 136, 147, 155, 168, 170, 177, 202, 203,
              234, 237, 238)  # fmt: skip
_APEX_VALUES = (279, 68, 77, 81, 166, 100, 78, 187, 89, 80, 88, 134, 231, 53, 329, 111, 91, 103,
                98, 153, 98)  # fmt: skip

FIXES: Tuple[Fix, ...] = (
    Fix(
        row=60,
        field="offset",
        value=91,
        check="ordered",
        reason="mistake in file (old value not recorded by meb)",
        source=SOURCE,
    ),
) + tuple(
    Fix(
        row=row,
        field="apex",
        value=apex,
        check="missing",
        reason="apex missing in file; set from optical flow by meb",
        source=SOURCE,
    )
    for row, apex in zip(_APEX_ROWS, _APEX_VALUES)
)
