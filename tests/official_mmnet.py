"""An independent description of the official MMNet, for tests only.

`official_shapes` lists every state_dict key the official training code saves, written from
the official module definitions (CASME2_5.py / CASME2_3.py, CA_block.py, PC_module.py) and the
fact sheet, not from edge.models. `official_forward` recomputes the official forward pass
functionally from a raw state_dict, including the parts edge.models changes in form only
(`repeat` of the attention map, `view` of the position map), so a wiring mistake in
edge.models shows up as a numeric difference.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

Shapes = Dict[str, Tuple[int, ...]]

#: (depth, mlp hidden, AU head name) per official variant.
VARIANT_LAYOUT = {"casme2-5": (2, 2048, "head"), "casme2-3": (3, 1024, "head1")}
CA_LAYERS = ((1, 128, 128), (2, 128, 128), (3, 128, 256), (4, 256, 512))


def _bn(shapes: Shapes, prefix: str, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.{name}"] = (channels,)
    shapes[prefix + ".num_batches_tracked"] = ()


def official_shapes(variant: str = "casme2-5", fc_rows: int = 5) -> Shapes:
    depth, hidden, au_head = VARIANT_LAYOUT[variant]
    s: Shapes = {"timeembed": (1, 4, 111, 111), "conv_act.0.weight": (180, 3, 3, 3)}
    _bn(s, "conv_act.1", 180)
    s["pos.0.weight"] = (512, 3, 1, 1)
    _bn(s, "pos.1", 512)
    s["vit_pos.cls_token"] = (1, 1, 512)
    s["vit_pos.pos_embed"] = (1, 196, 512)
    s["vit_pos.patch_embed.proj.weight"] = (512, 3, 1, 1)
    s["vit_pos.patch_embed.proj.bias"] = (512,)
    for i in range(depth):
        p = f"vit_pos.blocks.{i}."
        s[p + "norm1.weight"] = s[p + "norm1.bias"] = (512,)
        s[p + "attn.qkv.weight"], s[p + "attn.qkv.bias"] = (1536, 512), (1536,)
        s[p + "attn.proj.weight"], s[p + "attn.proj.bias"] = (512, 512), (512,)
        s[p + "norm2.weight"] = s[p + "norm2.bias"] = (512,)
        s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"] = (hidden, 512), (hidden,)
        s[p + "mlp.fc2.weight"], s[p + "mlp.fc2.bias"] = (512, hidden), (512,)
    s["vit_pos.norm.weight"] = s["vit_pos.norm.bias"] = (512,)
    s["vit_pos.head.weight"], s["vit_pos.head.bias"] = (5, 512), (5,)
    s["vit_pos.to_Mask.0.weight"], s["vit_pos.to_Mask.0.bias"] = (1, 512), (1,)
    s["main_branch.conv1.weight"] = (128, 180, 3, 3)
    _bn(s, "main_branch.bn1", 128)
    for index, cin, cout in CA_LAYERS:
        p = f"main_branch.layer{index}.0."
        s[p + "conv1.weight"] = (cout, cin, 3, 3)
        _bn(s, p + "bn1", cout)
        s[p + "conv2.weight"] = (cout, cout, 1, 1)
        _bn(s, p + "bn2", cout)
        s[p + "attn.0.weight"] = (1, 2, 1, 1)
        _bn(s, p + "attn.1", 1)
        if index > 1:
            s[p + "downsample.0.weight"] = (cout, cin, 1, 1)
            _bn(s, p + "downsample.1", cout)
    s["main_branch.fc.weight"], s["main_branch.fc.bias"] = (fc_rows, 100352), (fc_rows,)
    s[au_head + ".1.weight"] = (38, 12544)
    return s


def official_state_dict(variant: str = "casme2-5", *, seed: int = 0, fc_rows: int = 5):
    """Random weights at trained-like scales, with non-trivial BatchNorm statistics."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(variant, fc_rows).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) * 1.5 + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=gen) * 0.2
        elif len(shape) == 1 and key.endswith("weight"):  # BN / LN scale
            state[key] = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif key.endswith("bias"):
            state[key] = 0.05 * torch.randn(shape, generator=gen)
        elif key.endswith("pos_embed") or key.endswith("cls_token") or key == "timeembed":
            state[key] = 0.02 * torch.randn(shape, generator=gen)
        else:
            fan_in = int(math.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=gen) * math.sqrt(1.0 / fan_in)
    return state


def _bn_apply(x, s, p):
    return F.batch_norm(
        x,
        s[p + ".running_mean"],
        s[p + ".running_var"],
        s[p + ".weight"],
        s[p + ".bias"],
        training=False,
        eps=1e-5,
    )


def _vit(x, s, depth):
    b = x.shape[0]
    x = F.conv2d(x, s["vit_pos.patch_embed.proj.weight"], s["vit_pos.patch_embed.proj.bias"])
    x = x.flatten(2).transpose(1, 2) + s["vit_pos.pos_embed"]
    for i in range(depth):
        p = f"vit_pos.blocks.{i}."
        h = F.layer_norm(x, (512,), s[p + "norm1.weight"], s[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, s[p + "attn.qkv.weight"], s[p + "attn.qkv.bias"])
        qkv = qkv.reshape(b, 196, 3, 4, 128).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * 128**-0.5).softmax(dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(b, 196, 512)
        x = x + F.linear(h, s[p + "attn.proj.weight"], s[p + "attn.proj.bias"])
        h = F.layer_norm(x, (512,), s[p + "norm2.weight"], s[p + "norm2.bias"], eps=1e-6)
        h = F.gelu(F.linear(h, s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, s[p + "mlp.fc2.weight"], s[p + "mlp.fc2.bias"])
    return F.layer_norm(x, (512,), s["vit_pos.norm.weight"], s["vit_pos.norm.bias"], eps=1e-6)


def official_forward(state, onset, apex, variant: str = "casme2-5"):
    """The official MMNet forward for one state_dict, written functionally."""
    s = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    depth = VARIANT_LAYOUT[variant][0]
    b = onset.shape[0]
    small = F.interpolate(onset, size=[14, 14], mode="bilinear", align_corners=False)
    pos = _vit(small, s, depth).transpose(1, 2).contiguous().view(b, 512, 14, 14)
    x = F.relu(
        _bn_apply(
            F.conv2d(apex - onset, s["conv_act.0.weight"], stride=2, padding=1), s, "conv_act.1"
        )
    )
    x = F.relu(
        _bn_apply(F.conv2d(x, s["main_branch.conv1.weight"], padding=1), s, "main_branch.bn1")
    )
    attn_last = None
    for index, _cin, cout in CA_LAYERS:
        p = f"main_branch.layer{index}.0."
        stride = 1 if index == 1 else 2
        identity = x
        out = F.relu(
            _bn_apply(F.conv2d(x, s[p + "conv1.weight"], stride=stride, padding=1), s, p + "bn1")
        )
        out = _bn_apply(F.conv2d(out, s[p + "conv2.weight"]), s, p + "bn2")
        if index > 1:
            identity = _bn_apply(
                F.conv2d(x, s[p + "downsample.0.weight"], stride=stride), s, p + "downsample.1"
            )
        out = F.relu(out + identity)
        pooled = torch.cat((out.mean(dim=1, keepdim=True), out.max(dim=1, keepdim=True)[0]), 1)
        attn = torch.sigmoid(_bn_apply(F.conv2d(pooled, s[p + "attn.0.weight"]), s, p + "attn.1"))
        if attn_last is not None:
            attn = attn_last * attn
        attn = attn.repeat(1, cout, 1, 1)
        x = out * attn
        attn_last = F.max_pool2d(attn[:, 0, :, :].unsqueeze(1), 3, 2, 1)
    x = torch.flatten(x + pos, 1)
    return F.linear(x, s["main_branch.fc.weight"], s["main_branch.fc.bias"])
