"""MMNet in PyTorch with the official module names, for loading official state_dicts.

The structure and parameter names follow the official `CASME2_5.py`/`CASME2_3.py`, `CA_block.py`
and `PC_module.py` (github.com/muse1998/MMNet, HEAD 7b62fa9), so a state_dict saved by that
training code loads unchanged. Differences from the official code, none of which changes a
number:

* `forward(onset, apex)` instead of nine frames plus a flag (only x1 and x5 were used);
* modules that never take part in the forward pass (`timeembed`, `pos`, `head`/`head1`,
  `vit_pos.cls_token`, `vit_pos.head`, `vit_pos.to_Mask`) are not built; their keys are
  accepted and ignored when loading;
* the dead `torch.var` statistics in the attention are dropped, and the CA attention map is
  broadcast instead of `repeat`-ed to C channels (same product, fewer ONNX nodes);
* the 224 -> 14 resize of the position branch is bilinear **without antialias**, which is what
  torchvision's tensor `Resize` did when MMNet was trained (torchvision PR #6209 changed it);
  TensorRT also rejects `Resize(antialias=1)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from edge.bundle import sha256_file
from edge.errors import CheckpointError
from edge.models.checkpoint import check_state_dict, read_state_dict, strip_prefix
from edge.models.loaded import LoadedModel
from edge.models.mmnet_spec import VARIANTS, MMNetConfig, mmnet_spec, variant_for

__all__ = ["MMNet", "LoadedModel", "load_mmnet", "build_mmnet", "DEAD_KEY_PREFIXES"]

EMBED_DIM = 512
POS_GRID = 14

#: Official parameters that never reach the output; present or absent, they are ignored.
DEAD_KEY_PREFIXES = (
    "timeembed",
    "pos.",
    "head.",
    "head1.",
    "vit_pos.cls_token",
    "vit_pos.head.",
    "vit_pos.to_Mask.",
)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=1, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformerPOS(nn.Module):
    """Position-calibration branch (`vit_pos`): 14x14 onset -> 196 tokens of 512."""

    def __init__(self, depth: int, mlp_ratio: int, dim: int = EMBED_DIM, heads: int = 4) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, POS_GRID * POS_GRID, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class CABlock(nn.Module):
    """Conv3x3-BN-ReLU-Conv1x1-BN + residual, then a spatial attention chained across blocks."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv1x1(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.attn = nn.Sequential(
            nn.Conv2d(2, 1, kernel_size=1, stride=1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid()
        )
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))

    def forward(
        self, x: torch.Tensor, attn_last: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out = self.relu(out + identity)
        pooled = torch.cat((out.mean(dim=1, keepdim=True), out.amax(dim=1, keepdim=True)), dim=1)
        attn = self.attn(pooled)
        if attn_last is not None:
            attn = attn_last * attn
        return out * attn, attn


class MainBranch(nn.Module):
    """`main_branch`: four CA blocks over the motion features, fused with the position map."""

    def __init__(self, fc_rows: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(180, 128, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(CABlock(128, 128, 1))
        self.layer2 = nn.Sequential(CABlock(128, 128, 2))
        self.layer3 = nn.Sequential(CABlock(128, 256, 2))
        self.layer4 = nn.Sequential(CABlock(256, 512, 2))
        self.fc = nn.Linear(EMBED_DIM * POS_GRID * POS_GRID, fc_rows)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        attn: Optional[torch.Tensor] = None
        for index, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x, attn = layer[0](x, attn)
            if index < 3:
                attn = self.maxpool(attn)
        return self.fc(torch.flatten(x + pos, 1))


class MMNet(nn.Module):
    """`forward(onset, apex)` -> logits of the variant's classes."""

    def __init__(self, config: MMNetConfig) -> None:
        super().__init__()
        self.config = config
        self.conv_act = nn.Sequential(
            nn.Conv2d(3, 180, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(180),
            nn.ReLU(inplace=True),
        )
        self.vit_pos = VisionTransformerPOS(config.vit_depth, config.mlp_ratio)
        self.main_branch = MainBranch(config.fc_rows)

    def forward(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        batch = onset.shape[0]
        small = F.interpolate(
            onset, size=(POS_GRID, POS_GRID), mode="bilinear", align_corners=False, antialias=False
        )
        pos = self.vit_pos(small).transpose(1, 2).reshape(batch, EMBED_DIM, POS_GRID, POS_GRID)
        logits = self.main_branch(self.conv_act(apex - onset), pos)
        if self.config.num_classes < self.config.fc_rows:
            logits = logits[:, : self.config.num_classes]
        return logits


def build_mmnet(variant: str = "casme2-5", *, seed: int = 0) -> LoadedModel:
    """A seeded, untrained MMNet (the stand-in demo until a trained checkpoint ships)."""
    if variant not in VARIANTS:
        raise CheckpointError(
            "unknown MMNet variant {!r}; known: {}".format(variant, ", ".join(VARIANTS))
        )
    config = VARIANTS[variant]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MMNet(config).eval()
    info = {"trained": False, "seed": seed, "checkpoint": None, "checkpoint_sha256": None}
    return LoadedModel(model=model, spec=mmnet_spec(config), info=info)


def _is_dead(key: str) -> bool:
    return any(key == p or key.startswith(p) for p in DEAD_KEY_PREFIXES)


def infer_config(
    state: Dict[str, torch.Tensor], path: Path, class_names: Optional[Sequence[str]]
) -> MMNetConfig:
    """Decide the variant from ViT depth, MLP width and fc rows found in the keys."""
    anchors = ("vit_pos.blocks.0.mlp.fc1.weight", "main_branch.fc.weight", "conv_act.0.weight")
    absent = [key for key in anchors if key not in state]
    if absent:
        sample = ", ".join(sorted(state)[:6])
        raise CheckpointError(
            "{}: not an MMNet state_dict: missing {} (its keys start: {}{})".format(
                path, ", ".join(absent), sample, ", ..." if len(state) > 6 else ""
            )
        )
    depth = 1 + max(
        int(m.group(1)) for m in (re.match(r"vit_pos\.blocks\.(\d+)\.", k) for k in state) if m
    )
    hidden = int(state["vit_pos.blocks.0.mlp.fc1.weight"].shape[0])
    if hidden % EMBED_DIM:
        raise CheckpointError(
            f"{path}: vit_pos MLP width {hidden} is not a multiple of {EMBED_DIM}: not an MMNet state_dict"
        )
    fc_rows = int(state["main_branch.fc.weight"].shape[0])
    known = variant_for(depth, hidden // EMBED_DIM, fc_rows)
    if known is not None:
        return known
    if not class_names:
        raise CheckpointError(
            "{}: MMNet with ViT depth {}, MLP ratio {} and {} fc rows is not a known variant "
            "({}); pass --class-names with up to {} names".format(
                path, depth, hidden // EMBED_DIM, fc_rows, ", ".join(VARIANTS), fc_rows
            )
        )
    if len(class_names) > fc_rows:
        raise CheckpointError(
            f"{path}: {len(class_names)} class names given but the fc has only {fc_rows} rows"
        )
    return MMNetConfig(
        variant=f"custom-d{depth}-m{hidden // EMBED_DIM}-c{fc_rows}",
        vit_depth=depth,
        mlp_ratio=hidden // EMBED_DIM,
        fc_rows=fc_rows,
        class_names=tuple(class_names),
        protocol="user-defined",
    )


def _check_keys(model: MMNet, state: Dict[str, torch.Tensor], path: Path) -> None:
    live = {k: v for k, v in state.items() if not _is_dead(k)}
    check_state_dict(model.state_dict(), live, path, f"MMNet {model.config.variant}")


def load_mmnet(
    path: Union[str, Path], *, class_names: Optional[Sequence[str]] = None
) -> LoadedModel:
    """Load an official (or compatible) MMNet state_dict; the variant is read from the keys."""
    path = Path(path)
    raw = read_state_dict(path)
    state, had_prefix = strip_prefix(raw)
    config = infer_config(state, path, class_names)
    model = MMNet(config)
    _check_keys(model, state, path)
    live = {k: v for k, v in state.items() if not _is_dead(k)}
    nonfinite = [
        k for k, v in live.items() if v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if nonfinite:
        raise CheckpointError(
            "{}: NaN or Inf in {} tensor(s): {}".format(path, len(nonfinite), ", ".join(nonfinite))
        )
    model.load_state_dict(live, strict=False)
    model.eval()
    spec = mmnet_spec(config)
    if class_names is not None and config.variant in VARIANTS:
        spec = spec.with_class_names(class_names)
    info = {
        "trained": True,
        "checkpoint": str(path),
        "checkpoint_sha256": sha256_file(path),
        "stripped_prefix": "module." if had_prefix else None,
        "ignored_dead_keys": sorted(k for k in state if _is_dead(k)),
    }
    return LoadedModel(model=model, spec=spec, info=info)
