"""MMEW annotation fixes (Ben et al. 2022, doi:10.1109/TPAMI.2021.3067464).

Known to be needed: meb patches 16 rows of `MMEW_Micro_Exp.xlsx`. Their sample ids and values
are not in our sources, so none are declared; resolve them against the exact spreadsheet
(record its sha256 below). meb's `others -> repression` rename is not a fix but a relabel; it
lives in `calib.datasets.mmew.EMOTION_RENAMES`.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES", "SOURCE_SHEET", "SOURCE_SHA256"]

SOURCE_SHEET: Optional[str] = "MMEW_Micro_Exp.xlsx"
SOURCE_SHA256: Optional[str] = None
FIXES: Tuple[Fix, ...] = ()
