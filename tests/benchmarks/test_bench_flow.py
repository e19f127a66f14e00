"""bench_flow runs end to end with tiny repetitions and reports every runnable method."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("cv2")
pytest.importorskip("skimage")


def test_bench_flow_reports_times_ratios_and_accuracy(tmp_path, capsys):
    from benchmarks.bench_flow import main

    out = tmp_path / "flow.json"
    assert main(["--repeats", "1", "--sizes", "56,28", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["results"]) == ["56x56", "28x28"]
    row = report["results"]["56x56"]
    assert list(row)[0] == "dis" and {"dis", "dis-fast", "farneback"} <= set(row)
    assert row["dis"]["flow_vs_dis"] == 1.0 and row["farneback"]["inputs_vs_dis"] > 0
    for entry in row.values():
        assert 0 < entry["flow"]["p50_ms"] <= entry["flow"]["p90_ms"]
        assert 0 <= entry["epe_px"] < 1.0 and 0 < entry["found"] < 2
    if "tvl1" not in row:
        assert "opencv-contrib" in report["skipped"]["tvl1"]
    printed = capsys.readouterr().out
    assert "| 28x28 | farneback |" in printed and "load average" in printed


def test_bench_flow_rejects_bad_sizes():
    from benchmarks.bench_flow import main

    with pytest.raises(SystemExit) as exc:
        main(["--sizes", "4"])
    assert exc.value.code == 2
