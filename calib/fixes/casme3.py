"""CAS(ME)^3 annotation fixes (Li et al. 2023, doi:10.1109/TPAMI.2022.3174895).

No cell fixes are known from our sources. Known quirks are handled by the reader instead:
`Others` vs `others` (lower-cased), the full-width comma in one Part C AU cell (split), Part C's
missing apex (midpoint rule) and repeated Part A filenames (clip = `<letter>_<onset>`). The
`exception/` folder of bad frames and occlusions (loaders keep 816 or 854 Part A samples) is a
sample filter, not a fix, and is not applied here.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .base import Fix

__all__ = ["FIXES_A", "FIXES_C", "SOURCE_SHA256_A", "SOURCE_SHA256_C"]

SOURCE_SHA256_A: Optional[str] = None
SOURCE_SHA256_C: Optional[str] = None
FIXES_A: Tuple[Fix, ...] = ()
FIXES_C: Tuple[Fix, ...] = ()
