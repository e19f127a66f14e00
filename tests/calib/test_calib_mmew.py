"""MMEW: emotion-first folders and meb's declared `others -> repression` rename."""

from __future__ import annotations

from pathlib import Path

from calib.datasets import load_mmew, parse_mmew, validate
from calib.datasets.mmew import EMOTION_RENAMES

HEADER = [
    "Subject",
    "Filename",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
    "remarks",
]


def test_others_renamed_but_folder_kept(tmp_path: Path, write_xlsx, write_frames) -> None:
    write_xlsx(
        tmp_path / "MMEW_Micro_Exp.xlsx",
        [
            HEADER,
            ["S01", "others_1", 1, 3, 5, "L14", "others", None],
            ["S02", "happiness_4", 2, 3, 4, "6+12", "happiness", "ok"],
        ],
    )
    write_frames(tmp_path / "Micro_Expression" / "others" / "others_1", range(1, 6), "{}.jpg")
    write_frames(tmp_path / "Micro_Expression" / "happiness" / "happiness_4", range(2, 5), "{}.jpg")
    others, happy = load_mmew(tmp_path, fixes=False)  # 2 rows: not the fixed release
    assert EMOTION_RENAMES == {"others": "repression"}
    assert others.emotion == "repression"
    assert others.notes == ("emotion others -> repression",)
    assert others.frame_dir == tmp_path / "Micro_Expression" / "others" / "others_1"
    assert happy.emotion == "happiness" and happy.notes == ()
    assert validate([others, happy]) == []


def test_rename_can_be_disabled() -> None:
    row = dict(zip(HEADER, ["S01", "c", 1, 2, 3, "", "others", None]))
    assert parse_mmew([row], renames={})[0].emotion == "others"
