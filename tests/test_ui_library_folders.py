"""The studio's own sound folders: the Library tab adds a folder on this machine (a path box and
"Add folder"), its sounds join the search (with the kind filter) and default retrieval, the list
is kept in the user's settings, and a bad path is a message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import app.session
from foley_core.library import folders as lib_folders
from test_ui_studio import _handler, demo, demo_components, loaded, told  # noqa: F401

SR = 22_050


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """The user's settings and caches in a temporary home, and a fresh studio library."""
    monkeypatch.setenv("FOLEY_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FOLEY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(app.session, "SAVED_FOLDERS", lib_folders.SavedFolders())
    return tmp_path / "home" / "settings.json"


@pytest.fixture
def sfx(tmp_path):
    folder = tmp_path / "My SFX"
    (folder / "hits").mkdir(parents=True)
    rng = np.random.default_rng(7)
    t = np.arange(SR // 2) / SR
    sf.write(folder / "hits" / "Zorblat_Knock_02.wav",
             (0.3 * rng.standard_normal(t.shape[0]) * np.exp(-t * 40)).astype(np.float32), SR)
    sf.write(folder / "Zorblat_Hum_Loop.flac", (0.2 * rng.standard_normal(SR * 2)).astype(np.float32), SR)
    (folder / "hits" / "truncated.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVE")
    return folder


def test_add_folder_searches_its_sounds_and_is_remembered(demo, loaded, told, settings, sfx):
    c = demo_components(demo)
    add = _handler(demo, "on_library_folder_add")
    out = add(loaded, f"  {sfx}  ")
    assert out[c.lib_folder_path] == ""
    level, message = told[-1]
    assert level == "info" and f"Added '{sfx}': 2 sound(s) from 3 audio file(s) (3 read now, 0 from the index)" in message
    assert "1 file(s) could not be read" in message and "truncated.wav" in message
    assert f"`{sfx}`: 2 sounds, 1 unreadable file(s) skipped" in out[c.lib_folders_md]
    assert out[c.lib_folder_pick].choices == [(str(sfx), str(sfx))]
    assert ("user", "user") in out[c.ref_category].choices
    # kept in the user's settings, for every project and the next start of the app
    assert json.loads(settings.read_text())["library_folders"] == [str(sfx)]
    # its sounds are searched, with the kind filter beside category and length
    search = _handler(demo, "on_ref_search")
    hits = search(loaded, "zorblat", "", "user", None, None, "any kind")[c.ref_results].props["hits"]
    assert {h["id"] for h in hits} == {"user/My SFX/hits/Zorblat_Knock_02.wav", "user/My SFX/Zorblat_Hum_Loop.flac"}
    hits = search(loaded, "zorblat", "", "user", None, None, "oneshot")[c.ref_results].props["hits"]
    assert [h["id"] for h in hits] == ["user/My SFX/hits/Zorblat_Knock_02.wav"]
    hits = search(loaded, "zorblat", "", "user", None, None, "sustained")[c.ref_results].props["hits"]
    assert [h["id"] for h in hits] == ["user/My SFX/Zorblat_Hum_Loop.flac"]
    # a new app process (a fresh studio library) finds the folder again from the settings
    app.session.SAVED_FOLDERS = lib_folders.SavedFolders()
    assert "user/My SFX/Zorblat_Hum_Loop.flac" in app.session.sound_library()
    # removing it: no longer searched nor saved (the files stay)
    out = _handler(demo, "on_library_folder_remove")(loaded, str(sfx))
    assert "No folder added" in out[c.lib_folders_md] and out[c.lib_folder_pick].choices == []
    assert json.loads(settings.read_text())["library_folders"] == []
    assert "user/My SFX/Zorblat_Hum_Loop.flac" not in app.session.sound_library()
    assert (sfx / "Zorblat_Hum_Loop.flac").is_file()


def test_default_retrieval_picks_from_the_added_folder(loaded, settings, sfx, monkeypatch):
    import foley_core.generate

    seen = {}

    def fake_generate(request, **kw):
        seen.update(kw)
        raise foley_core.generate.GenerationCancelled("stop")

    monkeypatch.setattr(foley_core.generate, "generate", fake_generate)
    loaded.add_library_folder(str(sfx))
    with pytest.raises(foley_core.generate.GenerationCancelled):
        loaded.generate(caption="a zorblat knock", steps=1)
    # generate() is given the library with the user's folder: the caption's best match is theirs
    library = seen["library"]
    assert library.search("a zorblat knock", k=1)[0].entry.id == "user/My SFX/hits/Zorblat_Knock_02.wav"


@pytest.mark.parametrize("case, words", [("missing", "Sound folder not found"), ("file", "is a file, not a folder"),
                                         ("empty", "No audio files in"), ("unreadable", "None of the 1 audio files"),
                                         ("blank", "Type the path of a folder")])
def test_a_bad_folder_is_a_message_and_nothing_is_saved(demo, loaded, told, settings, tmp_path, sfx, case, words):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"not a wav")
    path = {"missing": str(tmp_path / "nowhere"), "file": str(sfx / "Zorblat_Hum_Loop.flac"),
            "empty": str(tmp_path / "empty"), "unreadable": str(tmp_path / "bad"), "blank": "   "}[case]
    import gradio as gr

    assert _handler(demo, "on_library_folder_add")(loaded, path) == gr.skip()
    level, message = told[-1]
    assert level == "warning" and words in message and "Traceback" not in message
    assert not settings.exists() and loaded.library_folders() == []


def test_a_studio_open_to_other_machines_reads_no_typed_path(demo, loaded, told, settings, sfx, monkeypatch):
    """A path typed in the page is read on the server: only when it listens on loopback alone."""
    import gradio as gr

    from app.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("myhost")
    monkeypatch.setattr(app.session.SAVED_FOLDERS, "browser_may_add", False)
    assert _handler(demo, "on_library_folder_add")(loaded, str(sfx)) == gr.skip()
    assert "open to other machines" in told[-1][1] and not settings.exists()
    assert "user/My SFX/Zorblat_Hum_Loop.flac" not in app.session.sound_library()


def test_a_saved_folder_missing_at_start_is_listed_with_the_reason(loaded, settings, sfx, tmp_path):
    """An unplugged drive: the studio starts, lists the folder as not searched, and keeps it."""
    gone = tmp_path / "usb" / "sfx"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"library_folders": [str(sfx), str(gone)], "other": 1}))
    rows = dict(loaded.library_folders())
    assert rows[str(sfx)] == "2 sounds, 1 unreadable file(s) skipped"
    assert rows[str(gone)].startswith("not searched: Sound folder not found")
    assert "user/My SFX/Zorblat_Hum_Loop.flac" in app.session.sound_library()
    stored = json.loads(settings.read_text())
    assert stored["library_folders"] == [str(sfx), str(gone)] and stored["other"] == 1
    # a damaged settings file is ignored: the bundled library alone, nothing lost on start
    settings.write_text("{not json")
    app.session.SAVED_FOLDERS = lib_folders.SavedFolders()
    assert loaded.library_folders() == [] and len(app.session.sound_library()) > 0
