"""Waveform thumbnails: the peak level of a sound in a few dozen bins, for drawing beside a search
result. `waveform_peaks` works on an array; `PeaksCache` keeps the peaks of files on disk (keyed by
path, mtime and size, so a changed file is read again), as the search engine's audio features are.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from foley_core.audio_io import read_audio
from foley_core.errors import MediaError
from foley_core.library import search as engine

__all__ = ["THUMBNAIL_BINS", "waveform_peaks", "PeaksCache"]

# Enough columns for a thumbnail about 100-200 px wide; each bin costs 4 bytes in the cache.
THUMBNAIL_BINS = 96


def waveform_peaks(audio: np.ndarray, n_bins: int = THUMBNAIL_BINS) -> np.ndarray:
    """The largest absolute sample in each of `n_bins` equal stretches of `audio` ((n,) or
    (n, channels), linear full scale), as float32 `(n_bins,)`. Every channel counts (a downmix
    could cancel out-of-phase channels and draw a loud clip as silence). A clip shorter than
    `n_bins` samples repeats its samples across the bins; an empty one gives zeros."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a whole number of at least 1, got {n_bins!r}")
    x = np.asarray(audio, dtype=np.float32)
    level = np.abs(x).max(axis=1) if x.ndim == 2 else np.abs(x.reshape(-1))
    if level.size == 0:
        return np.zeros(int(n_bins), dtype=np.float32)
    level = np.nan_to_num(level, nan=0.0, posinf=0.0, neginf=0.0)
    starts = np.minimum((np.arange(int(n_bins)) * level.size) // int(n_bins), level.size - 1)
    # reduceat over a bin that starts where the next one does returns that one sample: what a
    # clip shorter than the thumbnail should show
    return np.maximum.reduceat(level, starts).astype(np.float32)


class PeaksCache:
    """Peaks of sound files, `n_bins` each, in memory and (with a `cache_dir`) on disk. A file
    is read only when its path, mtime or size is new; an unreadable file gives None."""

    def __init__(self, cache_dir: Path | None, n_bins: int = THUMBNAIL_BINS) -> None:
        self.n_bins = int(n_bins)
        self._store = engine.VectorStore(cache_dir, f"peaks-v1-{self.n_bins}", self.n_bins)
        self._lock = threading.Lock()
        self.reads = 0          # files decoded by this cache (what a cache hit avoids)

    def peaks(self, paths: list[Path]) -> list[np.ndarray | None]:
        """The peaks of each file (None for one that cannot be read), writing new ones to disk once."""
        out: list[np.ndarray | None] = []
        new: dict[str, np.ndarray] = {}
        with self._lock:
            for path in paths:
                try:
                    st = Path(path).stat()
                except OSError:
                    out.append(None)
                    continue
                key = engine.file_key(Path(path), st.st_mtime_ns, st.st_size)
                vec = new.get(key)
                if vec is None:
                    vec = self._store.get(key)
                if vec is None:
                    try:
                        audio, _ = read_audio(path, mono=False)
                    except MediaError:
                        out.append(None)
                        continue
                    self.reads += 1
                    vec = new[key] = waveform_peaks(audio, self.n_bins)
                out.append(vec)
            self._store.put(new)
        return out
