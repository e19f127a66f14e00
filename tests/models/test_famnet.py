"""FAMNet re-implementation: branch shapes, emotion and AU heads, and the late-fusion rule."""

from __future__ import annotations

import pytest

from edge.errors import EdgeBuildError
from edge.models.famnet_spec import CASME2_5_CLASSES, DEFAULT_AUS, FAMNetConfig, famnet_spec

torch = pytest.importorskip("torch")

from edge.models.famnet import FAMNet  # noqa: E402

pytestmark = pytest.mark.torch

SMALL = dict(base_width=8, size=32, clip_length=4, reduction=2)


def inputs(config, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    side, frames = config.size, config.clip_length
    apex = torch.randn(batch, 3, side, side, generator=g)
    return apex, torch.randn(batch, 3, frames, side, side, generator=g)


def test_default_spec_and_parameter_count():
    config = FAMNetConfig()
    spec = famnet_spec(config)
    assert spec.arch == "famnet" and spec.class_names == CASME2_5_CLASSES
    assert spec.au_names == DEFAULT_AUS and len(DEFAULT_AUS) == 12
    assert spec.input_names() == ("apex", "clip")
    assert spec.inputs[1].shape == (1, 3, 8, 112, 112)
    assert spec.output_names() == ("logits", "au_logits")
    assert spec.outputs[1].shape == (1, 12)
    assert spec.preprocessing.frames == ("apex",) + tuple(f"clip:{k}" for k in range(8))
    assert spec.preprocessing.feeds == (("apex", "apex"), ("clip", "clip"))
    model = FAMNet(config)
    branch2d = sum(p.numel() for n, p in model.named_parameters() if n.startswith("amnet2d"))
    # ResNet-18 (11.2M without its 1000-class fc) plus CBAM and the two heads
    assert 11_000_000 < branch2d < 11_500_000


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"clip_length": 6, "size": 48, "au_names": ("AU4", "AU12")},
        {"blocks": (1, 1, 1, 1), "class_names": ("positive", "negative", "surprise")},
    ],
    ids=["small", "t6-48px-2aus", "shallow-3cls"],
)
def test_output_shapes_follow_the_config(overrides):
    config = FAMNetConfig(**{**SMALL, **overrides})
    model = FAMNet(config).eval()
    with torch.no_grad():
        logits, au_logits = model(*inputs(config))
        branches = model.branch_outputs(*inputs(config))
    assert logits.shape == (2, config.num_classes)
    assert au_logits.shape == (2, len(config.au_names))
    assert model.amnet2d_heads.au.out_features == len(config.au_names)
    assert model.amnet3d_heads.au.out_features == len(config.au_names)
    assert branches["emotion_3d"].shape == logits.shape
    assert branches["au_2d"].shape == au_logits.shape
    spec = famnet_spec(config)
    assert spec.outputs[0].shape[1] == config.num_classes
    assert spec.outputs[1].shape[1] == len(config.au_names)


def test_learned_late_fusion_is_the_documented_convex_combination():
    config = FAMNetConfig(**SMALL)
    torch.manual_seed(1)
    model = FAMNet(config).eval()
    with torch.no_grad():
        model.fusion.emotion_weights.copy_(torch.tensor([0.3, -0.9]))
        model.fusion.au_weights.copy_(torch.tensor([-0.2, 0.5]))
        apex, clip = inputs(config)
        logits, au_logits = model(apex, clip)
        b = model.branch_outputs(apex, clip)
    we = torch.softmax(torch.tensor([0.3, -0.9]), 0)
    wa = torch.softmax(torch.tensor([-0.2, 0.5]), 0)
    torch.testing.assert_close(logits, we[0] * b["emotion_2d"] + we[1] * b["emotion_3d"])
    torch.testing.assert_close(au_logits, wa[0] * b["au_2d"] + wa[1] * b["au_3d"])
    # the two branches really differ, so the check above pins the weights down
    assert (b["emotion_2d"] - b["emotion_3d"]).abs().max() > 1e-3


@pytest.mark.parametrize("rule", ["learned", "mean"])
def test_untrained_fusion_is_the_mean(rule):
    config = FAMNetConfig(**SMALL, fusion=rule)
    model = FAMNet(config).eval()
    with torch.no_grad():
        if rule == "mean":  # the mean rule ignores the weights
            model.fusion.emotion_weights.fill_(3.0)
            model.fusion.emotion_weights[1] = -3.0
        logits, au_logits = model(*inputs(config))
        b = model.branch_outputs(*inputs(config))
    torch.testing.assert_close(logits, (b["emotion_2d"] + b["emotion_3d"]) / 2)
    torch.testing.assert_close(au_logits, (b["au_2d"] + b["au_3d"]) / 2)


def test_branches_read_their_own_input():
    config = FAMNetConfig(**SMALL)
    model = FAMNet(config).eval()
    apex, clip = inputs(config)
    with torch.no_grad():
        base = model.branch_outputs(apex, clip)
        other_clip = model.branch_outputs(apex, clip.flip(2))
    torch.testing.assert_close(base["emotion_2d"], other_clip["emotion_2d"])
    assert (base["emotion_3d"] - other_clip["emotion_3d"]).abs().max() > 1e-5


def test_config_validation_and_json():
    for bad, match in [
        (dict(fusion="max"), "fusion"),
        (dict(clip_length=1), "clip_length"),
        (dict(au_names=()), "au_names"),
        (dict(blocks=(2, 0, 2, 2)), "blocks"),
    ]:
        with pytest.raises(EdgeBuildError, match=match):
            FAMNetConfig(**bad)
    config = FAMNetConfig(**SMALL, au_names=("AU1", "AU4"))
    assert FAMNetConfig.from_json(config.to_json()) == config
