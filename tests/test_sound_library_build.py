"""scripts/build_sound_library.py: licences from DEP-5 copyright files, captions, UCS categories,
content duplicates, the integrity rule, and the index it writes loading with the extra columns."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from repo_modules import load_repo_module
from foley_core.library import CATEGORIES, LICENCES, SoundLibrary
from foley_core.library import catalog


@pytest.fixture(scope="module")
def build():
    return load_repo_module("scripts/build_sound_library.py")


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2010 Demo Team
License: GPL-2+

Files: data/sounds/*
Copyright: 2012 Sound Person
License: CC-BY-SA-3.0

Files: data/sounds/pidgin-*.ogg
Copyright: The Pidgin developers
License: GPL-2

Files: data/sfx/any.ogg
Copyright: Someone
License: CC0 or GPL-2

Files: data/voices/*
Copyright: Someone else
License: GFDL-1.3
"""


def test_dep5_licence_is_the_last_matching_paragraph_on_the_installed_path(build):
    paragraphs = build.parse_dep5(DEP5)
    where = "usr/share/games/demo/data/sounds/"
    assert build.licence_for(paragraphs, where + "door.ogg") == ("CC-BY-SA-3.0", "2012 Sound Person")
    assert build.licence_for(paragraphs, where + "pidgin-login.ogg")[0] == "GPL-2"
    assert build.licence_for(paragraphs, "usr/share/games/demo/other.wav")[0] == "GPL-2+"
    # inside an archive: the member path is matched too
    assert build.licence_for(paragraphs, "usr/share/demo/pak0.pk3:data/voices/hello.wav")[0] == "GFDL-1.3"
    assert build.parse_dep5("This package was debianized by someone.\nLicense: GPL") is None


@pytest.mark.parametrize("short, code", [
    ("CC-BY-SA-3.0", "CC-BY-SA-3.0"), ("CC-BY-SA-3.0+", "CC-BY-SA-3.0"), ("CC0", "CC0-1.0"),
    ("GPL-2+", "GPL-2+"), ("Expat", "MIT"), ("CC0 or GPL-2", "CC0-1.0"), ("GPL-2+ and CC-BY-3.0", "GPL-2+"),
    ("GPL-2", None), ("GPL", None), ("GFDL-1.3", None), ("custom", None), ("", None), ("GPL-2+ and GFDL-1.3", None),
])
def test_only_licences_combinable_with_agpl_are_kept(build, short, code):
    assert build.normalise_licence(short) == code
    if code is not None:
        assert code in LICENCES, code


def test_captions_read_as_english_from_paths(build):
    assert build.caption_for("usr/share/sounds/player/fs_gravel_walk3.ogg") == "footstep on gravel walk, player"
    assert build.caption_for("usr/share/games/x/data.zip:sounds/engine/carEngineIdle.wav") == "car engine idle"
    assert build.caption_for("usr/share/games/widelands/data/sound/farm/scythe_00.ogg") == "scythe, farm"


@pytest.mark.parametrize("text, category, cat_id", [
    ("footstep on gravel walk", "footsteps", "FEETHmn"),
    ("horse gallop", "footsteps", "FEETHors"),
    ("wooden door open", "door", "DOORWood"),
    ("glass shatter", "glass", "GLASBrk"),
    ("water splash big", "water", "WATRSplsh"),
    ("thunder far", "rain", "THUN"),
    ("sword hit", "weapon", "WEAPSwrd"),
    ("machine gun burst", "weapon", "GUNAuto"),
    ("grenade explosion", "explosion", "EXPLReal"),
    ("dog bark", "animal", "ANMLDog"),
    ("seagull cry", "bird", "BIRDSea"),
    ("menu click", "ui", "UIClick"),
    ("forest ambience", "ambience", "AMBForst"),
    ("ball bounce", "impact", "RUBRImpt"),
    ("paper page turn", "impact", "PAPRHndl"),
    ("cloth rustle", "human", "FOLYClth"),
    ("car engine idle", "engine", "MOTRComb"),
    ("tyre skid", "vehicle", "VEHSkid"),
    ("hammer anvil", "tool", "TOOLHand"),
    ("wind gust", "wind", "WINDGust"),
    ("fire crackle", "fire", "FIRECrkl"),
])
def test_keyword_rules_give_our_category_and_a_real_ucs_pair(build, text, category, cat_id):
    got = build.categorise(text)
    assert got is not None and got[0] == category and got[3] == cat_id, got
    assert got[0] in CATEGORIES
    assert (got[1], got[2]) == build.UCS[cat_id]


def test_every_rule_uses_one_of_the_19_categories_and_a_known_cat_id(build):
    for _, category, cat_id in build.RULES:
        assert category in CATEGORIES and cat_id in build.UCS
    assert build.categorise("lorem ipsum") is None


def test_music_and_speech_paths_are_not_foley(build):
    for path in ("usr/share/games/x/music/theme.ogg", "sounds/codriver/tim/hairpin.wav",
                 "units/archer/sounds/archer_ack3.wav", "usr/share/lmms/samples/drums/snare01.ogg"):
        assert build.NOT_FOLEY.search(path.lower()), path
    for path in ("usr/share/games/x/sounds/footstep1.ogg", "units/archer/sounds/archer_attack3.wav"):
        assert not build.NOT_FOLEY.search(path.lower()), path


def test_duplicates_are_found_across_gain_rate_and_channels(build):
    sr = 22050
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    hit = (rng.standard_normal(sr) * np.exp(-t * 8)).astype(np.float32)[:, None]
    fp = build.fingerprint(hit, sr)
    assert build.fingerprint(0.3 * hit, sr) == fp                      # quieter copy
    assert build.fingerprint(np.repeat(hit, 2, axis=1), sr) == fp      # stereo copy
    other = (rng.standard_normal(sr) * np.exp(-t * 3)).astype(np.float32)[:, None]
    assert build.fingerprint(other, sr) != fp


def test_trim_keeps_the_sound_and_drops_silence(build):
    sr = 16000
    audio = np.zeros((sr * 2, 1), dtype=np.float32)
    audio[sr // 2: sr] = 0.5
    start, end = build.trim_bounds(audio, sr)
    assert sr // 2 - sr // 100 <= start <= sr // 2 and sr <= end <= sr + sr // 100


def test_integrity_rule_the_evaluation_packages_are_never_read(build, tmp_path):
    names = {p.name for p in build.PACKAGES}
    for forbidden in ("0ad-data", "ufoai-sound", "redeclipse-data", "openttd-opensfx", "minetest-data", "scratch",
                      "torcs-data", "flightgear-data-base"):
        assert forbidden in build.FORBIDDEN_PACKAGES and forbidden not in names
    assert not names & build.FORBIDDEN_PACKAGES
    with pytest.raises(SystemExit, match="integrity"):
        build.fetch(build.Package("ufoai-sound", "2.5-2", "x"), tmp_path)
    assert "integrity rule" in build.__doc__.lower() and "split=train" in build.__doc__


def test_index_with_the_extra_columns_loads_and_an_old_one_still_does(tmp_path):
    import soundfile as sf

    sr = 44100
    (tmp_path / "new" / "audio" / "door").mkdir(parents=True)
    sf.write(tmp_path / "new" / "audio" / "door" / "d1.flac", np.zeros((sr // 10, 2), np.float32) + 0.1, sr)
    columns = (*catalog.INDEX_COLUMNS, *catalog.INDEX_EXTRA_COLUMNS)
    row = {"id": "d1", "file": "audio/door/d1.flac", "caption": "wooden door", "category": "door", "seconds": "0.1",
           "licence": "CC0-1.0", "attribution": "someone", "source_package": "demo-data", "source_path": "a/b.wav",
           "ucs_category": "DOORS", "ucs_subcategory": "WOOD", "cat_id": "DOORWood", "sr": str(sr), "channels": "2",
           "source_version": "1.0-1", "modification": "unmodified copy of the source file"}
    with open(tmp_path / "new" / "index.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerow(row)
    entry = SoundLibrary(tmp_path / "new", cache_dir=None).get("d1")
    assert (entry.ucs_category, entry.ucs_subcategory, entry.cat_id, entry.sr, entry.channels) == \
        ("DOORS", "WOOD", "DOORWood", sr, 2)
    assert "demo-data 1.0-1" in entry.credit and "unmodified copy" in entry.credit
    old = tmp_path / "old"
    (old / "audio" / "door").mkdir(parents=True)
    (old / "audio" / "door" / "d1.flac").write_bytes((tmp_path / "new" / "audio" / "door" / "d1.flac").read_bytes())
    with open(old / "index.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=catalog.INDEX_COLUMNS)
        writer.writeheader()
        writer.writerow({k: row[k] for k in catalog.INDEX_COLUMNS})
    entry = SoundLibrary(old, cache_dir=None).get("d1")
    assert (entry.ucs_category, entry.cat_id, entry.sr, entry.channels, entry.source_version) == ("", "", 0, 0, "")
    assert "down-mixed" in entry.credit           # the older clips' modification note still applies
