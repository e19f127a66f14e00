"""The loaders apply the shipped fix tables to full-size sheets in the vendors' formats.

The real sheets cannot ship, so each test writes one with as many rows as the real one, filler
rows everywhere and, at the rows the table fixes, the errors meb describes (missing apex, 'or'
in an AU cell, ...). A "drifted" sheet is the same with one of those cells different, or rows
moved, as a different release would have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

from calib.datasets import (
    load_casme2,
    load_casme3,
    load_casme3_a,
    load_mmew,
    load_samm,
    read_table,
    validate,
)
from calib.datasets.tables import DATA_ROW_KEY
from calib.fixes import FIX_TABLES
from edge.errors import AnnotationFixMismatch, CalibrationError

MEB = "tvaranka/meb meb/datasets/datasets.py@56a6f58"

CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion"]  # fmt: skip
CASME2_MISSING_APEX = sorted(f.row for f in FIX_TABLES["casme2"] if f.field == "apex")


def _casme2_rows(n: int = 255) -> List[List[Any]]:
    rows = [[1 + i // 10, f"EP{i:03d}", f"EP{i:03d}", 10, 20, 100, 1, "4", "happiness"]
            for i in range(n)]  # fmt: skip
    for i, row in enumerate(CASME2_MISSING_APEX):
        rows[row][4] = "/" if i % 2 else None
    rows[60][5] = 50  # the "mistake in file"; any value, the fix table does not know it
    return rows


def _casme2_root(tmp_path: Path, write_xlsx, rows: List[List[Any]]) -> Path:
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", [CASME2_HEADER] + rows)
    (tmp_path / "Cropped").mkdir()
    return tmp_path


def _kinds(issues) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for issue in issues:
        counts[issue.kind] = counts.get(issue.kind, 0) + 1
    return counts


def test_casme2_missing_apexes_filled(tmp_path: Path, write_xlsx) -> None:
    samples = load_casme2(_casme2_root(tmp_path, write_xlsx, _casme2_rows()))
    assert len(samples) == 255
    assert [s.sheet_row for s in samples] == list(range(255))
    assert (samples[29].apex, samples[238].apex) == (279, 98)
    assert (samples[60].apex, samples[60].offset) == (78, 91)
    assert samples[28].apex == 20 and samples[28].notes == ()
    assert samples[29].notes == (f"fix apex: None -> 279 (row 29; {MEB})",)
    assert samples[60].notes == (
        f"fix offset: 50 -> 91 (row 60; {MEB})",
        f"fix apex: None -> 78 (row 60; {MEB})",
    )
    assert [o.status for o in samples.fix_outcomes] == ["applied"] * 22
    assert samples.fix_outcomes[0].target == "casme2/sub03/EP029"
    kinds = _kinds(validate(samples, decode=False))
    assert kinds["fix_applied"] == 22 and "apex_missing" not in kinds


def test_casme2_drifted_sheet_is_refused_then_reported(tmp_path: Path, write_xlsx) -> None:
    rows = _casme2_rows()
    rows[29][4] = 12  # a release where row 29 has an apex: the fix must not overwrite it
    root = _casme2_root(tmp_path, write_xlsx, rows)
    with pytest.raises(AnnotationFixMismatch) as error:
        load_casme2(root)
    message = str(error.value)
    assert "CASME2-coding-20140508.xlsx: 1 of 22 casme2 annotation fixes" in message
    assert "row 29: expected apex to be missing but the sheet says 12" in message
    assert "fixes=False" in message and "\n" not in message

    samples = load_casme2(root, fixes=False)
    assert (samples[29].apex, samples[35].apex, samples[60].offset) == (12, None, 50)
    assert all(s.notes == () for s in samples)
    issues = [i for i in validate(samples, decode=False) if i.kind.startswith("fix_")]
    assert _kinds(issues) == {"fix_disabled": 21, "fix_drift": 1}
    drift = next(i for i in issues if i.kind == "fix_drift")
    assert drift.sample_id == "casme2/sub03/EP029" and MEB in drift.message


def test_casme2_shifted_release_is_refused(tmp_path: Path, write_xlsx) -> None:
    rows = _casme2_rows()
    rows.insert(0, [1, "EP999", "EP999", 1, 2, 3, 1, "4", "happiness"])  # every row moves down
    # 117/118, 202/203 and 237/238 are neighbours, so 3 apexes still look missing: 18 fail.
    with pytest.raises(AnnotationFixMismatch, match="18 of 22 casme2 annotation fixes"):
        load_casme2(_casme2_root(tmp_path, write_xlsx, rows))


def test_short_sheet_is_refused(tmp_path: Path, write_xlsx) -> None:
    root = _casme2_root(tmp_path, write_xlsx, _casme2_rows()[:100])
    with pytest.raises(AnnotationFixMismatch, match=r"row 117: the row is past the end \(100"):
        load_casme2(root)


def test_blank_rows_count_in_the_row_index(tmp_path: Path, write_xlsx) -> None:
    rows = _casme2_rows(256)
    del rows[10]
    rows.insert(10, [None] * 9)  # a blank row keeps its index, as pandas.read_excel keeps it
    samples = load_casme2(_casme2_root(tmp_path, write_xlsx, rows))
    assert len(samples) == 255 and samples[9].sheet_row == 9 and samples[10].sheet_row == 11
    assert samples[28].sheet_row == 29 and samples[28].apex == 279


SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
               "Offset Frame", "Duration", "Type", "Action Units", "Notes", "Estimated Emotion",
               "Objective Classes"]  # fmt: skip
SAMM_PREAMBLE = [["SAMM Micro-Movement FACS Codes"], [None], ["Coded by two FACS coders"]] + [
    [f"preamble line {i}"] for i in range(9)
]


def _samm_sheet(tmp_path: Path, write_xlsx, aus: Dict[int, str]) -> Path:
    rows: List[List[Any]] = []
    for i in range(159):
        subject = 6 + i // 20
        rows.append([subject, f"{subject:03d}_{i}", 1, 1000, 1100, 6000, 50, "Micro", "R12",
                     None, "Others", 7])  # fmt: skip
    for row in (125, 132, 133):
        rows[row][4] = None
    for row, cell in aus.items():
        rows[row][8] = cell
    assert len(SAMM_PREAMBLE) == 12
    return write_xlsx(
        tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", SAMM_PREAMBLE + [SAMM_HEADER] + rows
    )


SAMM_OR = {15: "R12 or R15", 18: "12 or 15", 41: "L14 or R14", 64: "14 OR 15", 154: "R14A or 14"}


def test_samm_rows_are_counted_below_the_preamble_header(tmp_path: Path, write_xlsx) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    path = _samm_sheet(tmp_path, write_xlsx, SAMM_OR)
    # Data row 15 is spreadsheet row 12 (preamble) + 1 (header) + 15 + 1 (1-based) = 29.
    assert openpyxl.load_workbook(path).active.cell(row=29, column=9).value == "R12 or R15"
    rows = read_table(path, index_key=DATA_ROW_KEY)
    assert rows[0][DATA_ROW_KEY] == 0 and rows[15]["Action Units"] == "R12 or R15"


def test_samm_or_cells_apexes_and_offset(tmp_path: Path, write_xlsx) -> None:
    _samm_sheet(tmp_path, write_xlsx, SAMM_OR)
    samples = load_samm(tmp_path)
    assert [samples[r].aus for r in (15, 18, 41, 64, 154)] == [
        ("R12", "R15"), ("R12", "R15"), ("L14",), ("R14",), ("R14A",)
    ]  # fmt: skip
    assert samples[16].aus == ("R12",)
    assert [samples[r].apex for r in (125, 132, 133)] == [1105, 4945, 5130]
    assert samples[56].offset == 5739 and samples[55].offset == 6000
    assert samples[15].notes == (f"fix aus: 'R12 or R15' -> 'R12 + R15' (row 15; {MEB})",)
    assert samples[0].emotion == "others"
    kinds = _kinds(validate(samples, decode=False))
    assert kinds["fix_applied"] == 9
    assert "aus_ambiguous" not in kinds and "apex_missing" not in kinds


def test_samm_au_cell_without_or_is_drift(tmp_path: Path, write_xlsx) -> None:
    _samm_sheet(tmp_path, write_xlsx, {**SAMM_OR, 41: "L14"})  # already resolved upstream
    with pytest.raises(AnnotationFixMismatch, match="row 41: expected aus to contain 'or'"):
        load_samm(tmp_path)
    samples = load_samm(tmp_path, fixes=False)
    assert samples[15].aus == ("R12 or R15",)
    assert [i.sample_id for i in validate(samples, decode=False) if i.kind == "fix_drift"] == [
        "samm/008/008_41"
    ]


MMEW_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
               "Estimated Emotion", "remarks"]  # fmt: skip


def _mmew_root(tmp_path: Path, write_xlsx, onset_33: int = 1) -> Path:
    rows = [[f"S{i // 20 + 1:02d}", f"happiness_{i}", 1, 5, 200, "12", "happiness", None]
            for i in range(300)]  # fmt: skip
    rows[33][2] = onset_33
    write_xlsx(tmp_path / "MMEW_Micro_Exp.xlsx", [MMEW_HEADER] + rows)
    return tmp_path


def test_mmew_apex_and_offset_fixed(tmp_path: Path, write_xlsx) -> None:
    samples = load_mmew(_mmew_root(tmp_path, write_xlsx))
    assert (samples[33].apex, samples[33].offset) == (40, 75)
    assert (samples[156].apex, samples[156].offset) == (38, 106)
    assert (samples[34].apex, samples[34].offset) == (5, 200)
    assert len(samples.fix_outcomes) == 32


def test_mmew_fix_contradicting_the_row_is_drift(tmp_path: Path, write_xlsx) -> None:
    # The weak `ordered` check: a row whose onset is after the new apex is not the fixed row.
    with pytest.raises(AnnotationFixMismatch, match="after the fix onset 50 is after apex 40"):
        load_mmew(_mmew_root(tmp_path, write_xlsx, onset_33=50))


CASME3_HEADER_A = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class",
                   "emotion"]  # fmt: skip


def _casme3_root(tmp_path: Path, write_xlsx) -> Path:
    rows = [[f"spNO.{i // 40 + 1}", "abcd"[i % 4], 10, 20, 3000, "4", "I", "Others"]
            for i in range(860)]  # fmt: skip
    rows[749][3] = 2700
    write_xlsx(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", [CASME3_HEADER_A] + rows,
               sheet="label")  # fmt: skip
    part_c = [["sub", "count", "onset", "offset", "au", "emotion"],
              [1, 1, 100, 111, "4\uff0c7", "negative"]]  # fmt: skip
    write_xlsx(tmp_path / "CAS(ME)3_part_C_ME.xlsx", part_c, sheet="mockCrimeME")
    return tmp_path


def test_casme3_part_a_fixed_before_clip_names(tmp_path: Path, write_xlsx) -> None:
    samples = load_casme3_a(_casme3_root(tmp_path, write_xlsx))
    assert samples[128].apex == 160
    assert (samples[749].onset, samples[749].clip) == (2647, "b_2647")  # named by the fixed onset
    assert (samples[750].onset, samples[750].apex) == (1, 1)
    assert [samples[r].offset for r in (708, 796, 798)] == [34, 1845, 2403]
    assert samples[0].emotion == "others"
    both = load_casme3(tmp_path)
    assert len(both) == 861 and len(both.fix_outcomes) == 7
    assert both[-1].aus == ("4", "7")  # Part C's full-width comma needs no fix


def test_wrong_sheet_is_a_column_error_not_drift(tmp_path: Path, write_xlsx) -> None:
    rows = [["Subject", "Filename", "OnsetFrame"], [1, "EP01", 3]]
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", rows)
    (tmp_path / "Cropped").mkdir()
    with pytest.raises(CalibrationError, match="lacks column.*ApexFrame"):
        load_casme2(tmp_path)
