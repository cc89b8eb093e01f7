"""The DAW session export (export.export_daw_session, `render --daw`): a Reaper .rpp parsed back."""

from __future__ import annotations

import json
import shlex
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import wavinfo

from foley_core import export, mixing
from foley_core.errors import ExportError
from foley_core.project import GenerationRequest, MixSettings, Stem
from tests.test_cli_render import VIDEO, in_process, saved_project
from tests.test_export import SR, burst, make_project

OUT_SR = 48_000


def parse_rpp(text: str) -> dict:
    """A .rpp as nested blocks: {"tag": [...], "lines": [[tokens], ...], "children": [blocks]}."""
    root = {"tag": None, "lines": [], "children": []}
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("|"):                     # a NOTES line
            stack[-1]["lines"].append([line])
            continue
        if line == ">":
            stack.pop()
            continue
        lexer = shlex.shlex(line.lstrip("<"), posix=True)
        lexer.whitespace_split, lexer.quotes = True, "\"'`"
        tokens = list(lexer)
        if line.startswith("<"):
            block = {"tag": tokens, "lines": [], "children": []}
            stack[-1]["children"].append(block)
            stack.append(block)
        else:
            stack[-1]["lines"].append(tokens)
    assert len(stack) == 1, "unbalanced <...> blocks"
    (project,) = root["children"]
    assert project["tag"][0] == "REAPER_PROJECT"
    return project


def field(block: dict, key: str) -> list[str]:
    (tokens,) = [t for t in block["lines"] if t[0] == key]
    return tokens[1:]


def tracks_of(rpp: dict) -> list[dict]:
    """Each track: name, volume, mute, solo, and its item's position, length and source file."""
    out = []
    for track in (c for c in rpp["children"] if c["tag"][0] == "TRACK"):
        (item,) = [c for c in track["children"] if c["tag"][0] == "ITEM"]
        (source,) = item["children"]
        mute, solo, _ = map(int, field(track, "MUTESOLO"))
        out.append({"name": field(track, "NAME")[0], "volume": float(field(track, "VOLPAN")[0]),
                    "mute": bool(mute), "solo": bool(solo), "kind": source["tag"][1],
                    "position_s": float(field(item, "POSITION")[0]), "length_s": float(field(item, "LENGTH")[0]),
                    "file": field(source, "FILE")[0]})
    return out


def test_each_stem_is_a_track_at_its_offset_and_the_tracks_sum_to_the_mix(tmp_path):
    p = make_project()
    p.add_stem(Stem(burst(0.3, 700.0), SR, settings=GenerationRequest(caption='a "quoted" knock'),
                    mix=MixSettings(offset_s=0.6, gain_db=-6.0, mute=True)))
    report = export.export_daw_session(p, tmp_path / "session")
    folder = tmp_path / "session"
    rpp_path = folder / report["rpp"]
    assert rpp_path.name == "export_test.rpp" and rpp_path.is_file()
    rpp = parse_rpp(rpp_path.read_text())
    assert field(rpp, "SAMPLERATE")[0] == "48000"
    tracks = tracks_of(rpp)
    assert [t["name"] for t in tracks] == [s.name for s in p.stems]
    assert [t["mute"] for t in tracks] == [False, False, True]
    timeline = np.zeros((round(p.duration_s * OUT_SR), 2))
    for t, stem in zip(tracks, p.stems):
        assert t["kind"] == "WAVE" and not Path(t["file"]).is_absolute() and ".." not in t["file"]
        wav = folder / t["file"]
        assert wav.is_file()
        assert t["position_s"] == pytest.approx(stem.mix.offset_s, abs=0.5 / OUT_SR)
        assert t["volume"] == pytest.approx(mixing.db_to_gain(stem.mix.gain_db), rel=1e-9)
        bext = wavinfo.WavInfoReader(str(wav)).bext
        assert bext.time_reference == round(stem.mix.offset_s * OUT_SR)
        assert bext.description == f"{stem.name} - Export test"
        audio, sr = sf.read(wav, dtype="float64")
        assert sr == OUT_SR and audio.shape[1] == 2 and sf.info(str(wav)).subtype == "PCM_24"
        assert t["length_s"] == pytest.approx(audio.shape[0] / OUT_SR, abs=1e-9)
        if not t["mute"]:
            start = bext.time_reference
            timeline[start:start + audio.shape[0]] += audio * t["volume"]
    # played as the .rpp says, the session is the studio's mix before mastering
    assert np.abs(timeline - p.mix(OUT_SR)).max() < 1e-5
    assert report["outside_timeline"] == []
    assert "CC-BY-SA-3.0" in (folder / "ATTRIBUTION.txt").read_text()


def test_zip_holds_one_folder_with_the_rpp_and_its_files(tmp_path):
    p = make_project()
    report = export.export_daw_session(p, tmp_path / "daw.zip")
    with zipfile.ZipFile(tmp_path / "daw.zip") as zf:
        names = zf.namelist()
        assert names == report["files"] and all(n.startswith("export_test/") for n in names)
        tracks = tracks_of(parse_rpp(zf.read(f"export_test/{report['rpp']}").decode()))
        assert {f"export_test/{t['file']}" for t in tracks} <= set(names)
        assert [t["position_s"] for t in tracks] == [0.25, 1.5]


def test_a_stem_before_zero_is_cut_and_one_after_the_end_is_left_out(tmp_path):
    p = make_project()
    p.stems[0].mix.offset_s = -0.2                    # its first 0.2 s are before the timeline
    p.add_stem(Stem(burst(0.2, 900.0), SR, settings=GenerationRequest(caption="too late"),
                    mix=MixSettings(offset_s=5.0)))
    p.video_duration_s = 1.8                          # pin the timeline (no video file needed)
    report = export.export_daw_session(p, tmp_path / "s")
    assert report["outside_timeline"] == ["too late"]
    tracks = tracks_of(parse_rpp((tmp_path / "s" / report["rpp"]).read_text()))
    assert [t["name"] for t in tracks] == ["Door slam (heavy)!", "footsteps on gravel"]
    assert tracks[0]["position_s"] == 0.0 and tracks[0]["length_s"] == pytest.approx(0.3)
    assert "too late" in (tmp_path / "s" / "README.txt").read_text()


def test_an_existing_folder_with_files_is_never_written_into(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        export.export_daw_session(make_project(), tmp_path / "s")
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]          # no temporary folder left


def test_a_failure_midway_leaves_no_folder(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(export, "reaper_project", boom)
    with pytest.raises(ExportError, match="No space left"):
        export.export_daw_session(make_project(), tmp_path / "s")
    assert list(tmp_path.iterdir()) == []


def test_rpp_strings_take_a_quote_they_do_not_hold():
    assert export.rpp_string("door slam") == '"door slam"'
    assert export.rpp_string('a "big" door') == "'a \"big\" door'"
    assert export.rpp_string("it's \"big\"") == "`it's \"big\"`"
    assert export.rpp_string("two\nlines") == '"two lines"'


@pytest.mark.skipif(not VIDEO.is_file(), reason="shared videos not present")
def test_video_has_its_own_track(tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copyfile(VIDEO, video)
    p = make_project(video, duration_s=1.6)
    report = export.export_daw_session(p, tmp_path / "s")
    tracks = tracks_of(parse_rpp((tmp_path / "s" / report["rpp"]).read_text()))
    assert tracks[0]["kind"] == "VIDEO" and tracks[0]["file"] == "video/clip.mp4"
    assert tracks[0]["position_s"] == 0.0 and tracks[0]["length_s"] == pytest.approx(1.6)
    assert (tmp_path / "s" / "video" / "clip.mp4").read_bytes() == video.read_bytes()
    assert [t["name"] for t in tracks[1:]] == [s.name for s in p.stems]


def test_render_cli_writes_the_session_folder(tmp_path, capsys):
    project_dir = saved_project(tmp_path)
    code, out, err = in_process(capsys, project_dir, "--daw", tmp_path / "daw")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["outputs"] == {"daw": str(tmp_path / "daw")} and summary["daw_tracks"] == ["ball bounce"]
    (track,) = tracks_of(parse_rpp((tmp_path / "daw" / summary["daw_rpp"]).read_text()))
    assert track["position_s"] == 0.4 and (tmp_path / "daw" / track["file"]).is_file()
    assert track["volume"] == pytest.approx(mixing.db_to_gain(-3.0))


def test_render_cli_refuses_the_project_folder_and_an_output_inside_the_session(tmp_path, capsys):
    project_dir = saved_project(tmp_path)
    before = sorted(p.name for p in project_dir.rglob("*"))
    code, out, err = in_process(capsys, project_dir, "--daw", project_dir)
    assert code == 2 and "not an empty folder" in err and out == ""
    assert sorted(p.name for p in project_dir.rglob("*")) == before
    (tmp_path / "d").mkdir()                       # an empty folder may take the session...
    code, out, err = in_process(capsys, project_dir, "--daw", tmp_path / "d", "--out", tmp_path / "d" / "m.wav")
    assert code == 2 and "inside --daw" in err     # ...but not with another output in it
    assert list((tmp_path / "d").iterdir()) == []


def test_render_cli_writes_a_session_zip_and_refuses_one_file_for_two_outputs(tmp_path, capsys):
    project_dir = saved_project(tmp_path)
    code, out, err = in_process(capsys, project_dir, "--daw", tmp_path / "s.zip", "--stems", tmp_path / "s.zip")
    assert code == 2 and "same file" in err and not (tmp_path / "s.zip").exists()
    code, out, err = in_process(capsys, project_dir, "--daw", tmp_path / "s.zip", "--stems", tmp_path / "t.zip")
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        (track,) = tracks_of(parse_rpp(zf.read("cli/cli.rpp").decode()))
        assert f"cli/{track['file']}" in zf.namelist() and track["position_s"] == 0.4


def test_a_session_folder_left_by_a_killed_export_is_removed_by_the_next(tmp_path):
    stale = tmp_path / ".foley-tmp-999999999-s.dir"      # no such process
    (stale / "audio").mkdir(parents=True)
    export.export_daw_session(make_project(), tmp_path / "s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


@pytest.mark.skipif(not VIDEO.is_file(), reason="shared videos not present")
def test_a_session_zip_holds_the_video_where_the_rpp_says(tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copyfile(VIDEO, video)
    report = export.export_daw_session(make_project(video, duration_s=1.6), tmp_path / "s.zip")
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert zf.namelist() == report["files"]
        tracks = tracks_of(parse_rpp(zf.read("export_test/export_test.rpp").decode()))
        assert tracks[0]["kind"] == "VIDEO"
        assert zf.read(f"export_test/{tracks[0]['file']}") == video.read_bytes()
