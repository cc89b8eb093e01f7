"""Audio augmentation for training and the torch-free audio dataset over the sound library.

Clips are short (median 1.0 s, 75 % under 3 s), so instead of one fixed crop length every item
goes into the smallest length bucket that holds its clip (default 1, 2, 4, 8 s; longer clips
are cropped to 8 s). Items of one bucket share a length and can be batched (`bucket_batches`).
Augmentations: gain (+-6 dB), a random time shift inside the bucket (or a random crop of a
longer clip), and with probability `mix_prob` a second clip mixed in at -6..0 dB relative to
the first, with the captions joined "A and B" (layered Foley).

Every item is a pure function of (seed, epoch, index): workers may load items in any order and
get the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from foley_core.constants import MODEL_SR
from foley_core.errors import FoleyError, MediaError

__all__ = [
    "DEFAULT_BUCKETS_S", "bucket_for", "apply_gain", "place", "random_place", "mix",
    "join_captions", "AudioItem", "SfxAudioDataset", "bucket_batches",
]

DEFAULT_BUCKETS_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
_HEADROOM_PEAK = 0.99


def bucket_for(duration_s: float, buckets_s: Sequence[float] = DEFAULT_BUCKETS_S) -> float:
    """The smallest bucket length (s) >= `duration_s`; the largest bucket for longer clips."""
    if not duration_s >= 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
    buckets = sorted(float(b) for b in buckets_s)
    if not buckets or buckets[0] <= 0:
        raise ValueError(f"buckets_s must be positive lengths in seconds, got {buckets_s!r}")
    for b in buckets:
        if duration_s <= b + 1e-9:
            return b
    return buckets[-1]


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """`audio * 10 ** (gain_db / 20)` as float32."""
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0)))


def place(audio: np.ndarray, n_samples: int, offset: int) -> np.ndarray:
    """A window of `n_samples` holding `audio` starting at sample `offset` (float32).

    offset > 0 pads silence before the clip; offset < 0 crops the clip's first -offset samples;
    whatever does not fit is cut, and the rest of the window is silence.
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    out = np.zeros(n_samples, dtype=np.float32)
    src0 = max(0, -offset)
    dst0 = max(0, offset)
    n = min(len(audio) - src0, n_samples - dst0)
    if n > 0:
        out[dst0:dst0 + n] = audio[src0:src0 + n]
    return out


def random_place(audio: np.ndarray, n_samples: int, rng: np.random.Generator, *,
                 shift: bool = True) -> tuple[np.ndarray, int]:
    """`place` at a random offset: anywhere inside the window for a short clip, a random crop
    for a long one. Without `shift` the clip starts at 0 (cropped at the end). Returns
    (window, offset in samples)."""
    slack = n_samples - len(audio)
    if not shift:
        offset = 0
    elif slack >= 0:
        offset = int(rng.integers(0, slack + 1))
    else:
        offset = -int(rng.integers(0, -slack + 1))
    return place(audio, n_samples, offset), offset


def mix(a: np.ndarray, b: np.ndarray, *, gain_b_db: float = 0.0) -> tuple[np.ndarray, float]:
    """a + b at `gain_b_db`, scaled down only if the sum would clip (peak > 0.99).

    Returns (mixture float32, the gain in dB applied to the sum: 0 or negative).
    """
    if len(a) != len(b):
        raise ValueError(f"mix needs equal lengths, got {len(a)} and {len(b)} samples")
    y = np.asarray(a, dtype=np.float32) + apply_gain(b, gain_b_db)
    peak = float(np.max(np.abs(y), initial=0.0))
    if peak > _HEADROOM_PEAK:
        scale = _HEADROOM_PEAK / peak
        return (y * np.float32(scale)).astype(np.float32), float(20 * np.log10(scale))
    return y, 0.0


def join_captions(a: str, b: str) -> str:
    """"a dog barks" + "A door slams." -> "a dog barks and a door slams"."""
    a, b = a.strip().rstrip("."), b.strip().rstrip(".")
    if not a or not b:
        raise FoleyError("Both captions must be non-empty to join them.")
    first_word = b.split()[0]
    if b[:1].isupper() and not (len(first_word) > 1 and first_word.isupper()):   # keep "UFO"
        b = b[0].lower() + b[1:]
    return f"{a} and {b}"


@dataclass
class AudioItem:
    """One training example: `audio` float32 (n,) at `sr`, its caption and provenance.

    clip_ids/categories list the clips in the item (two for a mix); offsets_s are where each
    clip starts in the window (negative: cropped); gains_db the gain applied to each;
    extra["components"] holds each clip as placed in the window (they sum to `audio`).
    """

    audio: np.ndarray
    sr: int
    caption: str
    bucket_s: float
    clip_ids: list[str]
    categories: list[str]
    offsets_s: list[float]
    gains_db: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return self.categories[0]


class SfxAudioDataset:
    """Augmented audio items from the clips of a library split (torch-free, map-style).

    library: an `SfxLibrary`; split: 'train' or 'val' (or None for all clips).
    Item i of epoch e is drawn from a generator seeded with (seed, e, i). Its bucket depends
    only on clip i's length (`bucket_of(i)`), so batches can be grouped before loading.
    gain_db: gains are uniform in +-gain_db; mix_prob: chance of layering a second clip.
    preload: decode every clip once into memory (57 min of audio is ~220 MB as float32).
    """

    def __init__(self, library: Any, split: str | None = "train", *, seed: int = 0,
                 buckets_s: Sequence[float] = DEFAULT_BUCKETS_S, gain_db: float = 6.0,
                 shift: bool = True, mix_prob: float = 0.2, mix_gain_db: tuple[float, float] =
                 (-6.0, 0.0), sr: int = MODEL_SR, preload: bool = False,
                 clips: Sequence[Any] | None = None) -> None:
        if sr != MODEL_SR:
            raise ValueError(f"the library is read at {MODEL_SR} Hz; sr={sr} is not supported")
        if not 0.0 <= mix_prob <= 1.0:
            raise ValueError(f"mix_prob must be in [0, 1], got {mix_prob!r}")
        self.library = library
        self.clips = list(clips) if clips is not None else library.clips(split)
        if not self.clips:
            raise FoleyError(f"The library has no clips in split {split!r}.")
        self.seed = int(seed)
        self.epoch = 0
        self.buckets_s = tuple(sorted(float(b) for b in buckets_s))
        self.gain_db = float(gain_db)
        self.shift = bool(shift)
        self.mix_prob = float(mix_prob)
        self.mix_gain_db = mix_gain_db
        self.sr = sr
        self._memory: dict[str, np.ndarray] | None = None
        if preload:
            self._memory = {c.id: library.load(c) for c in self.clips}

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Use a new draw of augmentations (same clips) for epoch `epoch`."""
        self.epoch = int(epoch)

    def bucket_of(self, index: int) -> float:
        return bucket_for(self.clips[index].seconds, self.buckets_s)

    def _audio(self, clip: Any) -> np.ndarray:
        if self._memory is not None:
            return self._memory[clip.id]
        return self.library.load(clip)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> AudioItem:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        index = index % len(self)
        rng = self.rng(index)
        clip = self.clips[index]
        bucket_s = self.bucket_of(index)
        n = int(round(bucket_s * self.sr))

        gain = float(rng.uniform(-self.gain_db, self.gain_db))
        audio = self._audio(clip)
        if audio.size == 0:
            raise MediaError(f"Clip '{clip.id}' decodes to no samples.")
        window, offset = random_place(apply_gain(audio, gain), n, rng, shift=self.shift)
        item = AudioItem(audio=window, sr=self.sr, caption=clip.caption, bucket_s=bucket_s,
                         clip_ids=[clip.id], categories=[clip.category],
                         offsets_s=[offset / self.sr], gains_db=[gain],
                         extra={"components": [window]})

        # the draws below always happen, so item i's first clip is the same with and without a mix
        do_mix = rng.random() < self.mix_prob and len(self.clips) > 1
        j = int(rng.integers(0, len(self.clips) - 1))
        j = j + 1 if j >= index else j                                   # never the same clip
        rel_db = float(rng.uniform(*self.mix_gain_db))
        if do_mix:
            other = self.clips[j]
            other_audio = self._audio(other)
            b, offset_b = random_place(apply_gain(other_audio, gain), n, rng, shift=self.shift)
            item.audio, headroom_db = mix(window, b, gain_b_db=rel_db)
            item.caption = join_captions(clip.caption, other.caption)
            item.clip_ids.append(other.id)
            item.categories.append(other.category)
            item.offsets_s.append(offset_b / self.sr)
            item.gains_db = [gain + headroom_db, gain + rel_db + headroom_db]
            scale = np.float32(10 ** (headroom_db / 20))
            item.extra["components"] = [window * scale, apply_gain(b, rel_db) * scale]
        return item

    def __iter__(self) -> Iterator[AudioItem]:
        for i in range(len(self)):
            yield self[i]


def bucket_batches(dataset: SfxAudioDataset, batch_size: int, *, seed: int = 0,
                   drop_last: bool = False) -> list[list[int]]:
    """Shuffled index batches whose items share a length bucket (one list per batch)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng([seed, dataset.epoch])
    by_bucket: dict[float, list[int]] = {}
    for i in range(len(dataset)):
        by_bucket.setdefault(dataset.bucket_of(i), []).append(i)
    batches: list[list[int]] = []
    for bucket in sorted(by_bucket):
        idx = np.array(by_bucket[bucket])
        rng.shuffle(idx)
        for k in range(0, len(idx), batch_size):
            chunk = idx[k:k + batch_size].tolist()
            if len(chunk) == batch_size or not drop_last:
                batches.append(chunk)
    order = rng.permutation(len(batches))
    return [batches[k] for k in order]
