"""AFNet-M re-implementation: shapes, the two mask modes, mask attention and adaptive fusion."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import EdgeBuildError
from edge.face_regions import region_mask
from edge.models.afnet_m_spec import BU3DFE_CLASSES, AFNetMConfig, afnet_m_spec

torch = pytest.importorskip("torch")

from edge.models.afnet_m import AFNetM, MaskAttention  # noqa: E402

pytestmark = pytest.mark.torch

SMALL = dict(size=32, stem_width=8, widths=(8, 16, 16, 32), reduction=2)


def inputs(config, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    side = config.size
    return torch.randn(batch, 3, side, side, generator=g), torch.randn(
        batch, 1, side, side, generator=g
    )


def seeded(config, seed=0):
    torch.manual_seed(seed)
    model = AFNetM(config).eval()
    # non-trivial BN statistics, as after training
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize(
    "config", [AFNetMConfig(), AFNetMConfig(**SMALL)], ids=["default", "small"]
)
def test_logits_shape_and_spec(config):
    model = seeded(config)
    texture, depth = inputs(config)
    with torch.no_grad():
        logits = model(texture, depth)
    assert logits.shape == (2, 6) and torch.isfinite(logits).all()
    spec = afnet_m_spec(config)
    assert spec.arch == "afnet_m" and spec.class_names == BU3DFE_CLASSES
    assert spec.input_names() == ("texture", "depth")
    assert spec.output_names() == ("logits",)
    assert spec.inputs[1].shape == (1, 1, config.size, config.size)
    assert spec.preprocessing.size == (config.size, config.size)
    assert spec.preprocessing.frames == ("apex", "depth:apex")
    assert spec.preprocessing.feeds == (("texture", "apex"), ("depth", "depth:apex"))
    assert spec.au_names == ()


def test_default_is_light():
    model = AFNetM()
    assert sum(p.numel() for p in model.parameters()) < 3_000_000


def test_input_mode_spec_has_the_mask_input():
    spec = afnet_m_spec(AFNetMConfig(mask_mode="input"))
    assert spec.input_names() == ("texture", "depth", "mask")
    assert spec.preprocessing.feeds[-1] == ("mask", "mask:regions")
    assert spec.inputs[2].shape == (1, 1, 112, 112)


def test_constant_and_input_modes_agree_when_fed_the_region_mask():
    constant = seeded(AFNetMConfig(**SMALL))
    as_input = AFNetM(AFNetMConfig(**SMALL, mask_mode="input")).eval()
    # the mask is not a weight: one state_dict serves both modes
    as_input.load_state_dict(constant.state_dict())
    texture, depth = inputs(constant.config, batch=3)
    mask = torch.from_numpy(region_mask((32, 32)))[None, None].expand(3, 1, 32, 32)
    with torch.no_grad():
        a = constant(texture, depth)
        b = as_input(texture, depth, mask.contiguous())
        c = as_input(texture, depth, torch.zeros_like(mask))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # the mask matters: another mask gives other logits
    assert (a - c).abs().max() > 1e-4


def test_wrong_number_of_inputs_for_the_mode():
    model = AFNetM(AFNetMConfig(**SMALL))
    texture, depth = inputs(model.config)
    with pytest.raises(TypeError, match="takes no mask input"):
        model(texture, depth, torch.ones(2, 1, 32, 32))
    with pytest.raises(TypeError, match="needs the mask input"):
        AFNetM(AFNetMConfig(**SMALL, mask_mode="input"))(texture, depth)


def test_mask_attention_modulates_only_inside_the_mask():
    torch.manual_seed(0)
    attn = MaskAttention(8, 2).eval()
    x = torch.randn(2, 8, 6, 6)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 2:4, 1:5] = 1.0
    with torch.no_grad():
        out = attn(x, mask)
        hidden = attn.squeeze((x * mask).sum(dim=(2, 3), keepdim=True) / (mask.sum() + 1e-6))
        gamma, beta = torch.sigmoid(attn.scale(hidden)), torch.tanh(attn.shift(hidden))
    outside = mask.expand_as(x) == 0
    torch.testing.assert_close(out[outside], x[outside], rtol=0, atol=0)
    torch.testing.assert_close(out, x * (1 + mask * gamma) + mask * beta)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, torch.zeros_like(mask)), x, rtol=0, atol=0)


def test_fusion_weights_are_convex_and_combine_the_branches():
    model = seeded(AFNetMConfig(**SMALL))
    texture, depth = inputs(model.config)
    with torch.no_grad():
        fused, weights = model.features(texture, depth)
        logits = model(texture, depth)
        # re-run the branches by hand up to stage 1 and fuse with the reported weights
        masks = model.stage_masks(model.region_mask)
        t = model.mask_attn_texture[0](
            model.texture_stages[0](model.texture_stem(texture)), masks[0]
        )
        d = model.mask_attn_depth[0](model.depth_stages[0](model.depth_stem(depth)), masks[0])
    assert len(fused) == len(weights) == 4
    assert [f.shape[1:] for f in fused] == [(8, 16, 16), (16, 8, 8), (16, 4, 4), (32, 2, 2)]
    for w in weights:
        assert w.shape == (2, 2, 1, 1)
        torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 1, 1))
        assert (w > 0).all()
    torch.testing.assert_close(fused[0], weights[0][:, 0:1] * t + weights[0][:, 1:2] * d)
    pooled = torch.cat([f.mean(dim=(2, 3)) for f in fused], dim=1)
    torch.testing.assert_close(logits, model.classifier(pooled))


def test_stage_masks_pool_the_region_mask():
    model = AFNetM(AFNetMConfig(**SMALL))
    masks = model.stage_masks(model.region_mask)
    assert [m.shape[-1] for m in masks] == [16, 8, 4, 2]
    full = region_mask((32, 32))
    np.testing.assert_allclose(masks[0][0, 0].numpy(), full.reshape(16, 2, 16, 2).mean(axis=(1, 3)))


def test_custom_classes_and_config_validation():
    config = AFNetMConfig(**SMALL, class_names=("neutral", "happy", "sad"))
    assert AFNetM(config)(*inputs(config)).shape == (2, 3)
    for bad, match in [
        (dict(mask_mode="file"), "mask_mode"),
        (dict(size=120), "multiple of 16"),
        (dict(class_names=("a",)), "class_names"),
        (dict(convs_per_stage=0), "convs_per_stage"),
    ]:
        with pytest.raises(EdgeBuildError, match=match):
            AFNetMConfig(**bad)


def test_config_json_round_trip():
    config = AFNetMConfig(**SMALL, mask_mode="input")
    assert AFNetMConfig.from_json(config.to_json()) == config
