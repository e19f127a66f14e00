"""Frame roles, relative depth and the generalised input preparation (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.depth import face_depth_proxy, relative_depth
from edge.errors import EdgeBuildError
from edge.frames import clip_roles, role_indices, role_position
from edge.preprocess import prepare_inputs, stack_roles
from edge.spec import ModelSpec, Preprocessing, TensorSpec


def test_roles_map_to_frames_between_onset_and_apex():
    roles = ("apex",) + clip_roles(5)
    assert [role_position(r, roles) for r in roles] == [1.0, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert role_indices(roles, 10, 18) == [18, 10, 12, 14, 16, 18]
    assert role_indices(("onset", "apex", "depth:apex"), 3, 9) == [3, 9, 9]
    with pytest.raises(EdgeBuildError, match="unknown frame role"):
        role_position("middle", roles)
    with pytest.raises(EdgeBuildError, match="at least 2"):
        clip_roles(1)


def test_relative_depth_puts_the_nearest_face_point_at_255():
    depth = np.full((40, 40), 700, np.uint16)
    depth[10:30, 10:30] = 600  # the face, 100 mm nearer than the background
    depth[0, 0] = 0  # no reading
    rel = relative_depth(depth, range_mm=100.0)
    assert rel.dtype == np.uint8 and rel[20, 20] == 255 and rel[5, 35] == 0 and rel[0, 0] == 0
    assert relative_depth(np.zeros((8, 8))).max() == 0
    with pytest.raises(EdgeBuildError, match="HxW"):
        relative_depth(np.zeros(5))
    proxy = relative_depth(face_depth_proxy((112, 112)))
    assert proxy[62, 56] > proxy[50, 38] > proxy[5, 5]  # nose tip nearer than eye, than border


def _spec(frames, feeds, inputs):
    return ModelSpec(
        arch="test", variant="v", inputs=inputs,
        outputs=(TensorSpec("logits", (1, 2)),),
        preprocessing=Preprocessing(size=(32, 32), frames=frames, feeds=feeds),
        class_names=("a", "b"), au_names=("AU1",),
    )  # fmt: skip


def test_prepare_inputs_builds_clip_depth_and_mask_tensors():
    roles = ("apex", "depth:apex") + clip_roles(3)
    spec = _spec(
        roles,
        (("apex", "apex"), ("clip", "clip"), ("depth", "depth:apex"), ("mask", "mask:regions")),
        (TensorSpec("apex", (1, 3, 32, 32)), TensorSpec("clip", (1, 3, 3, 32, 32)),
         TensorSpec("depth", (1, 1, 32, 32)), TensorSpec("mask", (1, 1, 32, 32))),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    frames = {r: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for r in roles}
    frames["depth:apex"] = np.full((64, 64), 255, np.uint8)
    feeds = prepare_inputs(spec, frames)
    assert feeds["apex"].shape == (1, 3, 32, 32) and feeds["clip"].shape == (1, 3, 3, 32, 32)
    np.testing.assert_allclose(
        feeds["clip"][0, :, 0], prepare_inputs(spec, frames)["clip"][0, :, 0]
    )
    np.testing.assert_allclose(feeds["depth"], 1.0)  # (255/255 - 0.5) / 0.5
    assert set(np.unique(feeds["mask"])) <= {0.0, 1.0} and feeds["mask"].sum() > 0
    stored = stack_roles(spec, frames)
    assert stored.shape == (len(roles), 32, 32, 3) and (stored[1] == 255).all()
    again = ModelSpec.from_dict(spec.to_dict())
    assert again == spec
    with pytest.raises(EdgeBuildError, match="missing"):
        prepare_inputs(spec, {"apex": frames["apex"]})


def test_old_bundles_without_feeds_pair_inputs_with_frames():
    spec = _spec(("onset", "apex"), (), (TensorSpec("onset", (1, 3, 32, 32)),
                                          TensorSpec("apex", (1, 3, 32, 32))))  # fmt: skip
    data = spec.to_dict()
    del data["preprocessing"]["feeds"], data["au_names"]
    old = ModelSpec.from_dict(data)
    frame = np.zeros((32, 32, 3), np.uint8)
    assert set(prepare_inputs(old, {"onset": frame, "apex": frame})) == {"onset", "apex"}
