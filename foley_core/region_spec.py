"""A region a user marked in an editor, as the project stores it.

An editor hands over plain data: brush layers (RGBA or grey arrays at the preview's size), or
a followed object's per-frame boxes. These functions turn them into a binary mask at the
video's size and into the project's `Region`, so any front end (the studio, a script) marks a
region the same way. No vision model is loaded here.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from foley_core.errors import MaskError
from foley_core.request import Region

__all__ = ["painted_mask", "mask_spec"]


def painted_mask(layers: Iterable[np.ndarray | None] | None, width: int, height: int) -> np.ndarray:
    """The union of brush `layers` (a pixel counts where its alpha, or for a layer without
    alpha its brightest channel, is above 0) as a float32 0/1 mask of `height` x `width`.
    MaskError when nothing was painted."""
    painted = None
    for layer in layers or []:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim == 3:
            alpha = layer[..., 3] if layer.shape[2] == 4 else layer.max(axis=-1)
        else:
            alpha = layer
        hit = alpha > 0
        painted = hit if painted is None else (painted | hit)
    if painted is None or not painted.any():
        raise MaskError("The mask is empty: paint over the object that makes the sound with "
                        "the brush, then press 'Use painted mask'.")
    return cv2.resize(painted.astype(np.uint8), (int(width), int(height)),
                      interpolation=cv2.INTER_NEAREST).astype(np.float32)


def mask_spec(kind: str, *, mask: np.ndarray | None = None, track_id: str | None = None,
              times_s: Sequence[float] = (), boxes: Sequence[Sequence[float]] = ()) -> Region:
    """The project's record of a region: `kind` "image" with its `mask` (H, W) in [0, 1];
    "track" with its `track_id` and one (x0, y0, x1, y1) box per time in `times_s`; anything
    else (or a kind without its data) the whole frame."""
    if kind == "track" and track_id is not None:
        return Region(kind="track", track_id=str(track_id),
                        track_boxes=tuple((float(t), *map(float, b)) for t, b in zip(times_s, boxes)))
    if kind == "image" and mask is not None:
        return Region(kind="image", image=mask)
    return Region()
