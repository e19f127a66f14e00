"""Numeric frame ordering and spreadsheet discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib.datasets import frame_index, frame_paths
from calib.datasets.frames import find_file
from edge.errors import CalibrationError


def test_numeric_order_and_filtering(tmp_path: Path) -> None:
    for name in ("img10.jpg", "img2.jpg", "img1.PNG", "thumbs.db", "cover.jpg", "reg_img100.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "img3.jpg").mkdir()
    names = [p.name for p in frame_paths(tmp_path)]
    assert names == ["img1.PNG", "img2.jpg", "img10.jpg", "reg_img100.jpg", "cover.jpg"]
    assert sorted(frame_index(tmp_path)) == [1, 2, 10, 100]
    assert frame_paths(tmp_path / "absent") == []


def test_find_file_is_case_insensitive_and_one_level_deep(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "casme2-coding-20140508.XLSX").write_bytes(b"")
    names = ("CASME2-coding-20190701.xlsx", "CASME2-coding-20140508.xlsx")
    assert find_file(tmp_path, names, "CASME II").name == "casme2-coding-20140508.XLSX"
    with pytest.raises(CalibrationError, match="looked for: a.xlsx"):
        find_file(tmp_path, ("a.xlsx",), "X")
    with pytest.raises(CalibrationError, match="not a directory"):
        find_file(tmp_path / "nope", ("a.xlsx",), "X")
