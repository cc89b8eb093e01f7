"""Project and stem names: defaults, renaming, loading files without them, safe export file names."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import wavinfo

from foley_core import export
from foley_core.project import GenerationRequest, Project, Stem, load_project, save_project
from tests.test_daw_session import parse_rpp, tracks_of
from tests.test_export import SR, burst, make_project


def stem(caption: str | None, name: str = "") -> Stem:
    return Stem(burst(0.2, 500.0), SR, settings=GenerationRequest(caption=caption), name=name)


def test_a_stem_is_named_from_the_first_words_of_its_caption():
    s = stem("a heavy wooden door slams shut in a large stone hall with a long echo")
    assert s.name == "a heavy wooden door slams shut in a" and len(s.name) <= 40
    assert stem("glass\nshatters\t on  tiles").name == "glass shatters on tiles"
    assert stem(None).name == "stem"                 # a request without a caption
    assert s.rename("  Door\x00 slam ") == "Door slam" == s.name
    assert s.rename("") == "a heavy wooden door slams shut in a"
    assert Project(name=" \n").name == "Untitled"
    p = Project()
    assert p.rename("Reel 2, scene 4") == "Reel 2, scene 4" and p.rename("") == "Untitled"


def test_a_renamed_stem_names_its_file_track_and_bext(tmp_path):
    p = make_project()
    p.stems[0].rename("Big door")
    p.rename("Reel 2")
    zip_report = export.export_stems_zip(p, tmp_path / "stems.zip")
    assert zip_report["files"][1:3] == ["01_big_door.wav", "02_footsteps_on_gravel.wav"]
    report = export.export_daw_session(p, tmp_path / "s")
    assert report["rpp"] == "reel_2.rpp"
    tracks = tracks_of(parse_rpp((tmp_path / "s" / "reel_2.rpp").read_text()))
    assert [t["name"] for t in tracks] == ["Big door", "footsteps on gravel"]
    assert tracks[0]["file"] == "audio/01_big_door.wav"
    assert wavinfo.WavInfoReader(str(tmp_path / "s" / tracks[0]["file"])).bext.description == "Big door - Reel 2"
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        (tmp_path / "a.wav").write_bytes(zf.read("01_big_door.wav"))
    assert wavinfo.WavInfoReader(str(tmp_path / "a.wav")).ixml.project == "Reel 2"


def test_export_file_names_are_unique_and_safe_whatever_the_names():
    names = ["../../etc/passwd", "CON", "nul.txt", "...", "Éclat de verre", "Éclat de verre", "a/b\\c:d*e?",
             "", "x" * 200]
    files = export.stem_file_names([stem("caption", n) for n in names])
    assert len(set(files)) == len(files)
    assert all(re.fullmatch(r"\d{2}_[a-z0-9_]+\.wav", f) for f in files), files
    assert files[0] == "01_etc_passwd.wav" and files[4] == "05_eclat_de_verre.wav"
    assert files[3] == "04_stem.wav" and files[7] == "08_caption.wav"


def test_names_are_saved_and_files_without_them_still_load(tmp_path):
    p = make_project()
    p.rename("Reel 2")
    p.stems[1].rename("Gravel steps")
    save_project(p, tmp_path / "proj")
    loaded = load_project(tmp_path / "proj")
    assert loaded.name == "Reel 2" and [s.name for s in loaded.stems] == ["Door slam (heavy)!", "Gravel steps"]
    # a project.json written without names (by hand, or by another tool)
    path = tmp_path / "proj" / "project.json"
    data = json.loads(path.read_text())
    del data["name"]
    for raw in data["stems"]:
        del raw["name"]
    path.write_text(json.dumps(data))
    loaded = load_project(tmp_path / "proj")
    assert loaded.name == "Untitled"
    assert [s.name for s in loaded.stems] == ["Door slam (heavy)!", "footsteps on gravel"]
    assert np.array_equal(loaded.stems[0].audio, p.stems[0].audio)
