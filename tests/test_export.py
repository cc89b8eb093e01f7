"""Exports: mix WAV, stems zip, MP4 (foley_core.export)."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_core import audio_io, export, media, mixing
from foley_core.errors import FoleyError
from foley_core.export import ExportError
from foley_core.project import GenerationRequest, MixSettings, Project, Reference, Stem

SR = 16_000
OUT_SR = 48_000
SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "videos" / "mecavideo_balle1.mp4"          # 1.6 s, has audio
SILENT_VIDEO = SHARED / "videos" / "mecavideo_balle_jbart.mp4"
needs_video = pytest.mark.skipif(not VIDEO.is_file(), reason="shared videos not present")


def burst(seconds: float, freq_hz: float, amplitude: float = 0.5) -> np.ndarray:
    """A tone that is loud from its first to its last sample (so its window is easy to see)."""
    t = np.arange(int(round(seconds * SR))) / SR
    return (amplitude * np.cos(2 * np.pi * freq_hz * t)).astype(np.float32)


def make_project(video: Path | None = None, duration_s: float = 2.0) -> Project:
    p = Project(name="Export test", video_path=video, video_duration_s=duration_s if video else None)
    p.add_stem(Stem(burst(0.5, 500.0), SR, settings=GenerationRequest(caption="Door slam (heavy)!"),
                    mix=MixSettings(offset_s=0.25, gain_db=-2.0, pan=-0.5)))
    p.add_stem(Stem(burst(0.4, 1200.0, 0.3), SR, settings=GenerationRequest(
        caption="footsteps on gravel",
        reference=Reference("0ad_footstep_gravel_1", "audio/steps/gravel_1.flac", "gravel footstep",
                            "CC-BY-SA-3.0", "Wildfire Games, http://www.wildfiregames.com/")),
        mix=MixSettings(offset_s=1.0, trim_start_s=0.1, fade_out_s=0.05)))
    if video is None:
        p.stems[1].mix.offset_s = 1.5                  # the timeline then ends at 1.8 s
    return p


def riff_format(data: bytes) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from a RIFF WAV's fmt chunk."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", data[pos + 8:pos + 16])
            bits = struct.unpack("<H", data[pos + 22:pos + 24])[0]
            return tag, channels, rate, bits
        pos += 8 + size + (size & 1)
    raise AssertionError("no fmt chunk")


def test_stems_zip_files_line_up_and_each_stem_sounds_only_in_its_window(tmp_path):
    p = make_project()
    report = export.export_stems_zip(p, tmp_path / "stems.zip", target_lufs=-23.0)
    names = ["mix.wav", "01_door_slam_heavy.wav", "02_footsteps_on_gravel.wav", "README.txt", "ATTRIBUTION.txt"]
    assert report["files"] == names
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        assert zf.namelist() == names
        wavs = {n: zf.read(n) for n in names if n.endswith(".wav")}
        readme = zf.read("README.txt").decode()
        attribution = zf.read("ATTRIBUTION.txt").decode()
    n_expected = round(1.8 * OUT_SR)
    audio = {}
    for name, data in wavs.items():
        assert riff_format(data)[1:] == (2, 48_000, 24)           # a standard RIFF WAV header
        info = sf.info(io.BytesIO(data))
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_24", 48_000, 2)
        audio[name], _ = sf.read(io.BytesIO(data), dtype="float64")
        assert audio[name].shape == (n_expected, 2)
    # stem 1: 0.25 s .. 0.75 s, panned left
    door = audio["01_door_slam_heavy.wav"]
    lo, hi = round(0.25 * OUT_SR), round(0.75 * OUT_SR)
    assert not door[:lo].any() and not door[hi:].any()
    assert abs(door[lo, 0]) > 0.3 and door[lo:hi, 0].std() > 0.2
    assert np.sqrt(np.mean(door[lo:hi, 0] ** 2)) > np.sqrt(np.mean(door[lo:hi, 1] ** 2)) * 2
    # stem 2: trimmed to 0.3 s, at 1.5 s .. 1.8 s
    steps = audio["02_footsteps_on_gravel.wav"]
    lo2 = round(1.5 * OUT_SR)
    assert not steps[:lo2].any() and steps[lo2:].std() > 0.05
    # the stems add up to the mix before mastering (24-bit quantisation aside)
    gain = mixing.db_to_gain(report["master"]["gain_db"])
    assert not report["master"]["limited"]
    assert np.allclose((door + steps) * gain, audio["mix.wav"], atol=2e-6)
    assert mixing.integrated_lufs(audio["mix.wav"], OUT_SR) == pytest.approx(-23.0, abs=0.5)
    # honest README and attribution
    assert "48000 Hz, 24-bit PCM, stereo" in readme and "16000 Hz" in readme and "8 kHz" in readme
    assert "upsampled" in readme and "no content above 8 kHz" in readme
    assert "01_door_slam_heavy.wav" in readme and "not mastered" in readme
    assert "02_footsteps_on_gravel.wav" in attribution and "CC-BY-SA-3.0" in attribution
    assert "Wildfire Games" in attribution and "01_door" not in attribution


def test_no_attribution_without_library_sounds_and_muted_stems_are_left_out(tmp_path):
    p = make_project()
    p.stems[1].settings = p.stems[1].settings.replace(reference=None)
    p.add_stem(Stem(burst(0.2, 300.0), SR, settings=GenerationRequest(caption="muted thing"),
                    mix=MixSettings(mute=True)))
    report = export.export_stems_zip(p, tmp_path / "stems.zip")
    assert report["files"] == ["mix.wav", "01_door_slam_heavy.wav", "02_footsteps_on_gravel.wav", "README.txt"]
    assert report["excluded_stems"] == ["muted thing"]
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        assert "ATTRIBUTION.txt" not in zf.namelist()
        assert "muted thing" in zf.read("README.txt").decode()
    p.stems[0].mix.solo = True
    assert export.export_stems_zip(p, tmp_path / "solo.zip")["files"][1:-1] == ["01_door_slam_heavy.wav"]


def test_loud_stem_is_reported_as_clipped(tmp_path):
    p = make_project()
    p.stems[0].mix.gain_db = 12.0
    report = export.export_stems_zip(p, tmp_path / "stems.zip", target_lufs=None)
    assert report["clipped_stems"] == ["01_door_slam_heavy.wav"]
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        assert "WARNING" in zf.read("README.txt").decode()


@pytest.mark.parametrize("target", [-23.0, -14.0])
def test_mix_wav_is_48k_24bit_stereo_at_target_under_the_ceiling(target, tmp_path):
    p = make_project()
    p.stems[0].mix.gain_db = 6.0
    out = tmp_path / "mix.wav"
    report = export.export_mix_wav(p, out, target_lufs=target, ceiling_dbtp=-1.0)
    assert riff_format(out.read_bytes())[1:] == (2, 48_000, 24)
    audio, sr = sf.read(str(out), dtype="float64")
    assert sr == 48_000 and audio.shape == (round(1.8 * OUT_SR), 2)
    assert mixing.true_peak_dbtp(audio, sr) <= -1.0                # measured on the re-read 24-bit file
    assert mixing.integrated_lufs(audio, sr) == pytest.approx(target, abs=0.5)
    assert report["lufs_after"] == pytest.approx(target, abs=0.5) and report["target_reached"]


def test_project_export_settings_are_the_default(tmp_path):
    p = make_project()
    p.export.target_lufs = -18.0
    report = export.export_mix_wav(p, tmp_path / "mix.wav")
    assert report["target_lufs"] == -18.0 and report["lufs_after"] == pytest.approx(-18.0, abs=0.5)


def test_export_errors_and_no_partial_files(tmp_path, monkeypatch):
    with pytest.raises(ExportError, match="nothing to export"):
        export.export_mix_wav(Project(name="empty"), tmp_path / "mix.wav")
    with pytest.raises(ExportError, match="ending in .wav"):
        export.export_mix_wav(make_project(), tmp_path / "mix.mp3")
    with pytest.raises(ExportError, match="no video"):
        export.export_mp4(make_project(), tmp_path / "out.mp4")
    gone = make_project(tmp_path / "deleted.mp4")
    with pytest.raises(ExportError, match="missing"):
        export.export_mp4(gone, tmp_path / "out.mp4")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export.export_mix_wav(make_project(), tmp_path / "a_file" / "mix.wav")

    # a failure while writing keeps the previous export and leaves no temporary file
    out = tmp_path / "mix.wav"
    out.write_bytes(b"previous export")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io, "write_export_wav", disk_full)
    with pytest.raises(ExportError, match="No space left"):
        export.export_mix_wav(make_project(), out)
    with pytest.raises(ExportError, match="No space left"):
        export.export_stems_zip(make_project(), tmp_path / "stems.zip")
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "mix.wav"]


@needs_video
def test_mp4_carries_the_mix_in_sync(tmp_path):
    p = make_project(VIDEO, duration_s=media.probe_video(VIDEO).duration_s)
    out = tmp_path / "out.mp4"
    report = export.export_mp4(p, out, target_lufs=-16.0)
    info = media.probe_video(out)
    assert info.has_audio and info.duration_s == pytest.approx(p.duration_s, abs=0.05)
    sound = media.read_soundtrack(out, sr=OUT_SR)
    envelope = np.abs(sound)
    # the first stem starts at 0.25 s: silence before it, sound right after it
    assert envelope[: round(0.23 * OUT_SR)].max() < 0.01
    assert envelope[round(0.26 * OUT_SR): round(0.3 * OUT_SR)].max() > 0.05
    assert report["lufs_after"] == pytest.approx(-16.0, abs=0.5)
    # keeping the original soundtrack as a second track
    export.export_mp4(p, tmp_path / "two.mp4", original_audio="track")
    assert media.probe_video(tmp_path / "two.mp4").has_audio


@needs_video
def test_mp4_of_a_video_without_sound_cannot_keep_its_original_track(tmp_path):
    video = tmp_path / SILENT_VIDEO.name
    shutil.copyfile(SILENT_VIDEO, video)
    p = make_project(video, duration_s=10.2)
    with pytest.raises(FoleyError, match="no audio track"):
        export.export_mp4(p, tmp_path / "out.mp4", original_audio="mix")
    assert not (tmp_path / "out.mp4").exists()


def test_attribution_names_the_users_own_sound_without_its_local_path(tmp_path):
    p = make_project()
    p.stems[0].settings = p.stems[0].settings.replace(reference=Reference(
        "upload/my_door.wav", str(tmp_path / "private" / "my_door.wav"), "my door"))
    export.export_stems_zip(p, tmp_path / "stems.zip")
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        attribution = zf.read("ATTRIBUTION.txt").decode()
    assert "your own sound 'my_door.wav'" in attribution and "library clip 'upload/" not in attribution
    assert str(tmp_path) not in attribution and "make sure you have the right" in attribution
    assert "library clip '0ad_footstep_gravel_1'" in attribution          # library clips unchanged


def test_temporary_files_are_named_after_their_process_and_swept_only_when_it_is_dead(tmp_path):
    import subprocess
    import sys

    from foley_core import atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = [f".foley-tmp-{dead_pid}-abc.mix.wav", f".foley-tmp-{live.pid}-abc.mix.wav",
                 f".foley-tmp-{os.getpid()}-abc.mix.wav", ".foley-tmp-x-abc.wav", "mix.wav"]
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        (tmp_path / f"foley-work-{dead_pid}-q").mkdir()
        (tmp_path / f"foley-work-{dead_pid}-q" / "audio.wav").write_bytes(b"x")
        (tmp_path / f"foley-work-{live.pid}-q").mkdir()
        with atomic.atomic_path(tmp_path / "out.wav") as tmp:     # a write sweeps its folder first
            assert tmp.name.startswith(f".foley-tmp-{os.getpid()}-") and tmp.suffix == ".wav"
            tmp.write_bytes(b"new")
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
            ["out.wav", *names[1:]])
        assert atomic.sweep_stale_work_dirs(tmp_path) == 1
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [f"foley-work-{live.pid}-q"]
    finally:
        live.kill()
        live.wait()
