"""Auditioning library search results: waveform thumbnails (peaks, cached on disk by file) and
the duration filter, from the library to the studio's results list."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from foley_core.errors import FoleyError
from foley_core.library import SoundLibrary, peaks
from foley_core.library import search as engine

SR = 16_000


def test_peaks_are_the_loudest_sample_of_each_equal_stretch():
    audio = np.zeros(1000, dtype=np.float32)
    audio[10] = -0.8            # bin 0 (samples 0-99): a negative peak counts by its size
    audio[150] = 0.3            # bin 1
    audio[999] = 0.5            # the last bin
    levels = peaks.waveform_peaks(audio, n_bins=10)
    assert levels.shape == (10,) and levels.dtype == np.float32
    np.testing.assert_allclose(levels, [0.8, 0.3, 0, 0, 0, 0, 0, 0, 0, 0.5], atol=1e-7)


def test_peaks_count_every_channel_and_cover_short_and_empty_clips():
    left = np.zeros(400, dtype=np.float32)
    stereo = np.stack([left, left], axis=1)
    stereo[200:, 1] = 0.6          # only the right channel sounds, in the second half
    levels = peaks.waveform_peaks(stereo, n_bins=4)
    np.testing.assert_allclose(levels, [0, 0, 0.6, 0.6], atol=1e-7)
    # out-of-phase channels whose downmix is silent still show their level
    anti = np.stack([np.full(100, 0.5, np.float32), np.full(100, -0.5, np.float32)], axis=1)
    assert peaks.waveform_peaks(anti, n_bins=5).min() == pytest.approx(0.5)
    short = peaks.waveform_peaks(np.array([0.1, -0.9, 0.2], dtype=np.float32), n_bins=6)
    assert short.shape == (6,) and short.max() == pytest.approx(0.9) and short.min() == pytest.approx(0.1)
    assert not peaks.waveform_peaks(np.zeros(0, np.float32), n_bins=8).any()
    with pytest.raises(ValueError, match="n_bins"):
        peaks.waveform_peaks(np.ones(10, np.float32), n_bins=0)


def _clip(path, level: float, seconds: float = 0.5):
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, (level * np.sin(2 * np.pi * 440 * t) * np.exp(-4 * t)).astype(np.float32), SR)
    return path


def test_peaks_are_cached_on_disk_and_read_again_when_the_file_changes(tmp_path):
    a, b = _clip(tmp_path / "a.wav", 0.5), _clip(tmp_path / "b.wav", 0.2)
    cache = tmp_path / "cache"
    first = peaks.PeaksCache(cache, n_bins=32)
    got = first.peaks([a, b])
    assert first.reads == 2 and [g.shape for g in got] == [(32,), (32,)]
    assert got[0].max() == pytest.approx(0.5, abs=0.01) and got[1].max() == pytest.approx(0.2, abs=0.01)

    again = peaks.PeaksCache(cache, n_bins=32)          # another process: from the disk cache
    np.testing.assert_array_equal(again.peaks([a, b])[0], got[0])
    assert again.reads == 0

    _clip(a, 0.9)                                       # the file changes (size kept, mtime moves)
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    changed = peaks.PeaksCache(cache, n_bins=32).peaks([a, b])
    assert changed[0].max() == pytest.approx(0.9, abs=0.01)
    np.testing.assert_array_equal(changed[1], got[1])

    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    assert first.peaks([tmp_path / "broken.wav", tmp_path / "gone.wav"]) == [None, None]


def test_library_thumbnails_come_from_the_cache_the_second_time(tmp_path, monkeypatch):
    lib = SoundLibrary(cache_dir=tmp_path / "cache")
    doors = lib.by_category("door")[:3]
    thumbs = lib.peaks(doors)
    assert len(thumbs) == 3 and all(t.shape == (peaks.THUMBNAIL_BINS,) and t.max() > 0 for t in thumbs)
    monkeypatch.setattr(peaks, "read_audio", lambda *a, **k: pytest.fail("read a cached clip again"))
    again = SoundLibrary(cache_dir=tmp_path / "cache").peaks(doors)
    for x, y in zip(thumbs, again):
        np.testing.assert_array_equal(x, y)


def test_duration_mask_keeps_clips_within_the_bounds_and_drops_unknown_lengths():
    seconds = np.array([0.2, 1.0, 2.5, np.nan, 6.0])
    assert engine.duration_mask(seconds).tolist() == [True] * 5
    assert engine.duration_mask(seconds, min_s=1.0).tolist() == [False, True, True, False, True]
    assert engine.duration_mask(seconds, max_s=2.5).tolist() == [True, True, True, False, False]
    assert engine.duration_mask(seconds, min_s=1.0, max_s=2.5).tolist() == [False, True, True, False, False]


def test_browsing_a_category_applies_the_same_duration_filter(tmp_path):
    lib = SoundLibrary(cache_dir=tmp_path / "cache")
    every = lib.by_category("footsteps")
    short = lib.by_category("footsteps", max_s=1.0)
    assert short and all(e.seconds <= 1.0 for e in short)
    assert [e.id for e in short] == [e.id for e in every if e.seconds <= 1.0]
    long = lib.by_category("footsteps", min_s=1.0)
    assert len(short) + len(long) >= len(every) and all(e.seconds >= 1.0 for e in long)
    with pytest.raises(FoleyError, match="minimum duration"):
        lib.by_category("footsteps", min_s=2, max_s=1)
