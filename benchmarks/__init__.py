"""Latency and accuracy measurement over any Runner, and the project's own benchmarks."""

from __future__ import annotations

__all__ = ["latency"]
