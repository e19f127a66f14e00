"""Optical flow and strain (edge.flow) against hand-computed fields, and the flow:* inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edge import flow as edge_flow
from edge.errors import EdgeBuildError
from edge.flow import dense_flow, flow_fields, flow_tensor, optical_strain
from edge.preprocess import prepare_inputs, stack_roles
from edge.spec import FlowSettings, ModelSpec, Preprocessing, TensorSpec

cv2 = pytest.importorskip("cv2")


def _texture(size: int = 112, seed: int = 0) -> np.ndarray:
    """Smooth random texture over the full grey range: every patch has gradients to track."""
    noise = np.random.default_rng(seed).integers(0, 256, (size, size)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """`image` moved by (dx, dy) pixels: apex(x + dx, y + dy) = onset(x, y)."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    h, w = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("shift", [(2.0, -1.0), (1.5, -0.75), (-0.5, 0.25)])
def test_a_translated_texture_gives_its_shift_inside_the_image(method, shift):
    onset = _texture()
    flow = dense_flow(onset, _shifted(onset, *shift), method)
    assert flow.shape == (112, 112, 2) and flow.dtype == np.float32
    inner = flow[20:-20, 20:-20]
    for axis, want in enumerate(shift):
        assert np.median(inner[..., axis]) == pytest.approx(want, abs=0.08)
        assert np.percentile(np.abs(inner[..., axis] - want), 90) < 0.2


@pytest.mark.parametrize("preset", ["dis-fast", "dis-ultrafast"])
def test_faster_dis_presets_track_the_shift_more_loosely(preset):
    onset = _texture()
    inner = dense_flow(onset, _shifted(onset, 1.5, -0.75), preset)[20:-20, 20:-20]
    assert np.median(inner[..., 0]) == pytest.approx(1.5, abs=0.15)
    assert np.median(inner[..., 1]) == pytest.approx(-0.75, abs=0.15)


def test_flow_is_deterministic_and_zero_for_identical_frames():
    onset = _texture()
    apex = _shifted(onset, 1.0, 0.5)
    for method in ("dis", "farneback"):
        np.testing.assert_array_equal(
            dense_flow(onset, apex, method), dense_flow(onset, apex, method)
        )
        # Farneback's polynomial fit leaves up to 0.25 px in the corners; the interior is still
        assert np.abs(dense_flow(onset, onset, method)[10:-10, 10:-10]).max() < 1e-3


def test_strain_of_a_linear_field_is_the_analytic_value_everywhere():
    # u = a x + b y, v = c x + d y: ux = a, uy = b, vx = c, vy = d at every pixel (np.gradient is
    # exact on linear fields, borders included).
    a, b, c, d = 0.02, -0.03, 0.05, 0.01
    yy, xx = np.mgrid[0:40, 0:56].astype(np.float32)
    strain = optical_strain(a * xx + b * yy, c * xx + d * yy)
    expected = np.sqrt(a * a + d * d + 0.5 * (b + c) ** 2)
    assert strain.shape == (40, 56) and strain.dtype == np.float32
    np.testing.assert_allclose(strain, expected, rtol=1e-5)
    # a rigid rotation has no strain: uy = -vx cancels, ux = vy = 0
    np.testing.assert_allclose(optical_strain(-0.1 * yy, 0.1 * xx), 0.0, atol=1e-6)
    # a uniform translation neither
    np.testing.assert_array_equal(optical_strain(np.full((8, 8), 3.0), np.ones((8, 8))), 0.0)


def _constant_method(u: float, v: float):
    def method(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
        out = np.empty(onset.shape + (2,), np.float32)
        out[..., 0], out[..., 1] = u, v
        return out

    return method


def test_scale_clip_resampling_and_the_image_channel_order(monkeypatch):
    # A registered method with a known answer isolates the post-processing; it is also the
    # plug-in point (VPI's OFA would register the same way).
    monkeypatch.setitem(edge_flow._METHODS, "const", _constant_method(1.5, -3.0))
    frame = np.zeros((224, 224, 3), np.uint8)
    settings = FlowSettings(method="const", size=(112, 112), scale=2.0, clip=4.0)
    fields = flow_fields(frame, frame, settings, (28, 28))
    assert fields.u.shape == fields.v.shape == fields.strain.shape == (28, 28)
    np.testing.assert_allclose(fields.u, 3.0)  # 1.5 * 2
    np.testing.assert_allclose(fields.v, -4.0)  # -3 * 2, clipped to -4
    np.testing.assert_allclose(fields.strain, 0.0)
    image = flow_tensor("flow:image", fields)
    assert image.shape == (3, 28, 28)
    np.testing.assert_array_equal(image[0], fields.u)
    np.testing.assert_array_equal(image[1], fields.v)
    np.testing.assert_array_equal(image[2], fields.strain)
    assert flow_tensor("flow:v", fields).shape == (1, 28, 28)
    with pytest.raises(EdgeBuildError, match="unknown flow source"):
        flow_tensor("flow:w", fields)


def test_strain_is_scaled_clipped_and_resampled_with_an_area_filter(monkeypatch):
    def shear(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
        # u = 0.1 y in the top half, 0 below: strain 0.1/sqrt(2) above, 0 below, a seam between
        h, w = onset.shape
        yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
        out = np.zeros((h, w, 2), np.float32)
        out[..., 0] = np.where(yy < h // 2, 0.1 * yy, 0.1 * (h // 2 - 1))
        return out

    monkeypatch.setitem(edge_flow._METHODS, "shear", shear)
    frame = np.zeros((64, 64), np.uint8)
    plain = flow_fields(frame, frame, FlowSettings(method="shear", size=(64, 64)), (16, 16))
    top = 0.1 / np.sqrt(2.0)
    np.testing.assert_allclose(plain.strain[:7], top, rtol=1e-5)  # 4x4 area means of a constant
    np.testing.assert_allclose(plain.strain[9:], 0.0, atol=1e-7)
    clipped = flow_fields(
        frame,
        frame,
        FlowSettings(method="shear", size=(64, 64), strain_scale=10.0, strain_clip=0.5),
        (16, 16),
    )
    np.testing.assert_allclose(clipped.strain[:7], 0.5)
    assert clipped.strain.min() >= 0.0


def test_unknown_methods_and_tvl1_without_contrib_fail_clearly():
    onset = _texture(32)
    with pytest.raises(EdgeBuildError, match="unknown optical-flow method 'raft'.*dis"):
        dense_flow(onset, onset, "raft")
    if hasattr(cv2, "optflow"):
        assert dense_flow(onset, onset, "tvl1").shape == (32, 32, 2)
    else:
        with pytest.raises(EdgeBuildError, match="opencv-contrib-python"):
            dense_flow(onset, onset, "tvl1")
    with pytest.raises(EdgeBuildError, match="one size"):
        dense_flow(onset, _texture(16), "dis")


def _flow_spec(feeds, inputs, **flow) -> ModelSpec:
    return ModelSpec(
        arch="flownet",
        variant="t",
        inputs=inputs,
        outputs=(TensorSpec("logits", (1, 3)),),
        preprocessing=Preprocessing(
            size=(28, 28), frames=("onset", "apex"), feeds=feeds, flow=FlowSettings(**flow)
        ),
        class_names=("negative", "positive", "surprise"),
    )


def test_prepare_inputs_computes_flow_from_the_onset_apex_pair():
    spec = _flow_spec(
        (("u", "flow:u"), ("v", "flow:v"), ("s", "flow:strain"), ("img", "flow:image")),
        (
            TensorSpec("u", (1, 1, 28, 28)),
            TensorSpec("v", (1, 1, 28, 28)),
            TensorSpec("s", (1, 1, 28, 28)),
            TensorSpec("img", (1, 3, 28, 28)),
        ),
        size=(112, 112),
        scale=0.5,
    )
    grey = _texture(224, seed=3)
    onset = np.repeat(grey[:, :, None], 3, axis=2)
    apex = np.repeat(_shifted(grey, 4.0, 0.0)[:, :, None], 3, axis=2)  # 2 px at 112
    feeds = prepare_inputs(spec, {"onset": onset, "apex": apex})
    assert {k: v.shape for k, v in feeds.items()} == {
        "u": (1, 1, 28, 28), "v": (1, 1, 28, 28), "s": (1, 1, 28, 28), "img": (1, 3, 28, 28)
    }  # fmt: skip
    assert all(v.dtype == np.float32 for v in feeds.values())
    assert np.median(feeds["u"][0, 0, 5:-5, 5:-5]) == pytest.approx(1.0, abs=0.05)  # 2 px * 0.5
    np.testing.assert_array_equal(feeds["img"][0], np.concatenate([feeds[k][0] for k in "uvs"]))
    # frames are stored at the flow size, and the stored pair gives the same inputs
    stored = stack_roles(spec, {"onset": onset, "apex": apex})
    assert stored.shape == (2, 112, 112, 3)
    again = prepare_inputs(spec, {"onset": stored[0], "apex": stored[1]})
    np.testing.assert_array_equal(again["img"], feeds["img"])


def test_flow_inputs_need_settings_and_uint8_frames():
    spec = _flow_spec((("img", "flow:image"),), (TensorSpec("img", (1, 3, 28, 28)),))
    frame = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(EdgeBuildError, match="normalised colour tensors cannot give flow"):
        prepare_inputs(
            spec, {"apex": frame}, normalized={"onset": np.zeros((3, 28, 28), np.float32)}
        )
    no_settings = ModelSpec.from_dict(spec.to_dict())
    data = no_settings.to_dict()
    del data["preprocessing"]["flow"]
    with pytest.raises(EdgeBuildError, match="declares no flow settings"):
        prepare_inputs(ModelSpec.from_dict(data), {"onset": frame, "apex": frame})


def test_pixel_noise_goes_on_the_frames_of_flow_models():
    from edge.noise import noise_stability, noisy_feeds, with_frame_noise, with_pixel_noise

    spec = _flow_spec((("img", "flow:image"),), (TensorSpec("img", (1, 3, 28, 28)),))
    grey = _texture(112, seed=5)
    pair = np.stack([np.repeat(g[:, :, None], 3, axis=2) for g in (grey, _shifted(grey, 1, 0))])
    frames = pair[None]  # [N=1, roles, H, W, 3]
    clean = [prepare_inputs(spec, dict(zip(("onset", "apex"), pair)))]
    noisy = noisy_feeds(spec, clean, frames, 1.0, seed=3)
    np.testing.assert_array_equal(
        noisy[0]["img"], with_frame_noise(spec, frames, 1.0, seed=3)[0]["img"]
    )
    change = np.abs(noisy[0]["img"] - clean[0]["img"]).max()
    assert 0 < change < 1.0  # noise moved the flow, not the scale of the motion
    assert not np.array_equal(
        with_frame_noise(spec, frames, 1.0, seed=4)[0]["img"], noisy[0]["img"]
    )
    with pytest.raises(ValueError, match="needs its frames"):
        noisy_feeds(spec, clean, None, 1.0)
    # frame models keep the tensor-space noise
    colour = ModelSpec(
        arch="c", variant="v", inputs=(TensorSpec("apex", (1, 3, 28, 28)),),
        outputs=(TensorSpec("logits", (1, 2)),),
        preprocessing=Preprocessing(size=(28, 28), frames=("apex",)), class_names=("a", "b"),
    )  # fmt: skip
    feeds = [{"apex": np.zeros((1, 3, 28, 28), np.float32)}]
    np.testing.assert_array_equal(
        noisy_feeds(colour, feeds, None, 0.5, seed=1)[0]["apex"],
        with_pixel_noise(feeds, colour.preprocessing.std, 0.5, seed=1)[0]["apex"],
    )
    # a model that follows u: its decision flips only if noise flips the mean u's sign
    infer = lambda f: np.stack([f["img"][:, 0].mean((1, 2)), -f["img"][:, 0].mean((1, 2))], 1)  # noqa: E731
    kept = noise_stability(infer, clean, spec.preprocessing.std, 1.0, spec=spec, frames=frames)
    assert kept == 1.0
