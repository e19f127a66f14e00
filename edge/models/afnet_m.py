"""AFNet-M in PyTorch: a re-implementation from the paper's abstract (no public code exists).

What the abstract fixes: a 2D texture branch and a 3D (depth) branch; a mask attention module
that learns two modulation vectors from a facial-region mask; adaptive fusion at convolutional
stages through computed importance weights; a classifier. Everything else is ours
(`AFNetMConfig`), chosen to be light and TensorRT-friendly (Conv, BN, ReLU, ReduceSum/Mean,
Sigmoid, Tanh, Softmax, Mul/Add/Div, Gemm):

* **Branches.** Each branch is a stride-2 stem and `len(widths)` stages of 3x3 conv-BN-ReLU;
  stage 1 keeps the stem's resolution, later stages halve it.
* **Mask attention** (per branch, after every stage). The region mask is average-pooled to the
  stage's resolution; a mask-weighted average of the features over the salient regions gives a
  channel descriptor, and a bottleneck turns it into the two modulation vectors: a channel scale
  `gamma = sigmoid(.)` and a channel shift `beta = tanh(.)`. They act only inside the regions:
  `x * (1 + m * gamma) + m * beta`, so a zero mask leaves the features unchanged.
* **Adaptive fusion** (after every stage). Global average pools of both branches go through a
  bottleneck to two scores per sample; their softmax are the importance weights
  `w_texture + w_depth = 1`, and the fused map is `w_texture * texture + w_depth * depth`.
* **Classifier.** The global average pools of the fused maps of all stages are concatenated
  (multi-scale) and a linear layer gives the logits.
* **Mask.** `mask_mode="constant"` builds `edge.face_regions.region_mask(size)` into the model as
  a non-persistent buffer (not in the checkpoint, so one checkpoint serves both modes);
  `mask_mode="input"` takes it as a third input `mask` [B, 1, H, W].
* **Init.** Convolutions get He (fan-out) initialisation, as torchvision's ResNets.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from edge.face_regions import region_mask
from edge.models.afnet_m_spec import AFNetMConfig
from edge.models.init import init_convs

__all__ = ["AFNetM", "MaskAttention", "AdaptiveFusion"]

_EPS = 1e-6


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def _stages(in_width: int, config: AFNetMConfig) -> nn.ModuleList:
    """One branch's conv stages; stage 1 keeps the stem's resolution, later ones halve it."""
    stages = []
    cin = in_width
    for index, width in enumerate(config.widths):
        layers = [ConvBNReLU(cin, width, 1 if index == 0 else 2)]
        layers += [ConvBNReLU(width, width, 1) for _ in range(config.convs_per_stage - 1)]
        stages.append(nn.Sequential(*layers))
        cin = width
    return nn.ModuleList(stages)


class MaskAttention(nn.Module):
    """Two modulation vectors (channel scale and shift) from mask-pooled features."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.squeeze = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True))
        self.scale = nn.Conv2d(hidden, channels, 1)
        self.shift = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        area = mask.sum(dim=(2, 3), keepdim=True) + _EPS
        descriptor = (x * mask).sum(dim=(2, 3), keepdim=True) / area
        hidden = self.squeeze(descriptor)
        gamma = torch.sigmoid(self.scale(hidden))
        beta = torch.tanh(self.shift(hidden))
        return x * (1.0 + mask * gamma) + mask * beta


class AdaptiveFusion(nn.Module):
    """Importance weights (softmax of two scores) for texture and depth at one stage."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.score = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 2, 1)
        )

    def forward(
        self, texture: torch.Tensor, depth: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The fused map and the weights [B, 2, 1, 1] (w_texture, w_depth; sum 1 per sample)."""
        pooled = torch.cat(
            (texture.mean(dim=(2, 3), keepdim=True), depth.mean(dim=(2, 3), keepdim=True)), dim=1
        )
        w = torch.softmax(self.score(pooled), dim=1)
        return w[:, 0:1] * texture + w[:, 1:2] * depth, w


class AFNetM(nn.Module):
    """`forward(texture, depth[, mask])` -> expression logits [B, num_classes].

    Modules are top-level attributes called from `forward`, so ONNX node names start with
    their names (`/texture_stages.0/...`, `/mask_attn_depth.2/...`, `/fusion.1/...`,
    `/classifier/...`), which is what `PRECISION_HINTS` matches.
    """

    def __init__(self, config: Optional[AFNetMConfig] = None) -> None:
        super().__init__()
        config = config if config is not None else AFNetMConfig()
        self.config = config
        widths, reduction = config.widths, config.reduction
        self.texture_stem = ConvBNReLU(3, config.stem_width, 2)
        self.depth_stem = ConvBNReLU(1, config.stem_width, 2)
        self.texture_stages = _stages(config.stem_width, config)
        self.depth_stages = _stages(config.stem_width, config)
        self.mask_attn_texture = nn.ModuleList(MaskAttention(w, reduction) for w in widths)
        self.mask_attn_depth = nn.ModuleList(MaskAttention(w, reduction) for w in widths)
        self.fusion = nn.ModuleList(AdaptiveFusion(w, reduction) for w in widths)
        self.classifier = nn.Linear(sum(widths), config.num_classes)
        mask = torch.from_numpy(region_mask((config.size, config.size)))[None, None]
        self.register_buffer("region_mask", mask, persistent=False)
        init_convs(self)

    def stage_masks(self, mask: torch.Tensor) -> List[torch.Tensor]:
        """The mask average-pooled to each stage's resolution (stem /2, then /2 per stage)."""
        masks = []
        factor = 2
        for index in range(len(self.config.widths)):
            if index > 0:
                factor *= 2
            masks.append(F.avg_pool2d(mask, kernel_size=factor, stride=factor))
        return masks

    def features(
        self, texture: torch.Tensor, depth: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per stage: the fused maps and the importance weights (for inspection and tests)."""
        masks = self.stage_masks(self.region_mask if mask is None else mask)
        t = self.texture_stem(texture)
        d = self.depth_stem(depth)
        fused, weights = [], []
        for index, fusion in enumerate(self.fusion):
            t = self.mask_attn_texture[index](self.texture_stages[index](t), masks[index])
            d = self.mask_attn_depth[index](self.depth_stages[index](d), masks[index])
            f, w = fusion(t, d)
            fused.append(f)
            weights.append(w)
        return fused, weights

    def forward(
        self, texture: torch.Tensor, depth: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if (mask is None) != (self.config.mask_mode == "constant"):
            raise TypeError(
                f"AFNet-M with mask_mode={self.config.mask_mode!r} "
                + ("takes no mask input" if mask is not None else "needs the mask input")
            )
        fused, _ = self.features(texture, depth, mask)
        pooled = torch.cat([f.mean(dim=(2, 3)) for f in fused], dim=1)
        return self.classifier(pooled)
