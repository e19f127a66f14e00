"""Weight initialisation shared by the configured architectures (AFNet-M, FAMNet)."""

from __future__ import annotations

from torch import nn

__all__ = ["init_convs"]


def init_convs(model: nn.Module) -> None:
    """He (fan-out) initialisation of every convolution, as torchvision's ResNets: keeps
    activations from shrinking with depth, so even an untrained model's logits vary with
    the input."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
