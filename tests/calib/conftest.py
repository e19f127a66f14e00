"""Builders for synthetic micro-expression dataset trees (no real data may be committed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence

import numpy as np
import pytest


def _frame(number: int, gray: bool) -> np.ndarray:
    rng = np.random.default_rng(number)
    shape = (16, 16) if gray else (16, 16, 3)
    return rng.integers(0, 255, size=shape, dtype=np.uint8)


@pytest.fixture
def write_frames() -> Callable[..., List[Path]]:
    """write_frames(folder, numbers, pattern="img{}.jpg", gray=False) -> paths written."""
    cv2 = pytest.importorskip("cv2")

    def write(
        folder: Path, numbers: Iterable[int], pattern: str = "img{}.jpg", gray: bool = False
    ) -> List[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for n in numbers:
            path = folder / pattern.format(n)
            assert cv2.imwrite(str(path), _frame(n, gray))
            paths.append(path)
        return paths

    return write


@pytest.fixture
def write_xlsx() -> Callable[..., Path]:
    """write_xlsx(path, rows, sheet=None, extra_sheets=()) with openpyxl; rows are lists."""
    openpyxl = pytest.importorskip("openpyxl")

    def write(
        path: Path,
        rows: Sequence[Sequence[Any]],
        sheet: Optional[str] = None,
        extra_sheets: Sequence[str] = (),
    ) -> Path:
        book = openpyxl.Workbook()
        for name in extra_sheets:
            book.create_sheet(name)
        worksheet = book.active if sheet is None else book.create_sheet(sheet)
        for row in rows:
            worksheet.append(list(row))
        path.parent.mkdir(parents=True, exist_ok=True)
        book.save(str(path))
        return path

    return write
