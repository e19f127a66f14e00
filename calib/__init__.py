"""Calibration and evaluation data: real face crops now; dataset readers and the synthetic
micro-expression generator build on this package."""

from __future__ import annotations

__all__ = ["faces"]
