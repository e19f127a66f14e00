"""The flow settings travel in the ModelSpec: round trip, defaults, old bundles."""

from __future__ import annotations

import json

import pytest

from edge.errors import EdgeBuildError
from edge.spec import (
    FLOW_IMAGE,
    FLOW_SOURCES,
    FlowSettings,
    ModelSpec,
    Preprocessing,
    TensorSpec,
    is_flow_source,
)


def _flow_spec(flow):
    return ModelSpec(
        arch="ststnet", variant="28",
        inputs=(TensorSpec("flow", (1, 3, 28, 28)),), outputs=(TensorSpec("logits", (1, 3)),),
        preprocessing=Preprocessing(size=(28, 28), frames=("onset", "apex"),
                                    feeds=(("flow", FLOW_IMAGE),), flow=flow),
        class_names=("negative", "positive", "surprise"),
    )  # fmt: skip


def test_flow_settings_round_trip_through_json():
    flow = FlowSettings(method="farneback", size=[96, 80], scale=2.0, clip=3.0, strain_clip=1.0)
    assert flow.size == (96, 80)
    spec = _flow_spec(flow)
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.preprocessing.flow == flow
    assert again.preprocessing.storage_size == (96, 80)
    assert FlowSettings.from_dict({}) == FlowSettings()


def test_specs_without_flow_store_at_input_size_and_old_dicts_load():
    spec = _flow_spec(None)
    data = spec.to_dict()
    assert "flow" not in data["preprocessing"]  # as written before flow existed
    old = ModelSpec.from_dict(data)
    assert old.preprocessing.flow is None and old.preprocessing.storage_size == (28, 28)


def test_flow_sources_and_bad_settings():
    assert FLOW_SOURCES == ("flow:u", "flow:v", "flow:strain", "flow:image")
    assert all(is_flow_source(s) for s in FLOW_SOURCES) and not is_flow_source("apex")
    with pytest.raises(EdgeBuildError, match="flow.size"):
        FlowSettings(size=(4, 4))
    with pytest.raises(EdgeBuildError, match="flow.clip"):
        FlowSettings(clip=-1.0)
