"""Calibration and evaluation data: micro-expression dataset readers (CASME II, SAMM, MMEW,
CAS(ME)^3, a generic folder layout), declarative annotation fixes, label mappings, LOSO splits,
and real face crops from packaged photographs."""

from __future__ import annotations

__all__ = ["datasets", "faces", "fixes"]
