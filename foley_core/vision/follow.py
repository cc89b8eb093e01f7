"""Follow one object picked by the user (a click or a box on one frame) through a clip.

The user picks the object a Foley artist cares about; we only have to keep hold of it. A click
becomes a box by flood-filling the colour blob around it (`click_box`). The object is then
followed forwards and backwards from that frame (`follow`) by a colour-and-template tracker:

- a colour model: a histogram of the object's pixels against the ring of background around
  it (Lab, coarse L); their ratio makes a per-pixel "looks like the object" map. Small, fast
  balls blur and lose texture, but keep their colour, so this carries most of the weight;
- a grey template of the object (normalised cross-correlation), which holds on to textured,
  colourless objects;
- a constant-velocity prediction that places the search window, so a similar object elsewhere
  in the picture does not capture the track.

The object's centre in each frame is the colour-weighted centroid inside the found box: a
sub-pixel position, which the contact timing (`vision.contacts`) needs. Where neither cue finds
the object (it left the picture, or is hidden), the frame is left out of the track, and the
search continues at the predicted position with a growing window for up to `max_lost_s`
(growing no faster than an object moves, `MAX_SPEED_DIAG_PER_S`); a lost object is taken back
only by a match nearly as good as the picked one (`WHOLE_FRAC`). A click on a textured object
is widened to the whole object by what moves against the background (`moving_blob_box`).

OpenCV 5 ships no CSRT/KCF (moved to contrib) and its MIL/Nano/Vit trackers either drift on
small fast objects or need model files, which is why the tracker is written here on OpenCV
primitives (flood fill, calcHist, matchTemplate).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np

from foley_core.errors import MaskError
from foley_core.vision.tracks import Detection, Track, TrackFrame, box_iou, validate_box

FOLLOW_SOURCE = "follow"
# a lost object is taken back only by a match scoring this fraction of the picked object's own
# score; the weight of the prior towards the predicted position. Both chosen on the DEV scenes
# of benchmarks/bench_contacts.py (F1 flat within 0.01 for 0.6-0.75 and for 0.25-1.0)
WHOLE_FRAC = 0.6
PRIOR_WEIGHT = 0.25
# a detection is the followed object when its box overlaps the tracker's box (or, when the
# tracker has lost it, the predicted box) by at least this IoU: the usual association overlap
# of box trackers (SORT), fixed before any measurement
ASSOC_IOU = 0.3
# the fastest an object crosses the picture (diagonals per second): a bounce seen from close by
MAX_SPEED_DIAG_PER_S = 6.0
_BINS = (8, 16, 16)                       # Lab histogram: coarse lightness, finer colour
_RANGES = [0, 256, 0, 256, 0, 256]


@dataclasses.dataclass
class _Model:
    hist: np.ndarray                      # object/background likelihood ratio per Lab bin
    template: np.ndarray                  # grey template (h, w) float32
    size: np.ndarray                      # (w, h) of the object box, pixels


def _lab(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2LAB)


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _int_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    x0, y0 = int(np.clip(np.floor(x0), 0, width - 1)), int(np.clip(np.floor(y0), 0, height - 1))
    x1 = int(np.clip(np.ceil(x1), x0 + 1, width))
    y1 = int(np.clip(np.ceil(y1), y0 + 1, height))
    return x0, y0, x1, y1


def click_box(frame: np.ndarray, point: Sequence[float], *, tolerance: int = 14,
              max_frac: float = 0.15) -> np.ndarray:
    """The box [x0, y0, x1, y1] (pixels) of the colour blob under a click at point (x, y).

    The blob is a flood fill in Lab from the clicked pixel (each neighbour within `tolerance`
    of the clicked colour). If the fill leaks into the background (more than `max_frac` of the
    frame's width or height) or finds almost nothing, a box of 1/20 of the frame's diagonal
    around the click is used instead: the tracker still has the object's colour at its centre.
    Raises MaskError if the point is not inside the frame.
    """
    frame = np.asarray(frame)
    height, width = frame.shape[:2]
    x, y = (float(v) for v in point)
    if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height):
        raise MaskError(f"The click ({x:g}, {y:g}) is outside the {width}x{height} picture; "
                        "click on the object.")
    fallback = max(6.0, float(np.hypot(width, height)) / 20.0)
    plain = _fill_box(cv2.GaussianBlur(_lab(frame), (3, 3), 0), x, y, tolerance, max_frac)
    # mean-shift smoothing merges an object's texture (stripes, checks) into one colour region,
    # so the fill takes the whole object rather than one of its squares; but near a surface of
    # a similar colour (blurred, compressed footage) it can also merge the object with it, so
    # the plain fill is kept unless it is a small part (a texture cell) of the smoothed one
    smooth = cv2.pyrMeanShiftFiltering(np.ascontiguousarray(frame), 6, 28)
    merged = _fill_box(cv2.GaussianBlur(_lab(smooth), (3, 3), 0), x, y, tolerance, max_frac)
    area = (lambda b: 0.0 if b is None else float((b[2] - b[0]) * (b[3] - b[1])))
    box = merged if area(plain) < 0.3 * area(merged) else plain
    if box is not None:
        # never smaller than a few pixels: the template needs some context
        grow = np.maximum(0.0, 6.0 - np.array([box[2] - box[0], box[3] - box[1]])) / 2
        return validate_box(box + np.array([-grow[0], -grow[1], grow[0], grow[1]]), width, height)
    half = fallback / 2
    return validate_box([x - half, y - half, x + half, y + half], width, height)


def _fill_box(lab: np.ndarray, x: float, y: float, tolerance: int,
              max_frac: float) -> np.ndarray | None:
    """Box of the flood fill of `lab` from (x, y), or None if it leaks or finds nothing."""
    height, width = lab.shape[:2]
    mask = np.zeros((height + 2, width + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(lab, mask, (int(x), int(y)), 0, (tolerance,) * 3, (tolerance,) * 3, flags)
    ys, xs = np.nonzero(mask[1:-1, 1:-1])
    if xs.size < 9:
        return None
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
    if box[2] - box[0] > max_frac * width or box[3] - box[1] > max_frac * height:
        return None
    return box


def moving_blob_box(frames: np.ndarray, frame_index: int, point: Sequence[float], *,
                    max_frac: float = 0.4, n_samples: int = 25) -> np.ndarray | None:
    """Box [x0, y0, x1, y1] of the object under a click on frame `frame_index`, found by what
    differs from the frames where the object is not there; or None.

    A flood fill of colour only finds one colour cell of a textured object (a checker, stripes,
    a shaded ball), and a template of one cell matches at every cell, so the followed centre
    jumps by a cell. The object of a Foley track moves: in other frames the clicked spot shows
    the background. Their per-pixel median is the picture without the object (also when the
    object rests at the click for most of the clip), and the connected part of the click
    frame that differs from it is the whole object. None when the clicked spot never changes
    (a still object) or the blob is most of the picture (a camera pan).
    """
    frames = np.asarray(frames)
    if len(frames) < 5:
        return None
    height, width = frames.shape[1:3]
    x, y = int(point[0]), int(point[1])
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n_samples, len(frames))).round().astype(int))
    grey = np.stack([cv2.GaussianBlur(_gray(frames[i]), (3, 3), 0) for i in idx])
    here = cv2.GaussianBlur(_gray(frames[frame_index]), (3, 3), 0)
    spot = (slice(max(0, y - 2), y + 3), slice(max(0, x - 2), x + 3))
    # the noise of an unchanged picture: differences between successive samples, away from movers
    noise = float(np.median(np.abs(np.diff(grey, axis=0)))) * 1.4826
    level = max(12.0, 4.0 * noise)
    away = [j for j in range(len(idx)) if float(np.abs(grey[j][spot] - here[spot]).mean()) > level]
    if len(away) < 3:
        return None
    background = np.median(grey[away], axis=0)
    # a shaking camera moves every edge of the background by a pixel or two: a pixel differs
    # only if it is outside the range the background takes within that distance
    near = np.ones((5, 5), np.uint8)
    moving = ((here > cv2.dilate(background, near) + level)
              | (here < cv2.erode(background, near) - level)).astype(np.uint8)
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    # another mover touching the object (a neighbour, a hand) joins it through a thin bridge;
    # ever stronger openings cut the bridge before they erase the object
    for size in (1, 3, 5):
        part = moving if size == 1 else cv2.morphologyEx(
            moving, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
        near = labels[spot]
        ids, counts = np.unique(near[near > 0], return_counts=True)
        if ids.size == 0:
            return None
        bx, by, bw, bh, area = stats[int(ids[np.argmax(counts)])]
        if area >= 9 and bw <= max_frac * width and bh <= max_frac * height:
            return np.array([bx, by, bx + bw, by + bh], np.float64)
    return None


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _contains(outer: np.ndarray, inner: np.ndarray, *, margin: float) -> bool:
    return bool(np.all(outer[:2] <= inner[:2] + margin) and np.all(outer[2:] >= inner[2:] - margin))


def _colour_model(lab: np.ndarray, box: np.ndarray) -> np.ndarray:
    height, width = lab.shape[:2]
    x0, y0, x1, y1 = _int_box(box, width, height)
    bw, bh = x1 - x0, y1 - y0
    obj = np.zeros((height, width), np.uint8)
    # the inner part of the box: a box around a round object has background in its corners
    ix, iy = max(1, bw // 6), max(1, bh // 6)
    obj[y0 + iy:max(y1 - iy, y0 + iy + 1), x0 + ix:max(x1 - ix, x0 + ix + 1)] = 1
    ring = np.zeros_like(obj)
    rx0, ry0 = max(0, x0 - 2 * bw), max(0, y0 - 2 * bh)
    rx1, ry1 = min(width, x1 + 2 * bw), min(height, y1 + 2 * bh)
    ring[ry0:ry1, rx0:rx1] = 1
    ring[y0:y1, x0:x1] = 0
    h_obj = cv2.calcHist([lab], [0, 1, 2], obj, list(_BINS), _RANGES)
    h_bg = cv2.calcHist([lab], [0, 1, 2], ring, list(_BINS), _RANGES)
    h_obj /= max(float(h_obj.sum()), 1.0)
    h_bg /= max(float(h_bg.sum()), 1.0)
    ratio = h_obj / (h_obj + h_bg + 1e-3)
    # spread each colour to its neighbouring bins: lighting and compression shift colours
    ratio = cv2.GaussianBlur(ratio.reshape(_BINS[0], -1), (3, 3), 0).reshape(_BINS)
    return (ratio / max(float(ratio.max()), 1e-6)).astype(np.float32)


def _likelihood(lab: np.ndarray, hist: np.ndarray) -> np.ndarray:
    # a table lookup (cv2.calcBackProject returns zeros for this 3-D float histogram in 5.0)
    return hist[lab[..., 0] >> 5, lab[..., 1] >> 4, lab[..., 2] >> 4]


def _make_model(frame: np.ndarray, box: np.ndarray) -> _Model:
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = _int_box(box, width, height)
    return _Model(hist=_colour_model(_lab(frame), box),
                  template=_gray(frame)[y0:y1, x0:x1].copy(),
                  size=np.array([x1 - x0, y1 - y0], np.float64))


def _locate(frame: np.ndarray, model: _Model, centre: np.ndarray, radius: np.ndarray,
            ) -> tuple[np.ndarray | None, float]:
    """Search around `centre` within `radius` (x, y) pixels. Returns (centre or None, score)."""
    height, width = frame.shape[:2]
    tw, th = int(model.size[0]), int(model.size[1])
    x0 = int(max(0, np.floor(centre[0] - radius[0] - tw / 2)))
    y0 = int(max(0, np.floor(centre[1] - radius[1] - th / 2)))
    x1 = int(min(width, np.ceil(centre[0] + radius[0] + tw / 2)))
    y1 = int(min(height, np.ceil(centre[1] + radius[1] + th / 2)))
    if x1 - x0 < tw or y1 - y0 < th:
        return None, 0.0
    window = frame[y0:y1, x0:x1]
    like = _likelihood(_lab(window), model.hist)
    # fraction of object-coloured pixels in a box at each position
    colour = cv2.boxFilter(like, -1, (tw, th), normalize=True, borderType=cv2.BORDER_CONSTANT)
    colour = colour[th // 2: th // 2 + window.shape[0] - th + 1,
                    tw // 2: tw // 2 + window.shape[1] - tw + 1]
    match = cv2.matchTemplate(_gray(window), model.template, cv2.TM_CCOEFF_NORMED)
    match = np.nan_to_num(match, nan=0.0)
    n = min(colour.shape[0], match.shape[0]), min(colour.shape[1], match.shape[1])
    score = 0.6 * colour[:n[0], :n[1]] + 0.4 * np.clip(match[:n[0], :n[1]], 0.0, 1.0)
    # of two similar matches the one nearer the predicted position wins (a lookalike, the
    # hand): a mild prior over the window, not a cap
    ys, xs = np.mgrid[0:n[0], 0:n[1]]
    off = np.hypot((x0 + xs + tw / 2 - centre[0]) / max(radius[0], 1.0),
                   (y0 + ys + th / 2 - centre[1]) / max(radius[1], 1.0))
    choice = score - PRIOR_WEIGHT * off ** 2
    iy, ix = np.unravel_index(int(np.argmax(choice)), score.shape)
    # the prior picks the match; its exact place is the best raw score right around it
    r = max(2, min(tw, th) // 4)
    ly, lx = max(0, iy - r), max(0, ix - r)
    local = score[ly:iy + r + 1, lx:ix + r + 1]
    dy, dx = np.unravel_index(int(np.argmax(local)), local.shape)
    iy, ix = ly + int(dy), lx + int(dx)
    best = float(score[iy, ix])
    # sub-pixel centre: the object-coloured mass inside the found box
    patch = like[iy:iy + th, ix:ix + tw]
    mass = float(patch.sum())
    if mass > 1e-3 and float(colour[iy, ix]) > 0.15:
        ys, xs = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
        cx = x0 + ix + float((patch * xs).sum()) / mass + 0.5
        cy = y0 + iy + float((patch * ys).sum()) / mass + 0.5
    else:
        cx, cy = x0 + ix + tw / 2, y0 + iy + th / 2
    return np.array([cx, cy]), best


def _associate(boxes: np.ndarray | None, box: np.ndarray) -> np.ndarray | None:
    """The box among `boxes` (n, 4) that overlaps `box` most, if by ASSOC_IOU or more."""
    if boxes is None or len(boxes) == 0:
        return None
    iou = box_iou(boxes, box[None])[:, 0]
    best = int(np.argmax(iou))
    return np.asarray(boxes[best], np.float64) if iou[best] >= ASSOC_IOU else None


def _anchor(frame: np.ndarray, boxes: np.ndarray | None, model: _Model, found: np.ndarray | None,
            predicted: np.ndarray) -> tuple[np.ndarray | None, _Model]:
    """Re-anchor on the detections of the picked class in this frame: (centre, model).

    A detection that overlaps the tracker's match confirms it (the tracker's sub-pixel centre
    is kept: a detector's box jitters by pixels, which would move the contacts). A tracker
    that lost the object, or whose match no detection confirms while one sits on the
    predicted path (it slipped onto a lookalike), is put back on that detection, and its
    model is rebuilt there (the object's look changed: light, turn, blur)."""
    half = model.size / 2
    if found is not None and _associate(boxes, np.concatenate([found - half, found + half])) is not None:
        return found, model
    det = _associate(boxes, np.concatenate([predicted - half, predicted + half]))
    if det is None:
        return found, model
    centre = (det[:2] + det[2:]) / 2
    return centre, _make_model(frame, np.concatenate([centre - half, centre + half]))


def _run(frames: np.ndarray, start: int, step: int, model: _Model, centre0: np.ndarray,
         fps: float, *, min_score: float, max_lost_s: float,
         whole_score: float | None = None,
         anchors: Sequence[np.ndarray] | None = None) -> dict[int, np.ndarray]:
    """Follow from frame `start` (known centre) in direction `step` (+1 or -1). `anchors`:
    per frame, the (n, 4) boxes of detections of the picked object's class."""
    found: dict[int, np.ndarray] = {}
    history = [(start, centre0)]
    lost = 0
    max_lost = max(1, int(round(max_lost_s * fps)))
    # 1.5 object sizes of room even without a velocity: a start from rest is sudden
    base = 1.5 * np.maximum(model.size, 4.0)
    k = start + step
    while 0 <= k < len(frames):
        (ka, ca) = history[-1]
        if len(history) >= 2:
            kb, cb = history[-2]
            velocity = (ca - cb) / (ka - kb)          # pixels per frame, signed with k
        else:
            velocity = np.zeros(2)
        predicted = ca + velocity * (k - ka)
        # the window grows while the object is unseen, but no faster than it can move: at a
        # high frame rate many lost frames are a short time
        diag = float(np.hypot(*frames.shape[1:3]))
        reach = MAX_SPEED_DIAG_PER_S * diag * abs(k - ka) / fps
        radius = np.minimum(base * (1.0 + 0.5 * lost), base + reach) \
            + 1.5 * np.abs(velocity) * (abs(k - ka))
        centre, score = _locate(frames[k], model, predicted, radius)
        if (centre is None or score < min_score) and whole_score is not None:
            # a sudden start (a lift-off, a push from rest) leaves the window at once: look as
            # far as the object can have gone at MAX_SPEED_DIAG_PER_S since it was last seen,
            # but take only a match nearly as good as the picked object's
            centre, score = _locate(frames[k], model, ca, np.array([reach, reach]))
            if score < whole_score:
                centre = None
        # after a loss the window has grown over other things: take back only a good match
        need = min_score if lost == 0 or whole_score is None else max(min_score, whole_score)
        # and never a jump faster than an object moves (another thing of the same colour)
        if centre is not None and float(np.linalg.norm(centre - ca)) > reach + base.max() / 2:
            centre = None
        if anchors is not None:
            centre, model = _anchor(frames[k], anchors[k], model,
                                    centre if centre is not None and score >= need else None,
                                    predicted)
            if centre is not None and float(np.linalg.norm(centre - ca)) <= reach + base.max() / 2:
                score = max(score, need)
            else:
                centre = None
        if centre is not None and score >= need:
            found[k] = centre
            history.append((k, centre))
            lost = 0
        else:
            lost += 1
            if lost > max_lost:
                break
        k += step
    return found


def follow(
    frames: np.ndarray,
    times_s: Sequence[float],
    *,
    frame_index: int,
    point: Sequence[float] | None = None,
    box: Sequence[float] | None = None,
    width: int | None = None,
    height: int | None = None,
    min_score: float = 0.35,
    max_lost_s: float = 0.5,
    track_id: str = "picked",
    label: str = "picked object",
    detections: Sequence[Sequence[Detection]] | None = None,
) -> Track:
    """Follow the object picked on frame `frame_index` through all `frames`, both ways.

    frames: (T, H, W, 3) uint8 RGB at `times_s` (the video's own rate, for contact timing);
    point: a click (x, y) or box: [x0, y0, x1, y1], both in the pixels of `frames`. The
    returned Track's boxes are in (width, height) video pixels (default: the frames' size); it
    has a frame wherever the object was found, so a gap means "not seen". min_score: the
    smallest combined colour/template score (0..1) that counts as found; max_lost_s: how long
    the object may stay unseen before the search gives up in that direction.
    detections: per frame, an object detector's boxes (in the pixels of `frames`; YOLO-World's,
    `follow_in_video(detector=...)`). The class of the one that overlaps the pick on the picked
    frame is the object's, and the detections of that class re-anchor the tracker wherever it
    loses the object or slips off it (`_anchor`); the Track's label is then that class. Without
    them (or when no detection overlaps the pick) the tracker works alone.
    Raises MaskError for a missing or malformed pick.
    """
    frames = np.asarray(frames)
    times = np.asarray(times_s, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) != len(times) or len(frames) == 0:
        raise MaskError(f"Need frames (T, H, W, 3) with one time each; got {frames.shape} "
                        f"and {len(times)} times.")
    if not 0 <= int(frame_index) < len(frames):
        raise MaskError(f"The picked frame {frame_index} is outside the clip's {len(frames)} frames.")
    if (point is None) == (box is None):
        raise MaskError("Pick the object with either a click (point) or a box, not both.")
    k0 = int(frame_index)
    fh, fw = frames.shape[1:3]
    if point is not None:
        start_box = click_box(frames[k0], point)
        blob = moving_blob_box(frames, k0, point)
        # the moving blob holds the whole object when the colour fill found one cell of it;
        # it is only taken when it contains that cell (not a neighbouring mover it touches)
        # and is clearly more than it (a one-colour object's fill is already exact)
        if (blob is not None and _contains(blob, start_box, margin=2.0)
                and _area(start_box) < 0.6 * _area(blob)):
            start_box = validate_box(blob, fw, fh)
    else:
        start_box = validate_box(box, fw, fh)
    model = _make_model(frames[k0], start_box)
    fps = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 25.0
    centre0, score0 = _locate(frames[k0], model, (start_box[:2] + start_box[2:]) / 2, model.size / 4)
    if centre0 is None:
        centre0 = (start_box[:2] + start_box[2:]) / 2
    anchors = None
    if detections is not None:
        if len(detections) != len(frames):
            raise MaskError(f"Need one list of detections per frame; got {len(detections)} "
                            f"for {len(frames)} frames.")
        picked = _associate(np.array([d.box for d in detections[k0]], np.float64).reshape(-1, 4),
                            np.asarray(start_box, np.float64))
        if picked is not None:
            cls = next(d.label for d in detections[k0] if np.array_equal(d.box, picked))
            anchors = [np.array([d.box for d in dets if d.label == cls], np.float64).reshape(-1, 4)
                       for dets in detections]
            label = cls
    found = {k0: centre0}
    for step in (+1, -1):
        found.update(_run(frames, k0, step, model, centre0, fps,
                          min_score=min_score, max_lost_s=max_lost_s,
                          whole_score=WHOLE_FRAC * score0, anchors=anchors))
    width = int(width or fw)
    height = int(height or fh)
    scale = np.array([width / fw, height / fh])
    half = model.size / 2
    track_frames = []
    for k in sorted(found):
        c = found[k]
        b = np.concatenate([c - half, c + half]) * np.tile(scale, 2)
        track_frames.append(TrackFrame(time_s=float(times[k]), box=b))
    return Track(id=track_id, label=label, source=FOLLOW_SOURCE, score=1.0,
                 frames=track_frames, width=width, height=height)


def track_centres(track: Track, times_s: Sequence[float]) -> np.ndarray:
    """(T, 2) box centres of `track` at exactly `times_s` (its own frame times), NaN where the
    track has no frame: unlike interpolation, a gap stays a gap (the object was not seen)."""
    times = np.asarray(times_s, dtype=np.float64)
    out = np.full((times.size, 2), np.nan)
    if not track.frames:
        return out
    t_track = track.times_s
    boxes = track.boxes
    idx = np.searchsorted(t_track, times)
    for i, (t, j) in enumerate(zip(times, idx)):
        for cand in (j - 1, j):
            if 0 <= cand < t_track.size and abs(t_track[cand] - t) < 1e-4:
                out[i] = (boxes[cand, :2] + boxes[cand, 2:]) / 2
    return out


def track_contact_onsets(track: Track, *, fps: float, start_s: float, duration_s: float,
                         threshold: float | None = None) -> list[float]:
    """Contact times (seconds from start_s) of a followed track inside [start_s, start_s +
    duration_s), timed on the video's own frame grid (fps) so unseen frames stay gaps."""
    from foley_core.vision.contacts import CONTACT_THRESHOLD, contact_events

    if not track.frames:
        return []
    n = int(round((track.end_s - track.start_s) * fps)) + 1
    times = track.start_s + np.arange(n) / fps
    events = contact_events(track_centres(track, times), times,
                            threshold=CONTACT_THRESHOLD if threshold is None else threshold)
    return [e.time_s - start_s for e in events if start_s <= e.time_s < start_s + duration_s]


# Frames are followed at most this wide: a ball of a few pixels at 640 px is still a blob, and
# a 4K clip would otherwise cost 20x the time for no better timing (timing is per frame).
FOLLOW_MAX_SIDE = 640


def selection_frames(video: str, *, time_s: float, start_s: float = 0.0,
                     duration_s: float | None = None):
    """The selection [start_s, start_s + duration_s) of `video` at its own frame rate and at
    most FOLLOW_MAX_SIDE: (info, frames, times_s, index of the frame nearest `time_s`).
    TimeRangeError when `time_s` (the frame the object was picked on) is outside it."""
    from foley_core.errors import TimeRangeError
    from foley_core.media import probe_video, read_frames
    from foley_core.vision.proposals import work_size

    info = probe_video(video)
    end_s = info.duration_s if duration_s is None else start_s + duration_s
    if not start_s <= time_s < end_s:
        raise TimeRangeError(f"the picked frame at {time_s:.3f} s is outside the selection "
                             f"{start_s:.3f}-{end_s:.3f} s; pick the object on a frame inside it")
    size = work_size(info.width, info.height, FOLLOW_MAX_SIDE)
    frames, times = read_frames(video, fps=info.fps, size=size, start_s=start_s, duration_s=duration_s)
    return info, frames, times, int(np.argmin(np.abs(times - time_s)))


def follow_in_video(video: str, *, time_s: float, point: Sequence[float] | None = None,
                    box: Sequence[float] | None = None, start_s: float = 0.0,
                    duration_s: float | None = None, detector=None) -> Track:
    """Follow the object picked at video time `time_s` (a click `point` (x, y) or a `box`
    [x0, y0, x1, y1] in video pixels) through the selection [start_s, start_s + duration_s),
    read at the video's own frame rate. The Track's boxes are in video pixels; use it as the
    region (`Region(track=...)`): its contacts then time the stem's onsets. `detector`: an
    object detector with `detect(frames)` (`detect_yolo.follow_detector()` when YOLO-World
    weights exist) whose boxes of the picked object's class re-anchor the tracker."""
    info, frames, times, k = selection_frames(video, time_s=time_s, start_s=start_s,
                                              duration_s=duration_s)
    scale = np.array([frames.shape[2] / info.width, frames.shape[1] / info.height] * 2)
    pick = {}
    if point is not None:
        pick["point"] = np.asarray(point, np.float64) * scale[:2]
    if box is not None:
        pick["box"] = np.asarray(box, np.float64) * scale
    if detector is not None:
        pick["detections"] = detector.detect(frames)
    return follow(frames, times, frame_index=k, width=info.width, height=info.height, **pick)
