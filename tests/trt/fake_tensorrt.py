"""A fake `tensorrt` module that exposes exactly one release's names and records every call.

The names come from `edge/trt_api/names.json`, extracted from the real bindings wheels, so code
that touches a name the release lacks (`execute_async_v2` on 10.x, `BuilderFlag.FP16` on 11.x)
raises `AttributeError` here as it would on the device. It is a test double for orchestration
only: it checks names and records calls; it does not build or run anything. The table is flat
(it cannot tell `BuilderFlag.INT8` from `DataType.INT8`), so behaviour that depends on which
class owns a name is decided by `TrtCaps` checks on unambiguous names instead.
"""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from edge.trt_api import NameTable, load_table

__all__ = ["Method", "FakeTensorRT", "make_fake", "Call"]


@dataclass(frozen=True)
class Method:
    """Behaviour of a method: calling the fake attribute records the call, then runs `fn`."""

    fn: Callable[..., Any]


@dataclass(frozen=True)
class Call:
    path: str
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


class _Node:
    """Any TensorRT object: class, instance, enum member or method."""

    def __init__(self, fake: FakeTensorRT, path: str) -> None:
        object.__setattr__(self, "_fake", fake)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_values", {})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._fake._attribute(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._fake._require(name, self._path)
        self._fake.calls.append(Call(self._path + "." + name + "=", (value,), {}))
        self._values[name] = value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._fake.calls.append(Call(self._path, args, kwargs))
        behaviour = self._fake.behaviour.get(self._path.rsplit(".", 1)[-1])
        if isinstance(behaviour, Method):
            return behaviour.fn(*args, **kwargs)
        return _Node(self._fake, self._path + "()")

    def __int__(self) -> int:
        return self._fake._enum_value(self._path)

    __index__ = __int__

    def __or__(self, other: Any) -> int:
        return int(self) | int(other)

    def __repr__(self) -> str:
        return f"<fake tensorrt {self._fake.table.release} {self._path}>"


class FakeTensorRT(types.ModuleType):
    """`import tensorrt` for one release, built from the committed name table."""

    def __init__(self, table: NameTable, behaviour: Optional[Dict[str, Any]] = None) -> None:
        super().__init__("tensorrt")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "behaviour", dict(behaviour or {}))
        object.__setattr__(self, "calls", [])
        object.__setattr__(self, "_nodes", {})
        object.__setattr__(self, "_enums", {})
        object.__setattr__(self, "_counter", itertools.count(0))
        object.__setattr__(self, "__version__", table.version)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        self._require(name, "tensorrt")
        if name in self.behaviour and not isinstance(self.behaviour[name], Method):
            return self.behaviour[name]
        if name not in self._nodes:
            self._nodes[name] = _Node(self, name)
        return self._nodes[name]

    # helpers used by nodes ------------------------------------------------------------------
    def _require(self, name: str, owner: str) -> None:
        if not self.table.has(name):
            raise AttributeError(
                f"TensorRT {self.table.version} has no name {name!r} (asked on {owner})"
            )

    def _attribute(self, node: _Node, name: str) -> Any:
        self._require(name, node._path)
        if name in node._values:
            return node._values[name]
        value = self.behaviour.get(name)
        if value is not None and not isinstance(value, Method):
            return value
        if name not in node._children:
            node._children[name] = _Node(self, node._path + "." + name)
        return node._children[name]

    def _enum_value(self, path: str) -> int:
        if path not in self._enums:
            self._enums[path] = next(self._counter)
        return self._enums[path]

    # assertions helpers ---------------------------------------------------------------------
    def called(self, name: str) -> List[Call]:
        """Calls (and attribute sets, as `name=`) whose last path element is `name`."""
        return [c for c in self.calls if c.name == name]

    def names_used(self) -> List[str]:
        return [c.path for c in self.calls]


def make_fake(release: str, behaviour: Optional[Dict[str, Any]] = None) -> FakeTensorRT:
    """A fake `tensorrt` for `release` ('8.5', '8.6', '10.3', '10.13', '10.16', '11.4')."""
    return FakeTensorRT(load_table(release), behaviour)
