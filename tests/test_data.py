"""Sound library reader, decoded-audio cache, augmentation and the training datasets."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_lab.data.augment import (SfxAudioDataset, apply_gain, bucket_batches, bucket_for,
                                     join_captions, mix, place, random_place)
from foley_lab.data.dataset import SimSceneDataset, placed_onsets
from foley_lab.data.sfx import SfxLibrary, default_sfx_root, without_split
from foley_core.errors import FoleyError, MediaError

SHARED = Path(__file__).resolve().parents[2] / "shared"
HAS_SFX = (SHARED / "sfx" / "manifest.csv").is_file()
SR = 16_000
COLUMNS = ["id", "file", "caption", "category", "split", "seconds", "peak_dbfs", "lufs",
           "source_package", "source_path", "license", "attribution"]


def _knocks(times_s, duration_s, seed):
    rng = np.random.default_rng(seed)
    y = 0.001 * rng.standard_normal(int(duration_s * SR))
    for t in times_s:
        k = int(t * SR)
        n = min(800, len(y) - k)
        y[k:k + n] += 0.6 * np.exp(-np.arange(n) / 120) * rng.standard_normal(n)
    return np.clip(y, -1, 1).astype(np.float32)


@pytest.fixture
def tiny_library(tmp_path: Path) -> Path:
    """A 5-clip library with known onsets, in the shared library's layout."""
    root = tmp_path / "sfx"
    specs = [  # id, category, split, onsets, seconds
        ("knock_a", "impact", "train", [0.005], 0.3),
        ("knock_b", "impact", "train", [0.005, 0.4, 0.8], 1.2),
        ("steps_c", "footsteps", "train", [0.005, 0.5, 1.0, 1.5, 2.0], 2.5),
        ("rain_d", "rain", "val", [], 5.0),
        ("knock_e", "impact", "val", [0.005, 0.3], 0.6),
    ]
    rows = []
    for i, (cid, cat, split, onsets, seconds) in enumerate(specs):
        audio = _knocks(onsets, seconds, i)
        if cat == "rain":
            audio = (0.2 * np.random.default_rng(9).standard_normal(int(seconds * SR))
                     ).astype(np.float32)
        rel = f"audio/{cat}/{cid}.flac"
        (root / "audio" / cat).mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, audio, SR, subtype="PCM_16")
        rows.append({"id": cid, "file": rel, "caption": f"a {cid.split('_')[0]} sound",
                     "category": cat, "split": split, "seconds": f"{seconds:.3f}",
                     "peak_dbfs": "-3.0", "lufs": "-20.0", "source_package": "test",
                     "source_path": "gen", "license": "CC0-1.0", "attribution": "tests"})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return root


# ----------------------------------------------------------------------------------------------
# SfxLibrary

def test_library_catalogue_and_load(tiny_library):
    lib = SfxLibrary(tiny_library)
    assert len(lib) == 5
    assert lib.categories == ["footsteps", "impact", "rain"]
    assert [c.id for c in lib.clips("val")] == ["rain_d", "knock_e"]
    assert [c.id for c in lib.clips("train", category="impact")] == ["knock_a", "knock_b"]
    clip = lib.get("knock_b")
    assert clip.licence == "CC0-1.0" and clip.attribution == "tests" and clip.path.is_file()
    audio = lib.load(clip)
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == int(1.2 * SR)
    np.testing.assert_array_equal(audio, lib.load("knock_b"))


def test_library_onsets(tiny_library):
    lib = SfxLibrary(tiny_library)
    np.testing.assert_allclose(lib.onsets("knock_b"), [0.005, 0.4, 0.8], atol=0.01)
    np.testing.assert_allclose(lib.onsets("steps_c"), [0.005, 0.5, 1.0, 1.5, 2.0], atol=0.01)


def test_library_errors(tiny_library, tmp_path):
    with pytest.raises(MediaError, match="manifest.csv"):
        SfxLibrary(tmp_path / "nowhere")
    lib = SfxLibrary(tiny_library)
    with pytest.raises(FoleyError, match="Unknown split 'test'"):
        lib.clips("test")
    with pytest.raises(FoleyError, match="Unknown category"):
        lib.clips(category="music")
    with pytest.raises(FoleyError, match="No clip with id"):
        lib.get("nope")
    (tiny_library / "audio" / "impact" / "knock_a.flac").unlink()
    with pytest.raises(MediaError, match="missing"):
        lib.load("knock_a")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.csv").write_text("id,file,caption\nx,y,z\n")
    with pytest.raises(MediaError, match="lacks the column"):
        SfxLibrary(bad)
    (bad / "manifest.csv").write_text(",".join(COLUMNS) + "\nx,a.flac,c,impact,train,long,,,,,,\n")
    with pytest.raises(MediaError, match="line 2: seconds"):
        SfxLibrary(bad)


def _built_library(root: Path, rows: list[tuple[str, str, str, float, int, int]]) -> Path:
    """A library in scripts/build_sound_library.py's layout (index.csv, no split column, clips
    at their own rate and channels). rows: id, category, source_path, seconds, sr, channels."""
    index_columns = ["id", "file", "caption", "category", "seconds", "licence", "attribution",
                     "source_package", "source_path", "sr", "channels"]
    out = []
    for i, (cid, cat, source, seconds, sr, channels) in enumerate(rows):
        rel = f"audio/{cat}/{cid}.flac"
        (root / "audio" / cat).mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * sr)) / sr
        mono = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        sf.write(root / rel, np.stack([mono] * channels, axis=1) if channels > 1 else mono, sr,
                 subtype="PCM_16")
        out.append({"id": cid, "file": rel, "caption": f"a {cat} sound", "category": cat,
                    "seconds": f"{seconds:.3f}", "licence": "CC0-1.0", "attribution": "tests",
                    "source_package": "test", "source_path": source, "sr": str(sr),
                    "channels": str(channels)})
    with open(root / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=index_columns)
        w.writeheader()
        w.writerows(out)
    return root


def test_built_library_index_reads_as_train_at_the_model_rate(tmp_path):
    root = _built_library(tmp_path / "lib", [("tone_44k_stereo", "ui", "a.ogg", 0.5, 44_100, 2),
                                             ("tone_22k", "ui", "b.ogg", 0.25, 22_050, 1)])
    lib = SfxLibrary(root, cache_dir=tmp_path / "cache")
    assert [c.split for c in lib.clips()] == ["train", "train"]
    assert lib.get("tone_44k_stereo").source_path == "a.ogg"
    audio = lib.load("tone_44k_stereo")
    assert audio.ndim == 1 and len(audio) == int(0.5 * SR)
    assert lib.precompute() == 2
    np.testing.assert_allclose(lib.load("tone_22k"), SfxLibrary(root).load("tone_22k"), atol=1e-4)


def test_without_split_drops_clips_sharing_an_id_or_a_source_file(tiny_library, tmp_path):
    shared = SfxLibrary(tiny_library)          # val: rain_d, knock_e (source "gen", package "test")
    root = _built_library(tmp_path / "lib", [("knock_e", "impact", "other.ogg", 0.3, 16_000, 1),
                                             ("rain_copy", "rain", "gen#t=10.00,20.00", 0.3, 16_000, 1),
                                             ("new_clip", "ui", "new.ogg", 0.3, 16_000, 1),
                                             ("entry_02", "ui", "gen#02", 0.3, 16_000, 1)])
    kept, dropped = without_split(SfxLibrary(root).clips("train"), shared, "val")
    assert [c.id for c in kept] == ["new_clip", "entry_02"]   # an archive entry is its own sound
    assert [c.id for c in dropped] == ["knock_e", "rain_copy"]
    # only the named split is held out: knock_e's id is a val id, not a train one
    kept_train, _ = without_split(SfxLibrary(root).clips("train"), shared, "train")
    assert [c.id for c in kept_train] == ["knock_e", "new_clip", "entry_02"]


def test_cache_is_lossless_fresh_and_recovers(tiny_library, tmp_path):
    cache = tmp_path / "cache"
    lib = SfxLibrary(tiny_library, cache_dir=cache)
    assert lib.precompute("train") == 3
    assert lib.precompute("train") == 0                      # nothing left to do
    assert sorted(p.name for p in cache.glob("*.npz") if "onsets" not in p.name) == [
        "knock_a.npz", "knock_b.npz", "steps_c.npz"]
    assert len(list(cache.glob("*.onsets.npz"))) == 3
    assert not list(cache.glob(".*"))                         # no temporary files left
    plain = SfxLibrary(tiny_library)
    for cid in ("knock_a", "knock_b", "steps_c"):
        np.testing.assert_array_equal(lib.load(cid), plain.load(cid))
    # a cached copy is used while fresh...
    with np.load(cache / "knock_a.npz") as z:
        doctored = dict(z)
    doctored["pcm"] = np.zeros_like(doctored["pcm"])
    with open(cache / "knock_a.npz", "wb") as f:
        np.savez(f, **doctored)
    assert not lib.load("knock_a").any()
    # ... and ignored once the FLAC changes (size / mtime stamp)
    flac = tiny_library / "audio" / "impact" / "knock_a.flac"
    sf.write(flac, _knocks([0.1], 0.4, 5), SR, subtype="PCM_16")
    os.utime(flac, ns=(0, 1_000_000_000))
    fresh = lib.load("knock_a")
    assert len(fresh) == int(0.4 * SR) and fresh.any()
    # a damaged cache file is not fatal: the clip is decoded again
    (cache / "knock_b.npz").write_bytes(b"garbage")
    np.testing.assert_array_equal(lib.load("knock_b"), plain.load("knock_b"))
    with pytest.raises(FoleyError, match="cache_dir"):
        plain.precompute()


@pytest.mark.skipif(not HAS_SFX, reason="no shared sfx library")
def test_shared_library():
    lib = SfxLibrary(SHARED / "sfx")
    assert default_sfx_root().resolve() == (SHARED / "sfx").resolve()
    assert len(lib) == 1411
    assert len(lib.clips("train")) == 1259 and len(lib.clips("val")) == 152
    assert len(lib.categories) == 19 and "footsteps" in lib.categories
    assert all(c.licence and c.attribution for c in lib.clips())
    clip = lib.clips("val", category="impact")[0]
    audio = lib.load(clip)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / SR - clip.seconds) < 0.002
    assert 0 < np.abs(audio).max() <= 1.0


# ----------------------------------------------------------------------------------------------
# augmentation

def test_buckets_place_and_gain():
    assert [bucket_for(s) for s in (0.05, 1.0, 1.01, 3.9, 7.5, 10.0)] == [1, 1, 2, 4, 8, 8]
    assert bucket_for(2.5, (0.5, 3.0)) == 3.0
    with pytest.raises(ValueError):
        bucket_for(-1)
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(place(x, 8, 2), [0, 0, 1, 2, 3, 4, 5, 0])
    np.testing.assert_array_equal(place(x, 3, -1), [2, 3, 4])
    np.testing.assert_array_equal(place(x, 4, 6), [0, 0, 0, 0])
    np.testing.assert_allclose(apply_gain(x, -6.0206), x / 2, rtol=1e-4)
    rng = np.random.default_rng(0)
    offsets = {random_place(x, 10, rng)[1] for _ in range(200)}
    assert offsets == set(range(6))                          # any start that keeps it whole
    offsets = {random_place(np.ones(10, np.float32), 4, rng)[1] for _ in range(200)}
    assert offsets == {0, -1, -2, -3, -4, -5, -6}            # random crops of a long clip


def test_mix_and_captions():
    a = np.full(4, 0.7, np.float32)
    y, headroom = mix(a, a, gain_b_db=0.0)
    assert np.abs(y).max() == pytest.approx(0.99) and headroom < 0
    y, headroom = mix(a * 0.1, a * 0.1)
    assert headroom == 0.0 and y[0] == pytest.approx(0.14)
    assert join_captions("a dog barks.", "A door slams") == "a dog barks and a door slams"
    assert join_captions("rain", "UFO engine hum") == "rain and UFO engine hum"
    with pytest.raises(FoleyError):
        join_captions("rain", "  ")
    with pytest.raises(ValueError):
        mix(a, a[:2])


def test_audio_dataset_is_deterministic_bucketed_and_augmented(tiny_library):
    lib = SfxLibrary(tiny_library)
    ds = SfxAudioDataset(lib, "train", seed=3, mix_prob=0.5)
    again = SfxAudioDataset(lib, "train", seed=3, mix_prob=0.5)
    other = SfxAudioDataset(lib, "train", seed=4, mix_prob=0.5)
    for i in range(len(ds)):
        a, b = ds[i], again[i]
        np.testing.assert_array_equal(a.audio, b.audio)
        assert a.caption == b.caption and a.clip_ids == b.clip_ids
        assert len(a.audio) == int(ds.bucket_of(i) * SR) and a.audio.dtype == np.float32
        assert -6 <= a.gains_db[0] <= 6
        np.testing.assert_allclose(sum(a.extra["components"]), a.audio, atol=1e-6)
    assert [ds.bucket_of(i) for i in range(3)] == [1.0, 2.0, 4.0]
    assert any(not np.array_equal(ds[i].audio, other[i].audio) for i in range(3))
    ds.set_epoch(1)
    assert any(not np.array_equal(ds[i].audio, again[i].audio) for i in range(3))
    # over many epochs: both mixes and single clips, gains spread over +-6 dB
    seen_mix, gains = False, []
    for e in range(30):
        ds.set_epoch(e)
        item = ds[1]
        gains.append(item.gains_db[0])
        if len(item.clip_ids) == 2:
            seen_mix = True
            assert " and " in item.caption and item.clip_ids[0] != item.clip_ids[1]
    assert seen_mix and min(gains) < -3 and max(gains) > 3
    with pytest.raises(IndexError):
        ds[99]


def test_bucket_batches(tiny_library):
    lib = SfxLibrary(tiny_library)
    ds = SfxAudioDataset(lib, None, seed=0, mix_prob=0.0)
    batches = bucket_batches(ds, 2, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(len(ds)))
    for b in batches:
        assert len({ds.bucket_of(i) for i in b}) == 1
        assert len({len(ds[i].audio) for i in b}) == 1
    assert bucket_batches(ds, 2, seed=0) == batches


def test_placed_onsets():
    np.testing.assert_allclose(placed_onsets(np.array([0.0, 0.5, 0.9]), 0.3, 1.0), [0.3, 0.8])
    # a clip cropped at the window start that is still sounding: onset at 0
    np.testing.assert_allclose(placed_onsets(np.array([0.0, 0.5]), -0.2, 1.0), [0.0, 0.3])
    assert placed_onsets(np.array([]), 0.2, 1.0).size == 0


def test_scene_dataset_items(tiny_library):
    lib = SfxLibrary(tiny_library)
    ds = SimSceneDataset(lib, None, seed=1, fps=20, size=64, mix_prob=0.0, n_distractors=1)
    for i in range(len(ds)):
        item = ds[i]
        n = len(item["audio"])
        t = int(round(n / SR * 20))
        assert item["frames"].shape == (t, 64, 64, 3) and item["frames"].dtype == np.uint8
        assert item["masks"].shape == (t, 64, 64) and item["masks"].dtype == np.float32
        assert 0 <= item["masks"].min() and item["masks"].max() <= 1
        assert item["masks"].sum(axis=(1, 2)).min() > 0        # the target is always in view
        assert item["loudness"].shape == (int(round(n / SR * 10)),)
        assert item["distractor_masks"].shape == (1, t, 64, 64)
        clip = lib.get(item["clip_ids"][0])
        if clip.category == "rain":
            assert item["mode"] == "sustained" and item["events_s"].size == 0
        else:
            assert item["mode"] == "discrete" and item["events_s"].size >= 1
            # the shown events are onsets of the placed clip
            for e in item["events_s"]:
                assert np.min(np.abs(item["audio_onsets_s"] - e)) < 1e-9
    a, b = ds[2], ds[2]
    np.testing.assert_array_equal(a["frames"], b["frames"])
    np.testing.assert_array_equal(a["audio"], b["audio"])


@pytest.mark.skipif(not HAS_SFX, reason="no shared sfx library")
def test_scene_dataset_on_shared_val_with_mixes(tmp_path):
    lib = SfxLibrary(SHARED / "sfx", cache_dir=tmp_path / "cache")
    clips = lib.clips("val")[:12]
    lib.precompute(clips=clips)
    ds = SimSceneDataset(lib, clips=clips, seed=0, mix_prob=1.0)
    assert len(ds) == 12
    item = ds[3]
    assert " and " in item["caption"] and len(item["clip_ids"]) == 2
    assert item["frames"].shape[0] == int(round(item["bucket_s"] * 20))


def test_train_command_leaves_the_shared_val_split_out_of_a_built_library(tiny_library, tmp_path,
                                                                         monkeypatch, capsys):
    import foley_lab.data.sfx as sfx
    from foley_lab.cli.train import _train_clips

    monkeypatch.setattr(sfx, "default_sfx_root", lambda: tiny_library)
    root = _built_library(tmp_path / "lib", [("knock_e", "impact", "x.ogg", 0.3, 16_000, 1),
                                             ("new_clip", "ui", "new.ogg", 0.3, 16_000, 1)])
    assert [c.id for c in _train_clips(SfxLibrary(root))] == ["new_clip"]
    assert '"left_out_as_val": 1' in capsys.readouterr().out
    # the shared library itself keeps its own split: its train clips, untouched
    assert [c.id for c in _train_clips(SfxLibrary(tiny_library))] == ["knock_a", "knock_b", "steps_c"]
    monkeypatch.setattr(sfx, "default_sfx_root", lambda: tmp_path / "nowhere")
    with pytest.raises(FoleyError, match="val split"):
        _train_clips(SfxLibrary(root))


def test_training_attribution_lists_what_the_trainer_takes_from_a_built_library(
        tiny_library, tmp_path, monkeypatch):
    import sys

    import foley_lab.data.sfx as sfx
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from repo_modules import load_repo_module

    monkeypatch.setattr(sfx, "default_sfx_root", lambda: tiny_library)
    root = _built_library(tmp_path / "lib", [("knock_e", "impact", "x.ogg", 0.3, 16_000, 1),
                                             ("new_clip", "ui", "new.ogg", 0.5, 22_050, 1)])
    out = tmp_path / "TRAINING_DATA.md"
    load_repo_module("scripts/write_training_attribution.py").main(["--sfx", str(root), "--out", str(out)])
    text = out.read_text()
    assert "(1 clips, 0.0 min)" in text and "- **test**, CC0-1.0, 1 clip: tests" in text
    assert "every clip outside the shared library's val split" in text
