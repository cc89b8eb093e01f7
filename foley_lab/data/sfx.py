"""The captioned sound-effects library (../shared/sfx): manifest rows, 16 kHz clips, npz cache.

The library folder holds `manifest.csv` (one row per clip: id, file, caption, category, split,
seconds, peak_dbfs, lufs, source_package, source_path, license, attribution) and
`audio/<category>/<id>.flac` (mono, 16 kHz, 16-bit). `SfxLibrary` reads the manifest once and
loads clips as float32 at `MODEL_SR`. With a `cache_dir`, decoded clips are kept as int16 npz
files (lossless for these 16-bit sources): loading one is ~10x faster than decoding the FLAC,
which matters when training re-reads every clip each epoch.

A folder built by `scripts/build_sound_library.py` (`index.csv`, clips at their native rate and
channels) is read the same way, down-mixed and resampled to `MODEL_SR` (its cache then holds
the resampled audio at 16 bits, so epochs skip the resampling too). It has no split column:
every clip counts as "train", because that builder takes ../shared/sfx's clips only from its
train split. `without_split` drops any clip that shares an id or a source file with another
library's split (the guard a trainer applies against the shared val split before it trains on
such a folder).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from foley_core.atomic import atomic_path
from foley_core.constants import MODEL_SR
from foley_core.errors import FoleyError, MediaError

__all__ = ["SfxClip", "SfxLibrary", "default_sfx_root", "without_split", "SPLITS"]

SPLITS = ("train", "val")
_REQUIRED_COLUMNS = ("id", "file", "caption", "category", "split", "seconds")
# index.csv of a built sound library: no split column (see the module docstring)
_INDEX_SPLIT = "train"
_CACHE_VERSION = 1
_ONSETS_VERSION = 1       # bump when events.detect_onsets changes, to re-detect cached onsets


def default_sfx_root() -> Path:
    """`<repo>/../shared/sfx`: the shared library beside the repository."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "sfx"


@dataclass(frozen=True)
class SfxClip:
    """One manifest row. `path` is absolute; `licence` is the manifest's `license` column."""

    id: str
    path: Path
    caption: str
    category: str
    split: str
    seconds: float
    licence: str = ""
    attribution: str = ""
    peak_dbfs: float | None = None
    lufs: float | None = None
    source_package: str = ""
    source_path: str = ""


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class SfxLibrary:
    """The clips of a library folder; `load` returns float32 mono audio at 16 kHz.

    root: folder with manifest.csv (default `default_sfx_root()`).
    cache_dir: optional folder for decoded int16 npz copies (see `precompute`).
    Raises MediaError if the folder, the manifest or a required column is missing.
    """

    def __init__(self, root: str | os.PathLike | None = None, *,
                 cache_dir: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_sfx_root()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        manifest = self.root / "manifest.csv"
        index = self.root / "index.csv"
        if not manifest.is_file() and not index.is_file():
            raise MediaError(
                f"No sound library at '{self.root}': '{manifest.name}' is missing. Pass the "
                "folder that holds manifest.csv and audio/ (the shared library is ../shared/sfx) "
                "or a built sound library's folder (index.csv)."
            )
        self._clips = self._read_manifest(manifest if manifest.is_file() else index)
        self._by_id = {c.id: c for c in self._clips}
        self._onsets: dict[str, np.ndarray] = {}

    def _read_manifest(self, manifest: Path) -> list[SfxClip]:
        with open(manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            has_split = "split" in columns or manifest.name == "manifest.csv"
            missing = [c for c in _REQUIRED_COLUMNS if c not in columns and (has_split or c != "split")]
            if missing:
                raise MediaError(f"'{manifest}' lacks the column(s) {', '.join(missing)}; it "
                                 f"has {', '.join(columns) or 'no header'}.")
            clips = []
            for line, row in enumerate(reader, start=2):
                try:
                    seconds = float(row["seconds"])
                except (TypeError, ValueError):
                    raise MediaError(f"'{manifest}' line {line}: seconds is "
                                     f"{row['seconds']!r}, not a number.") from None
                clips.append(SfxClip(
                    id=row["id"], path=(self.root / row["file"]).resolve(),
                    caption=row["caption"].strip(), category=row["category"],
                    split=row["split"] if has_split else _INDEX_SPLIT, seconds=seconds,
                    licence=row.get("license") or row.get("licence") or "",
                    attribution=row.get("attribution") or "",
                    peak_dbfs=_float_or_none(row.get("peak_dbfs")),
                    lufs=_float_or_none(row.get("lufs")),
                    source_package=row.get("source_package") or "",
                    source_path=row.get("source_path") or "",
                ))
        if not clips:
            raise MediaError(f"'{manifest}' lists no clips.")
        return clips

    # -- catalogue ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._clips)

    @property
    def categories(self) -> list[str]:
        """Sorted category names."""
        return sorted({c.category for c in self._clips})

    def clips(self, split: str | None = None, *, category: str | None = None) -> list[SfxClip]:
        """Clips in manifest order, optionally of one split ('train'/'val') and/or category."""
        if split is not None and split not in {c.split for c in self._clips}:
            raise FoleyError(f"Unknown split {split!r}; this library has "
                             f"{', '.join(sorted({c.split for c in self._clips}))}.")
        if category is not None and category not in self.categories:
            raise FoleyError(f"Unknown category {category!r}; this library has "
                             f"{', '.join(self.categories)}.")
        return [c for c in self._clips
                if (split is None or c.split == split)
                and (category is None or c.category == category)]

    def get(self, clip_id: str) -> SfxClip:
        try:
            return self._by_id[clip_id]
        except KeyError:
            raise FoleyError(f"No clip with id {clip_id!r} in '{self.root}'.") from None

    # -- audio ----------------------------------------------------------------------------------

    def load(self, clip: SfxClip | str) -> np.ndarray:
        """The clip as float32 mono (n,) at 16 kHz, from the cache when it holds a fresh copy."""
        clip = self.get(clip) if isinstance(clip, str) else clip
        if self.cache_dir is not None:
            cached = self._read_cache(clip)
            if cached is not None:
                return cached
        return self._decode(clip)

    def _decode(self, clip: SfxClip) -> np.ndarray:
        from foley_core.audio_io import read_audio

        if not clip.path.is_file():
            raise MediaError(f"Clip '{clip.id}' is listed in the manifest but its file "
                             f"'{clip.path}' is missing.")
        audio, _ = read_audio(clip.path, sr=MODEL_SR, mono=True)
        return audio

    def _cache_path(self, clip: SfxClip) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"{clip.id}.npz"

    def _source_stamp(self, clip: SfxClip) -> np.ndarray:
        st = clip.path.stat()
        return np.array([_CACHE_VERSION, st.st_size, st.st_mtime_ns], dtype=np.int64)

    def _read_cache(self, clip: SfxClip) -> np.ndarray | None:
        path = self._cache_path(clip)
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                if not np.array_equal(z["stamp"], self._source_stamp(clip)):
                    return None     # the FLAC changed since it was cached
                pcm = z["pcm"]
        except (OSError, ValueError, KeyError, EOFError):
            return None             # damaged cache file: decode again (and precompute rewrites)
        return pcm.astype(np.float32) / 32768.0

    def onsets(self, clip: SfxClip | str) -> np.ndarray:
        """Onset times (s) of the clip (`events.detect_onsets`), memoised and, with a cache_dir,
        stored beside the audio cache (detection costs ~10 ms per second of audio)."""
        from foley_core.events import detect_onsets

        clip = self.get(clip) if isinstance(clip, str) else clip
        if clip.id in self._onsets:
            return self._onsets[clip.id]
        onsets = None
        path = self.cache_dir / f"{clip.id}.onsets.npz" if self.cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                with np.load(path) as z:
                    if (np.array_equal(z["stamp"], self._source_stamp(clip))
                            and int(z["version"]) == _ONSETS_VERSION):
                        onsets = z["onsets_s"].astype(np.float64)
            except (OSError, ValueError, KeyError, EOFError):
                onsets = None
        if onsets is None:
            onsets = detect_onsets(self.load(clip), MODEL_SR)
            if path is not None:
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, onsets_s=onsets, stamp=self._source_stamp(clip),
                                 version=np.array(_ONSETS_VERSION))
        self._onsets[clip.id] = onsets
        return onsets

    def precompute(self, split: str | None = None, *, clips: Iterable[SfxClip] | None = None,
                   ) -> int:
        """Write npz copies of the clips (of `split`, or `clips`) that are not cached yet, and
        their onsets. Returns the number of audio files written. Each file is written
        atomically, so an interrupted run leaves only whole files and can simply be restarted.
        """
        if self.cache_dir is None:
            raise FoleyError("This library has no cache_dir; pass cache_dir=... to SfxLibrary.")
        todo = list(clips) if clips is not None else self.clips(split)
        written = 0
        for clip in todo:
            if self._read_cache(clip) is not None:
                continue
            audio = self._decode(clip)
            pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
            with atomic_path(self._cache_path(clip)) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, pcm=pcm, stamp=self._source_stamp(clip),
                             sr=np.array(MODEL_SR))
            written += 1
        for clip in todo:
            self.onsets(clip)
        return written


def _source_file(source_path: str) -> str:
    """A clip's source without its `#t=a,b` window (windows of one file are one source; other
    fragments, such as an OpenTTD sample entry `opensfx.cat#02`, name distinct sounds)."""
    return source_path.split("#t=", 1)[0]


def without_split(clips: Iterable[SfxClip], other: SfxLibrary, split: str = "val"
                  ) -> tuple[list[SfxClip], list[SfxClip]]:
    """(kept, dropped): `clips` minus those that share an id or a source file (package + path)
    with a clip of `other`'s `split`. Keeps a held-out split held out when training on a
    library that was built from the same packages."""
    held = other.clips(split)
    held_ids = {c.id for c in held}
    held_sources = {(c.source_package, _source_file(c.source_path)) for c in held if c.source_path}
    kept, dropped = [], []
    for clip in clips:
        source = (clip.source_package, _source_file(clip.source_path))
        (dropped if clip.id in held_ids or source in held_sources else kept).append(clip)
    return kept, dropped
