"""The one Runner interface on a real bundle: ONNX Runtime and the PyTorch reference agree with
the bundle's stored reference logits, and the pipeline's classifier works through either."""

from __future__ import annotations

import numpy as np
import pytest

from edge.bundle import Bundle
from edge.errors import EdgeBuildError
from edge.pipeline import EventClassifier, make_runner
from edge.preprocess import prepare_inputs
from edge.runtime.base import RunnerError
from edge.runtime.ort import select_providers

pytestmark = [pytest.mark.torch, pytest.mark.ort]


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_runner_contract_on_the_real_bundle(bundle_dir, backend):
    bundle = Bundle.load(bundle_dir)
    spec = bundle.spec
    runner = make_runner(bundle, backend)
    with pytest.raises(RunnerError, match="not active"):
        runner.infer({})
    with runner:
        assert set(runner.inputs) == {"onset", "apex"}
        assert list(runner.outputs) == ["logits"]
        assert runner.inputs["onset"].dtype == "float32"
        ref = np.load(bundle.path("reference.npz"))
        assert len(ref["names"]) == 4
        for frames, logits in zip(ref["frames"], ref["reference_logits"]):
            feeds = prepare_inputs(spec, {"onset": frames[0], "apex": frames[1]})
            out = runner.infer(feeds)
            assert list(out) == ["logits"] and out["logits"].shape == (1, spec.num_classes)
            assert runner.last_latency_ms is not None and runner.last_latency_ms > 0
            np.testing.assert_allclose(out["logits"][0], logits, atol=1e-4)
        with pytest.raises(RunnerError, match="dtype"):
            runner.infer({k: v.astype(np.float64) for k, v in feeds.items()})
        with pytest.raises(RunnerError, match="missing"):
            runner.infer({"onset": feeds["onset"]})
    assert not runner.is_active


def test_classifier_gives_the_same_answer_on_both_backends(bundle_dir):
    from calib.faces import micro_expression_pair

    bundle = Bundle.load(bundle_dir)
    onset, apex = micro_expression_pair("cameraman", size=224)
    results = {}
    for backend in ("ort", "torch"):
        with make_runner(bundle, backend) as runner:
            prediction = EventClassifier(runner, bundle.spec)({"onset": onset, "apex": apex})
        assert sum(prediction.scores.values()) == pytest.approx(1.0)
        assert prediction.infer_ms > 0 and prediction.preprocess_ms >= 0
        results[backend] = prediction
    assert results["ort"].label == results["torch"].label
    np.testing.assert_allclose(results["ort"].logits, results["torch"].logits, atol=1e-4)


def test_provider_selection_and_unknown_backends(bundle_dir):
    assert select_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert select_providers(
        ["AzureExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    ) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    bundle = Bundle.load(bundle_dir)
    with pytest.raises(EdgeBuildError, match="unknown backend"):
        make_runner(bundle, "tflite")
