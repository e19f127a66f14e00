"""Declarative annotation fixes per dataset, checked against the sheet and applied by the readers.

Importing this package never imports `calib.datasets` (the readers import the tables).
"""

from __future__ import annotations

from typing import Dict, Tuple

from . import casme2, casme3, mmew, samm
from .base import (
    CHECKS,
    FIXABLE_FIELDS,
    OUTCOMES,
    Fix,
    FixOutcome,
    apply_fixes,
    check_table,
    fixes_version,
)

__all__ = [
    "Fix",
    "FixOutcome",
    "FIXABLE_FIELDS",
    "CHECKS",
    "OUTCOMES",
    "apply_fixes",
    "check_table",
    "fixes_version",
    "FIX_TABLES",
]

#: Dataset name (as in `Sample.dataset`) -> its fix table.
FIX_TABLES: Dict[str, Tuple[Fix, ...]] = {
    "casme2": casme2.FIXES,
    "samm": samm.FIXES,
    "mmew": mmew.FIXES,
    "casme3a": casme3.FIXES_A,
    "casme3c": casme3.FIXES_C,
}
