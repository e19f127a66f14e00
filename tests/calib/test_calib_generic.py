"""Generic reader: clip folders or videos plus labels.csv, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib.datasets import DATASETS, load_generic, validate
from edge.errors import CalibrationError


@pytest.fixture
def clips(tmp_path: Path, write_frames) -> Path:
    write_frames(tmp_path / "clipA", range(0, 12), "frame_{:04d}.png")
    write_frames(tmp_path / "clipB", range(1, 4), "{}.jpg")
    return tmp_path


def _labels(root: Path, text: str) -> Path:
    path = root / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_happy_path(clips: Path) -> None:
    _labels(clips, "clip,onset,apex,label,subject\nclipA,0,5,Happiness,p1\nclipB,1,2,surprise,p2\n")
    a, b = DATASETS["generic"](clips)
    assert a.sample_id == "generic/p1/clipA"
    assert (a.onset, a.apex, a.offset, a.emotion) == (0, 5, 11, "happiness")
    assert b.offset == 3 and b.frame_dir == clips / "clipB"
    assert validate([a, b]) == []


def test_optional_columns_and_other_csv(clips: Path) -> None:
    path = clips / "mine.csv"
    path.write_text("Clip,Onset,Apex,Offset,Label\nclipA,2,4,6,x\n")
    (sample,) = load_generic(clips, labels=path)
    assert (sample.subject, sample.offset) == ("unknown", 6)


def test_video_clip(clips: Path) -> None:
    (clips / "take1.mp4").write_bytes(b"")
    _labels(clips, "clip,onset,apex,label\ntake1,0,3,x\n")
    (sample,) = load_generic(clips)
    assert sample.frame_dir == clips / "take1.mp4" and sample.offset is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("clip,onset,label\nclipA,0,x\n", r"labels.csv: missing column\(s\) apex"),
        ("clip,onset,apex,label\nclipA,0,5.5,x\n", "line 2: apex must be an integer.*'5.5'"),
        ("clip,onset,apex,label\nclipA,0,1,x\n\nclipB,a,1,x\n", "line 4: onset must be"),
        ("clip,onset,apex,label\nclipZ,0,1,x\n", "line 2: unknown clip 'clipZ'"),
        ("clip,onset,apex,label\nclipA,0,1,\n", "line 2: clip and label must not be empty"),
        ("clip,onset,apex,label\n", "no label rows"),
    ],
)
def test_errors_name_file_and_line(clips: Path, text: str, match: str) -> None:
    _labels(clips, text)
    with pytest.raises(CalibrationError, match=match):
        load_generic(clips)


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="labels.csv does not exist"):
        load_generic(tmp_path)
