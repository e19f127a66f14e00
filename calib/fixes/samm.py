"""SAMM annotation fixes (Davison et al. 2018, doi:10.1109/TAFFC.2016.2573832).

Transcribed from tvaranka/meb (`meb/datasets/datasets.py` at 56a6f58). The sheet
(`SAMM_Micro_FACS_Codes_v2.xlsx`) has a text preamble; its header (`Subject`, `Filename`, ...) is
found by content and rows are 0-based data rows below it, blank rows counted, as meb re-indexes
them after moving the header. One offset is "a mistake in file" with the old value unknown
(checked: `ordered`), three `Apex Frame` cells are missing (checked: `missing`) and five
`Action Units` cells offer alternatives with "or" (checked: `contains:or`); meb resolved the
apexes and AUs from optical flow. meb's `Others -> others` is the reader's lower-casing.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES", "SOURCE", "SOURCE_SHEET", "SOURCE_SHA256"]

SOURCE = "tvaranka/meb meb/datasets/datasets.py@56a6f58"
SOURCE_SHEET: Optional[str] = "SAMM_Micro_FACS_Codes_v2.xlsx"
SOURCE_SHA256: Optional[str] = None

_APEXES = ((125, 1105), (132, 4945), (133, 5130))
_AUS = ((15, "R12 + R15"), (18, "R12 + R15"), (41, "L14"), (64, "R14"), (154, "R14A"))

FIXES: Tuple[Fix, ...] = (
    (
        Fix(
            row=56,
            field="offset",
            value=5739,
            check="ordered",
            reason="mistake in file (old value not recorded by meb)",
            source=SOURCE,
        ),
    )
    + tuple(
        Fix(
            row=row,
            field="apex",
            value=apex,
            check="missing",
            reason="apex missing in file; set from optical flow by meb",
            source=SOURCE,
        )
        for row, apex in _APEXES
    )
    + tuple(
        Fix(
            row=row,
            field="aus",
            value=aus,
            check="contains:or",
            reason="action units given as alternatives ('or'); chosen from optical flow by meb",
            source=SOURCE,
        )
        for row, aus in _AUS
    )
)
