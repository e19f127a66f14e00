"""FAMNet in PyTorch: a re-implementation from the paper's abstract (no public code exists).

What the abstract fixes: AMNet2D (a 2D CNN on the apex frame) and AMNet3D (a 3D CNN on a clip
of frames), each ResNet-18-style with attention at several stages; joint AU detection with
hard parameter sharing (a multi-label head beside the emotion head); late fusion of the two
branches' scores. Everything else is ours (`FAMNetConfig`), in TensorRT-friendly ops only
(Conv 2D/3D, BN, ReLU, MaxPool 2D/3D, ReduceMean/ReduceMax, Sigmoid, Mul, Add, Gemm):

* **AMNet2D**: ResNet-18 (7x7/2 stem, 3x3/2 max-pool, BasicBlocks x `blocks`, widths
  `base_width` * 1, 2, 4, 8), CBAM attention (channel, then spatial) after every stage, global
  average pool.
* **AMNet3D**: the same in 3D on [B, 3, T, H, W] (stem 3x7x7 stride 1x2x2, 1x3x3/1x2x2
  max-pool, 3x3x3 BasicBlocks striding time and space from stage 2 on, as torchvision's r3d_18),
  CBAM attention with a 3x7x7 spatio-temporal gate after every stage, global average pool.
* **Heads**: each branch has an emotion head and an AU head (linear layers on the shared
  pooled features: hard parameter sharing).
* **Late fusion** of the two branches' scores (logits), separately for emotions and AUs:
  `fused = a * branch2d + (1 - a) * branch3d` with `(a, 1 - a) = softmax(w)`, `w` learned
  and initialised to zero (the mean); `fusion="mean"` fixes a = 0.5. Softmax/sigmoid are
  applied by the runtime, not in the graph.
* **Init.** Convolutions get He (fan-out) initialisation, as torchvision's ResNets.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from edge.models.famnet_spec import FAMNetConfig
from edge.models.init import init_convs

__all__ = ["FAMNet", "CBAM", "LateFusion"]


def _nd(dims: int):
    """(Conv, BatchNorm) for 2D or 3D."""
    return (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)


class BasicBlock(nn.Module):
    """ResNet BasicBlock in 2D or 3D: two 3x3(x3) conv-BN, identity or 1x1(x1) projection."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        conv, bn = _nd(dims)
        self.conv1 = conv(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv(cout, cout, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = bn(cout)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                conv(cin, cout, kernel_size=1, stride=stride, bias=False), bn(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + identity)


class CBAM(nn.Module):
    """Channel attention (shared MLP on mean- and max-pooled features), then a spatial gate."""

    def __init__(self, dims: int, channels: int, reduction: int) -> None:
        super().__init__()
        conv, _ = _nd(dims)
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(
            conv(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            conv(hidden, channels, 1, bias=False),
        )
        kernel = 7 if dims == 2 else (3, 7, 7)
        padding = 3 if dims == 2 else (1, 3, 3)
        self.spatial = conv(2, 1, kernel_size=kernel, padding=padding, bias=False)
        self.axes = tuple(range(2, 2 + dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=self.axes, keepdim=True)
        peak = x.amax(dim=self.axes, keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(peak))
        pooled = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class Heads(nn.Module):
    """Emotion and AU heads on one branch's pooled features (hard parameter sharing)."""

    def __init__(self, width: int, num_classes: int, num_aus: int) -> None:
        super().__init__()
        self.emotion = nn.Linear(width, num_classes)
        self.au = nn.Linear(width, num_aus)

    def forward(self, pooled: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.emotion(pooled), self.au(pooled)


class LateFusion(nn.Module):
    """Convex combination of the two branches' scores, one weight pair per task."""

    def __init__(self, rule: str) -> None:
        super().__init__()
        self.rule = rule
        self.emotion_weights = nn.Parameter(torch.zeros(2))
        self.au_weights = nn.Parameter(torch.zeros(2))

    def weights(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(emotion, AU) weights [2] = (weight of AMNet2D, weight of AMNet3D)."""
        if self.rule == "mean":
            half = torch.full((2,), 0.5, dtype=self.emotion_weights.dtype)
            return half, half
        return torch.softmax(self.emotion_weights, dim=0), torch.softmax(self.au_weights, dim=0)

    def forward(
        self, e2d: torch.Tensor, e3d: torch.Tensor, a2d: torch.Tensor, a3d: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        we, wa = self.weights()
        return we[0] * e2d + we[1] * e3d, wa[0] * a2d + wa[1] * a3d


def _layers(dims: int, widths: Sequence[int], blocks: Sequence[int]) -> nn.ModuleList:
    stages = []
    cin = widths[0]
    for index, (width, count) in enumerate(zip(widths, blocks)):
        stride = 1 if index == 0 else 2
        seq = [BasicBlock(dims, cin, width, stride)]
        seq += [BasicBlock(dims, width, width, 1) for _ in range(count - 1)]
        stages.append(nn.Sequential(*seq))
        cin = width
    return nn.ModuleList(stages)


class FAMNet(nn.Module):
    """`forward(apex, clip)` -> (emotion logits [B, C], AU logits [B, A]).

    Modules are top-level attributes called from `forward`, so ONNX node names start with
    their names (`/amnet3d_stem/...`, `/amnet2d_attn.1/...`, `/amnet3d_heads/...`,
    `/fusion/...`), which is what `PRECISION_HINTS` matches.
    """

    def __init__(self, config: Optional[FAMNetConfig] = None) -> None:
        super().__init__()
        config = config if config is not None else FAMNetConfig()
        self.config = config
        widths, width = config.widths, config.base_width
        self.amnet2d_stem = nn.Sequential(
            nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.amnet2d_layers = _layers(2, widths, config.blocks)
        self.amnet2d_attn = nn.ModuleList(CBAM(2, w, config.reduction) for w in widths)
        self.amnet2d_heads = Heads(widths[-1], config.num_classes, len(config.au_names))
        self.amnet3d_stem = nn.Sequential(
            nn.Conv3d(
                3, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False
            ),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.amnet3d_layers = _layers(3, widths, config.blocks)
        self.amnet3d_attn = nn.ModuleList(CBAM(3, w, config.reduction) for w in widths)
        self.amnet3d_heads = Heads(widths[-1], config.num_classes, len(config.au_names))
        self.fusion = LateFusion(config.fusion)
        init_convs(self)

    def branch_outputs(self, apex: torch.Tensor, clip: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Both branches' scores before fusion: emotion_2d, au_2d, emotion_3d, au_3d."""
        x = self.amnet2d_stem(apex)
        for layer, attn in zip(self.amnet2d_layers, self.amnet2d_attn):
            x = attn(layer(x))
        e2d, a2d = self.amnet2d_heads(x.mean(dim=(2, 3)))
        y = self.amnet3d_stem(clip)
        for layer, attn in zip(self.amnet3d_layers, self.amnet3d_attn):
            y = attn(layer(y))
        e3d, a3d = self.amnet3d_heads(y.mean(dim=(2, 3, 4)))
        return {"emotion_2d": e2d, "au_2d": a2d, "emotion_3d": e3d, "au_3d": a3d}

    def forward(self, apex: torch.Tensor, clip: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.branch_outputs(apex, clip)
        return self.fusion(out["emotion_2d"], out["emotion_3d"], out["au_2d"], out["au_3d"])
