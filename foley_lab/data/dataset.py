"""Training items for the video-conditioned model: augmented audio + a simulated scene.

`SimSceneDataset` wraps `SfxAudioDataset` (gain, shift into a length bucket, optional two-clip
mix) and renders, for every item, a scene in which the target object(s) make contact at the
onsets of the placed clip(s) (`simulate.simulate_sounds`). Clip onsets come from the library
(`SfxLibrary.onsets`, cached), shifted by the placement offset, so no onset detection runs per
item. A mix gets one target object per clip; the mask covers both.

An item is a dict (numpy only, torch-free):
    audio       float32 (n,) at sr (16 kHz)          caption    str
    frames      uint8 (T, H, W, 3) at fps            masks      float32 (T, H, W), target(s)
    loudness    float32 relative curve at CURVE_FPS (foley_core.loudness.relative_loudness)
    category    str (first clip)                     categories list[str]
    events_s    float64 onsets the target shows      audio_onsets_s  all onsets in the window
    distractor_events_s  list of float64 arrays      distractor_masks float32 (n_d, T, H, W)
    mode        'discrete' | 'sustained' | 'mixed'   seed, clip_ids, bucket_s, fps, sr
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from foley_lab.data.augment import DEFAULT_BUCKETS_S, SfxAudioDataset
from foley_lab.data.simulate import SoundSpec, is_sustained, simulate_sounds

__all__ = ["SimSceneDataset", "placed_onsets"]


def placed_onsets(onsets_s: np.ndarray, offset_s: float, duration_s: float) -> np.ndarray:
    """A clip's onsets after placing it at `offset_s` in a window of `duration_s` (s).

    A clip cropped at the window start (offset < 0) whose sound is still going at t = 0 gets
    an onset at 0, as `detect_onsets` would report for the placed audio.
    """
    t = np.asarray(onsets_s, dtype=np.float64) + offset_s
    inside = t[(t >= 0) & (t < duration_s)]
    if offset_s < 0 and (inside.size == 0 or inside[0] > 0.05) and np.any(t < 0):
        inside = np.concatenate([[0.0], inside])
    return inside


class SimSceneDataset:
    """(audio, caption, frames, masks, loudness, events) items over a library split.

    Item i of epoch e is a pure function of (seed, e, i). fps/size: video rate and frame side
    (20 fps at 64 px for training; 4 fps at 224 px for the paper's visual path).
    n_distractors: fixed count, or None for a random 0-2 per scene. clips: use these library
    clips instead of a split's. The other arguments go to `SfxAudioDataset`.
    """

    def __init__(self, library: Any, split: str | None = "train", *, seed: int = 0,
                 fps: float = 20.0, size: int | tuple[int, int] = 64,
                 n_distractors: int | None = None, buckets_s: Sequence[float] =
                 DEFAULT_BUCKETS_S, gain_db: float = 6.0, mix_prob: float = 0.1,
                 preload: bool = False, clips: Sequence[Any] | None = None) -> None:
        self.audio = SfxAudioDataset(library, split, seed=seed, buckets_s=buckets_s,
                                     gain_db=gain_db, mix_prob=mix_prob, preload=preload,
                                     clips=clips)
        self.library = library
        self.fps = float(fps)
        self.size = size
        self.n_distractors = n_distractors

    def __len__(self) -> int:
        return len(self.audio)

    def set_epoch(self, epoch: int) -> None:
        self.audio.set_epoch(epoch)

    def bucket_of(self, index: int) -> float:
        return self.audio.bucket_of(index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from foley_core.loudness import relative_loudness

        item = self.audio[index]
        duration = len(item.audio) / item.sr
        specs = []
        for clip_id, offset_s, component in zip(item.clip_ids, item.offsets_s,
                                                item.extra["components"]):
            clip = self.library.get(clip_id)
            onsets = placed_onsets(self.library.onsets(clip), offset_s, duration)
            specs.append(SoundSpec(
                onsets_s=onsets,
                sustained=is_sustained(clip.category, clip.seconds, onsets),
                curve=relative_loudness(component, item.sr),
            ))
        scene_seed = int(np.random.default_rng(
            [self.audio.seed, self.audio.epoch, index % len(self), 1]).integers(2**31))
        scene = simulate_sounds(specs, duration, seed=scene_seed, fps=self.fps, size=self.size,
                                n_distractors=self.n_distractors)
        return {
            "audio": item.audio, "sr": item.sr, "caption": item.caption,
            "frames": scene.frames, "masks": scene.masks, "fps": scene.fps,
            "loudness": relative_loudness(item.audio, item.sr),
            "category": item.category, "categories": list(item.categories),
            "events_s": scene.target_events_s, "audio_onsets_s": scene.audio_onsets_s,
            "distractor_events_s": scene.distractor_events_s,
            "distractor_masks": scene.distractor_masks, "mode": scene.mode,
            "seed": scene.seed, "clip_ids": list(item.clip_ids), "bucket_s": item.bucket_s,
        }

