"""`edge-run` at camera distances: a 100 px face drifting in a 1080p video is followed on
nearly every frame with its size in the events and a warning about interpolation; several
people (largest, or `--face N`); a video without any face."""

from __future__ import annotations

import json

import pytest

from edge.cli.run import main as run_main

pytestmark = [pytest.mark.torch, pytest.mark.ort]


def _records(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def far_1080p(tmp_path_factory, need_face_models):
    from calib.video import write_test_video

    return write_test_video(
        tmp_path_factory.mktemp("far") / "far.mp4", size=(1920, 1080), face_px=100,
        seconds=3.0, events=((45, 5),), drift_px=6.0, drift_period_s=4.0, centre=(0.7, 0.35),
    )  # fmt: skip


def test_small_face_in_1080p_is_followed_and_warned_about(bundle_dir, far_1080p, capsys):
    assert (
        run_main(["--bundle", str(bundle_dir), str(far_1080p.path), "--aligner", "mediapipe-fast"])
        == 0
    )
    captured = capsys.readouterr()
    records = _records(captured.out)
    summary = records[-1]
    assert summary["frames"] == far_1080p.frames
    assert summary["no_face_frames"] <= 0.02 * far_1080p.frames  # found in >= 98% of frames
    assert 50 <= summary["face_px"] <= 80 and summary["face_upscale"] > 2.0
    # searched a handful of times, re-detected in a window every third frame
    assert summary["searches"] <= 3 and summary["redetections"] >= far_1080p.frames // 4
    for event in (r for r in records if r["type"] == "event"):
        assert 50 <= event["face"]["px"] <= 80 and event["face"]["followed"] == "only"
    assert "mostly interpolation" in captured.err and "px wide" in captured.err


@pytest.fixture(scope="module")
def two_people(tmp_path_factory, need_face_models):
    """The astronaut (120 px, left) has an expression at frame 25; the cameraman (200 px,
    right) keeps still."""
    from calib.video import write_test_video

    return write_test_video(
        tmp_path_factory.mktemp("two") / "two.avi", size=(960, 540), face_px=120,
        centre=(0.25, 0.5), seconds=2.5, events=((20, 5),),
        others=(("cameraman", 200, (0.72, 0.5)),),
    )  # fmt: skip


@pytest.mark.parametrize(
    "face, followed, px, events",
    [(None, "largest", (100, 150), 0), (0, "0 from the left", (60, 90), 1)],
)
def test_several_faces_follow_the_largest_or_the_nth(
    bundle_dir, two_people, capsys, face, followed, px, events
):
    argv = ["--bundle", str(bundle_dir), str(two_people.path), "--aligner", "mediapipe-fast"]
    assert run_main(argv + ([] if face is None else ["--face", str(face)])) == 0
    records = _records(capsys.readouterr().out)
    summary = records[-1]
    assert summary["no_face_frames"] == 0 and px[0] <= summary["face_px"] <= px[1]
    assert summary["followed"] == followed and summary["clips"] == 1
    found = [r for r in records if r["type"] == "event"]
    assert len(found) == events  # only the astronaut has an expression
    for event in found:
        assert abs(event["apex_frame"] - 25) <= 2
        assert event["face"]["followed"] == followed and event["face"]["faces"] == 2


def test_video_without_a_face_ends_with_no_face_and_a_summary(
    bundle_dir, tmp_path, need_face_models, capsys
):
    from calib.video import write_test_video

    video = write_test_video(
        tmp_path / "empty.avi", size=(640, 360), face_px=120, seconds=1.0, events=(),
        hidden=((0, 30),),
    )  # fmt: skip
    assert run_main(["--bundle", str(bundle_dir), str(video.path)]) == 0
    records = _records(capsys.readouterr().out)
    assert [r["type"] for r in records] == ["no_face", "summary"]
    assert records[0]["start_frame"] == 0 and records[0]["end_frame"] is None
    assert records[0]["reason"] == "no face detected"
    summary = records[1]
    assert summary["frames"] == 30 and summary["events"] == 0 and summary["clips"] == 0
    assert summary["no_face_frames"] == 30 and summary["face_px"] is None
