"""CASME II: unnamed columns, int subjects, lateral AUs, missing apexes, both frame layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib.datasets import frame_paths, load_casme2, parse_casme2, validate
from edge.errors import CalibrationError

HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
]
ROWS = [
    [1, "EP02_01f", "EP02_01", 2, 4, 10, 2, "4+L10", "happiness"],
    [1, "EP03_02", "EP03_02", 5, "/", 8, 1, "4+7+L10", "Disgust"],
    [2, "EP01_11f", "EP01_11", 3, None, 6, 1, "R12", "others"],
]


@pytest.fixture
def casme2_root(tmp_path: Path, write_xlsx, write_frames) -> Path:
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", [HEADER] + ROWS)
    for subject, clip, first, last in (
        ("sub01", "EP02_01f", 2, 10),
        ("sub01", "EP03_02", 5, 8),
        ("sub02", "EP01_11f", 3, 6),
    ):
        write_frames(tmp_path / "Cropped" / subject / clip, range(first, last + 1), "reg_img{}.jpg")
        write_frames(tmp_path / "CASME2_RAW_selected" / subject / clip, range(first, last + 1))
    return tmp_path


def test_parse_quirks() -> None:
    names = [h if h is not None else f"Unnamed: {i}" for i, h in enumerate(HEADER)]
    samples = parse_casme2([dict(zip(names, r)) for r in ROWS])
    first = samples[0]
    assert first.sample_id == "casme2/sub01/EP02_01f"
    assert (first.onset, first.apex, first.offset) == (2, 4, 10)
    assert first.aus == ("4", "L10")
    assert samples[1].aus == ("4", "7", "L10")
    assert samples[1].emotion == "disgust"
    assert samples[1].apex is None and samples[2].apex is None
    assert first.frame_dir is None


def test_load_cropped_resolves_frames_and_flags_missing_apex(casme2_root: Path) -> None:
    # Three rows are not the release the fix table targets (test_calib_fix_tables covers that).
    samples = load_casme2(casme2_root, fixes=False)
    assert [s.subject for s in samples] == ["sub01", "sub01", "sub02"]
    assert samples[0].frame_dir == casme2_root / "Cropped" / "sub01" / "EP02_01f"
    issues = [i for i in validate(samples) if i.kind != "fix_drift"]
    assert {(i.sample_id, i.kind) for i in issues} == {
        ("casme2/sub01/EP03_02", "apex_missing"),
        ("casme2/sub02/EP01_11f", "apex_missing"),
    }


def test_load_raw_layout(casme2_root: Path) -> None:
    samples = load_casme2(casme2_root, frames="raw", fixes=False)
    assert samples[0].frame_dir == casme2_root / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    names = [p.name for p in frame_paths(samples[0].frame_dir)]
    assert names == [f"img{n}.jpg" for n in range(2, 11)]  # img2 ... img10, not img10 first


def test_mmnet_cropped_variant_preferred(casme2_root: Path, write_frames) -> None:
    updated = casme2_root / "Cropped-updated" / "Cropped"
    write_frames(updated / "sub01" / "EP02_01f", [2], "reg_img{}.jpg")
    assert load_casme2(casme2_root, fixes=False)[0].frame_dir == updated / "sub01" / "EP02_01f"


def test_missing_sheet_and_frames(tmp_path: Path, casme2_root: Path) -> None:
    with pytest.raises(CalibrationError, match="CASME2-coding-20190701.xlsx"):
        load_casme2(tmp_path / "Cropped")
    with pytest.raises(CalibrationError, match="frames must be one of"):
        load_casme2(casme2_root, frames="flow", fixes=False)


def test_missing_column_is_named() -> None:
    with pytest.raises(CalibrationError, match="ApexFrame"):
        parse_casme2([{"Subject": 1, "Filename": "x", "OnsetFrame": 1, "OffsetFrame": 2}])
