"""validate: every problem listed, none raised, nothing printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib.datasets import Sample, checks, validate
from calib.datasets.checks import ISSUE_KINDS


def _sample(frame_dir, onset=1, apex=3, offset=5, clip="c1", **kw) -> Sample:
    return Sample("t", "s1", clip, onset, apex, offset, "happiness", (), frame_dir, **kw)


def test_clean_sample_has_no_issues(tmp_path: Path, write_frames) -> None:
    write_frames(tmp_path / "c1", range(1, 6))
    assert validate([_sample(tmp_path / "c1")]) == []


def test_all_problems_reported(tmp_path: Path, write_frames, capsys) -> None:
    write_frames(tmp_path / "gap", [1, 2, 5])  # apex 3 and frame 4 missing
    write_frames(tmp_path / "bad", range(1, 6))
    (tmp_path / "bad" / "img3.jpg").write_bytes(b"not a jpeg")
    samples = [
        _sample(tmp_path / "gap", clip="gap"),
        _sample(tmp_path / "bad", clip="bad"),
        _sample(tmp_path / "bad", apex=9, clip="late"),
        _sample(tmp_path / "absent", clip="absent"),
        _sample(None, clip="nodir"),
        _sample(tmp_path / "bad", onset=6, apex=None, offset=2, clip="backwards"),
        _sample(tmp_path / "bad", clip="bad"),
    ]
    found = {(i.sample_id.split("/")[-1], i.kind) for i in validate(samples)}
    assert found == {
        ("gap", "frame_missing"),
        ("gap", "frame_count"),
        ("bad", "image_unreadable"),
        ("bad", "duplicate_id"),
        ("late", "apex_out_of_range"),
        ("late", "frame_missing"),
        ("absent", "frame_dir_missing"),
        ("nodir", "frame_dir_unknown"),
        ("backwards", "apex_missing"),
        ("backwards", "frame_missing"),
        ("backwards", "onset_after_offset"),
    }
    assert {k for _, k in found} <= set(ISSUE_KINDS)
    assert capsys.readouterr() == ("", "")


def test_without_opencv_only_existence_is_checked(
    tmp_path: Path, write_frames, monkeypatch
) -> None:
    write_frames(tmp_path / "c1", range(1, 6))
    (tmp_path / "c1" / "img3.jpg").write_bytes(b"garbage")
    (tmp_path / "c1" / "img5.jpg").write_bytes(b"")
    monkeypatch.setattr(checks, "_cv2", lambda: None)
    issues = validate([_sample(tmp_path / "c1")])
    assert [(i.kind, Path(i.message.split()[-1]).name) for i in issues] == [
        ("image_unreadable", "img5.jpg")
    ]


def test_decode_can_be_skipped(tmp_path: Path, write_frames) -> None:
    write_frames(tmp_path / "c1", range(1, 6))
    (tmp_path / "c1" / "img3.jpg").write_bytes(b"garbage")
    assert validate([_sample(tmp_path / "c1")], decode=False) == []


def test_video_clip(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (16, 16))
    if not writer.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    for i in range(6):
        writer.write(__import__("numpy").full((16, 16, 3), i * 40, "uint8"))
    writer.release()
    assert validate([_sample(path, onset=0, apex=2, offset=5)]) == []
    late = validate([_sample(path, onset=0, apex=2, offset=9)])
    assert [i.kind for i in late] == ["frame_missing"]
    (tmp_path / "broken.avi").write_bytes(b"nope")
    assert [i.kind for i in validate([_sample(tmp_path / "broken.avi")])] == ["video_unreadable"]
