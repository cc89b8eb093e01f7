"""Starter sound library (bundle, index, attribution), user folders, caption search, reference fitting."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from repo_modules import load_repo_module
from foley_core import constants
from foley_core.audio_io import resample
from foley_core.errors import CaptionError, FoleyError, MediaError, TimeRangeError
from foley_core.library import (
    CATEGORIES,
    LICENCES,
    SoundLibrary,
    bundled_library_root,
    caption_from_filename,
    classify_reference,
    fit_kind,
    fit_reference,
    load_reference,
)
from foley_core.library import catalog

REPO = Path(__file__).resolve().parents[1]
BUNDLE = bundled_library_root()
SR = constants.MODEL_SR


# ------------------------------------------------------------------------------ helpers

def bundle_rows() -> list[dict]:
    with open(BUNDLE / "index.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def short_time_rms_db(y: np.ndarray, sr: int, win_s: float = 0.05) -> np.ndarray:
    w = int(win_s * sr)
    n = y.shape[0] // w
    frames = y[: n * w].reshape(n, w).astype(np.float64)
    return 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-12)


def lowpass_noise(seconds: float, sr: int, seed: int = 0, amp: float = 0.2) -> np.ndarray:
    """Stationary noise band-limited to ~sr/16 (a rumble/rain-like texture)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(round(seconds * sr)) + 64)
    x = np.convolve(x, np.hanning(16) / np.hanning(16).sum(), mode="same")[32:-32]
    return (amp * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def harmonic_tone(seconds: float, sr: int, f0: float = 110.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t + 0.7 * k) / k for k in range(1, 6))
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def decaying_hit(seconds: float, sr: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.25 * rng.standard_normal(t.shape[0]) * np.exp(-t * 25)).astype(np.float32)


def load_build_script():
    return load_repo_module("scripts/build_starter_library.py")


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> SoundLibrary:
    return SoundLibrary(cache_dir=tmp_path_factory.mktemp("embeddings"))


# ------------------------------------------------------------------------------ the bundle

def test_bundle_covers_every_category_with_clips_at_their_native_rate():
    lib = SoundLibrary(cache_dir=None)
    assert lib.warnings == []
    assert lib.categories() == list(CATEGORIES)
    assert len(CATEGORIES) == 19
    for category in CATEGORIES:
        assert len(lib.by_category(category)) >= 5, category
    for entry in lib:
        info = sf.info(str(entry.path))
        # stored at the source's own rate and channels, as the index says (issue 15: no 16 kHz downmix)
        assert info.format in ("FLAC", "OGG") and (info.samplerate, info.channels) == (entry.sr, entry.channels), entry.id
        assert info.duration == pytest.approx(entry.seconds, abs=0.002), entry.id
        assert entry.path.stem == entry.id and entry.path.parent.name == entry.category


def test_bundle_is_at_most_80_mb_and_has_no_stray_files():
    files = [p for p in BUNDLE.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total <= 80_000_000, f"{total / 1e6:.1f} MB"
    listed = {BUNDLE / r["file"] for r in bundle_rows()}
    audio = {p for p in files if p.parts[len(BUNDLE.parts)] == "audio"}
    assert audio == listed


def test_index_has_the_documented_columns_and_unique_ids():
    rows = bundle_rows()
    assert list(rows[0].keys()) == [*catalog.INDEX_COLUMNS, *catalog.INDEX_EXTRA_COLUMNS]
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["caption"] and r["licence"] in LICENCES and r["attribution"] and r["source_package"], r["id"]


def test_attribution_lists_every_clip_with_its_licence_and_the_needed_licence_files():
    text = (BUNDLE / "ATTRIBUTION.md").read_text(encoding="utf-8")
    rows = bundle_rows()
    for r in rows:
        line = next((ln for ln in text.splitlines() if f"`{r['id']}`" in ln), None)
        assert line is not None, f"{r['id']} is not in ATTRIBUTION.md"
        info = LICENCES[r["licence"]]
        assert info.name in line and r["attribution"] in line and r["source_package"] in line
        if info.share_alike:
            assert "share-alike" in line
    assert "share-alike" in text.lower() and "adaptation" in text
    licence_files = {p.name for p in (BUNDLE / "licenses").iterdir()}
    for package in {r["source_package"] for r in rows}:
        assert f"{package}.copyright" in licence_files, package
    # only the packages used: no copyright file of a package without a bundled clip
    used = {r["source_package"] for r in rows}
    assert {n.split(".copyright")[0] for n in licence_files if n.endswith(".copyright")} == used
    if any(r["licence"].startswith("GPL") for r in rows):
        assert "GPL-2.txt" in licence_files
        assert "GNU GENERAL PUBLIC LICENSE" in (BUNDLE / "licenses" / "GPL-2.txt").read_text()
    for name in licence_files:
        assert f"licenses/{name}" in text


def test_bundle_clips_are_unchanged_train_split_copies_of_the_shared_library(shared_dir):
    """Clips of the eight packages ../shared/sfx was built from enter only as its train-split copies
    (integrity rule of scripts/build_sound_library.py); every other clip comes from another package."""
    with open(shared_dir / "sfx" / "manifest.csv", newline="", encoding="utf-8") as fh:
        manifest = {r["id"]: r for r in csv.DictReader(fh)}
    shared_packages = {r["source_package"] for r in manifest.values()}
    assert len(shared_packages) == 8
    for r in bundle_rows():
        if r["source_package"] not in shared_packages:
            assert r["id"] not in manifest and r["source_version"], r["id"]
            continue
        src = manifest[r["id"]]
        assert src["split"] == "train", f"{r['id']} is a {src['split']} clip"
        assert (src["caption"], src["category"], src["license"], src["attribution"], src["source_path"]) == \
            (r["caption"], r["category"], r["licence"], r["attribution"], r["source_path"])
        a = hashlib.sha256((shared_dir / "sfx" / src["file"]).read_bytes()).digest()
        b = hashlib.sha256((BUNDLE / r["file"]).read_bytes()).digest()
        assert a == b, r["id"]


def test_curation_picks_varied_representative_clips_within_budget():
    build = load_build_script()
    assert build.family("0ad_building_amb_farm_10_w2") == build.family("0ad_building_amb_farm_11_w1")
    assert build.family("flightgear_sounds_wind_8khz") == build.family("flightgear_sounds_wind")
    rows = [{"id": f"c{i:02d}", "caption": cap, "seconds": sec} for i, (cap, sec) in enumerate([
        ("a", 1.0), ("a", 1.0), ("a", 1.0), ("b", 1.0), ("c", 9.0), ("d", 1.0)])]
    # a/b nearly the same meaning, c and d far from everything
    vec = {"a": [1, 0, 0], "b": [0.98, 0.2, 0], "c": [0, 1, 0], "d": [0, 0, 1]}
    emb = np.array([vec[r["caption"]] for r in rows], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    q = np.ones(len(rows))
    picks = [rows[i]["caption"] for i in build.select_category(rows, emb, q, max_clips=3, max_seconds=20)]
    assert picks[0] in ("a", "b") and sorted(picks[1:]) == ["c", "d"]   # the big group first, then variety
    assert [rows[i]["caption"] for i in build.select_category(rows, emb, q, max_clips=3, max_seconds=20)] == picks
    picks = build.select_category(rows, emb, q, max_clips=6, max_seconds=5)
    assert sum(rows[i]["seconds"] for i in picks) <= 5 and "c" not in [rows[i]["caption"] for i in picks]
    same = rows[:3]                                                     # three 'a' clips, the first one clipped
    chosen = build.select_category(same, emb[:3], np.array([0.1, 1.0, 1.0]), max_clips=1, max_seconds=20)
    assert [same[i]["id"] for i in chosen] == ["c01"]


# ------------------------------------------------------------------------------ entries and attribution

def test_entry_attribution_text_names_author_licence_and_share_alike(library):
    by_licence = {}
    for e in library:
        by_licence.setdefault(e.licence, e)
    sa = by_licence["CC-BY-SA-3.0"]
    assert sa.attribution in sa.attribution_text
    assert "CC BY-SA 3.0" in sa.attribution_text and "creativecommons.org/licenses/by-sa/3.0" in sa.attribution_text
    assert "Share-alike" in sa.attribution_text and "modified" in sa.attribution_text
    if "GPL-2+" in by_licence:
        assert "GNU GPL" in by_licence["GPL-2+"].attribution_text
        assert "Debian package" in by_licence["GPL-2+"].attribution_text
    from foley_core.project import Reference

    ref = Reference(**sa.reference_fields())
    assert ref.clip_id == sa.id and ref.path == sa.file and "CC BY-SA 3.0" in ref.licence


def test_get_load_and_browse(library):
    entry = library.by_category("rain")[0]
    assert library.get(entry.id) is entry and entry.id in library
    audio = library.load(entry.id)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape[0] == pytest.approx(entry.seconds * SR, abs=0.001 * SR)
    assert library.load(entry.id, sr=8000).shape[0] == pytest.approx(entry.seconds * 8000, abs=2)
    with pytest.raises(FoleyError, match="No library clip"):
        library.get("no_such_clip")
    with pytest.raises(FoleyError, match="Unknown sound category"):
        library.by_category("spaceships")
    assert library.by_category("user") == []


# ------------------------------------------------------------------------------ search

@pytest.mark.parametrize("query, category", [
    ("rain on a roof", "rain"), ("gunshot", "weapon"), ("footsteps on gravel", "footsteps"),
    ("glass breaking", "glass"), ("a crackling campfire", "fire"), ("a car engine idling", "engine"),
])
def test_search_returns_the_right_category_among_the_top_3(library, query, category):
    hits = library.search(query, k=3)
    assert len(hits) == 3
    assert category in [h.entry.category for h in hits], [(h.entry.category, h.entry.caption) for h in hits]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_search_within_a_category_and_bad_queries(library):
    hits = library.search("something loud", k=len(library.by_category("explosion")) + 10, category="explosion")
    assert hits and all(h.entry.category == "explosion" for h in hits)
    assert len(hits) == len(library.by_category("explosion"))
    with pytest.raises(CaptionError):
        library.search("   ")
    with pytest.raises(FoleyError, match="at least 1"):
        library.search("rain", k=0)
    with pytest.raises(FoleyError, match="Unknown sound category"):
        library.search("rain", category="nope")


def test_embeddings_are_cached_on_disk_by_content(tmp_path, monkeypatch):
    folder = tmp_path / "sounds"
    folder.mkdir()
    for name in ("dog_bark.wav", "heavyRain-01.wav", "Door_Slam.wav"):
        sf.write(folder / name, lowpass_noise(0.5, 16000, seed=len(name)), 16000)
    calls: list[int] = []
    real = catalog.embed_sentences
    monkeypatch.setattr(catalog, "embed_sentences", lambda texts: calls.append(len(texts)) or real(texts))
    monkeypatch.setattr(catalog, "_MEMORY_CACHE", {})
    cache = tmp_path / "cache"
    lib = SoundLibrary(bundled=False, folders=[folder], cache_dir=cache)
    top = lib.search("a barking dog", k=1)[0]
    assert top.entry.caption == "dog bark"
    assert calls == [3, 1] and len(list(cache.glob("caption-embeddings-*.npy"))) == 1
    monkeypatch.setattr(catalog, "_MEMORY_CACHE", {})
    lib2 = SoundLibrary(bundled=False, folders=[folder], cache_dir=cache)
    assert lib2.search("rain storm", k=1)[0].entry.caption == "heavy rain"
    assert calls == [3, 1, 1]                              # only the query was encoded
    (folder / "extra_thunder.wav").write_bytes((folder / "dog_bark.wav").read_bytes())
    lib2.add_folder(folder)                                # one new caption: only it is encoded
    lib2.search("thunder", k=1)
    assert calls[-2:] == [1, 1]
    assert len(list(cache.glob("caption-embeddings-*.npy"))) == 1


# ------------------------------------------------------------------------------ user folders

@pytest.fixture()
def user_folder(tmp_path, media_factory) -> Path:
    folder = tmp_path / "My Sounds"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "creaky_door-02.wav", lowpass_noise(0.6, 44100, seed=2), 44100, subtype="PCM_24")
    sf.write(folder / "sub" / "waterDrip.flac", decaying_hit(0.4, 22050), 22050)
    sf.write(folder / "birds.ogg", harmonic_tone(1.0, 48000, f0=2000), 48000, format="OGG", subtype="VORBIS")
    sf.write(folder / "engine hum.mp3", harmonic_tone(1.0, 44100, f0=60), 44100, format="MP3")
    m4a = media_factory("make_audio", "clap.m4a", seconds=1.0, sr=44100, events_s=[0.2])
    (folder / "clap.m4a").write_bytes(m4a.read_bytes())
    good = (folder / "creaky_door-02.wav").read_bytes()
    (folder / "broken_truncated.wav").write_bytes(good[: len(good) // 3])
    (folder / "not_audio.wav").write_bytes(b"this is a text file, not a sound\n" * 20)
    sf.write(folder / "silence.wav", np.zeros(8000, dtype=np.float32), 16000)
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.wav").write_bytes(good)
    return folder


def test_add_folder_reads_common_formats_and_skips_broken_files_with_a_warning(tmp_path, user_folder):
    lib = SoundLibrary(cache_dir=None)
    n_bundled = len(lib)
    added = lib.add_folder(user_folder)
    captions = sorted(e.caption for e in added)
    assert captions == ["birds", "clap", "creaky door", "engine hum", "water drip"]
    assert all(e.category == "user" and e.licence == "" for e in added)
    assert len(lib) == n_bundled + 5 and lib.categories()[-1] == "user"
    skipped = " ".join(lib.warnings)
    for name in ("broken_truncated.wav", "not_audio.wav", "silence.wav"):
        assert name in skipped
    assert "notes.txt" not in skipped and ".hidden" not in skipped
    drip = next(e for e in added if e.caption == "water drip")
    assert drip.seconds == pytest.approx(0.4, abs=0.01)
    assert lib.load(drip.id).shape[0] == pytest.approx(0.4 * SR, abs=2)
    assert "make sure you have the right" in drip.attribution_text
    # the broken files cannot be loaded directly either
    for name in ("broken_truncated.wav", "not_audio.wav", "silence.wav"):
        with pytest.raises(MediaError, match=name.split(".")[0]):
            load_reference(user_folder / name, library=lib)
    # a rescan replaces the folder's entries instead of duplicating them
    lib.add_folder(user_folder)
    assert len(lib) == n_bundled + 5


def test_sidecar_csv_captions_and_licences(tmp_path):
    folder = tmp_path / "pack"
    folder.mkdir()
    sf.write(folder / "a01.wav", lowpass_noise(0.5, 16000), 16000)
    sf.write(folder / "b02.wav", decaying_hit(0.3, 16000), 16000)
    (folder / "metadata.csv").write_text("Filename,Description,License,Attribution\n"
                                         "a01.wav,rain on a tin roof,CC0-1.0,Jane\n"
                                         "missing.wav,never mind,,\n")
    lib = SoundLibrary(bundled=False, folders=[folder], cache_dir=None)
    by_name = {e.path.name: e for e in lib}
    assert by_name["a01.wav"].caption == "rain on a tin roof" and by_name["a01.wav"].licence == "CC0-1.0"
    assert by_name["b02.wav"].caption == "b"
    assert any("missing.wav" in w for w in lib.warnings)


def test_bad_folders_are_refused(tmp_path):
    lib = SoundLibrary(bundled=False, cache_dir=None)
    with pytest.raises(MediaError, match="not found"):
        lib.add_folder(tmp_path / "nope")
    (tmp_path / "f.wav").write_bytes(b"x")
    with pytest.raises(MediaError, match="is a file"):
        lib.add_folder(tmp_path / "f.wav")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no sounds")
    with pytest.raises(MediaError, match="No audio files"):
        lib.add_folder(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.flac").write_bytes(b"fLaC" + b"\0" * 100)
    with pytest.raises(MediaError, match="x.flac"):
        lib.add_folder(broken)
    assert len(lib) == 0


def test_caption_from_filename():
    assert caption_from_filename("Door_Slam-03.wav") == "door slam"
    assert caption_from_filename("heavyRain2.flac") == "heavy rain"
    assert caption_from_filename("kick01_hard.ogg") == "kick hard"
    assert caption_from_filename("001.wav") == "001"


# ------------------------------------------------------------------------------ load_reference

def test_load_reference_by_id_by_file_and_from_a_video(library, tmp_path, shared_dir):
    entry = library.by_category("engine")[0]
    ref = load_reference(entry.id, library=library)
    # a library clip loads at its own (native) rate; asked for the model's rate, it is resampled
    assert ref.entry is entry and ref.sr == entry.sr and ref.audio.ndim == 1
    assert ref.audio.shape[0] == pytest.approx(entry.seconds * entry.sr, abs=0.001 * entry.sr)
    ref_model = load_reference(entry.id, library=library, sr=SR)
    assert ref_model.sr == SR and ref_model.audio.shape[0] == pytest.approx(entry.seconds * SR, abs=0.001 * SR)
    stereo = np.stack([lowpass_noise(0.7, 8000), lowpass_noise(0.7, 8000, seed=5)], axis=1)
    sf.write(tmp_path / "up.wav", stereo, 8000)
    ref = load_reference(str(tmp_path / "up.wav"))
    assert ref.sr == 8000 and ref.audio.shape == (5600,) and ref.entry.category == "upload"
    ref = load_reference(tmp_path / "up.wav", sr=SR)
    assert ref.sr == SR and ref.audio.shape == (11200,)
    ref = load_reference(shared_dir / "videos" / "renpy_oa4_launch.mp4")
    assert ref.audio.shape[0] / ref.sr == pytest.approx(8.08, abs=0.1)
    with pytest.raises(MediaError, match="no audio track"):
        load_reference(shared_dir / "videos" / "opencv_vtest.mp4")
    with pytest.raises(MediaError, match="No library clip has the id 'no_such_sound'"):
        load_reference("no_such_sound", library=library)


# ------------------------------------------------------------------------------ fit_reference

@pytest.mark.parametrize("seconds", [0.05, 0.37, 3.3, 25.0])
@pytest.mark.parametrize("sr, stereo", [(8000, False), (22050, False), (44100, True), (48000, True)])
def test_fit_gives_exact_length_at_the_target_rate(seconds, sr, stereo):
    x = lowpass_noise(seconds, sr, seed=int(seconds * 100))
    if stereo:
        x = np.stack([x, 0.5 * x], axis=1)
    for duration_s in (4.0, 1.234567, 0.0001):
        y = fit_reference(x, sr, duration_s=duration_s)
        assert y.shape == (round(duration_s * SR),) and y.dtype == np.float32
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    y = fit_reference(x, sr, duration_s=0.5, target_sr=22050, mode="oneshot")
    assert y.shape == (11025,)


def test_looped_extension_has_no_clicks_and_a_steady_level():
    x = lowpass_noise(0.37, 8000)
    src = resample(x, 8000, SR)
    assert classify_reference(x, 8000) == "sustained"
    y = fit_reference(x, 8000, duration_s=4.0)
    src_jump = np.abs(np.diff(src)).max()
    assert np.abs(np.diff(y)).max() <= 1.5 * src_jump
    level = short_time_rms_db(y[src.shape[0]:-800], SR)
    src_level = 20 * np.log10(np.sqrt(np.mean(src.astype(np.float64) ** 2)))
    assert np.abs(np.diff(level)).max() < 3.0
    assert np.abs(level - src_level).max() < 3.0
    # not a plain repeat: the second source-length of output is not a copy of the first
    n = src.shape[0]
    assert np.corrcoef(y[:n], y[n:2 * n])[0, 1] < 0.9


def test_tonal_loop_joins_stay_in_phase():
    x = harmonic_tone(0.37, 44100)
    x = np.stack([x, x], axis=1)
    src = resample(x[:, 0], 44100, SR)
    y = fit_reference(x, 44100, duration_s=6.0, mode="loop")
    src_jump = np.abs(np.diff(src)).max()
    assert np.abs(np.diff(y)).max() <= 1.5 * src_jump
    level = short_time_rms_db(y[:-800], SR)
    src_level = 20 * np.log10(np.sqrt(np.mean(src.astype(np.float64) ** 2)))
    assert np.abs(level - src_level).max() < 1.5, "a crossfade cancelled or boosted the tone"
    # the metric does catch a naive loop: tiling the tone jumps at every wrap
    naive = np.tile(src, 4)
    assert np.abs(np.diff(naive)).max() > 1.5 * src_jump


def test_one_shots_are_padded_with_silence_not_looped():
    x = decaying_hit(0.3, 16000)
    assert classify_reference(x, 16000) == "oneshot"
    y = fit_reference(x, 16000, duration_s=2.0)
    n = x.shape[0]
    assert np.all(y[n:] == 0)
    np.testing.assert_allclose(y[: n // 2], x[: n // 2], atol=1e-6)      # the end may be trimmed and faded
    assert np.abs(np.diff(y)).max() <= np.abs(np.diff(x)).max() + 1e-6
    # a 50 ms sound is never looped in auto mode
    assert classify_reference(lowpass_noise(0.05, 16000), 16000) == "oneshot"


def test_long_references_are_trimmed_to_the_most_active_window_with_fades():
    sr = 48000
    x = lowpass_noise(25.0, sr, amp=0.01)
    x[int(14.0 * sr): int(16.5 * sr)] *= 20       # the loud part: 14-16.5 s
    y = fit_reference(np.stack([x, x], axis=1), sr, duration_s=2.0)
    loud = 20 * np.log10(0.2)
    assert np.median(short_time_rms_db(y, SR)) == pytest.approx(loud, abs=2.0)
    assert abs(y[0]) < 0.02 and abs(y[-1]) < 0.02
    # a reference exactly as long as the stem is returned as is
    z = lowpass_noise(1.0, SR)
    np.testing.assert_array_equal(fit_reference(z, SR, duration_s=1.0), z)


def test_fit_is_deterministic_per_seed():
    x = lowpass_noise(0.8, SR)
    a = fit_reference(x, SR, duration_s=5.0, seed=3)
    np.testing.assert_array_equal(a, fit_reference(x, SR, duration_s=5.0, seed=3))
    assert not np.array_equal(a, fit_reference(x, SR, duration_s=5.0, seed=4))


def test_real_library_clips_fit_cleanly(library):
    rain = next(e for e in library.by_category("rain") if e.caption == "steady rain")
    x = library.load(rain.id)
    assert classify_reference(x, SR) == "sustained"
    y = fit_reference(x, SR, duration_s=23.0)
    assert y.shape == (23 * SR,)
    assert np.abs(np.diff(y)).max() <= 1.5 * np.abs(np.diff(x)).max()
    src_steps = np.abs(np.diff(short_time_rms_db(x, SR))).max()
    assert np.abs(np.diff(short_time_rms_db(y[:-800], SR))).max() <= src_steps + 2.0
    shot = library.by_category("weapon")[0]
    z = fit_reference(library.load(shot.id), SR, duration_s=3.0)
    assert np.all(z[int(shot.seconds * SR) + 1:] == 0)


@pytest.mark.parametrize("audio, match", [
    (np.zeros(0, dtype=np.float32), "empty"),
    (np.zeros(16000, dtype=np.float32), "silent"),
    (np.full(16000, 1e-6, dtype=np.float32), "silent"),
    (np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), "NaN"),
    (np.array([0.1, np.inf] * 100, dtype=np.float32), "NaN/infinite"),
    ((np.ones(1000) * 1000).astype(np.int16), "float array"),
    (np.ones((2, 1000), dtype=np.float32) * 0.1, "transposed"),
    (np.stack([np.full(800, 0.3), np.full(800, -0.3)], axis=1).astype(np.float32), "channels cancel"),
])
def test_bad_references_are_refused(audio, match):
    with pytest.raises(MediaError, match=match):
        fit_reference(audio, 16000, duration_s=1.0)


def test_bad_durations_and_modes_are_refused():
    x = lowpass_noise(0.5, SR)
    for bad in (0, -1, float("nan"), float("inf"), 10_000, "long"):
        with pytest.raises(TimeRangeError):
            fit_reference(x, SR, duration_s=bad)
    with pytest.raises(FoleyError, match="mode"):
        fit_reference(x, SR, duration_s=1.0, mode="stretch")
    with pytest.raises(MediaError, match="sr"):
        fit_reference(x, 0, duration_s=1.0)
    with pytest.raises(MediaError, match="too short to loop"):
        fit_reference(x[:8], SR, duration_s=1.0, mode="loop")


def test_load_reference_refuses_bad_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_reference(tmp_path / "empty.wav")
    (tmp_path / "fake.mp3").write_bytes(b"<html>not found</html>" * 10)
    with pytest.raises(MediaError):
        load_reference(tmp_path / "fake.mp3")
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan] * 800, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(MediaError, match="NaN"):
        load_reference(tmp_path / "nan.wav")
    with pytest.raises(MediaError, match="folder"):
        load_reference(tmp_path)


def test_a_oneshot_reference_is_placed_at_each_onset_and_a_sustained_one_ignores_them():
    from foley_core.events import detect_onsets

    sr = constants.MODEL_SR
    hit = decaying_hit(0.6, sr)
    onsets = [0.3, 0.7, 1.6]
    y = fit_reference(hit, sr, duration_s=2.0, onsets_s=onsets + [2.5])   # 2.5 s lies outside
    assert y.shape == (32000,) and y.dtype == np.float32
    found = detect_onsets(y, sr)
    assert len(found) == 3 and np.all(np.abs(found - onsets) <= 0.02), found
    assert not np.any(y[: int(0.29 * sr)])                        # silence before the first hit
    # the copy at 0.3 s is cut where the next starts (0.4 s of a 0.6 s hit), with a fade
    assert abs(float(y[int(0.7 * sr) - 1])) < 0.05 * float(np.max(np.abs(y)))
    assert np.array_equal(fit_reference(hit, sr, duration_s=2.0, onsets_s=[]),
                          fit_reference(hit, sr, duration_s=2.0))
    hum = harmonic_tone(3.0, sr)                                  # sustained: looped/trimmed as before
    assert np.array_equal(fit_reference(hum, sr, duration_s=2.0, onsets_s=onsets),
                          fit_reference(hum, sr, duration_s=2.0))
    assert fit_kind(hum, sr) == "sustained" and fit_kind(hit, sr) == "oneshot"
    assert fit_kind(hum, sr, "oneshot") == "oneshot"


def test_a_clip_of_several_hits_gives_one_hit_per_onset():
    """'knock knock' placed at two onsets was four knocks (two of them nowhere asked for); each
    onset now gets the clip's first event only, faded out before its second."""
    from foley_core.events import detect_onsets
    from foley_core.library.fit import first_event

    sr = constants.MODEL_SR
    hit = decaying_hit(0.25, sr)
    double = np.zeros(int(0.7 * sr), np.float32)
    double[: hit.size] += hit
    double[int(0.3 * sr): int(0.3 * sr) + hit.size] += hit
    assert fit_kind(double, sr) == "oneshot"
    assert len(detect_onsets(double, sr)) == 2
    first = first_event(double, sr)
    assert 0.25 <= first.size / sr < 0.3 and len(detect_onsets(first, sr)) == 1
    assert abs(float(first[-1])) < 0.05 * float(np.max(np.abs(first)))      # faded, no click
    onsets = [0.5, 1.5]
    y = fit_reference(double, sr, duration_s=2.5, onsets_s=onsets)
    found = detect_onsets(y, sr)
    assert len(found) == 2 and np.all(np.abs(found - onsets) <= 0.02), found
    assert np.array_equal(first_event(hit, sr), hit)                           # one event: kept whole
