"""bench_quant refuses a latency-only bundle it cannot use before any work: exit 2."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

from benchmarks.bench_quant import main  # noqa: E402


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bundle", "."], "--bundle needs --only latency"),
        (["--only", "latency", "--bundle", "no-such-dir"], "no manifest.json there"),
    ],
)
def test_bundle_usage_errors_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
