"""bench_modelopt refuses what it cannot use before any work: exit 2 (ModelOpt is not needed)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

pytest.importorskip("onnx")

from benchmarks.bench_modelopt import main  # noqa: E402


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--modelopt-onnx", __file__], "the following arguments are required: --bundle"),
        (["--bundle", "."], "needs --modelopt-python PY"),
        (["--bundle", ".", "--modelopt-onnx", "no-such.onnx"], "no such file: no-such.onnx"),
        (["--bundle", ".", "--modelopt-python", "no-such-python"], "no such interpreter"),
        (["--bundle", ".", "--modelopt-python", sys.executable], "cannot import modelopt"),
        (["--modelopt-onnx", __file__, "--bundle", "no-such-dir"], "no manifest.json there"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    if sys.executable in argv and importlib.util.find_spec("modelopt") is not None:
        pytest.skip("this interpreter has ModelOpt")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bundle_without_int8_model_exit_2(capsys, tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main(["--modelopt-onnx", __file__, "--bundle", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no model.int8.qdq.onnx" in capsys.readouterr().err
