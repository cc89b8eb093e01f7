"""Simulated audio-visual scenes: a target object makes contact exactly at a sound's onsets.

There is almost no real paired Foley video, so training scenes are rendered: for a sound (its
onsets, or for sustained sounds its loudness curve) we draw a short video in which a TARGET
object bounces on a surface or slides into a wall at each onset, and 0-2 DISTRACTOR objects move
and make contact at other times (at least 200 ms from any onset of the target sound) or glide
without contact. Target and distractors are drawn from one appearance distribution (shape,
colour, size, texture), in random lanes, so only the mask tells which object sounds. Sustained
sounds (ambience, rain, wind, long engine/fire/water/bird/machine clips, clips without onsets)
make the target vibrate with an amplitude that follows the loudness curve instead.

Conventions: frame k shows time k / fps; a contact "at t" puts the object against the surface in
frame round(t * fps), so a contact is visible within half a frame of its sound. Contacts of one
object are at least `MIN_CONTACT_GAP_FRAMES` (4) frames apart (closer onsets are shown by the
first of them only): with fewer frames an arc's apex cannot be told from a contact. Objects never
overlap (each has its own lane), so a mask covers its object only. Everything is a pure function
of the seed. See docs/SIMULATION.md for what a model can and cannot learn from these scenes.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from foley_core.audio_io import mono_float
from foley_core.constants import CURVE_FPS, MODEL_SR
from foley_core.errors import SimulationError
from foley_core.media import write_frames_mp4

__all__ = [
    "SimulationError", "Appearance", "SoundSpec", "SimScene", "SelectivityScene",
    "SHAPES", "TEXTURES", "BACKGROUNDS", "SUSTAINED_CATEGORIES", "OFTEN_SUSTAINED_CATEGORIES",
    "MIN_CONTACT_GAP_FRAMES", "DISTRACTOR_SEPARATION_S",
    "n_frames", "frame_times", "is_sustained", "contact_frames", "sound_spec",
    "simulate_scene", "simulate_sounds", "make_selectivity_scene", "render_scene_video",
    "mask_centroids",
]

SHAPES = ("circle", "square", "triangle", "blob")
TEXTURES = ("flat", "stripes", "checker", "noise", "gradient")
BACKGROUNDS = ("flat", "gradient", "noise", "stripes")
MOTIONS_DISCRETE = ("bounce", "slide")

SUSTAINED_CATEGORIES = frozenset({"ambience", "rain", "wind"})
OFTEN_SUSTAINED_CATEGORIES = frozenset({"engine", "fire", "water", "bird", "machine"})
_OFTEN_SUSTAINED_MIN_S = 2.0

MIN_CONTACT_GAP_FRAMES = 4
DISTRACTOR_SEPARATION_S = 0.2

_SIZE_FRACTION = (0.14, 0.26)     # object side / min(H, W)
_MIN_CONTRAST = 60.0              # RGB distance of an object's colour from the background mean
_SUPERSAMPLE = 4                  # sprite anti-aliasing


# ----------------------------------------------------------------------------------------------
# Data types

@dataclass(frozen=True)
class Appearance:
    """How an object looks: one distribution for targets and distractors alike."""

    shape: str
    colour: tuple[int, int, int]         # RGB 0..255
    size_px: int                         # side of the sprite's square
    texture: str
    texture_colour: tuple[int, int, int]
    angle_deg: float
    sprite_seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "colour": list(self.colour), "size_px": self.size_px,
                "texture": self.texture, "texture_colour": list(self.texture_colour),
                "angle_deg": self.angle_deg, "sprite_seed": self.sprite_seed}


@dataclass
class SoundSpec:
    """What a sounding object must show: its onsets (s) or, if `sustained`, its loudness curve
    (relative 0..1 at CURVE_FPS points per second)."""

    onsets_s: np.ndarray
    sustained: bool = False
    curve: np.ndarray | None = None


@dataclass
class SimScene:
    """A rendered scene. frames uint8 (T, H, W, 3); masks float32 (T, H, W) in [0, 1] of the
    target object(s); distractor_masks float32 (n_distractors, T, H, W).

    target_events_s: onsets of the target sound that the target visibly shows (each at frame
    round(t * fps)); audio_onsets_s: all onsets of the target sound; distractor_events_s: the
    contact times (frame times) of each distractor. objects: per object its role, appearance,
    motion and lane, for inspection and the eval manifest.
    """

    frames: np.ndarray
    masks: np.ndarray
    fps: float
    target_events_s: np.ndarray
    distractor_events_s: list[np.ndarray]
    distractor_masks: np.ndarray
    seed: int
    mode: str = "discrete"
    audio_onsets_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    motion_curve: np.ndarray | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)
    target_masks_each: np.ndarray | None = None     # (n_targets, T, H, W) when > 1 target
    info: dict[str, Any] = field(default_factory=dict)  # background kind, lane axis, noise

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


@dataclass
class SelectivityScene:
    """Two sounding objects with disjoint events, for mask selectivity (mask A vs mask B).

    audio_a / audio_b are the two sounds placed in the window (float32, `sr`; both scaled down
    together if their sum would clip), `mixture` their sum; frames show A contacting at
    events_a_s and B at events_b_s (onsets at least 4 frames apart). onsets_a_s / onsets_b_s
    list every onset in the window; each of A's is >= min_separation_s from each of B's.
    """

    frames: np.ndarray
    masks_a: np.ndarray
    masks_b: np.ndarray
    fps: float
    events_a_s: np.ndarray
    events_b_s: np.ndarray
    audio_a: np.ndarray
    audio_b: np.ndarray
    mixture: np.ndarray
    sr: int
    offset_a_s: float
    offset_b_s: float
    seed: int
    objects: list[dict[str, Any]] = field(default_factory=list)
    onsets_a_s: np.ndarray = field(default_factory=lambda: np.zeros(0))   # all, shown or not
    onsets_b_s: np.ndarray = field(default_factory=lambda: np.zeros(0))


# ----------------------------------------------------------------------------------------------
# Timing helpers

def n_frames(duration_s: float, fps: float) -> int:
    """round(duration_s * fps), at least 1: frame k shows time k / fps."""
    return max(1, int(round(float(duration_s) * float(fps))))


def frame_times(n: int, fps: float) -> np.ndarray:
    return np.arange(int(n), dtype=np.float64) / float(fps)


def contact_frames(events_s: Any, fps: float, n: int, *,
                   min_gap_frames: int = MIN_CONTACT_GAP_FRAMES,
                   first_frame: int = 0, last_frame: int | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Frames at which events can be shown: round(t * fps) inside [first_frame, last_frame],
    keeping the first of events closer than `min_gap_frames`.

    Returns (frames int64, the shown events' times in s).
    """
    last = n - 1 if last_frame is None else last_frame
    frames: list[int] = []
    shown: list[float] = []
    for t in np.sort(np.asarray(events_s, dtype=np.float64).reshape(-1)):
        k = int(round(t * fps))
        if k < first_frame or k > last:
            continue
        if frames and k - frames[-1] < min_gap_frames:
            continue
        frames.append(k)
        shown.append(float(t))
    return np.asarray(frames, dtype=np.int64), np.asarray(shown, dtype=np.float64)


def is_sustained(category: str | None, duration_s: float, onsets_s: Any) -> bool:
    """Whether a sound is shown as continuous motion (vibration) rather than contacts.

    Always for ambience, rain and wind; for engine, fire, water, bird and machine clips of at
    least 2 s; and for any sound without onsets. Everything else is discrete.
    """
    if np.size(onsets_s) == 0:
        return True
    if category in SUSTAINED_CATEGORIES:
        return True
    return category in OFTEN_SUSTAINED_CATEGORIES and duration_s >= _OFTEN_SUSTAINED_MIN_S


def sound_spec(audio: Any, sr: int = MODEL_SR, *, category: str | None = None,
               onsets_s: Any = None, mode: str | None = None,
               clip_seconds: float | None = None) -> SoundSpec:
    """A `SoundSpec` from audio: onsets via `detect_onsets` unless given; sustained per
    `is_sustained(category, clip_seconds or audio length, onsets)` unless `mode` is
    'discrete' or 'sustained'; the loudness curve from `loudness.relative_loudness`."""
    from foley_core.events import detect_onsets
    from foley_core.loudness import relative_loudness

    x = mono_float(audio, require_samples=True)
    onsets = detect_onsets(x, sr) if onsets_s is None else np.sort(
        np.asarray(onsets_s, dtype=np.float64).reshape(-1))
    if mode is None:
        seconds = clip_seconds if clip_seconds is not None else len(x) / sr
        sustained = is_sustained(category, seconds, onsets)
    elif mode in ("discrete", "sustained"):
        sustained = mode == "sustained"
    else:
        raise ValueError(f"mode must be 'discrete', 'sustained' or None, got {mode!r}")
    return SoundSpec(onsets_s=onsets, sustained=sustained, curve=relative_loudness(x, sr))


# ----------------------------------------------------------------------------------------------
# Appearance: backgrounds and sprites

def _random_colour(rng: np.random.Generator, s_range=(0.45, 1.0), v_range=(0.4, 1.0)
                   ) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(*s_range), rng.uniform(*v_range)
    hsv = np.array([[[h * 180.0, s * 255.0, v * 255.0]]], dtype=np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _ramp(h: int, w: int, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = xx * math.cos(angle) + yy * math.sin(angle)
    return (r - r.min()) / max(float(r.max() - r.min()), 1e-6)


def _background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, str]:
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    c1 = _random_colour(rng, (0.0, 0.8), (0.1, 0.95))
    c2 = _random_colour(rng, (0.0, 0.8), (0.1, 0.95))
    if kind == "flat":
        bg = np.broadcast_to(c1, (h, w, 3)).copy()
    elif kind == "gradient":
        t = _ramp(h, w, rng.uniform(0, 2 * math.pi))[..., None]
        bg = c1 * (1 - t) + c2 * t
    elif kind == "noise":
        cells = int(rng.integers(3, 9))
        grid = rng.uniform(-1, 1, size=(cells, cells, 3)).astype(np.float32)
        field_ = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        bg = c1 + rng.uniform(20, 60) * field_
    else:  # stripes
        period = rng.uniform(0.1, 0.3) * min(h, w)
        t = _ramp(h, w, rng.uniform(0, math.pi)) * max(h, w) * 1.5
        wave = 0.5 + 0.5 * np.sin(2 * math.pi * t / period)
        if rng.random() < 0.5:
            wave = (wave > 0.5).astype(np.float32)
        bg = c1 * (1 - wave[..., None]) + c2 * wave[..., None]
    return np.clip(bg, 0, 255).astype(np.float32), kind


def _sample_appearance(rng: np.random.Generator, size_px: int, bg_mean: np.ndarray
                       ) -> Appearance:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    for _ in range(30):     # a colour that stands out from the background (same rule for all)
        colour = _random_colour(rng)
        if float(np.linalg.norm(colour - bg_mean)) >= _MIN_CONTRAST:
            break
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    if rng.random() < 0.5:
        tex_colour = colour * rng.uniform(0.35, 0.7)
    else:
        tex_colour = _random_colour(rng)
    return Appearance(
        shape=shape, colour=tuple(int(v) for v in colour), size_px=int(size_px),
        texture=texture, texture_colour=tuple(int(v) for v in tex_colour),
        angle_deg=float(rng.uniform(0, 360)), sprite_seed=int(rng.integers(2**31)),
    )


def _sprite(app: Appearance) -> tuple[np.ndarray, np.ndarray]:
    """(rgb float32 (s, s, 3), alpha float32 (s, s)) of an appearance, anti-aliased."""
    s = app.size_px
    big = s * _SUPERSAMPLE
    rng = np.random.default_rng(app.sprite_seed)
    canvas = np.zeros((big, big), dtype=np.uint8)
    c = (big - 1) / 2.0
    r = big / 2.0 - 0.5
    angle = math.radians(app.angle_deg)
    shift = 4      # cv2 fixed-point bits for sub-pixel vertices
    if app.shape == "circle":
        cv2.circle(canvas, (int(c * 16), int(c * 16)), int(r * 16), 255, -1, cv2.LINE_AA, shift)
    else:
        if app.shape == "square":
            theta = angle + np.arange(4) * math.pi / 2 + math.pi / 4
            radius = np.full(4, r * 0.98)        # corners on the circle: rotation stays inside
        elif app.shape == "triangle":
            theta = angle + np.arange(3) * 2 * math.pi / 3
            radius = np.full(3, r * 0.98)
        else:  # blob: a smooth random radius function
            theta = np.linspace(0, 2 * math.pi, 48, endpoint=False)
            radius = np.ones_like(theta)
            for k in (2, 3, 4):
                radius += rng.uniform(0, 0.12) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
            radius = r * 0.98 * radius / radius.max()
        pts = np.stack([c + radius * np.cos(theta), c + radius * np.sin(theta)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift)
    alpha = cv2.resize(canvas, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    base = np.asarray(app.colour, dtype=np.float32)
    other = np.asarray(app.texture_colour, dtype=np.float32)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    period = max(2.0, s / rng.uniform(2.0, 4.0))
    if app.texture == "flat":
        rgb = np.broadcast_to(base, (s, s, 3)).copy()
    elif app.texture == "stripes":
        proj = xx * math.cos(angle) + yy * math.sin(angle)
        t = (np.floor(proj / period * 2) % 2)[..., None]
        rgb = base * (1 - t) + other * t
    elif app.texture == "checker":
        t = ((np.floor(xx / period * 2) + np.floor(yy / period * 2)) % 2)[..., None]
        rgb = base * (1 - t) + other * t
    elif app.texture == "noise":
        n = rng.uniform(-1, 1, size=(max(2, s // 3), max(2, s // 3), 1)).astype(np.float32)
        n = cv2.resize(n, (s, s), interpolation=cv2.INTER_LINEAR)[..., None]
        rgb = base * (1 + 0.3 * n)
    else:  # gradient (shading)
        t = _ramp(s, s, angle)[..., None]
        rgb = base * (0.65 + 0.6 * t)
    return np.clip(rgb, 0, 255).astype(np.float32), alpha


# ----------------------------------------------------------------------------------------------
# Motion along a lane: d = distance (px) from the contact surface, per frame

def _bounce(frames: np.ndarray, n: int, free: float, fps: float,
            rng: np.random.Generator) -> np.ndarray:
    """Parabolic arcs that land at each contact frame; rests on the surface after the last one
    and during long gaps (then jumps); falls (from rest, or already falling) before the first."""
    ref = max(MIN_CONTACT_GAP_FRAMES, int(round(rng.uniform(0.5, 1.0) * fps)))
    d = np.zeros(n)
    if len(frames) == 0:
        return np.full(n, free * rng.uniform(0.3, 0.9))
    c0 = int(frames[0])
    start_h = free * rng.uniform(0.5, 0.95)
    # a fall from rest of >= 3 frames; it started before the first frame if c0 is early, so the
    # object is already falling (with a known speed) when the video begins
    fall = max(3, int(round(rng.uniform(0.25, 0.5) * fps)))
    ks = np.arange(0, c0 + 1)
    d[: c0 + 1] = start_h * (1 - (np.clip(ks - (c0 - fall), 0, None) / fall) ** 2)
    for a, b in zip(frames[:-1], frames[1:]):
        a, b = int(a), int(b)
        arc = min(b - a, ref)
        if b - a - arc == 1:
            arc = b - a      # no 1-frame rest: its lift-off would sit next to the landing
        height = free * float(np.clip((arc / ref) ** 2, 0.3, 0.95))
        s = (np.arange(b - arc, b + 1) - (b - arc)) / arc
        d[a:b - arc + 1] = 0.0
        d[b - arc:b + 1] = height * 4 * s * (1 - s)
    d[int(frames[-1]):] = 0.0
    return d


def _slide(frames: np.ndarray, n: int, free: float, fps: float,
           rng: np.random.Generator) -> np.ndarray:
    """Slides that stop dead against alternating walls at each contact frame (position 0 or
    `free` along the lane); rests between slides; starts at rest."""
    u = np.zeros(n)
    if len(frames) == 0:
        return np.full(n, free * rng.uniform(0.2, 0.8))
    power = rng.uniform(1.0, 2.0)             # 1: constant speed, 2: accelerating push
    # at least 3 frames of travel: in a 2-frame move both neighbours of the middle frame are
    # impulses (start, stop), and the middle frame itself would look like a stop
    travel = max(3, int(round(rng.uniform(0.25, 0.6) * fps)))
    wall = int(rng.integers(2))               # wall of the first contact: 0 near, 1 far
    pos_of = (0.0, free)
    start = pos_of[1 - wall] if rng.random() < 0.7 else free * rng.uniform(0.3, 0.7)
    prev_frame, prev_pos = 0, start
    u[:] = start
    for i, c in enumerate(frames):
        c = int(c)
        target = pos_of[(wall + i) % 2]
        steps = min(travel, c - prev_frame)
        if c - prev_frame - steps == 1:
            steps += 1       # no 1-frame rest: its start would sit next to the stop
        u[prev_frame:c - steps + 1] = prev_pos
        if steps > 0:
            s = (np.arange(c - steps, c + 1) - (c - steps)) / steps
            u[c - steps:c + 1] = prev_pos + (target - prev_pos) * s ** power
        u[c] = target
        prev_frame, prev_pos = c, target
    u[prev_frame:] = prev_pos
    return u


def _smooth_noise(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """(n, 2) smooth wobble in [-1, 1]: three sinusoids per axis below the frame Nyquist."""
    t = frame_times(n, fps)
    out = np.zeros((n, 2))
    for axis in range(2):
        for _ in range(3):
            f = rng.uniform(0.08, 0.35) * fps
            out[:, axis] += rng.uniform(0.5, 1.0) * np.sin(2 * math.pi * f * t
                                                           + rng.uniform(0, 2 * math.pi))
    return out / max(float(np.abs(out).max()), 1e-6)


def _curve_at_frames(curve: np.ndarray, n: int, fps: float) -> np.ndarray:
    """A CURVE_FPS curve (point j at (j + 0.5) / CURVE_FPS) sampled at frame times."""
    c = np.asarray(curve, dtype=np.float64)
    times = (np.arange(len(c)) + 0.5) / CURVE_FPS
    return np.clip(np.interp(frame_times(n, fps), times, c), 0.0, 1.0)


def _random_curve(rng: np.random.Generator, n: int) -> np.ndarray:
    """A smooth random relative curve (n points, 0..1) for a vibrating distractor."""
    knots = rng.uniform(0, 1, size=max(2, n // 8 + 2))
    c = np.interp(np.linspace(0, len(knots) - 1, n), np.arange(len(knots)), knots)
    return c / max(float(c.max()), 1e-6)


# ----------------------------------------------------------------------------------------------
# Scene assembly

@dataclass
class _Object:
    role: str                         # "target" | "distractor"
    motion: str                       # bounce | slide | vibrate | glide
    appearance: Appearance
    frames: np.ndarray                # contact frames (discrete motions)
    shown_s: np.ndarray               # event times shown (target: audio onsets; distractor: frames)
    curve: np.ndarray | None = None   # per-frame drive (vibrate)
    lane: tuple[int, int, int, int] = (0, 0, 0, 0)    # y0, y1, x0, x1
    surface: str = "far"              # bounce: which end of the lane is the surface
    positions: np.ndarray | None = None               # (T, 2) top-left (y, x)


def _lanes(n_obj: int, h: int, w: int, vertical: bool, rng: np.random.Generator
           ) -> list[tuple[int, int, int, int]]:
    span = w if vertical else h
    edges = np.round(np.linspace(0, span, n_obj + 1)).astype(int)
    lanes = [(0, h, int(a), int(b)) if vertical else (int(a), int(b), 0, w)
             for a, b in zip(edges[:-1], edges[1:])]
    return [lanes[i] for i in rng.permutation(n_obj)]


def _place(obj: _Object, n: int, fps: float, vertical: bool, bar: int,
           rng: np.random.Generator) -> None:
    """Fill obj.positions (T, 2) top-left (y, x) from its motion inside its lane."""
    y0, y1, x0, x1 = obj.lane
    s = obj.appearance.size_px
    along_len = (y1 - y0) if vertical else (x1 - x0)
    cross_len = (x1 - x0) if vertical else (y1 - y0)
    free = max(1.0, along_len - 2 * bar - s)
    slack = max(0.0, cross_len - s)
    cross = np.full(n, rng.uniform(0.25, 0.75) * slack)

    if obj.motion == "bounce":
        obj.surface = "far" if rng.random() < 0.75 else "near"
        d = _bounce(obj.frames, n, free, fps, rng)
        along = (free - d) if obj.surface == "far" else d
    elif obj.motion == "slide":
        along = _slide(obj.frames, n, free, fps, rng)
    elif obj.motion == "glide":
        # >= 50 frames per cycle: sampled more coarsely, a turn looks as sharp as a contact
        f = rng.uniform(0.15, 0.4) * min(1.0, fps / 20.0)
        along = free / 2 + 0.3 * free * np.sin(2 * math.pi * f * frame_times(n, fps)
                                                + rng.uniform(0, 2 * math.pi))
    elif obj.motion == "vibrate":
        assert obj.curve is not None
        wobble = 0.6 * _smooth_noise(rng, n, fps) + 0.4 * rng.uniform(-1, 1, size=(n, 2))
        amp = obj.curve[:, None] * wobble
        along = free / 2 + 0.4 * free * amp[:, 0]
        cross = slack / 2 + 0.45 * min(slack, free) * amp[:, 1]
    else:
        raise ValueError(f"unknown motion {obj.motion!r}")
    along = bar + np.clip(along, 0, free)
    cross = np.clip(cross, 0, slack)
    if vertical:
        obj.positions = np.stack([y0 + along, x0 + cross], axis=1)
    else:
        obj.positions = np.stack([y0 + cross, x0 + along], axis=1)


def _padded_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Premultiplied (rgb * alpha, alpha) with a 1 px transparent border, float32 (s+2, s+2, 4)."""
    s = alpha.shape[0]
    out = np.zeros((s + 2, s + 2, 4), dtype=np.float32)
    out[1:-1, 1:-1, :3] = rgb * alpha[..., None]
    out[1:-1, 1:-1, 3] = alpha
    return out


def _paste(frame: np.ndarray, mask: np.ndarray | None, rgba: np.ndarray, top: float,
           left: float) -> None:
    """Composite a padded premultiplied sprite with its top-left at sub-pixel (top, left).

    The fractional part is a bilinear shift, so the mask centroid moves continuously with the
    trajectory (integer steps would look like stops and starts to a contact detector)."""
    h, w = frame.shape[:2]
    ti, li = math.floor(top), math.floor(left)
    fy, fx = top - ti, left - li
    n = rgba.shape[0]
    if fy or fx:
        shift = np.float32([[1, 0, fx], [0, 1, fy]])
        rgba = cv2.warpAffine(rgba, shift, (n, n), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    top0, left0 = ti - 1, li - 1             # the padding's first row/column
    ya, yb = max(0, top0), min(h, top0 + n)
    xa, xb = max(0, left0), min(w, left0 + n)
    if ya >= yb or xa >= xb:
        return
    part = rgba[ya - top0:yb - top0, xa - left0:xb - left0]
    a = part[..., 3:4]
    patch = frame[ya:yb, xa:xb]
    patch *= 1 - a
    patch += part[..., :3]
    if mask is not None:
        np.maximum(mask[ya:yb, xa:xb], a[..., 0], out=mask[ya:yb, xa:xb])


@functools.lru_cache(maxsize=4)
def _noise_pool(h: int, w: int) -> np.ndarray:
    """A fixed (2H, 2W, 3) field of unit Gaussian noise; each frame takes a random (H, W) crop,
    which is ~20x cheaper than drawing fresh noise and still differs from frame to frame."""
    return np.random.default_rng(20_240_601).standard_normal((2 * h, 2 * w, 3),
                                                              dtype=np.float32)


def _draw(bg: np.ndarray, objects: list[_Object], n: int, rng: np.random.Generator,
          noise_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (T, H, W, 3) and per-object masks float32 (n_obj, T, H, W)."""
    h, w = bg.shape[:2]
    masks = np.zeros((len(objects), n, h, w), dtype=np.float32)
    sprites = [_padded_rgba(*_sprite(o.appearance)) for o in objects]
    frames = np.empty((n, h, w, 3), dtype=np.uint8)
    work = np.empty((h, w, 3), dtype=np.float32)
    for k in range(n):
        work[:] = bg
        for j, (obj, rgba) in enumerate(zip(objects, sprites)):
            top, left = obj.positions[k]
            _paste(work, masks[j, k], rgba, float(top), float(left))
        if noise_std > 0:
            dy, dx = int(rng.integers(0, h)), int(rng.integers(0, w))
            work += _noise_pool(h, w)[dy:dy + h, dx:dx + w] * np.float32(noise_std)
        np.clip(work, 0, 255, out=work)
        frames[k] = (work + 0.5).astype(np.uint8)
    return frames, masks


def _distractor_events(rng: np.random.Generator, n: int, fps: float,
                       avoid_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random contact frames of a distractor, >= DISTRACTOR_SEPARATION_S from every time in
    `avoid_s` and inside frames 1..T-2 (so each contact is measurable from the trajectory)."""
    duration = n / fps
    rate = rng.uniform(0.8, 3.0)
    times, t = [], rng.uniform(0.05, 0.6)
    while t < duration:
        times.append(t)
        t += DISTRACTOR_SEPARATION_S + rng.exponential(1.0 / rate)
    frames, _ = contact_frames(times, fps, n, first_frame=1, last_frame=n - 2)
    sep = DISTRACTOR_SEPARATION_S - 1e-9
    keep = [k for k in frames if avoid_s.size == 0 or np.min(np.abs(k / fps - avoid_s)) >= sep]
    frames = np.asarray(keep, dtype=np.int64)
    return frames, frames / fps


def _frame_size(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if h < 16 or w < 16:
        raise ValueError(f"frame size must be at least 16x16 pixels, got {h}x{w}")
    return h, w


def _build(sounds: Sequence[SoundSpec], duration_s: float, *, seed: int, fps: float,
           size: int | tuple[int, int], n_distractors: int | None,
           sensor_noise: bool | None, roles: Sequence[str] | None = None,
           ) -> tuple[list[_Object], np.ndarray, np.ndarray, np.random.Generator, dict]:
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if not duration_s > 0:
        raise SimulationError(f"A scene needs a positive duration, got {duration_s!r} s.")
    h, w = _frame_size(size)
    n = n_frames(duration_s, fps)
    rng = np.random.default_rng(seed)

    if n_distractors is None:
        n_distractors = int(rng.integers(0, 3))
    if n_distractors < 0:
        raise ValueError(f"n_distractors must be >= 0, got {n_distractors}")
    n_obj = len(sounds) + n_distractors
    vertical = bool(rng.random() < 0.6)
    bg, bg_kind = _background(rng, h, w)
    bar = max(1, int(round(0.04 * min(h, w))))
    bar_colour = _random_colour(rng, (0.0, 0.6), (0.15, 0.9))
    lanes = _lanes(n_obj, h, w, vertical, rng)
    lane_cross = min((l[3] - l[2]) if vertical else (l[1] - l[0]) for l in lanes)
    along_len = h if vertical else w
    cap = max(3, int(min(0.85 * lane_cross, 0.4 * (along_len - 2 * bar))))
    bg_mean = bg.reshape(-1, 3).mean(axis=0)
    appearances = []
    for _ in range(n_obj):      # i.i.d. for every object, before any role is known
        side = int(round(rng.uniform(*_SIZE_FRACTION) * min(h, w)))
        appearances.append(_sample_appearance(rng, min(side, cap), bg_mean))

    objects: list[_Object] = []
    avoid: list[float] = []
    for i, snd in enumerate(sounds):
        role = roles[i] if roles is not None else "target"
        onsets = np.asarray(snd.onsets_s, dtype=np.float64)
        avoid.extend(onsets.tolist())
        if snd.sustained:
            curve = (_curve_at_frames(snd.curve, n, fps) if snd.curve is not None
                     else np.ones(n))
            objects.append(_Object(role, "vibrate", appearances[i], np.zeros(0, np.int64),
                                   np.zeros(0), curve=curve))
        else:
            frames, shown = contact_frames(onsets, fps, n)
            avoid.extend((frames / fps).tolist())
            motion = MOTIONS_DISCRETE[int(rng.integers(len(MOTIONS_DISCRETE)))]
            objects.append(_Object(role, motion, appearances[i], frames, shown))
    avoid_s = np.asarray(avoid, dtype=np.float64)
    any_sustained = any(s.sustained for s in sounds)
    for j in range(n_distractors):
        app = appearances[len(sounds) + j]
        u = rng.random()
        if any_sustained and u < 0.3:
            objects.append(_Object("distractor", "vibrate", app, np.zeros(0, np.int64),
                                   np.zeros(0), curve=_random_curve(rng, n)))
        elif u < (0.5 if any_sustained else 0.2):
            objects.append(_Object("distractor", "glide", app, np.zeros(0, np.int64),
                                   np.zeros(0)))
        else:
            frames, times = _distractor_events(rng, n, fps, avoid_s)
            motion = MOTIONS_DISCRETE[int(rng.integers(len(MOTIONS_DISCRETE)))]
            objects.append(_Object("distractor", motion if len(frames) else "glide", app,
                                   frames, times))

    for obj, lane in zip(objects, lanes):
        obj.lane = lane
        _place(obj, n, fps, vertical, bar, rng)

    # contact surfaces: a bar across both ends of every lane (uninformative about the role)
    for (y0, y1, x0, x1) in lanes:
        if vertical:
            bg[y0:y0 + bar, x0:x1] = bar_colour
            bg[y1 - bar:y1, x0:x1] = bar_colour
        else:
            bg[y0:y1, x0:x0 + bar] = bar_colour
            bg[y0:y1, x1 - bar:x1] = bar_colour
    if sensor_noise is None:
        sensor_noise = bool(rng.random() < 0.5)
    noise_std = float(rng.uniform(1.0, 4.0)) if sensor_noise else 0.0
    frames_arr, masks = _draw(bg, objects, n, rng, noise_std)
    info = {"background": bg_kind, "vertical": vertical, "noise_std": noise_std}
    return objects, frames_arr, masks, rng, info


def _object_records(objects: list[_Object], fps: float) -> list[dict[str, Any]]:
    return [{
        "role": o.role, "motion": o.motion, "appearance": o.appearance.to_dict(),
        "lane_yyxx": list(o.lane), "surface": o.surface,
        "contact_frames": [int(k) for k in o.frames],
        "events_s": [float(t) for t in o.shown_s],
    } for o in objects]


def simulate_sounds(sounds: Sequence[SoundSpec], duration_s: float, *, seed: int,
                    fps: float = 20.0, size: int | tuple[int, int] = 64,
                    n_distractors: int | None = None, sensor_noise: bool | None = None,
                    ) -> SimScene:
    """A scene whose target object(s) show `sounds` (one object per sound; two for a layered
    mix), plus `n_distractors` (default: random 0-2) distractors, over `duration_s` seconds."""
    if not sounds:
        raise SimulationError("A scene needs at least one target sound.")
    objects, frames, masks, _, info = _build(sounds, duration_s, seed=seed, fps=fps,
                                             size=size, n_distractors=n_distractors,
                                             sensor_noise=sensor_noise)
    n_t = len(sounds)
    targets = objects[:n_t]
    onsets = np.sort(np.concatenate([np.asarray(s.onsets_s, dtype=np.float64)
                                     for s in sounds]))
    shown = np.sort(np.concatenate([o.shown_s for o in targets]))
    sustained = [s.sustained for s in sounds]
    mode = "sustained" if all(sustained) else ("discrete" if not any(sustained) else "mixed")
    curve = next((o.curve for o in targets if o.curve is not None), None)
    return SimScene(
        frames=frames, masks=masks[:n_t].max(axis=0), fps=float(fps),
        target_events_s=shown,
        distractor_events_s=[o.shown_s.copy() for o in objects[n_t:]],
        distractor_masks=masks[n_t:], seed=int(seed), mode=mode, audio_onsets_s=onsets,
        motion_curve=None if curve is None else curve.astype(np.float32),
        objects=_object_records(objects, fps), info=info,
        target_masks_each=masks[:n_t] if n_t > 1 else None,
    )


def simulate_scene(audio: Any, sr: int = MODEL_SR, *, seed: int, category: str | None = None,
                   onsets_s: Any = None, mode: str | None = None, fps: float = 20.0,
                   size: int | tuple[int, int] = 64, n_distractors: int | None = None,
                   sensor_noise: bool | None = None, clip_seconds: float | None = None,
                   ) -> SimScene:
    """A scene for one sound: the video lasts as long as `audio` (already placed in its window).

    onsets_s: the sound's onsets (s) if known (e.g. cached per clip); else detected.
    mode: 'discrete' / 'sustained' to override `is_sustained(category, clip_seconds, onsets)`.
    Deterministic for a given seed. Raises MediaError for bad audio.
    """
    spec = sound_spec(audio, sr, category=category, onsets_s=onsets_s, mode=mode,
                      clip_seconds=clip_seconds)
    duration = len(mono_float(audio, require_samples=True)) / sr
    return simulate_sounds([spec], duration, seed=seed, fps=fps, size=size,
                           n_distractors=n_distractors, sensor_noise=sensor_noise)


# ----------------------------------------------------------------------------------------------
# Two-object selectivity scenes

def make_selectivity_scene(audio_a: Any, audio_b: Any, sr: int = MODEL_SR, *, seed: int,
                           duration_s: float | None = None, fps: float = 20.0,
                           size: int | tuple[int, int] = 64,
                           min_separation_s: float = DISTRACTOR_SEPARATION_S,
                           onsets_a_s: Any = None, onsets_b_s: Any = None,
                           n_tries: int = 200) -> SelectivityScene:
    """Objects A and B, each making contact at its own sound's onsets, the two sets of events
    at least `min_separation_s` apart (so masking A vs masking B must change the timing).

    The clips (unplaced, starting at their first sample) are put at random offsets in a window
    of `duration_s` (default: the longer clip + 1 s) until every onset of A is that far from
    every onset of B and each shows at least one contact. Raises SimulationError if no such
    placement is found in `n_tries` (e.g. a sound without onsets, or dense, overlapping ones).
    """
    from foley_core.events import detect_onsets

    a, b = mono_float(audio_a, "audio_a", require_samples=True), mono_float(audio_b, "audio_b", require_samples=True)
    on_a = detect_onsets(a, sr) if onsets_a_s is None else np.asarray(onsets_a_s, float)
    on_b = detect_onsets(b, sr) if onsets_b_s is None else np.asarray(onsets_b_s, float)
    if on_a.size == 0 or on_b.size == 0:
        which = "A" if on_a.size == 0 else "B"
        raise SimulationError(f"Sound {which} has no onsets; a selectivity scene needs two "
                              "sounds with distinct events (use impacts, steps, hits).")
    if duration_s is None:
        duration_s = max(len(a), len(b)) / sr + 1.0
    n = n_frames(duration_s, fps)
    n_samples = int(round(duration_s * sr))
    rng = np.random.default_rng([int(seed), 7])
    for _ in range(n_tries):
        off_a = rng.uniform(0, max(0.0, duration_s - len(a) / sr) + 1e-9)
        off_b = rng.uniform(0, max(0.0, duration_s - len(b) / sr) + 1e-9)
        ta = on_a + off_a
        tb = on_b + off_b
        ta, tb = ta[ta < duration_s], tb[tb < duration_s]
        if ta.size == 0 or tb.size == 0:
            continue
        if np.min(np.abs(ta[:, None] - tb[None, :])) < min_separation_s:
            continue
        fa, _ = contact_frames(ta, fps, n, first_frame=1, last_frame=n - 2)
        fb, _ = contact_frames(tb, fps, n, first_frame=1, last_frame=n - 2)
        if fa.size and fb.size:
            break
    else:
        raise SimulationError(
            f"Could not place the two sounds so that their onsets are {min_separation_s:g} s "
            f"apart in a {duration_s:g} s window after {n_tries} tries; pick sounds with fewer "
            "onsets or a longer duration_s."
        )
    from foley_lab.data.augment import place

    placed_a = place(a, n_samples, int(round(off_a * sr)))
    placed_b = place(b, n_samples, int(round(off_b * sr)))
    peak = float(np.max(np.abs(placed_a + placed_b)))
    if peak > 0.99:        # one scale for both, so that a + b is still the mixture
        placed_a *= np.float32(0.99 / peak)
        placed_b *= np.float32(0.99 / peak)
    specs = [SoundSpec(ta, False), SoundSpec(tb, False)]
    objects, frames, masks, _, _ = _build(specs, duration_s, seed=seed, fps=fps, size=size,
                                          n_distractors=0, sensor_noise=None,
                                          roles=("A", "B"))
    return SelectivityScene(
        frames=frames, masks_a=masks[0], masks_b=masks[1], fps=float(fps),
        events_a_s=objects[0].shown_s, events_b_s=objects[1].shown_s,
        audio_a=placed_a, audio_b=placed_b, mixture=placed_a + placed_b, sr=int(sr),
        offset_a_s=float(off_a), offset_b_s=float(off_b), seed=int(seed),
        objects=_object_records(objects, fps), onsets_a_s=ta, onsets_b_s=tb,
    )


# ----------------------------------------------------------------------------------------------
# Reading trajectories back and writing video

def mask_centroids(masks: np.ndarray) -> np.ndarray:
    """(T, 2) mask-weighted centroid (x, y) per frame in pixels; NaN where the mask is empty."""
    m = np.asarray(masks, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"masks must be (T, H, W), got shape {m.shape}")
    total = m.sum(axis=(1, 2))
    ys = np.arange(m.shape[1], dtype=np.float64)
    xs = np.arange(m.shape[2], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (m.sum(axis=2) @ ys) / total
        cx = (m.sum(axis=1) @ xs) / total
    out = np.stack([cx, cy], axis=1)
    out[total <= 0] = np.nan
    return out


def render_scene_video(scene: SimScene | SelectivityScene, path: str | os.PathLike, *,
                       audio: np.ndarray | None = None, sr: int = MODEL_SR,
                       crf: int = 12) -> Path:
    """Write the scene's frames as an H.264 MP4 (yuv420p) at the scene's fps, atomically
    (`media.write_frames_mp4`). With `audio` (float32 mono at `sr`), it is muxed as AAC. Frame
    sides must be even (yuv420p). Raises MediaError if ffmpeg fails."""
    return write_frames_mp4(scene.frames, path, fps=scene.fps, audio=audio, sr=sr, crf=crf)
