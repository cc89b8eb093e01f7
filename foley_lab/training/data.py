"""Training data for the embedded model: the `ClipDataset` protocol, length buckets, collation.

Any map-style dataset whose items look like `ClipItem` works (the data engineer's
`foley_lab.data.SimSceneDataset` does): audio float32 (n,) at 16 kHz, a caption, and optionally
frames uint8 (T, H, W, 3) at the model's video rate with masks float32 (T, H, W) of the sounding
object. Items are batched by length bucket (median clip ~1 s; padding all to 8 s would waste
most of the compute); a dataset may say its buckets without loading audio via `bucket_of(i)`.

`ToyClipDataset` makes tones / noise bursts with captions and a moving square that touches the
floor at each burst (for tests and smoke runs; no files needed).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from foley_core.constants import MODEL_SR

DEFAULT_BUCKETS_S = (1.0, 2.0, 4.0, 8.0)


@runtime_checkable
class ClipDataset(Protocol):
    """Map-style dataset of clips. Items are mappings with at least `audio` and `caption`;
    `frames` / `masks` may be missing or None (audio-only clips)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Mapping[str, Any]: ...


def bucket_for(duration_s: float, buckets_s: Sequence[float] = DEFAULT_BUCKETS_S) -> float:
    """Smallest bucket that holds `duration_s` (the largest one if none does: the clip is cropped)."""
    for bucket in sorted(buckets_s):
        if duration_s <= bucket + 1e-6:
            return float(bucket)
    return float(max(buckets_s))


class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of indices that share a length bucket; a new order every epoch.

    Uses `dataset.bucket_of(i)` when the dataset has it, else loads each item once to measure it.
    `max_batch_seconds`: cap on batch size x bucket length, so long buckets get smaller batches
    and every step costs about the same (e.g. 32: 16 x 2 s, 8 x 4 s, 4 x 8 s).
    """

    def __init__(self, dataset: ClipDataset, batch_size: int, *, buckets_s: Sequence[float] = DEFAULT_BUCKETS_S,
                 seed: int = 0, drop_last: bool = False, max_batch_seconds: float | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.max_batch_seconds = max_batch_seconds
        self.epoch = 0
        if hasattr(dataset, "bucket_of"):
            buckets = [float(dataset.bucket_of(i)) for i in range(len(dataset))]
        else:
            buckets = [bucket_for(len(dataset[i]["audio"]) / MODEL_SR, buckets_s) for i in range(len(dataset))]
        self.by_bucket: dict[float, list[int]] = {}
        for i, b in enumerate(buckets):
            self.by_bucket.setdefault(b, []).append(i)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = []
        for bucket in sorted(self.by_bucket):
            idx = np.array(self.by_bucket[bucket])
            rng.shuffle(idx)
            size = self.batch_size
            if self.max_batch_seconds:
                size = max(1, min(size, int(self.max_batch_seconds // bucket)))
            for k in range(0, len(idx), size):
                chunk = idx[k:k + size].tolist()
                if len(chunk) == size or not self.drop_last:
                    batches.append(chunk)
        return [batches[k] for k in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Process `rank`'s share of every batch of `sampler`, for training on `world` processes.

    Every process draws the same global batches (same seed and epoch) and takes the contiguous
    slice `rank` of each, so the processes together see exactly the batch one process would:
    with the gradients averaged (DDP), a step equals the one-process step on the whole batch.
    A batch is first cut to a multiple of `world` (the few left over are skipped this epoch),
    so every share has the same size and the average weighs every item alike.
    """

    def __init__(self, sampler: BucketBatchSampler, world: int, rank: int):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0..{world - 1}")
        self.sampler, self.world, self.rank = sampler, world, rank

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def shares(self) -> list[list[int]]:
        out = []
        for batch in self.sampler._batches():
            share = len(batch) // self.world
            if share:
                out.append(batch[self.rank * share:(self.rank + 1) * share])
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.shares())

    def __len__(self) -> int:
        return len(self.shares())


def _fit(x: np.ndarray, n: int, axis: int = 0) -> np.ndarray:
    """Crop or zero-pad `x` to length `n` along `axis`."""
    if x.shape[axis] >= n:
        return np.take(x, np.arange(n), axis=axis)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, n - x.shape[axis])
    return np.pad(x, pad)


class ClipCollator:
    """Items -> a batch of tensors at one length (the longest item, on a 0.2 s grid).

    Returns a dict: audio (B, n) float32, captions list[str], frames (B, T, 3, H, W) float in
    [0, 1] or None, masks (B, T, 1, H, W) or None, has_video (B,) bool, onsets_s (B entries:
    the item's `audio_onsets_s` within the batch length, or None), duration_s float.
    Frames of another size are resized to `frame_size`; items without video get black frames
    and has_video False (their video condition is dropped).
    """

    def __init__(self, *, sr: int = MODEL_SR, video_fps: float = 20.0, frame_size: tuple[int, int] = (64, 64),
                 grid_s: float = 0.2, max_duration_s: float = 8.0):
        self.sr = sr
        self.video_fps = float(video_fps)
        self.frame_size = tuple(frame_size)
        self.grid_s = grid_s
        self.max_duration_s = max_duration_s

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import cv2

        longest = max(len(item["audio"]) for item in items) / self.sr
        duration = min(self.max_duration_s, max(self.grid_s, math.ceil(longest / self.grid_s - 1e-9) * self.grid_s))
        n = round(duration * self.sr)
        audio = np.stack([_fit(np.asarray(item["audio"], np.float32).reshape(-1), n) for item in items])
        has_video = np.array([item.get("frames") is not None for item in items])
        frames = masks = None
        if has_video.any():
            n_frames = max(1, round(duration * self.video_fps))
            width, height = self.frame_size
            frames = np.zeros((len(items), n_frames, height, width, 3), np.uint8)
            masks = np.ones((len(items), n_frames, height, width), np.float32)
            for b, item in enumerate(items):
                if item.get("frames") is None:
                    continue
                fps = float(item.get("fps", self.video_fps))
                if abs(fps - self.video_fps) > 1e-6:
                    raise ValueError(f"item {b} has frames at {fps} fps; the model wants {self.video_fps}")
                f = np.asarray(item["frames"], np.uint8)
                m = item.get("masks")
                m = np.ones(f.shape[:3], np.float32) if m is None else np.asarray(m, np.float32)
                if f.shape[1:3] != (height, width):
                    f = np.stack([cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA) for x in f])
                    m = np.stack([cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA) for x in m])
                frames[b] = _fit(f, n_frames)
                masks[b] = _fit(m, n_frames)
            frames = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float().div_(255.0)
            masks = torch.from_numpy(masks)[:, :, None]
        # onsets the dataset already knows (SimSceneDataset's cached library onsets) save the
        # trainer a detection pass; None where an item has none listed
        listed = [None if item.get("audio_onsets_s") is None else
                  np.asarray(item["audio_onsets_s"], np.float64) for item in items]
        onsets = [None if o is None else o[o < duration] for o in listed]
        return {"audio": torch.from_numpy(audio), "captions": [str(item.get("caption") or "") for item in items],
                "frames": frames, "masks": masks, "has_video": torch.from_numpy(has_video),
                "onsets_s": onsets, "duration_s": duration}


class AudioOnlyDataset:
    """Wraps a dataset of audio items (objects with `.audio` and `.caption`, like
    `foley_lab.data.SfxAudioDataset`) as a ClipDataset without video."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        if hasattr(dataset, "bucket_of"):
            self.bucket_of = dataset.bucket_of

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        if isinstance(item, Mapping):
            return {**item, "frames": None, "masks": None}
        return {"audio": item.audio, "caption": item.caption, "frames": None, "masks": None}


class ToyClipDataset:
    """Synthetic clips: tone or noise bursts with matching captions, and optional video.

    Item i (deterministic per seed and index): a `duration_s` clip of 1-3 bursts of one of a few
    sound kinds ("a high beep", "a low hum", "a burst of noise", ...); with `video=True`, a
    white square on a dark background that drops to the floor at each burst (64x64, 20 fps),
    its mask, and a distracting grey square that moves at other times.
    """

    KINDS = (("a high beep", "tone", 1760.0), ("a low hum", "tone", 220.0),
             ("a burst of white noise", "noise", 0.0), ("a mid tone ping", "tone", 660.0))

    def __init__(self, n_items: int = 32, *, duration_s: float | Sequence[float] = 1.0, seed: int = 0,
                 video: bool = True, fps: float = 20.0, frame_size: int = 64, sr: int = MODEL_SR):
        self.n_items = n_items
        self.durations = [duration_s] if np.isscalar(duration_s) else list(duration_s)
        self.seed = seed
        self.video = video
        self.fps = float(fps)
        self.frame_size = frame_size
        self.sr = sr

    def __len__(self) -> int:
        return self.n_items

    def _duration(self, index: int) -> float:
        return float(self.durations[index % len(self.durations)])

    def bucket_of(self, index: int) -> float:
        return bucket_for(self._duration(index))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.n_items:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        duration = self._duration(index)
        n = round(duration * self.sr)
        caption, kind, freq = self.KINDS[index % len(self.KINDS)]
        n_events = int(rng.integers(1, 4))
        events = np.sort(rng.uniform(0.05, max(0.1, duration - 0.25), n_events))
        t = np.arange(n) / self.sr
        audio = np.zeros(n, np.float32)
        for e in events:
            env = np.where(t >= e, np.exp(-(t - e) / 0.08), 0.0)
            src = np.sin(2 * np.pi * freq * t) if kind == "tone" else rng.standard_normal(n)
            audio += (0.5 * env * src).astype(np.float32)
        item: dict[str, Any] = {"audio": audio, "caption": caption, "events_s": events, "sr": self.sr}
        if self.video:
            frames, masks = self._scene(events, duration, rng)
            item.update(frames=frames, masks=masks, fps=self.fps)
        else:
            item.update(frames=None, masks=None)
        return item

    def _scene(self, events: np.ndarray, duration: float, rng: np.random.Generator):
        size = self.frame_size
        n_frames = max(1, round(duration * self.fps))
        times = np.arange(n_frames) / self.fps
        frames = np.full((n_frames, size, size, 3), 30, np.uint8)
        masks = np.zeros((n_frames, size, size), np.float32)
        side = size // 6
        floor = size - side - 2
        x = int(rng.integers(2, size // 2 - side))
        other_x = int(rng.integers(size // 2, size - side - 2))
        other_events = (events + 0.35) % max(duration, 0.4)
        for k, tk in enumerate(times):
            # height above the floor: falls into each event (parabola of 0.25 s), rests after
            since = [tk - e for e in events if tk - e >= -0.25]
            y = floor - int(min(1.0, min((abs(s) for s in since if s < 0), default=1.0) / 0.25) ** 2 * floor * 0.6) \
                if any(s < 0 for s in since) else floor
            frames[k, y:y + side, x:x + side] = 255
            masks[k, y:y + side, x:x + side] = 1.0
            oy = floor - int(abs(np.sin(np.pi * (tk - other_events[0]) / 0.5)) * size * 0.3)
            frames[k, oy:oy + side, other_x:other_x + side] = 150
        return frames, masks
