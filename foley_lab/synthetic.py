"""Generated scenes with known contact times: fixtures for tests and benchmarks of the vision path.

`bouncing_square` renders a square falling under gravity and bouncing on a floor (restitution
< 1, so the bounces shrink) over a textured still background with sensor noise; the contact times
are exact, from the physics, not from the pixels. `contact_clicks` renders a matching soundtrack
and `write_scene_mp4` a video file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import cv2
import numpy as np

from foley_core.media import write_frames_mp4
from foley_core.vision.tracks import box_mask


@dataclasses.dataclass
class Scene:
    frames: np.ndarray          # (T, H, W, 3) uint8 RGB
    times_s: np.ndarray         # (T,) frame times
    boxes: np.ndarray           # (T, 4) true square box per frame, pixels
    contacts_s: np.ndarray      # (C,) exact floor-contact times


def _trajectory(times_s: np.ndarray, *, y0: float, floor_y: float, vx: float, x0: float,
                gravity: float, restitution: float, min_bounce_speed: float
                ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Top-edge y and left-edge x of a dropped object; y grows downwards, the floor at floor_y."""
    contacts: list[float] = []
    t_end = float(times_s[-1]) if times_s.size else 0.0
    # segments: (t_start, y_start, vy_start); free fall in between, contact when y hits floor_y
    segments = [(0.0, y0, 0.0)]
    t, y, vy = 0.0, y0, 0.0
    while t <= t_end:
        # solve y + vy*s + g/2 s^2 = floor_y for s > 0
        a, b, c = gravity / 2, vy, y - floor_y
        s = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
        t_hit = t + s
        if t_hit > t_end:
            break
        contacts.append(t_hit)
        v_impact = vy + gravity * s
        vy = -restitution * v_impact
        t, y = t_hit, floor_y
        if abs(vy) < min_bounce_speed:
            segments.append((t, floor_y, None))   # at rest from here on
            break
        segments.append((t, y, vy))
    ys = np.empty_like(times_s)
    for i, tt in enumerate(times_s):
        seg = max(k for k, sg in enumerate(segments) if sg[0] <= tt + 1e-12)
        t_s, y_s, vy_s = segments[seg]
        if vy_s is None:
            ys[i] = floor_y
        else:
            s = tt - t_s
            ys[i] = min(y_s + vy_s * s + gravity / 2 * s * s, floor_y)
    rest_t = segments[-1][0] if segments[-1][2] is None else np.inf
    xs = x0 + vx * np.minimum(times_s, rest_t)
    return ys, xs, contacts


def bouncing_square(
    *,
    duration_s: float = 3.0,
    fps: float = 25.0,
    width: int = 320,
    height: int = 240,
    size_px: int = 24,
    gravity: float = 1400.0,
    restitution: float = 0.7,
    vx: float = 40.0,
    noise: float = 2.0,
    seed: int = 0,
) -> Scene:
    """A square dropped from near the top, bouncing on a floor near the bottom.

    gravity in pixels/s^2, vx (horizontal drift from x = 20 px) in pixels/s, noise = sensor noise
    std in grey levels. The square stops bouncing once a rebound would be slower than 60 px/s.
    Raises ValueError if the drift would take the square out of the frame.
    """
    if not 0 <= 20 + vx * duration_s <= width - size_px:
        raise ValueError(f"vx={vx} px/s takes the square out of the {width} px frame within "
                         f"{duration_s} s: its contacts would be invisible")
    rng = np.random.default_rng(seed)
    times_s = np.arange(int(round(duration_s * fps))) / fps
    floor_y = height - 20 - size_px
    ys, xs, contacts = _trajectory(
        times_s, y0=15.0, floor_y=float(floor_y), vx=vx, x0=20.0, gravity=gravity,
        restitution=restitution, min_bounce_speed=60.0,
    )
    # still background: low-frequency texture plus a floor line
    coarse = rng.uniform(60, 190, size=(height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    background = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    background[height - 20:] = 90.0
    colour = np.array([220.0, 40.0, 40.0], np.float32)
    frames = np.empty((len(times_s), height, width, 3), np.uint8)
    boxes = np.stack([xs, ys, xs + size_px, ys + size_px], axis=1)
    for i, box in enumerate(boxes):
        alpha = box_mask(box, width, height)[..., None]      # anti-aliased edges: sub-pixel motion
        img = background * (1 - alpha) + colour * alpha
        img += rng.normal(0.0, noise, size=img.shape).astype(np.float32)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return Scene(frames=frames, times_s=times_s, boxes=boxes,
                 contacts_s=np.asarray(contacts, dtype=np.float64))


def contact_clicks(contacts_s: np.ndarray, *, duration_s: float, sr: int = 16_000,
                   seed: int = 0) -> np.ndarray:
    """A soundtrack for a scene: a 60 ms decaying noise knock at each contact, float32 (n,)."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(0.0, 1e-3, int(round(duration_s * sr))).astype(np.float32)
    n_click = int(0.06 * sr)
    env = np.exp(-np.arange(n_click) / (0.012 * sr)).astype(np.float32)
    for t in contacts_s:
        i = int(round(t * sr))
        seg = audio[i:i + n_click]
        seg += 0.5 * env[:seg.size] * rng.normal(0.0, 1.0, seg.size).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def write_scene_mp4(scene: Scene, path: str | os.PathLike, *, fps: float) -> Path:
    """Encode a scene's frames as a silent H.264 MP4 (yuv420p, even size) at `fps`, atomically."""
    return write_frames_mp4(scene.frames, path, fps=fps)


def like_footage(frames: np.ndarray, *, seed: int, shake_px: float = 1.5, noise: float = 3.0,
                 blur: float = 0.5, jpeg_quality: int = 45, hand: bool = True) -> np.ndarray:
    """Make clean rendered frames (T, H, W, 3) uint8 look more like real footage, returning a copy.

    Each effect is one a real clip has and a clean render lacks: hand-held camera shake (a smooth
    random translation of up to about `shake_px`), exposure blur (each frame mixes `blur` of
    the previous one, so a fast object smears along its path), sensor noise (`noise` grey levels),
    a skin-coloured "hand" drifting through the picture (another mover, without contacts) and
    JPEG compression at `jpeg_quality` (blocking and colour bleeding like H.264's).
    """
    rng = np.random.default_rng(seed)
    frames = np.asarray(frames)
    n, h, w = frames.shape[:3]
    steps = rng.normal(0.0, 1.0, size=(n, 2))
    kernel = np.hanning(9)
    kernel /= kernel.sum()
    shake = np.stack([np.convolve(steps[:, i], kernel, mode="same") for i in range(2)], axis=1)
    shake *= shake_px / max(float(np.abs(shake).max()), 1e-6)
    # the hand: an ellipse on a slow random path through the picture
    hx = w * (0.2 + 0.6 * rng.random()) + np.cumsum(rng.normal(0, w / 150, n))
    hy = h * (0.2 + 0.6 * rng.random()) + np.cumsum(rng.normal(0, h / 150, n))
    skin = np.array([200.0, 150.0, 120.0]) * rng.uniform(0.8, 1.1)
    axes = (max(3, w // 14), max(3, h // 9))
    out = np.empty_like(frames)
    prev = None
    for i in range(n):
        img = frames[i].astype(np.float32)
        if hand:
            cv2.ellipse(img, (int(hx[i]), int(hy[i])), axes, float(20 * np.sin(i / 7)), 0, 360,
                        skin.tolist(), -1)
        m = np.float32([[1, 0, shake[i, 0]], [0, 1, shake[i, 1]]])
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        raw = img
        if prev is not None and blur > 0:
            img = (1 - blur) * img + blur * prev
        prev = raw
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
        img = np.clip(img, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else img
    return out
