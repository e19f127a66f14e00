"""CAS(ME)^3 annotation fixes (Li et al. 2023, doi:10.1109/TPAMI.2022.3174895).

Part A: transcribed from tvaranka/meb (`meb/datasets/datasets.py` at 56a6f58), rows of sheet
`label` of `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`, 0-based data rows below the header (the
sheet's first row), blank rows counted; meb renames repeated filenames without reordering rows,
and so does our reader. meb records no old values, so every check is `ordered` (the frames of
the fixed row are in order afterwards), a weak check. Onsets are fixed before the sample is
built, so the clip name (`<letter>_<onset>`) carries the corrected onset.

Part C: no cell fixes. meb replaces the full-width comma in one AU cell (row 16), which our
reader already splits on (`calib.datasets.cells.split_aus`), and fills the missing apex with the
midpoint, which the reader does too (`with_midpoint_apex`). `Others` vs `others` is lower-cased
by the reader.

Not applied: the `exception/` folder listing bad frames and occlusions (loaders keep 816 or 854
Part A samples). Its file format is not in our sources, so it is not read.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES_A", "FIXES_C", "SOURCE", "SOURCE_SHA256_A", "SOURCE_SHA256_C"]

SOURCE = "tvaranka/meb meb/datasets/datasets.py@56a6f58"
SOURCE_SHA256_A: Optional[str] = None
SOURCE_SHA256_C: Optional[str] = None

#: (row, field, new value), in meb's order.
_PART_A = (
    (128, "apex", 160),
    (749, "onset", 2647),
    (708, "offset", 34),
    (796, "offset", 1845),
    (798, "offset", 2403),
    (750, "onset", 1),
    (750, "apex", 1),
)

FIXES_A: Tuple[Fix, ...] = tuple(
    Fix(
        row=row,
        field=field,
        value=value,
        check="ordered",
        reason=f"wrong {field} in file (old value not recorded by meb)",
        source=SOURCE,
    )
    for row, field, value in _PART_A
)
FIXES_C: Tuple[Fix, ...] = ()
