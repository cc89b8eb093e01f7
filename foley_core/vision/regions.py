"""Regions in video pixels as per-frame masks: what the model's mask attention sees.

A `request.Region` (a box, a mask image, a moving box) or a mask array is checked against the
video's size before any model loads (`validate_region`) and rasterised at the model's frame
size for the frames' times (`masks_for_frames`). Boxes use `tracks.validate_box` and
`tracks.box_mask`: one rasteriser for boxes, tracks and the synthetic scenes.
"""

from __future__ import annotations

import numpy as np

from foley_core.errors import MaskError
from foley_core.images import read_mask_image
from foley_core.request import Region
from foley_core.vision.tracks import Track, TrackFrame, box_mask, track_masks, validate_box


def mask_array_to_model(mask: np.ndarray, n_frames: int, width: int, height: int,
                         video_wh: tuple[int, int]) -> np.ndarray:
    """An (H, W) / (T, H, W) mask at the video's size (0..1 or 0..255) as (n_frames, height,
    width) float32 in 0..1; a (T, H, W) one spans the frames evenly."""
    import cv2

    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise MaskError(f"a mask must be (H, W) or (T, H, W), got shape {arr.shape}")
    vw, vh = video_wh
    if arr.shape[-2:] != (vh, vw):
        raise MaskError(f"the mask is {arr.shape[-1]}x{arr.shape[-2]} pixels but the video is {vw}x{vh}; "
                        "draw the mask at the video's frame size")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise MaskError("the mask has NaN or infinite values")
    if arr.max() > 1.0:
        arr = arr / 255.0 if arr.max() <= 255 else arr / arr.max()
    arr = np.clip(arr, 0.0, 1.0)
    if arr.ndim == 2:
        arr = arr[None]
    # a (T, H, W) mask spans the selection evenly: nearest mask per model frame
    idx = np.minimum((np.arange(n_frames) * arr.shape[0]) // max(n_frames, 1), arr.shape[0] - 1)
    small = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA) for m in arr])
    return np.clip(small[idx], 0.0, 1.0).astype(np.float32)


def track_from_spec(track, video_wh: tuple[int, int]) -> Track:
    """A Track from a `Region.track_spec()`: a Track as it is, or a {"times_s", "boxes"} /
    detect-JSON dict checked against the video's frame. A stored track's "masks" (one RLE per
    box) come back on its frames, so its masks are the followed shape, not its boxes."""
    if isinstance(track, Track):
        return track
    if not isinstance(track, dict):
        raise MaskError("a track must be a dict {'times_s': [...], 'boxes': [...]} or a detect track")
    try:
        if "frames" in track:
            times = [float(f["time_s"]) for f in track["frames"]]
            boxes = [list(map(float, f["box"])) for f in track["frames"]]
        else:
            times = [float(t) for t in track["times_s"]]
            boxes = [list(map(float, b)) for b in track["boxes"]]
    except (KeyError, TypeError, ValueError) as err:
        raise MaskError(f"the track is malformed ({err}); expected times_s and boxes [x0, y0, x1, y1]") from None
    if not times or len(times) != len(boxes) or any(len(b) != 4 for b in boxes):
        raise MaskError("the track needs one box [x0, y0, x1, y1] per time, and at least one")
    # a detect-JSON track ("frames") is the user's pick whatever found it; a stored one keeps
    # its source (a followed object's contacts are timed from its centre) and its masks
    stored = "frames" not in track
    masks = (track.get("masks") if stored else None) or [None] * len(times)
    if len(masks) != len(times):
        raise MaskError(f"the track has {len(times)} boxes but {len(masks)} masks; it needs one mask per box")
    vw, vh = video_wh
    for b in boxes:
        validate_box(b, vw, vh)
    order = np.argsort(times, kind="stable")
    frames = [TrackFrame(times[i], np.asarray(boxes[i], np.float64), masks[i]) for i in order]
    return Track(id=str(track.get("id", "track")), label=str(track.get("label", "")),
                 source=str(track.get("source") or "user") if stored else "user",
                 score=1.0, frames=frames, width=vw, height=vh)


def validate_region(mask, video_wh: tuple[int, int]) -> None:
    """Check a mask against the video's size (before any model is loaded); raises MaskError."""
    vw, vh = video_wh
    if isinstance(mask, Region) and isinstance(mask.image, np.ndarray):
        mask = mask.image
    if isinstance(mask, Region):
        if mask.box is not None:
            validate_box(mask.box, vw, vh)
        elif mask.image is not None:
            img = read_mask_image(mask.image, size_wh=(vw, vh))    # refuses any other size before decoding
            if not np.any(img > 0):
                raise MaskError("the mask image is black everywhere; paint the sounding object in white")
        elif mask.kind == "track":
            track_from_spec(mask.track_spec(), video_wh)
    elif isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3) or mask.shape[-2:] != (vh, vw):
            raise MaskError(f"the mask has shape {mask.shape} but the video is {vw}x{vh} "
                            "(expected (H, W) or (T, H, W) at the video's frame size)")
        if not np.all(np.isfinite(mask)) or not np.any(mask > 0):
            raise MaskError("the mask is empty (or has NaN values); mark the sounding object")
    else:
        raise MaskError(f"a mask must be an array or a Region, got {type(mask).__name__}")


def masks_for_frames(mask, times_s: np.ndarray, *, video_wh: tuple[int, int],
                     frame_size: tuple[int, int]) -> np.ndarray:
    """Per-frame masks float32 (T, h, w) at the model's `frame_size` for frames at `times_s`.

    `mask`: an (H, W) / (T, H, W) array at the video's size `video_wh` (width, height), or a
    Region (box / image / track in video pixels). Frames are stretched to the model size, so
    masks are scaled the same way.
    """
    width, height = frame_size
    vw, vh = video_wh
    n = len(times_s)
    if isinstance(mask, Region) and isinstance(mask.image, np.ndarray):
        mask = mask.image
    if isinstance(mask, Region):
        if mask.box is not None:
            box = validate_box(mask.box, vw, vh) * np.array([width / vw, height / vh] * 2)
            return np.repeat(box_mask(box, width, height)[None], n, axis=0)
        if mask.image is not None:
            return mask_array_to_model(read_mask_image(mask.image, size_wh=video_wh), n, width, height, video_wh)
        track = track_from_spec(mask.track_spec(), video_wh)
        out = track_masks(track, np.asarray(times_s, dtype=np.float64), width, height)
        if not np.any(out > 0):
            raise MaskError(f"the track '{track.id}' is not visible between {times_s[0]:.2f} s and "
                            f"{times_s[-1]:.2f} s; choose a range where it is on screen")
        return out.astype(np.float32)
    if isinstance(mask, np.ndarray):
        return mask_array_to_model(mask, n, width, height, video_wh)
    raise MaskError(f"a mask must be an array or a Region, got {type(mask).__name__}")
