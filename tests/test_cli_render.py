"""`python launch.py render`: headless re-render of a saved project (foley_core.cli.render)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_core import constants, mixing
from foley_core.project import (GenerationRequest, MixSettings, Project, Reference, Stem, load_project,
                                save_project)

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
                    settings=GenerationRequest(caption="ball bounce", reference=Reference(
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


def test_render_refuses_mix_settings_beyond_the_studio_limits(tmp_path):
    # the studio's sliders and render obey one set of limits (constants.MIX_LIMITS): a gain
    # edited into project.json beyond them is refused before anything is written
    project_dir = saved_project(tmp_path)
    label, _, highest = constants.MIX_LIMITS["gain_db"]
    data = json.loads((project_dir / "project.json").read_text())
    data["stems"][0]["mix"]["gain_db"] = highest + 6.0
    (project_dir / "project.json").write_text(json.dumps(data))
    proc = launch(project_dir, "--out", tmp_path / "mix.wav")
    assert_one_error_line(proc, label, f"{highest:g}")
    assert not (tmp_path / "mix.wav").exists()


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


# --- outputs never overwrite the project ------------------------------------------------------


def _stem_file(project_dir: Path) -> Path:
    return project_dir / json.loads((project_dir / "project.json").read_text())["stems"][0]["audio"]["file"]


def test_an_output_onto_a_file_of_the_project_is_refused_before_any_work(tmp_path, capsys):
    video = tmp_path / "film.mp4"
    video.write_bytes(b"the user's only copy of the film")      # never opened: refused before
    project_dir = saved_project(tmp_path, video)
    stem = _stem_file(project_dir)
    before = {p: p.read_bytes() for p in project_dir.rglob("*") if p.is_file()}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hard.wav").hardlink_to(stem)
    (tmp_path / "out" / "link.mp4").symlink_to(video)
    cases = [
        (["--out", stem], ["--out", "same file as a file of the project's stem 'ball bounce'"]),
        (["--out", tmp_path / "out" / "hard.wav"], ["--out", "ball bounce"]),              # a hard link
        (["--mp4", video], ["--mp4", "same file as the project's video"]),
        (["--out", tmp_path / "mix.wav", "--mp4", tmp_path / "out" / "link.mp4"], ["--mp4", "project's video"]),
    ]
    for args, needles in cases:
        code, out, err = in_process(capsys, project_dir, *args)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert all(n in err for n in needles), err
    # two outputs that are one file (through a link) are refused too
    (tmp_path / "out" / "stems.zip").write_bytes(b"older archive")
    (tmp_path / "out" / "also.mp4").symlink_to(tmp_path / "out" / "stems.zip")
    code, out, err = in_process(capsys, project_dir, "--stems", tmp_path / "out" / "stems.zip",
                                "--mp4", tmp_path / "out" / "also.mp4")
    assert code == 2 and "--stems and --mp4 are the same file" in err
    assert {p: p.read_bytes() for p in project_dir.rglob("*") if p.is_file()} == before
    assert video.read_bytes() == b"the user's only copy of the film"
    assert not (tmp_path / "mix.wav").exists() and not (tmp_path / "m.wav").exists()
    code, out, err = in_process(capsys, project_dir, "--out", tmp_path / "mix.wav")   # the project still renders
    assert code == 0, err


def test_a_project_with_out_of_range_settings_is_one_line_not_a_traceback(tmp_path):
    project_dir = saved_project(tmp_path)
    doc = json.loads((project_dir / "project.json").read_text())
    doc["stems"][0]["mix"]["gain_db"] = 1e308
    (project_dir / "project.json").write_text(json.dumps(doc))
    proc = launch(project_dir, "--out", tmp_path / "mix.wav")
    assert_one_error_line(proc, "stem 'ball bounce'", "gain (dB) must be between -60 and 24")
    assert not (tmp_path / "mix.wav").exists()


# --- a killed render leaves nothing behind ------------------------------------------------------


def _long_project(tmp_path: Path, seconds: float = 8.0) -> Path:
    """A project whose MP4 takes ffmpeg seconds (an MJPEG video is re-encoded to H.264) while
    the Python part stays short (two noise stems): a test that kills the render during ffmpeg
    pays for that part only."""
    from foley_core import media

    video = tmp_path / "long.avi"
    subprocess.run([media.ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=s=640x480:r=25:d={seconds}", "-c:v", "mjpeg", "-q:v", "8", str(video)],
                   check=True, timeout=60)
    rng = np.random.default_rng(0)
    p = Project(name="long", video_path=video, video_duration_s=seconds)
    for k in range(2):
        p.add_stem(Stem((0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR,
                        settings=GenerationRequest(caption=f"noise {k}")))
    save_project(p, tmp_path / "long")
    return tmp_path / "long"


def _children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` and their command names (from /proc)."""
    kids = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if int(rest[1]) == pid and rest[0] != "Z":
            kids[int(stat.parent.name)] = name
    return kids


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _render_until_ffmpeg_runs(project_dir: Path, out: Path, env: dict) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(REPO / "launch.py"), "render", str(project_dir),
                             "--out", str(out / "mix.wav"), "--stems", str(out / "stems.zip"),
                             "--mp4", str(out / "film.mp4")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ffmpeg = [pid for pid, name in _children(proc.pid).items() if "ffmpeg" in name]
        if ffmpeg:
            return proc, ffmpeg[0]
        assert proc.poll() is None, f"the render ended before ffmpeg started: {proc.communicate()}"
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("ffmpeg never started")


def _gone(pid: int, timeout_s: float = 1.0) -> bool:
    # ffmpeg still has seconds of work when the render is killed: alive after 1 s is an orphan
    deadline = time.monotonic() + timeout_s
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _running(pid)


def _leftovers(out: Path, tmp: Path) -> list[str]:
    return sorted([p.name for p in out.iterdir()] + [p.name for p in tmp.iterdir()])


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


@needs_proc
def test_sigterm_during_a_render_removes_every_temporary_file_and_stops_ffmpeg(tmp_path):
    project_dir = _long_project(tmp_path)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    proc, ffmpeg = _render_until_ffmpeg_runs(project_dir, out, {**os.environ, "TMPDIR": str(tmp)})
    assert _leftovers(out, tmp)                     # caught mid-write: temporary files exist
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert _gone(ffmpeg), "ffmpeg outlived the render"
    assert _leftovers(out, tmp) == []
    assert proc.returncode == 143 and "Traceback" not in err, err


@needs_proc
def test_after_sigkill_ffmpeg_dies_too_and_the_next_render_sweeps_the_leftovers(tmp_path, capsys, monkeypatch):
    project_dir = _long_project(tmp_path)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc, ffmpeg = _render_until_ffmpeg_runs(project_dir, out, env)
    (out / ".foley-tmp-notapid-keep.wav").write_bytes(b"")        # not a temp file of ours: kept
    proc.kill()
    proc.communicate(timeout=60)
    assert _gone(ffmpeg), "ffmpeg outlived the killed render"
    left = _leftovers(out, tmp)                     # a SIGKILL cannot be cleaned up after at once
    assert any(n.startswith(f".foley-tmp-{proc.pid}-") for n in left), left
    assert any(n.startswith(f"foley-work-{proc.pid}-") for n in left), left

    # the next render (of any project) into the same folder removes what the dead one left
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp))          # what TMPDIR was for the killed one
    code, _, err = in_process(capsys, saved_project(tmp_path), "--out", out / "mix.wav")
    assert code == 0, err
    assert _leftovers(out, tmp) == [".foley-tmp-notapid-keep.wav", "mix.wav"]


def test_the_summary_names_stems_that_lie_outside_the_video(tmp_path, capsys):
    video = tmp_path / "film.mp4"
    video.write_bytes(b"not opened for a WAV")
    project = load_project(saved_project(tmp_path, video))
    project.stems[0].mix = MixSettings(offset_s=5.0)            # the video lasts 1.6 s
    project.add_stem(Stem(np.full(1600, 0.1, np.float32), SR, name="early", mix=MixSettings(offset_s=-0.5)))
    project.add_stem(Stem(np.full(1600, 0.1, np.float32), SR, name="heard", mix=MixSettings(offset_s=1.0)))
    save_project(project, tmp_path / "proj")
    code, out, err = in_process(capsys, tmp_path / "proj", "--out", tmp_path / "mix.wav")
    assert code == 0, err
    assert json.loads(out)["stems_outside_timeline"] == ["ball bounce", "early"]


def test_a_mask_bomb_inside_a_project_is_one_line(tmp_path, capsys):
    pytest.importorskip("foley_core.images", reason="the safe mask reader (issue 13, the CLI's branch)")
    import media_fixtures

    from foley_core.project import Region

    p = Project(name="bomb")
    p.add_stem(Stem(np.full(1600, 0.1, np.float32), SR, name="knock", settings=GenerationRequest(
        caption="a knock", region=Region(kind="image", image=np.ones((12, 16), np.float32)))))
    save_project(p, tmp_path / "proj")
    media_fixtures.make_png_bomb(next((tmp_path / "proj" / "stems").glob("*_mask.png")))
    code, out, err = in_process(capsys, tmp_path / "proj", "--out", tmp_path / "mix.wav")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "stem 'knock'" in err and "mask image" in err
    assert not (tmp_path / "mix.wav").exists()
