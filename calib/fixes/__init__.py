"""Declarative annotation fixes per dataset, applied and checked by `apply_fixes`."""

from __future__ import annotations

from typing import Dict, Tuple

from . import casme2, casme3, mmew, samm
from .base import FIXABLE_FIELDS, Fix, apply_fixes, fixes_version

__all__ = ["Fix", "FIXABLE_FIELDS", "apply_fixes", "fixes_version", "FIX_TABLES"]

#: Dataset name (as in `Sample.dataset`) -> its fix table.
FIX_TABLES: Dict[str, Tuple[Fix, ...]] = {
    "casme2": casme2.FIXES,
    "samm": samm.FIXES,
    "mmew": mmew.FIXES,
    "casme3a": casme3.FIXES_A,
    "casme3c": casme3.FIXES_C,
}
