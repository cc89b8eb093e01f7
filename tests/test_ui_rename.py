"""Renaming the selected stem in the studio: the name box, its checks in words, undo, and the
name in what is exported (file names, the DAW session's track, the BWF description)."""

from __future__ import annotations

import json
import zipfile

import gradio as gr
import wavinfo

from test_daw_session import parse_rpp, tracks_of
from test_ui_studio import _handler, _keep_a_take, demo, demo_components, loaded, told  # noqa: F401


def test_the_inspector_renames_the_selected_stem(demo, loaded, told, monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch, caption="a wooden door slams shut")
    assert stem.name == "a wooden door slams shut"          # named from its caption
    on_name = _handler(demo, "on_stem_name")
    out = on_name(loaded, stem.id, "  Door   slam ")
    assert loaded.stem(stem.id).name == "Door slam" and out[c.stem_name] == "Door slam"
    # the stem choice and the timeline show it
    assert out[c.stem_pick].choices == [("1: Door slam", stem.id)]
    # the timeline lane is labelled "<index>: <name>" (static/timeline.js)
    lane = json.loads(out[c.timeline])["stems"][0]
    assert (lane["index"], lane["name"]) == (1, "Door slam")
    # unchanged: no step, nothing sent
    steps = len(loaded.history)
    assert on_name(loaded, stem.id, "Door slam") == gr.skip() and len(loaded.history) == steps
    # refused in words; the box shows the name in use again
    for bad, words in (("   ", "is empty"), ("x" * 81, "81 characters long; keep it to 80"),
                       ("door/slam", "cannot hold '/'")):
        out = on_name(loaded, stem.id, bad)
        assert words in told[-1][1], told[-1]
        assert out[c.stem_name] == "Door slam" and loaded.stem(stem.id).name == "Door slam"
    loaded.undo()
    assert loaded.stem(stem.id).name == "a wooden door slams shut"
    loaded.redo()
    assert loaded.stem(stem.id).name == "Door slam"


def test_a_renamed_stem_names_its_exports(loaded, monkeypatch, tmp_path):
    stem = _keep_a_take(loaded, monkeypatch, caption="a knock")
    loaded.rename_project("Reel 1")
    loaded.rename_stem(stem.id, "Latch click")
    path, report = loaded.export_daw()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        rpp_name = next(n for n in names if n.endswith(".rpp"))
        (track,) = [t for t in tracks_of(parse_rpp(zf.read(rpp_name).decode()))
                    if "audio/" in t["file"]]          # the stem's track (the video has one too)
        (wav_name,) = [n for n in names if n.endswith(".wav") and "audio/" in n]
        zf.extract(wav_name, tmp_path)
    assert track["name"] == "Latch click"
    assert wav_name == "reel_1/audio/01_latch_click.wav", wav_name      # slugs of the names
    bext = wavinfo.WavInfoReader(str(tmp_path / wav_name)).bext
    assert bext.description == "Latch click - Reel 1"
    with zipfile.ZipFile(loaded.export_stems()) as zf:
        assert any("latch_click" in n.lower() for n in zf.namelist()), zf.namelist()
