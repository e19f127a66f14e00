"""`edge-run --onset A.png --apex B.png` with every backend: image mode builds its runner with
`make_runner` and classifies with the same `EventClassifier` as video mode.

TensorRT cannot exist here, so `--backend trt` runs against the fake `tensorrt` of a real
release whose engine computes with ONNX Runtime on the bundle's model: the runner's engine
choice, buffers and copies are real, and its answer must equal the ONNX Runtime one.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from edge.cli.run import main as run_main

pytestmark = [pytest.mark.torch, pytest.mark.ort]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    cv2 = pytest.importorskip("cv2")
    from calib.faces import micro_expression_pair

    folder = tmp_path_factory.mktemp("pair")
    onset, apex = micro_expression_pair("astronaut", size=256)
    cv2.imwrite(str(folder / "onset.png"), onset[:, :, ::-1])
    cv2.imwrite(str(folder / "apex.png"), apex[:, :, ::-1])
    return folder / "onset.png", folder / "apex.png"


@pytest.fixture
def trt_bundle(bundle_dir, tmp_path, monkeypatch):
    """A copy of the bundle with a (fake) engine for this (fake) device, and the fakes in place."""
    import edge.runtime.trt as trt_runner
    from edge.engine import engine_from_bundle
    from tests.trt.conftest import ORIN
    from tests.trt.fake_cuda import FakeCudart
    from tests.trt.fake_engine import fake_engine, ort_compute

    root = tmp_path / "bundle"
    shutil.copytree(bundle_dir, root)
    inputs, outputs, compute = ort_compute(root / "model.fp32.onnx")
    engine_from_bundle(root, "fp32", trt=fake_engine("10.3", inputs, outputs, compute), device=ORIN)
    fake = fake_engine("10.3", inputs, outputs, compute)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(trt_runner, "load_cudart", FakeCudart)
    monkeypatch.setattr(trt_runner, "probe_device", lambda cudart=None: ORIN)
    return root


def _classify(bundle, pair, capsys, *extra):
    onset, apex = pair
    argv = ["--bundle", str(bundle), "--onset", str(onset), "--apex", str(apex), "--json"]
    code = run_main(argv + list(extra))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_image_mode_on_every_backend_gives_one_answer(bundle_dir, trt_bundle, pair, capsys):
    ort = _classify(bundle_dir, pair, capsys, "--backend", "ort")
    torch = _classify(bundle_dir, pair, capsys, "--backend", "torch")
    trt = _classify(trt_bundle, pair, capsys, "--backend", "trt")
    assert ort["executor"].startswith("onnxruntime")
    assert torch["executor"].startswith("torch")
    assert trt["executor"].startswith("TensorRT 10.3") and "engine.fp32.plan" in trt["executor"]
    for other in (torch, trt):
        assert other["label"] == ort["label"]
        np.testing.assert_allclose(
            list(other["scores"].values()), list(ort["scores"].values()), atol=1e-4
        )


def test_image_mode_trt_without_an_engine_names_the_rebuild_command(
    bundle_dir, pair, capsys, monkeypatch
):
    """The .onnx is never handed to the engine deserializer: the bundle's engine table decides."""
    from tests.trt.fake_engine import fake_engine, ort_compute

    inputs, outputs, compute = ort_compute(bundle_dir / "model.fp32.onnx")
    fake = fake_engine("10.3", inputs, outputs, compute)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    import edge.runtime.trt as trt_runner
    from tests.trt.conftest import ORIN
    from tests.trt.fake_cuda import FakeCudart

    monkeypatch.setattr(trt_runner, "load_cudart", FakeCudart)
    monkeypatch.setattr(trt_runner, "probe_device", lambda cudart=None: ORIN)
    onset, apex = pair
    code = run_main(
        ["--bundle", str(bundle_dir), "--onset", str(onset), "--apex", str(apex)]
        + ["--backend", "trt"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "has no fp32 engine" in err and "edge.cli.engine" in err
    assert fake.called("deserialize_cuda_engine") == []
