"""`python launch.py render`: headless re-render of a saved project (foley_core.cli.render)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_core import mixing
from foley_core.project import GenerationSettings, MixSettings, Project, Reference, Stem, save_project

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "videos" / "mecavideo_balle1.mp4"
SR = 16_000


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "launch.py"), "render", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    sys.path.insert(0, str(REPO))
    try:
        import launch as launch_module
    finally:
        sys.path.remove(str(REPO))
    code = launch_module.main(["render", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def saved_project(tmp_path: Path, video: Path | None = None) -> Path:
    t = np.arange(int(0.5 * SR)) / SR
    p = Project(name="cli", video_path=video, video_duration_s=1.6 if video else None)
    p.add_stem(Stem((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR,
                    settings=GenerationSettings(caption="ball bounce", reference=Reference(
                        "clip1", "a.flac", "bounce", "CC0-1.0", "Someone"))),
               )
    p.stems[0].mix = MixSettings(offset_s=0.4, gain_db=-3.0)
    directory = tmp_path / "proj"
    save_project(p, directory)
    return directory


def assert_one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]
    assert proc.stdout == ""


@pytest.mark.skipif(not VIDEO.is_file(), reason="shared videos not present")
def test_render_writes_all_outputs_and_a_json_summary(tmp_path):
    video = tmp_path / VIDEO.name
    shutil.copyfile(VIDEO, video)
    project_dir = saved_project(tmp_path, video)
    out = tmp_path / "out"
    out.mkdir()
    proc = launch(project_dir, "--out", out / "mix.wav", "--stems", out / "stems.zip", "--mp4", out / "film.mp4",
                  "--lufs", "-16", "--ceiling", "-2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["outputs"] == {"mix": str(out / "mix.wav"), "stems": str(out / "stems.zip"),
                                  "mp4": str(out / "film.mp4")}
    assert summary["lufs"] == pytest.approx(-16.0, abs=0.5) and summary["true_peak_dbtp"] <= -2.0
    assert summary["duration_s"] == pytest.approx(1.6) and summary["target_lufs"] == -16.0
    assert sorted(p.name for p in out.iterdir()) == ["film.mp4", "mix.wav", "stems.zip"]
    audio, sr = sf.read(str(out / "mix.wav"), dtype="float64")
    assert sr == 48_000 and audio.shape == (76_800, 2) and sf.info(str(out / "mix.wav")).subtype == "PCM_24"
    assert mixing.true_peak_dbtp(audio, sr) <= -2.0
    with zipfile.ZipFile(out / "stems.zip") as zf:
        assert zf.namelist() == ["mix.wav", "01_ball_bounce.wav", "README.txt", "ATTRIBUTION.txt"]
    assert (out / "film.mp4").stat().st_size > 1000


def test_render_fails_cleanly_on_a_bad_project(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "project.json").write_text("{not json")
    (tmp_path / "mix.wav").write_bytes(b"previous good render")
    proc = launch(tmp_path / "proj", "--out", tmp_path / "mix.wav", "--stems", tmp_path / "stems.zip")
    assert_one_error_line(proc, "damaged", "not valid JSON")
    assert (tmp_path / "mix.wav").read_bytes() == b"previous good render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mix.wav", "proj"]


def test_all_or_nothing_when_a_late_output_fails(tmp_path):
    # the video is damaged: the mix and stems render fine, then the MP4 fails
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    project_dir = saved_project(tmp_path, video)
    out = tmp_path / "out"
    out.mkdir()
    proc = launch(project_dir, "--out", out / "mix.wav", "--stems", out / "stems.zip", "--mp4", out / "film.mp4")
    assert_one_error_line(proc, "broken.mp4")
    assert "cannot be opened" in proc.stderr or "damaged" in proc.stderr
    assert list(out.iterdir()) == []                    # no output, no temporary file


def test_unwritable_output_leaves_nothing(tmp_path):
    project_dir = saved_project(tmp_path)
    (tmp_path / "not_a_folder").write_text("x")
    proc = launch(project_dir, "--out", tmp_path / "mix.wav", "--stems", tmp_path / "not_a_folder" / "s.zip")
    assert_one_error_line(proc, "not_a_folder", "is not a folder")
    assert not (tmp_path / "mix.wav").exists()


def test_lufs_none_and_project_defaults(tmp_path, capsys):
    project_dir = saved_project(tmp_path)
    code, out, err = in_process(capsys, project_dir, "--out", tmp_path / "raw.wav", "--lufs", "none")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["target_lufs"] is None and summary["outputs"] == {"mix": str(tmp_path / "raw.wav")}
    assert summary["duration_s"] == pytest.approx(0.9)            # no video: until the stem ends
    code, out, err = in_process(capsys, project_dir, "--out", tmp_path / "default.wav")
    assert code == 0 and json.loads(out)["target_lufs"] == -23.0 and json.loads(out)["lufs"] == pytest.approx(-23, abs=0.5)


@pytest.mark.parametrize("args, needle", [
    ([], "nothing to render"),
    (["--mp4", "{tmp}/film.mp4", "--out", "{tmp}/mix.wav"], "has no video"),
    (["--out", "{tmp}/mix.mp3"], "ending in .wav"),
    (["--out", "{tmp}/mix.wav", "--stems", "{tmp}/mix.wav"], "ending in .zip"),
    (["--out", "{tmp}/mix.wav", "--ceiling", "3"], "ceiling must be between"),
    (["--out", "{tmp}/nowhere/mix.wav"], "does not exist"),
])
def test_usage_errors_exit_2_with_one_line_and_no_files(args, needle, tmp_path, capsys):
    project_dir = saved_project(tmp_path)
    code, out, err = in_process(capsys, project_dir, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_bad_lufs_value_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        in_process(capsys, saved_project(tmp_path), "--out", tmp_path / "m.wav", "--lufs", "loud")
    assert exit_info.value.code == 2
    assert "LUFS" in capsys.readouterr().err
