"""Hybrid library search (issue 15): keyword + semantic ranking, filters, the score breakdown,
embedded metadata, the incremental folder index and "more like this"."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_core.errors import FoleyError
from foley_core.library import SoundLibrary, catalog
from foley_core.library import search as engine

SR = 16_000


def noise_burst(seconds: float, seed: int, decay: float = 20.0, tone_hz: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = rng.standard_normal(t.shape[0]) * np.exp(-t * decay)
    if tone_hz:
        x = 0.2 * x + np.sin(2 * np.pi * tone_hz * t)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def bwf_wav(path: Path, audio: np.ndarray, description: str, ixml_note: str = "") -> None:
    """A 16-bit WAV with a `bext` description (and an iXML NOTE) chunk before its data."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 2, 2, 16)
    bext = description.encode("ascii").ljust(602, b"\0")
    chunks = [(b"fmt ", fmt), (b"bext", bext)]
    if ixml_note:
        chunks.append((b"iXML", f"<BWFXML><NOTE>{ixml_note}</NOTE></BWFXML>".encode()))
    chunks.append((b"data", pcm))
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(d)) + d + (b"\0" if len(d) % 2 else b"")
                              for cid, d in chunks)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.fixture()
def pack(tmp_path) -> Path:
    """A small user library whose captions come from file names, as a designer's folder."""
    folder = tmp_path / "pack"
    (folder / "impacts").mkdir(parents=True)
    sf.write(folder / "impacts" / "TennisBall_Bounces_Hard_01.wav", noise_burst(0.4, 1, 40), SR)
    sf.write(folder / "impacts" / "bowling_ball_roll.wav", noise_burst(2.5, 2, 1), SR)
    sf.write(folder / "crickets_night_loop.wav", noise_burst(3.0, 3, 0.1, 4000), SR)
    sf.write(folder / "ballista_fire_02.wav", noise_burst(0.8, 4, 8), SR)
    sf.write(folder / "explosion_big_distant.wav", noise_burst(4.0, 5, 2), SR)
    sf.write(folder / "door_slam_wood.wav", noise_burst(0.6, 6, 30), SR)
    return folder


def test_words_and_terms_split_file_names_and_stem_plurals():
    assert engine.words("TennisBall_Bounces-03") == ["tennis", "ball", "bounces"]
    assert engine.words("DOORWood_CreakOpen2") == ["door", "wood", "creak", "open"]
    assert engine.terms("bounces") == engine.terms("bounce") == engine.terms("bouncing")
    assert engine.terms("footsteps on the gravel") == ["footstep", "gravel"]


def test_ball_bounce_ranks_the_bounce_first_with_a_score_breakdown(tmp_path, pack):
    lib = SoundLibrary(bundled=False, folders=[pack], cache_dir=tmp_path / "cache")
    hits = lib.search("ball bounce", k=6)
    assert hits[0].entry.path.name == "TennisBall_Bounces_Hard_01.wav", [h.entry.caption for h in hits]
    assert hits[0].keyword == pytest.approx(1.0) and -1 <= hits[0].semantic <= 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    crickets = next(h for h in hits if "crickets" in h.entry.caption)
    assert crickets.keyword == 0.0
    # embedding-only (the search before issue 15) is still available, and scores only by meaning
    before = lib.search("ball bounce", k=6, fusion=engine.Fusion("semantic"))
    assert all(h.score == pytest.approx(h.semantic) for h in before)


def test_bundled_library_search_finds_words_the_embedding_misses():
    lib = SoundLibrary(cache_dir=None)
    hits = lib.search("whoosh", k=5)
    assert any("whoosh" in lib.keyword_text(h.entry).lower() for h in hits[:1]), [h.entry.caption for h in hits]
    # a plural query matches singular captions (stemming), through the keyword score
    assert lib.search("explosions", k=1)[0].keyword > 0


def test_filters_category_duration_and_ucs(tmp_path, pack):
    lib = SoundLibrary(cache_dir=tmp_path / "cache", folders=[pack])
    short = lib.search("impact", k=50, max_s=0.5)
    assert short and all(h.entry.seconds <= 0.5 for h in short)
    ranged = lib.search("impact", k=500, min_s=1.0, max_s=3.0)
    assert ranged and all(1.0 <= h.entry.seconds <= 3.0 for h in ranged)
    assert len(ranged) == sum(1.0 <= e.seconds <= 3.0 for e in lib)
    users = lib.search("ball", k=50, category="user")
    assert {h.entry.path.name for h in users} == {p.name for p in pack.rglob("*.wav")}
    with pytest.raises(FoleyError, match="minimum duration"):
        lib.search("impact", min_s=3, max_s=1)
    with pytest.raises(FoleyError, match="at least 0"):
        lib.search("impact", min_s=-1)
    # a UCS name no clip has is refused (the bundled library has DOORWood clips: a misspelt CatID)
    with pytest.raises(FoleyError, match="UCS"):
        lib.search("impact", ucs_category="DOORWod")


def test_ucs_filter_uses_the_entries_ucs_fields():
    @dataclass_entry
    class Entry:
        pass
    entries = [Entry(id=str(i), category="door", seconds=1.0, ucs_category=u, ucs_subcategory=s, cat_id=c)
               for i, (u, s, c) in enumerate([("DOORS", "WOOD", "DOORWood"), ("DOORS", "METAL", "DOORMetl"),
                                              ("GLASS", "BREAK", "GLASBreak")])]
    index = engine.SearchIndex(entries, ["a", "b", "c"], np.eye(3, 384, dtype=np.float32))
    assert index.mask(ucs_category="doors").tolist() == [True, True, False]
    assert index.mask(ucs_category="DOORMetl").tolist() == [False, True, False]
    assert index.mask(ucs_category="break", max_s=2).tolist() == [False, False, True]


def dataclass_entry(cls):
    from dataclasses import dataclass

    ns = {"__annotations__": {"id": str, "category": str, "seconds": float, "ucs_category": str,
                              "ucs_subcategory": str, "cat_id": str}}
    return dataclass(type(cls.__name__, (), ns))


def test_bwf_and_ixml_metadata_become_caption_and_keywords(tmp_path):
    folder = tmp_path / "field"
    folder.mkdir()
    bwf_wav(folder / "T001_0042.wav", noise_burst(0.5, 7, 20), "Tennis ball bounce on clay court",
            ixml_note="outdoor, close mic")
    sf.write(folder / "T001_0043.wav", noise_burst(0.5, 8, 1), SR)
    assert engine.read_tags(folder / "T001_0042.wav") == {
        "description": "Tennis ball bounce on clay court", "ixml_note": "outdoor, close mic"}
    lib = SoundLibrary(bundled=False, folders=[folder], cache_dir=None)
    entry = next(e for e in lib if e.path.name == "T001_0042.wav")
    assert entry.caption == "Tennis ball bounce on clay court"
    assert lib.search("close mic", k=1)[0].entry == entry          # the iXML note is searchable


def test_incremental_reindex_reads_only_new_and_changed_files(tmp_path, pack, monkeypatch):
    reads: list[str] = []
    real = catalog.read_audio
    monkeypatch.setattr(catalog, "read_audio", lambda p, **kw: reads.append(Path(p).name) or real(p, **kw))
    cache = tmp_path / "cache"
    lib = SoundLibrary(bundled=False, folders=[pack], cache_dir=cache)
    n_files = len(list(pack.rglob("*.wav")))
    assert len(reads) == n_files
    # a new process (new library object) with the disk cache reads nothing
    reads.clear()
    lib2 = SoundLibrary(bundled=False, folders=[pack], cache_dir=cache)
    assert reads == [] and len(lib2) == n_files
    # change one, add one, delete one: only the changed and the new file are read
    sf.write(pack / "door_slam_wood.wav", noise_burst(0.9, 60, 30), SR)
    sf.write(pack / "glass_shatter.wav", noise_burst(0.7, 9, 10), SR)
    (pack / "ballista_fire_02.wav").unlink()
    lib2.add_folder(pack)
    assert sorted(reads) == ["door_slam_wood.wav", "glass_shatter.wav"]
    names = {e.path.name for e in lib2}
    assert "ballista_fire_02.wav" not in names and "glass_shatter.wav" in names
    door = next(e for e in lib2 if e.path.name == "door_slam_wood.wav")
    assert door.seconds == pytest.approx(0.9)
    # in memory only (no cache folder), a rescan of the same library object also reads nothing new
    reads.clear()
    lib3 = SoundLibrary(bundled=False, folders=[pack], cache_dir=None)
    lib3.add_folder(pack)
    assert len(reads) == len(list(pack.rglob("*.wav")))


def test_more_like_this_finds_the_near_duplicate_first(tmp_path, pack):
    # a near duplicate as libraries hold them: the same take 6 dB quieter, re-recorded with a faint
    # noise floor and 5 ms later (the door slam is the same kind of burst, only slower: the decoy)
    take = np.concatenate([np.zeros(80, dtype=np.float32), noise_burst(0.4, 1, 40)])
    near = take * 0.5 + 1e-4 * np.random.default_rng(11).standard_normal(take.shape[0])
    sf.write(pack / "take_two.wav", near.astype(np.float32), SR)
    lib = SoundLibrary(folders=[pack], cache_dir=tmp_path / "cache")
    source = next(e for e in lib if e.path.name == "TennisBall_Bounces_Hard_01.wav")
    hits = lib.more_like_this(source.id, k=5)
    assert hits[0].entry.path.name == "take_two.wav", [h.entry.id for h in hits]
    assert source.id not in [h.entry.id for h in hits]
    assert hits[0].score > hits[1].score
    # from a file outside the library, and with a filter
    outside = tmp_path / "query.wav"
    sf.write(outside, noise_burst(0.4, 1, 40), SR)
    assert lib.more_like_this(outside, k=1)[0].entry.path.name in ("TennisBall_Bounces_Hard_01.wav", "take_two.wav")
    only = lib.more_like_this(source.id, k=3, category="impact")
    assert only and all(h.entry.category == "impact" for h in only)


def test_bundled_features_are_cached_on_disk(tmp_path, monkeypatch):
    lib = SoundLibrary(cache_dir=tmp_path / "cache")
    clip = lib.by_category("door")[0]
    lib.more_like_this(clip.id, k=1)
    reads: list[str] = []
    real = catalog.read_audio
    monkeypatch.setattr(catalog, "read_audio", lambda p, **kw: reads.append(str(p)) or real(p, **kw))
    again = SoundLibrary(cache_dir=tmp_path / "cache")
    assert again.more_like_this(clip.id, k=3)
    assert reads == []
