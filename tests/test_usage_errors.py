"""edge-build refuses arguments that cannot work before any export or calibration: exit 2."""

from __future__ import annotations

import math
import time

import pytest

pytest.importorskip("onnx")

from edge.errors import UsageError  # noqa: E402
from quantize.cli.build import main as build_main  # noqa: E402
from quantize.pipeline import BuildConfig  # noqa: E402


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-accuracy-drop", "-1"], "--max-accuracy-drop -1.0"),
        (["--max-accuracy-drop", "nan"], "--max-accuracy-drop nan"),
        (["--max-accuracy-drop", "1.5"], "between 0 and 1"),
        (["--precision", "int8", "--calib-samples", "0"], "needs calibration data"),
        (["--calib-samples", "-3"], "--calib-samples -3"),
        (["--val-samples", "-1"], "--val-samples -1"),
        (["--calib-ranges", "bogus"], "--calib-ranges 'bogus'"),
        (["--calib-ranges", "entropy"], "not offered by nncf"),
        (["--int8-placement", "everywhere"], "--int8-placement 'everywhere'"),
        (["--calib-bias-correction", "maybe"], "--calib-bias-correction 'maybe'"),
        (["--quantizer", "ort", "--calib-bias-correction", "off"], "has no bias correction"),
        (["--parity-tolerance", "0"], "--parity-tolerance"),
        (["--max-search-quantizations", "0"], "--max-search-quantizations 0"),
        (["--noise-floor-draws", "-1"], "--noise-floor-draws -1"),
    ],
)
def test_usage_errors_exit_2_within_seconds_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "bundle"
    start = time.perf_counter()
    code = build_main([*argv, "--out", str(out), "--quiet"])
    elapsed = time.perf_counter() - start
    assert code == 2
    assert elapsed < 5.0
    err = capsys.readouterr().err
    assert message in err and "usage: edge-build" in err
    assert not out.exists()


def test_argparse_choices_are_usage_errors_too(tmp_path):
    with pytest.raises(SystemExit) as exc:
        build_main(["--precision", "int4", "--out", str(tmp_path / "b")])
    assert exc.value.code == 2


def test_build_config_validates_for_api_callers(tmp_path):
    with pytest.raises(UsageError, match="--quantizer 'tensorrt'"):
        BuildConfig(out=tmp_path, quantizer="tensorrt")
    with pytest.raises(UsageError, match="--max-accuracy-drop"):
        BuildConfig(out=tmp_path, max_accuracy_drop=math.inf)
    with pytest.raises(UsageError, match="--target-trt '9'"):
        BuildConfig(out=tmp_path, target_trt="9")
    assert BuildConfig(out=tmp_path, precision="int8", quantizer="ort", int8_ranges="entropy")
