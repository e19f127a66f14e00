"""One lint finding: which rule, which node, and why TensorRT would refuse it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

__all__ = ["Finding", "ERROR", "WARNING"]

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    node: Optional[str] = None
    op: Optional[str] = None
    releases: Tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"node {self.node!r} ({self.op}): " if self.node is not None else ""
        scope = " [TensorRT {}]".format(", ".join(self.releases)) if self.releases else ""
        return f"{self.severity}: {where}{self.message}{scope}"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "node": self.node,
            "op": self.op,
            "releases": list(self.releases),
        }
