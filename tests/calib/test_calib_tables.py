"""read_table: formats, header detection, unnamed columns and dependency errors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from calib.datasets.tables import read_table
from edge.errors import CalibrationError, MissingDependencyError


def test_csv_rows_are_stripped_and_blank_rows_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a, b\n 1 ,x\n,\n2,\n", encoding="utf-8")
    assert read_table(path) == [{"a": "1", "b": "x"}, {"a": "2", "b": None}]


def test_xlsx_header_found_below_preamble(tmp_path: Path, write_xlsx) -> None:
    preamble = [["SAMM micro-movement codes"]] + [[f"note {i}"] for i in range(11)]
    rows = preamble + [["Subject", "Filename", "Onset Frame"], [6, "006_1_2", 5562]]
    path = write_xlsx(tmp_path / "s.xlsx", rows)
    assert read_table(path) == [{"Subject": 6, "Filename": "006_1_2", "Onset Frame": 5562}]
    # An explicit header row wins over detection.
    assert read_table(path, header_row=12)[0]["Filename"] == "006_1_2"


def test_data_row_index_counts_blank_rows_below_the_header(tmp_path: Path, write_xlsx) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n,\n2,y\n", encoding="utf-8")
    assert [r["_i"] for r in read_table(path, index_key="_i")] == [0, 2]
    preamble = [["title"], [None], ["note"]]
    rows = preamble + [["Subject", "Filename"], [6, "a"], [None, None], [None, None], [7, "b"]]
    table = read_table(write_xlsx(tmp_path / "s.xlsx", rows), index_key="_i")
    assert [(r["Filename"], r["_i"]) for r in table] == [("a", 0), ("b", 3)]


def test_unnamed_and_duplicate_headers(tmp_path: Path, write_xlsx) -> None:
    path = write_xlsx(
        tmp_path / "u.xlsx", [["Subject", None, "Filename", "x", "x"], [1, 2, 3, 4, 5]]
    )
    assert read_table(path) == [{"Subject": 1, "Unnamed: 1": 2, "Filename": 3, "x": 4, "x.1": 5}]


def test_named_sheet_and_missing_sheet(tmp_path: Path, write_xlsx) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", [["sub", "count"], [1, 2]], sheet="mockCrimeME")
    assert read_table(path, "mockCrimeME") == [{"sub": 1, "count": 2}]
    with pytest.raises(CalibrationError, match="no sheet 'label'.*mockCrimeME"):
        read_table(path, "label")


@pytest.mark.parametrize(
    ("name", "match"), [("missing.xlsx", "does not exist"), ("t.txt", "unsupported")]
)
def test_bad_paths(tmp_path: Path, name: str, match: str) -> None:
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(CalibrationError, match=match):
        read_table(tmp_path / name)


def test_header_row_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    with pytest.raises(CalibrationError, match="out of range"):
        read_table(path, header_row=5)


def test_missing_library_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.xlsx"
    path.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(MissingDependencyError, match=r"mer-edge\[host\]"):
        read_table(path)


def test_xls_goes_through_xlrd(tmp_path: Path, monkeypatch) -> None:
    """xlwt (to write a real .xls) is unmaintained, so a stand-in xlrd checks our glue."""

    class Cell:
        def __init__(self, value, ctype=2):
            self.value, self.ctype = value, ctype

    sheet = types.SimpleNamespace(
        nrows=2,
        row=lambda i: [
            [Cell("Subject", 1), Cell("", 0), Cell("Filename", 1)],
            [Cell(1.0), Cell("", 0), Cell("EP02_01f", 1)],
        ][i],
    )
    book = types.SimpleNamespace(
        sheet_names=lambda: ["Sheet1"],
        sheet_by_index=lambda i: sheet,
        sheet_by_name=lambda n: sheet,
    )
    fake = types.SimpleNamespace(XL_CELL_EMPTY=0, open_workbook=lambda p: book)
    monkeypatch.setitem(sys.modules, "xlrd", fake)
    path = tmp_path / "CASME2_label_Ver_2.xls"
    path.write_bytes(b"")
    assert read_table(path) == [{"Subject": 1, "Unnamed: 1": None, "Filename": "EP02_01f"}]
