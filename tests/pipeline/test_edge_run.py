"""`edge-run` end to end on generated videos of a real face: planted events found, no-face
stretches reported, damaged files survived, given onset/apex, annotated output, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.bundle import Bundle
from edge.cli.run import main as run_main

pytestmark = [pytest.mark.torch, pytest.mark.ort]
cv2 = pytest.importorskip("cv2")


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _events(records):
    return [r for r in records if r["type"] == "event"]


def test_spots_the_planted_events_in_a_720p_video(bundle_dir, video_720p, tmp_path, capsys):
    events_out = tmp_path / "events.jsonl"
    annotated = tmp_path / "annotated.mp4"
    code = run_main(
        [
            "--bundle",
            str(bundle_dir),
            str(video_720p.path),
            "--events-out",
            str(events_out),
            "--annotated-out",
            str(annotated),
        ]
    )
    assert code == 0
    records = _records(events_out)
    events = _events(records)
    assert [e["apex_frame"] for e in events] == pytest.approx(
        [e.apex for e in video_720p.events], abs=1
    )
    for found, planted in zip(events, video_720p.events):
        assert abs(found["onset_frame"] - planted.onset) <= 2
        assert found["apex_time_s"] == pytest.approx(found["apex_frame"] / 30.0, abs=1e-3)
        assert found["label"] in found["scores"] and sum(found["scores"].values()) == pytest.approx(
            1, abs=1e-4
        )
        assert {"decode", "register", "align", "spot", "preprocess", "infer"} <= set(
            found["timing_ms"]
        )
    summary = records[-1]
    assert summary["type"] == "summary" and summary["frames"] == video_720p.frames
    assert summary["events"] == 2 and summary["clips"] == 1 and summary["corrupt_frames"] == 0
    assert "onnxruntime" in summary["executor"] and summary["realtime_factor"] > 0
    err = capsys.readouterr().err
    assert "2 event(s)" in err
    trained = Bundle.load(bundle_dir).manifest["model"]["trained"]
    assert ("UNTRAINED" in err) is (not trained)  # the warning appears exactly when it applies
    capture = cv2.VideoCapture(str(annotated))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == video_720p.frames
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (720, 1280, 3)


def test_face_gap_is_reported_and_each_side_is_a_clip(bundle_dir, video_gap, capsys):
    assert run_main(["--bundle", str(bundle_dir), str(video_gap.path)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    gaps = [r for r in records if r["type"] == "no_face"]
    assert len(gaps) == 1 and gaps[0]["reason"] == "no face detected"
    assert gaps[0]["start_frame"] == 45 and 69 <= gaps[0]["end_frame"] <= 72
    events = _events(records)
    assert [e["apex_frame"] for e in events] == pytest.approx([25, 95], abs=1)
    assert [e["clip"] for e in events] == [0, 1]
    assert records[-1]["no_face_frames"] >= 25


def test_damaged_and_truncated_files_are_survived(bundle_dir, video_gap, tmp_path, capsys):
    data = bytearray(video_gap.path.read_bytes())
    for fraction in (0.25, 0.8):  # garble bytes inside two frames
        at = int(len(data) * fraction)
        data[at : at + 20000] = bytes((i * 37) % 251 for i in range(20000))
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(bytes(data[: int(len(data) * 0.9)]))  # and cut off the end
    assert run_main(["--bundle", str(bundle_dir), str(damaged)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = records[-1]
    assert summary["type"] == "summary" and 0 < summary["frames"] < video_gap.frames
    assert any(abs(e["apex_frame"] - 25) <= 1 for e in _events(records))


def test_given_onset_and_apex_frames_skip_spotting(bundle_dir, video_gap, capsys):
    code = run_main(
        ["--bundle", str(bundle_dir), str(video_gap.path), "--onset", "20", "--apex", "25"]
    )
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (event,) = _events(records)
    assert event["source"] == "given" and (event["onset_frame"], event["apex_frame"]) == (20, 25)
    assert 80 <= event["face"]["px"] <= 120 and event["face"]["upscale"] > 1.0  # 160 px face_px
    assert records[-1]["frames"] == 26  # decoding stops at the apex


def test_torch_backend_runs_the_same_event(bundle_dir, video_gap, capsys):
    args = ["--bundle", str(bundle_dir), str(video_gap.path), "--onset", "20", "--apex", "25"]
    assert run_main(args) == 0
    ort_event = _events([json.loads(x) for x in capsys.readouterr().out.splitlines()])[0]
    assert run_main(args + ["--backend", "torch"]) == 0
    torch_records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    torch_event = _events(torch_records)[0]
    assert torch_records[-1]["executor"].startswith("torch")
    assert torch_event["label"] == ort_event["label"]
    np.testing.assert_allclose(
        list(torch_event["scores"].values()), list(ort_event["scores"].values()), atol=1e-4
    )


def test_user_errors_exit_1_or_2_with_one_line(bundle_dir, video_gap, tmp_path, capsys):
    assert run_main(["--bundle", str(bundle_dir), str(tmp_path / "none.mp4")]) == 1
    assert "none.mp4: video not found" in capsys.readouterr().err
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    assert run_main(["--bundle", str(bundle_dir), str(not_video)]) == 1
    assert "cannot open" in capsys.readouterr().err
    code = run_main(
        ["--bundle", str(bundle_dir), str(video_gap.path), "--onset", "50", "--apex", "60"]
    )
    assert code == 1
    assert "frame 50: no face detected" in capsys.readouterr().err
    code = run_main(
        ["--bundle", str(bundle_dir), str(video_gap.path), "--onset", "5", "--apex", "900"]
    )
    assert code == 1 and "--apex frame 900 was not decoded" in capsys.readouterr().err
    for argv in (
        [str(video_gap.path), "--onset", "a.png", "--apex", "b.png"],
        [str(video_gap.path), "--onset", "3"],
        [str(video_gap.path), "--camera", "0"],
        [],
    ):
        with pytest.raises(SystemExit) as exc:
            run_main(["--bundle", str(bundle_dir)] + argv)
        assert exc.value.code == 2
