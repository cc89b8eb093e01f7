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

__all__ = ["painted_mask", "mask_spec", "track_masks_arrays", "track_masks_bytes", "read_track_masks"]

# a track masks file holding more than this (uncompressed) is refused unread: no editor makes
# one (a 10 s selection at 60 fps on a 640 px grid is a few MB of runs)
MAX_TRACK_MASKS_BYTES = 256 * 1024 * 1024
MAX_MASK_SIDE = 16384


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
              times_s: Sequence[float] = (), boxes: Sequence[Sequence[float]] = (),
              masks: Sequence[dict | None] = (), source: str | None = None) -> Region:
    """The project's record of a region: `kind` "image" with its `mask` (H, W) in [0, 1];
    "track" with its `track_id`, one (x0, y0, x1, y1) box per time in `times_s` and, when
    every one of them has one (a followed painted mask), its run-length mask in `masks` (so
    the shape, not just the box, is what a stored request gives back) and the `source` that
    found it; anything else (or a kind without its data) the whole frame."""
    if kind == "track" and track_id is not None:
        rows = tuple((float(t), *map(float, b)) for t, b in zip(times_s, boxes))
        masks = list(masks)
        grids = {tuple(m["size"]) for m in masks if m is not None}
        # a track whose frames are partly plain boxes, or on several grids, is kept as boxes
        keep = len(masks) == len(rows) and all(m is not None for m in masks) and len(grids) == 1
        return Region(kind="track", track_id=str(track_id), track_boxes=rows,
                      track_masks=tuple(masks) if keep else None, track_source=source or None)
    if kind == "image" and mask is not None:
        return Region(kind="image", image=mask)
    return Region()


def track_masks_arrays(masks: Sequence[dict]) -> dict[str, np.ndarray]:
    """A track's run-length masks (one grid) as the arrays of its masks file: `size` (h, w),
    `starts` (where each frame's runs begin in `counts`, and the end), `counts` (every run)."""
    counts = [np.asarray(m["counts"], np.int64) for m in masks]
    starts = np.concatenate([[0], np.cumsum([c.size for c in counts])]).astype(np.int64)
    return {"size": np.asarray(masks[0]["size"], np.int64), "starts": starts,
            "counts": np.concatenate(counts) if counts else np.zeros(0, np.int64)}


def track_masks_bytes(masks: Sequence[dict]) -> bytes:
    """The masks file: `track_masks_arrays` in a compressed .npz (exact: the runs themselves)."""
    from io import BytesIO

    buf = BytesIO()
    np.savez_compressed(buf, **track_masks_arrays(masks))
    return buf.getvalue()


def read_track_masks(path) -> tuple[dict, ...]:
    """The run-length masks a masks file holds (`track_masks_bytes`); MaskError saying what is
    wrong when it is not one (Region checks that the runs fill their grid)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) != {"size", "starts", "counts"}:
                raise MaskError(f"it holds {sorted(npz.files)}, not size, starts and counts")
            if sum(i.file_size for i in npz.zip.infolist()) > MAX_TRACK_MASKS_BYTES:
                raise MaskError("it is larger than any track's masks")
            size, starts, counts = npz["size"], npz["starts"], npz["counts"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise MaskError(f"not a masks file: {err}") from None
    if not all(a.ndim == 1 and a.dtype.kind in "iu" for a in (size, starts, counts)):
        raise MaskError("its arrays are not lists of whole numbers")
    if size.size != 2 or not (0 < size.min() and size.max() <= MAX_MASK_SIDE):
        raise MaskError(f"its grid size {size.tolist()} is not a (height, width) pair of usable sides")
    if starts.size < 2 or starts[0] != 0 or starts[-1] != counts.size or np.any(np.diff(starts) < 0):
        raise MaskError("its frame index does not match its runs")
    h, w = (int(v) for v in size)
    sums = np.array([counts[a:b].sum() for a, b in zip(starts[:-1], starts[1:])])
    if np.any(counts < 0) or np.any(sums != h * w):
        raise MaskError(f"the runs of a frame do not cover its {w}x{h} grid")
    return tuple({"size": [h, w], "counts": counts[a:b].tolist()} for a, b in zip(starts[:-1], starts[1:]))
