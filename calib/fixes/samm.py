"""SAMM annotation fixes (Davison et al. 2018, doi:10.1109/TAFFC.2016.2573832).

Known to be needed in `SAMM_Micro_FACS_Codes_v2.xlsx`: one wrong offset, three missing apexes
and five `Action Units` cells written with "or". Their sample ids and corrected values are not
in our sources, so none are declared; resolve them against the exact spreadsheet (record its
sha256 below). Until then `validate` reports them (`apex_missing`, `aus_ambiguous`,
`apex_out_of_range` or `frame_count`).
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES", "SOURCE_SHEET", "SOURCE_SHA256"]

SOURCE_SHEET: Optional[str] = "SAMM_Micro_FACS_Codes_v2.xlsx"
SOURCE_SHA256: Optional[str] = None
FIXES: Tuple[Fix, ...] = ()
