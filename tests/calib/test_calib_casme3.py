"""CAS(ME)^3: Part A repeated filenames and `Others`; Part C full-width comma and no apex."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib.datasets import load_casme3, load_casme3_a, load_casme3_c, validate
from calib.datasets.sample import MIDPOINT_NOTE
from edge.errors import CalibrationError

HEADER_A = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
HEADER_C = ["sub", "count", "onset", "offset", "au", "emotion"]


@pytest.fixture
def casme3_root(tmp_path: Path, write_xlsx, write_frames) -> Path:
    write_xlsx(
        tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
        [
            HEADER_A,
            ["spNO.1", "a", 10, 12, 14, "L12+R14", "I", "happy"],
            ["spNO.1", "a", 30, 31, 33, "4", "II", "Others"],
            ["spNO.2", "b", 5, 6, 7, "9", "III", "disgust"],
        ],
        sheet="label",
    )
    write_xlsx(
        tmp_path / "CAS(ME)3_part_C_ME.xlsx",
        [HEADER_C, [1, 1, 100, 111, "4\uff0c7", "negative"], [1, 2, 200, 201, "12", "positive"]],
        sheet="mockCrimeME",
    )
    frames = tmp_path / "part_A" / "data"
    write_frames(
        frames / "spNO.1" / "a" / "color", list(range(10, 15)) + list(range(30, 34)), "{}.jpg"
    )
    write_frames(frames / "spNO.2" / "b" / "color", range(5, 8), "{}.jpg")
    return tmp_path


def test_part_a(casme3_root: Path) -> None:
    samples = load_casme3_a(casme3_root, fixes=False)  # 3 rows: not the fixed release
    assert [s.sample_id for s in samples] == [
        "casme3a/spNO.1/a_10",
        "casme3a/spNO.1/a_30",
        "casme3a/spNO.2/b_5",
    ]
    assert samples[1].emotion == "others"
    assert samples[0].aus == ("L12", "R14")
    assert samples[0].frame_dir == casme3_root / "part_A" / "data" / "spNO.1" / "a" / "color"
    assert {i.kind for i in validate(samples)} == {"fix_drift"}


def test_part_c_midpoint_apex_and_fullwidth_comma(casme3_root: Path) -> None:
    first, second = load_casme3_c(casme3_root)
    assert first.sample_id == "casme3c/1/1"
    assert first.aus == ("4", "7")
    assert (first.onset, first.apex, first.offset) == (100, 105, 111)
    assert second.apex == 200
    assert first.notes == (MIDPOINT_NOTE,)
    assert {i.kind for i in validate([first])} == {"frame_dir_unknown"}


def test_composite_keeps_datasets(casme3_root: Path) -> None:
    samples = load_casme3(casme3_root, fixes=False)
    assert [s.dataset for s in samples] == ["casme3a"] * 3 + ["casme3c"] * 2
    with pytest.raises(CalibrationError, match="parts are A and C"):
        load_casme3(casme3_root, parts=("B",))


def test_duplicate_onset_gets_suffix(write_xlsx, tmp_path: Path) -> None:
    from calib.datasets import parse_casme3_a

    row = dict(zip(HEADER_A, ["spNO.3", "c", 1, 2, 3, "4", "I", "sad"]))
    assert [s.clip for s in parse_casme3_a([row, row])] == ["c_1", "c_1#2"]
