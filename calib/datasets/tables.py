"""Spreadsheet IO: the only module that touches openpyxl/xlrd (host extra, imported lazily).

Vendors ship xlsx (CASME II, SAMM, MMEW, CAS(ME)^3), legacy xls (`CASME2_label_Ver_2.xls`) and
users bring CSV. Rows come back as dicts keyed by header text; blank header cells are named
`Unnamed: <i>` as pandas does, since CASME II leaves two columns untitled. SAMM puts a text
preamble above its header (row index 12), so the header row is found by its `Subject` and
`Filename` cells unless `header_row` is given.

Data rows are numbered as annotation fixes locate them (`DATA_ROW_KEY`): 0 is the row right
below the header, and blank rows count although they yield no dict, which is what
`pandas.read_excel` (1.3+, where blank rows are kept) gives as `df.loc[n]` for a sheet whose
header is its first row.
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Union

from edge.errors import CalibrationError, MissingDependencyError

__all__ = ["read_table", "HEADER_KEYS", "HEADER_SEARCH_ROWS", "DATA_ROW_KEY"]

#: Cells that mark the header row of the vendor sheets.
HEADER_KEYS = ("Subject", "Filename")
#: How far down the header row is searched for (SAMM's preamble is 12 rows).
HEADER_SEARCH_ROWS = 50

#: The key the dataset loaders ask `read_table` to store each row's data-row index under.
DATA_ROW_KEY = "__data_row__"

_INSTALL = "pip install 'mer-edge[host]'"


def _import(module: str, path: Path) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading {path} needs {module} ({exc}); install it with: {_INSTALL}"
        ) from exc


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _xlsx_rows(path: Path, sheet: Optional[str]) -> List[List[Any]]:
    openpyxl = _import("openpyxl", path)
    book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise CalibrationError(
                "{} has no sheet {!r}; sheets: {}".format(path, sheet, ", ".join(book.sheetnames))
            )
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        return [list(row) for row in worksheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _xls_rows(path: Path, sheet: Optional[str]) -> List[List[Any]]:
    xlrd = _import("xlrd", path)
    book = xlrd.open_workbook(str(path))
    names = book.sheet_names()
    if sheet is not None and sheet not in names:
        raise CalibrationError(
            "{} has no sheet {!r}; sheets: {}".format(path, sheet, ", ".join(names))
        )
    worksheet = book.sheet_by_name(sheet) if sheet is not None else book.sheet_by_index(0)
    empty = xlrd.XL_CELL_EMPTY
    return [
        [None if c.ctype == empty else c.value for c in worksheet.row(i)]
        for i in range(worksheet.nrows)
    ]


def _csv_rows(path: Path) -> List[List[Any]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [list(row) for row in csv.reader(handle)]


def _find_header(rows: List[List[Any]], keys: Sequence[str]) -> int:
    wanted = {k.lower() for k in keys}
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        cells = {str(c).strip().lower() for c in row if c is not None}
        if wanted <= cells:
            return i
    return 0


def _names(header: List[Any]) -> List[str]:
    names: List[str] = []
    for i, cell in enumerate(header):
        name = str(cell).strip() if cell is not None else ""
        name = name or f"Unnamed: {i}"
        base, n = name, 1
        while name in names:
            name = f"{base}.{n}"
            n += 1
        names.append(name)
    return names


def read_table(
    path: Union[str, Path],
    sheet: Optional[str] = None,
    header_row: Optional[int] = None,
    *,
    header_keys: Sequence[str] = HEADER_KEYS,
    row_key: Optional[str] = None,
    index_key: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Read an xlsx, xls or csv file into one dict per non-empty data row.

    Args:
        path: the spreadsheet.
        sheet: sheet name (xlsx/xls); None means the first sheet.
        header_row: 0-based index of the header row; None means the first row (within the first
            `HEADER_SEARCH_ROWS`) containing all `header_keys`, else row 0.
        header_keys: cells that identify the header row when searching.
        row_key: if given, each dict also maps this key to the row's 1-based line number in
            the file, for error messages that survive skipped blank rows.
        index_key: if given, each dict also maps this key to the row's 0-based data-row index:
            0 is the row right below the header, blank rows counted (see the module docstring).

    Returns:
        Rows as dicts; strings stripped, empty cells None, integral floats as int.

    Raises:
        CalibrationError: missing file, unknown format or sheet, header row out of range.
        MissingDependencyError: openpyxl (xlsx) or xlrd (xls) is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"spreadsheet {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raw = _xlsx_rows(path, sheet)
    elif suffix == ".xls":
        raw = _xls_rows(path, sheet)
    elif suffix == ".csv":
        raw = _csv_rows(path)
    else:
        raise CalibrationError(f"{path}: unsupported table format (use .xlsx, .xls or .csv)")
    rows = [[_clean(c) for c in row] for row in raw]
    if not rows:
        return []
    start = _find_header(rows, header_keys) if header_row is None else header_row
    if not 0 <= start < len(rows):
        raise CalibrationError(f"{path}: header row {start} is out of range")
    names = _names(rows[start])
    table: List[Dict[str, Any]] = []
    for line, row in enumerate(rows[start + 1 :], start=start + 2):
        if all(c is None for c in row):
            continue
        cells = list(row[: len(names)]) + [None] * (len(names) - len(row))
        record = dict(zip(names, cells))
        if row_key is not None:
            record[row_key] = line
        if index_key is not None:
            record[index_key] = line - start - 2
        table.append(record)
    return table
