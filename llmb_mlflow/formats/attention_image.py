"""Render the attention weights of every layer and head as one PNG grid (for ``mlflow ui``)."""

from __future__ import annotations

import numpy as np

# Anchor colours of matplotlib's "viridis", interpolated into a 256-entry table.
_VIRIDIS = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
], dtype=np.float64)
_LUT = np.stack([
    np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_VIRIDIS)), _VIRIDIS[:, c])
    for c in range(3)
], axis=1).astype(np.uint8)
GAP = 4


def attention_grid(attention: np.ndarray, cell: int = 128) -> np.ndarray:
    """An RGB image (uint8) with one heatmap per layer (rows) and head (columns).

    Weights are shown on a square-root scale so weak but real attention stays visible."""
    n_layer, n_head, t, _ = attention.shape
    scale = max(1, cell // t)
    side = t * scale
    height = n_layer * side + (n_layer + 1) * GAP
    width = n_head * side + (n_head + 1) * GAP
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    levels = np.sqrt(np.clip(attention.astype(np.float32), 0, 1)) * 255
    for layer in range(n_layer):
        for head in range(n_head):
            tile = _LUT[levels[layer, head].astype(np.uint8)]
            tile = tile.repeat(scale, axis=0).repeat(scale, axis=1)
            top = GAP + layer * (side + GAP)
            left = GAP + head * (side + GAP)
            image[top:top + side, left:left + side] = tile
    return image
