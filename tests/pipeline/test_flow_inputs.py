"""A flow model in the live pipeline: faces registered at the flow size, flow computed from the
uint8 crops, and the fused warp + normalise path (which yields normalised colour tensors, not
crops) explicitly bypassed."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from edge.spec import FlowSettings, ModelSpec, Preprocessing, TensorSpec

pytestmark = [pytest.mark.ort]


def _mean_flow_model() -> bytes:
    """logits = W . mean over pixels of (u, v, strain): small, real, and sensitive to the flow."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.0, -2.0, 3.0], [0.5, 1.0, -1.0], [-1.0, 0.25, 2.0]], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["flow"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w"], ["logits"]),
        ],
        "mean_flow",
        [helper.make_tensor_value_info("flow", TensorProto.FLOAT, [1, 3, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


SPEC = ModelSpec(
    arch="meanflow",
    variant="28",
    inputs=(TensorSpec("flow", (1, 3, 28, 28)),),
    outputs=(TensorSpec("logits", (1, 3)),),
    preprocessing=Preprocessing(
        size=(28, 28),
        frames=("onset", "apex"),
        feeds=(("flow", "flow:image"),),
        alignment="mediapipe",
        flow=FlowSettings(method="dis", size=(112, 112), scale=1.0),
    ),
    class_names=("negative", "positive", "surprise"),
)


class CountingPreprocessor:
    """The real OpenCV preprocessor, counting fused calls (the pipeline must make none)."""

    def __init__(self) -> None:
        from edge.native.preproc import OpenCVPreprocessor

        self.real = OpenCVPreprocessor()
        self.calls = 0

    def warp_normalize_batch(self, *args, **kwargs):
        self.calls += 1
        return self.real.warp_normalize_batch(*args, **kwargs)


def test_flow_models_register_at_the_flow_size_and_bypass_the_fused_path(video_720p):
    pytest.importorskip("onnxruntime")
    from edge.align import make_aligner
    from edge.pipeline import EventClassifier, JsonLines, VideoSource, run_given
    from edge.runtime.ort import OrtRunner

    events = {}
    for name, pre in (("opencv", None), ("fused", CountingPreprocessor())):
        aligner = make_aligner("mediapipe", size=SPEC.preprocessing.storage_size[0])
        out = io.StringIO()
        with OrtRunner(_mean_flow_model()) as runner, VideoSource(str(video_720p.path)) as src:
            run_given(
                src, aligner, EventClassifier(runner, SPEC), JsonLines(out),
                onset=30, apex=36, preprocessor=pre,
            )  # fmt: skip
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        events[name] = next(r for r in records if r.get("type") == "event")
        if pre is not None:
            assert pre.calls == 0
    assert "align" in events["fused"]["timing_ms"]
    assert events["fused"]["scores"] == events["opencv"]["scores"]
    # the expression moved pixels: the flow reached the model (not all-zero inputs)
    assert len(set(events["opencv"]["scores"].values())) == 3
