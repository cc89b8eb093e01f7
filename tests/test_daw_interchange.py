"""The EDL and the AAF beside the DAW session's .rpp: read back with independent readers (pycmx,
pyaaf2), each stem's place rebuilt from them (within a frame from the EDL, to the sample from the
AAF) and checked against the stem's offset and its file's `bext` time reference."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from fractions import Fraction
from pathlib import Path

import aaf2
import numpy as np
import pycmx
import pytest
import soundfile as sf
import wavinfo

from foley_core import daw_interchange, export, media
from foley_core.project import GenerationRequest, MixSettings, Stem
from tests.test_cli_render import in_process, saved_project
from tests.test_daw_session import parse_rpp, tracks_of
from tests.test_export import SR, VIDEO, burst, make_project, needs_video

OUT_SR = 48_000


def _project():
    """The export test's two stems and a third at an offset that is no whole frame or sample."""
    p = make_project()
    p.add_stem(Stem(burst(0.3, 700.0), SR, settings=GenerationRequest(caption="a latch click"),
                    mix=MixSettings(offset_s=1.23456789, gain_db=-6.0, mute=True)))
    return p


def _seconds(tc: str, fps: float) -> float:
    """Non-drop-frame timecode back to seconds: frames counted at the nominal rate, run at `fps`."""
    hh, mm, ss, ff = map(int, tc.split(":"))
    return ((hh * 60 + mm) * 60 + ss) * round(fps) + ff


def _edl_events(text: str) -> list:
    edl = pycmx.parse_cmx3600(io.StringIO(text))
    odd = [s for s in edl.unrecognized_statements]
    assert not odd, odd
    return [e for ev in edl.events for e in ev.edits]


def _aaf_tracks(path: Path) -> tuple[list[dict], Fraction]:
    """Each sound track of the AAF's composition: name, edit rate, start (its filler, in edit
    units), length, the clip's mob name and its embedded PCM; and the timecode track's rate."""
    out, tc_rate = [], None
    with aaf2.open(str(path), "r") as f:
        (comp,) = list(f.content.compositionmobs())
        for slot in comp.slots:
            if slot.media_kind == "Timecode":
                tc_rate = Fraction(str(slot.edit_rate))
                assert slot.segment.fps == round(float(tc_rate)) and not slot.segment.drop
                continue
            assert slot.media_kind == "Sound"
            parts = list(slot.segment.components)
            start = parts[0].length if type(parts[0]).__name__ == "Filler" else 0
            (clip,) = [c for c in parts if type(c).__name__ == "SourceClip"]
            source = clip.mob.slots[0].segment.mob
            out.append({"name": slot.name, "rate": Fraction(str(slot.edit_rate)), "start": start,
                        "length": clip.length, "clip": clip.mob.name,
                        "channels": source.descriptor["Channels"].value,
                        "bits": source.descriptor["QuantizationBits"].value,
                        "pcm": source.essence.open("r").read()})
    return out, tc_rate


def _check_session(folder: Path, report: dict, project) -> None:
    fps = report["fps"]
    tracks = [t for t in tracks_of(parse_rpp((folder / report["rpp"]).read_text())) if t["kind"] == "WAVE"]
    assert report["edl"] == Path(report["rpp"]).with_suffix(".edl").name
    assert report["aaf"] == Path(report["rpp"]).with_suffix(".aaf").name
    edl_bytes = (folder / report["edl"]).read_bytes()
    assert edl_bytes.count(b"\r\n") == edl_bytes.count(b"\n")          # CRLF lines
    events = _edl_events(edl_bytes.decode("ascii"))
    aaf_tracks, tc_rate = _aaf_tracks(folder / report["aaf"])
    frame_s = 1 / fps
    assert len(events) == len(aaf_tracks) == len(tracks) == len(project.stems)
    assert float(tc_rate) == pytest.approx(fps, abs=1e-6)
    for n, (ev, at, t, stem) in enumerate(zip(events, aaf_tracks, tracks, project.stems), 1):
        wav = folder / t["file"]
        time_ref = wavinfo.WavInfoReader(str(wav)).bext.time_reference
        frames = sf.info(str(wav)).frames
        # the EDL: audio channel n, the file by name, source timecode = the file's time reference
        assert ev.channels.audio and not ev.channels.video and list(ev.channels.channels) == [n]
        assert ev.aux_source and ev.clip_name == stem.name and ev.source_file == t["file"]
        assert ev.transition.cut
        rec_in_s = _seconds(ev.record_in, fps) / fps
        rec_out_s = _seconds(ev.record_out, fps) / fps
        assert abs(rec_in_s - stem.mix.offset_s) <= frame_s / 2 + 1e-9, (n, rec_in_s)
        assert abs(_seconds(ev.source_in, fps) / fps - time_ref / OUT_SR) <= frame_s / 2 + 1e-9
        assert abs((rec_out_s - rec_in_s) - frames / OUT_SR) <= frame_s + 1e-9
        assert _seconds(ev.source_out, fps) - _seconds(ev.source_in, fps) == \
            _seconds(ev.record_out, fps) - _seconds(ev.record_in, fps)
        # the AAF: its own track, at the file's time reference to the sample, the file's audio
        assert at["rate"] == OUT_SR and at["start"] == time_ref == round(stem.mix.offset_s * OUT_SR)
        assert at["length"] == frames and at["clip"] == stem.name and stem.name in at["name"]
        assert (at["channels"], at["bits"]) == (2, 24)
        with sf.SoundFile(str(wav)) as w:
            # the embedded PCM is the file's data chunk: 24-bit little-endian, interleaved
            assert len(at["pcm"]) == w.frames * 2 * 3
        pcm = sf.read(wav, dtype="int32")[0] >> 8
        raw = np.frombuffer(at["pcm"], np.uint8).reshape(-1, 3).astype(np.int32)
        embedded = (raw[:, 0] | raw[:, 1] << 8 | raw[:, 2] << 16)
        embedded = np.where(embedded >= 1 << 23, embedded - (1 << 24), embedded).reshape(-1, 2)
        assert np.array_equal(embedded, pcm)


def test_the_edl_and_aaf_place_each_stem_on_its_track_at_its_offset(tmp_path):
    p = _project()
    report = export.export_daw_session(p, tmp_path / "session")
    assert report["fps"] == daw_interchange.DEFAULT_FPS            # no video: 25 fps
    _check_session(tmp_path / "session", report, p)
    text = (tmp_path / "session" / report["edl"]).read_text()
    assert text.startswith("TITLE: Export test") and "FCM: NON-DROP FRAME" in text


@needs_video
def test_with_a_video_they_count_its_frames(tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copyfile(VIDEO, video)
    p = _project()
    p.video_path, p.video_duration_s = video, 2.0
    report = export.export_daw_session(p, tmp_path / "s")
    fps = media.probe_video(video).fps
    # high-speed footage (this one runs at ~187 fps): no timecode counts its frames, 25 fps does
    want = fps if fps <= daw_interchange.MAX_TIMECODE_FPS else daw_interchange.DEFAULT_FPS
    assert report["fps"] == pytest.approx(want)
    _check_session(tmp_path / "s", report, p)


def test_a_25_fps_video_s_frames(tmp_path):
    from app.session import DEMO_DIR

    video = DEMO_DIR / "mecavideo_balle_jbart.mp4"
    p = _project()
    p.video_path, p.video_duration_s = video, media.probe_video(video).duration_s
    report = export.export_daw_session(p, tmp_path / "s")
    assert report["fps"] == media.probe_video(video).fps == 25.0
    _check_session(tmp_path / "s", report, p)


def test_the_zip_holds_them_beside_the_rpp(tmp_path):
    p = _project()
    report = export.export_daw_session(p, tmp_path / "daw.zip")
    with zipfile.ZipFile(tmp_path / "daw.zip") as zf:
        names = set(zf.namelist())
        for key in ("rpp", "edl", "aaf"):
            assert f"export_test/{report[key]}" in names
        zf.extractall(tmp_path / "x")
    _check_session(tmp_path / "x" / "export_test", report, p)


def test_render_cli_names_them(tmp_path, capsys):
    project_dir = saved_project(tmp_path)
    code, out, err = in_process(capsys, project_dir, "--daw", tmp_path / "daw")
    assert code == 0, err
    summary = json.loads(out)
    assert (tmp_path / "daw" / summary["daw_edl"]).is_file()
    (track,) = _aaf_tracks(tmp_path / "daw" / summary["daw_aaf"])[0]
    assert track["start"] == round(0.4 * OUT_SR) and track["clip"] == "ball bounce"


@pytest.mark.parametrize("fps, frames, tc", [
    (25.0, 0, "00:00:00:00"), (25.0, 25 * 3661 + 24, "01:01:01:24"),
    (30000 / 1001, 30 * 60 + 1, "00:01:00:01"),          # NDF: counted at 30 a second
    (24.0, 23, "00:00:00:23")])
def test_timecode_counts_whole_frames_at_the_nominal_rate(fps, frames, tc):
    assert daw_interchange.timecode(frames, fps) == tc
    assert _seconds(tc, fps) == frames


@pytest.mark.parametrize("fps, rate", [(25.0, Fraction(25)), (30000 / 1001, Fraction(30000, 1001)),
                                       (29.97, Fraction(30000, 1001)), (24000 / 1001, Fraction(24000, 1001)),
                                       (12.5, Fraction(25, 2)), (60.0, Fraction(60))])
def test_the_aaf_edit_rate_of_a_frame_rate(fps, rate):
    assert daw_interchange.edit_rate(fps) == rate


def test_edl_channels_and_an_empty_session():
    assert [daw_interchange.edl_channel(n) for n in (1, 2, 3, 12)] == ["A", "A2", "A3", "A12"]
    assert _edl_events(daw_interchange.edl_text("Empty", [], 25.0)) == []
