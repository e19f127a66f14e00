"""CASME II annotation fixes (Yan et al. 2014, doi:10.1371/journal.pone.0086041).

Known to be needed: meb patches 21 rows of the coding sheet, chiefly missing `ApexFrame` cells.
Their sample ids and values are not in our sources, so none are declared; resolve meb's
row-indexed patches against the exact spreadsheet (record its sha256 below) before adding any.
Until then `validate` reports those samples as `apex_missing`.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES", "SOURCE_SHEET", "SOURCE_SHA256"]

SOURCE_SHEET: Optional[str] = None
SOURCE_SHA256: Optional[str] = None
FIXES: Tuple[Fix, ...] = ()
