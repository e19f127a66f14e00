"""SAMM: text preamble above a header at row index 12, zero-padded subjects, 'or' AU cells."""

from __future__ import annotations

from pathlib import Path

from calib.datasets import load_samm, validate
from calib.datasets.tables import read_table

HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Type",
    "Action Units",
    "Notes",
    "Estimated Emotion",
    "Objective Classes",
]
PREAMBLE = [["SAMM Micro-Movement FACS Codes"], [None], ["Coded by two FACS coders"]] + [
    [f"preamble line {i}"] for i in range(9)
]


def _sheet(tmp_path: Path, write_xlsx) -> Path:
    rows = PREAMBLE + [
        HEADER,
        [6, "006_1_2", 1, 5562, 5588, 5608, 47, "Micro - 1/2", "R12+R15", None, "Contempt", 5],
        [7, "007_3_1", 3, 10, None, 20, 11, "Micro", "12 or 14", None, "Happiness", 1],
    ]
    assert len(PREAMBLE) == 12
    return write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)


def test_header_detected_at_row_12(tmp_path: Path, write_xlsx) -> None:
    rows = read_table(_sheet(tmp_path, write_xlsx))
    assert rows[0]["Filename"] == "006_1_2" and len(rows) == 2


def test_load_samm_gray_frames(tmp_path: Path, write_xlsx, write_frames) -> None:
    _sheet(tmp_path, write_xlsx)
    write_frames(tmp_path / "SAMM/006/006_1_2", range(5562, 5609), "006_{:05d}.jpg", gray=True)
    write_frames(tmp_path / "SAMM/007/007_3_1", range(10, 21), "007_{:05d}.jpg", gray=True)
    first, second = load_samm(tmp_path, fixes=False)  # 2 rows: not the fixed release
    assert first.sample_id == "samm/006/006_1_2"
    assert first.frame_dir == tmp_path / "SAMM" / "006" / "006_1_2"
    assert (first.onset, first.apex, first.offset, first.emotion) == (5562, 5588, 5608, "contempt")
    assert first.aus == ("R12", "R15")
    assert second.aus == ("12 or 14",)
    kinds = sorted((i.sample_id, i.kind) for i in validate([first, second]))
    assert kinds == [("samm/007/007_3_1", "apex_missing"), ("samm/007/007_3_1", "aus_ambiguous")]
