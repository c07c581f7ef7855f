"""Co-attention between the photo and edgemap branches: "common channel-wise feature
recalibration" [paper], realised squeeze-and-excitation style on both domains at once
[assumed]:

    z  = [GAP(X_photo); GAP(X_edge)]          (B, 2C)
    s  = sigmoid(W2 relu(W1 z))               (B, C),   W1: 2C -> 2C / r,  W2: 2C / r -> C
    X_photo' = s * X_photo,   X_edge' = s * X_edge

One set of channel weights ``s``, computed from both domains, rescales both feature maps.
"""

from __future__ import annotations

import torch
from torch import nn

# Initial bias of the excitation layer: sigmoid(3) ~ 0.95, so recalibration starts close to
# the identity and the pretrained top sees features at their usual scale; a zero bias would
# halve every channel (sigmoid(0) = 0.5) at the first step of fine-tuning.
EXCITATION_INIT_BIAS = 3.0


class CoAttention(nn.Module):
    """Common channel recalibration of photo and edgemap feature maps.

    Args:
        channels: C, channels of each input feature map.
        reduction: r, the squeeze ratio applied to the concatenated 2C descriptor
            (hidden width ``max(1, 2C // r)``).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"coattention_reduction must be >= 1, got {reduction}")
        hidden = max(1, 2 * channels // reduction)
        self.channels = channels
        self.squeeze = nn.Linear(2 * channels, hidden)
        self.excite = nn.Linear(hidden, channels)
        nn.init.constant_(self.excite.bias, EXCITATION_INIT_BIAS)

    def weights(self, photo: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        """Channel weights ``s`` ``(B, C)`` in (0, 1) from feature maps ``(B, C, h, w)`` each."""
        if photo.shape[:2] != edge.shape[:2]:
            raise ValueError(
                f"co-attention needs photo and edgemap features of the same batch and channels, "
                f"got {tuple(photo.shape)} and {tuple(edge.shape)}"
            )
        z = torch.cat([photo.mean(dim=(2, 3)), edge.mean(dim=(2, 3))], dim=1)
        return torch.sigmoid(self.excite(torch.relu(self.squeeze(z))))

    def forward(
        self, photo: torch.Tensor, edge: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Recalibrate both maps ``(B, C, h, w)``; returns ``(photo', edge', s)`` with s ``(B, C)``."""
        s = self.weights(photo, edge)
        scale = s[:, :, None, None]
        return photo * scale, edge * scale, s
