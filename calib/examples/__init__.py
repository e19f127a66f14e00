"""Shipped bring-your-own examples: networks mer-edge has no architecture code for, delivered as
a plain ONNX file plus a spec file, exactly as a user would bring their own (docs/flow.md).

Their PyTorch definitions live here, on the host side, only so the files can be reproduced
(`python -m calib.train --arch ststnet`); deployment never imports them.
"""

from __future__ import annotations

__all__ = ["ststnet"]
