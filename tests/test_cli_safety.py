"""The CLI never destroys an input and never shows a traceback (issue 13, items 1 and 4).

`generate` and `detect` check every output against every input and each other, every input file
for being a regular file, and every option's value, before any work: a mistake is one line on
stderr, exit 2, and nothing written. A bug is one "internal error" line, exit 1, with the
traceback kept in a crash log. Runs the CLI in-process (same parser and dispatch as launch.py)
except where the old behaviour was a hang, which only a subprocess with a timeout can catch.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foley_core.cli import build_parser, run_command

REPO = Path(__file__).resolve().parents[1]
# identifiers of the code that a user of the CLI never typed
INTERNAL_NAME = re.compile(r"\b(start_s|duration_s|text_scale|video_scale|curve_scale|onsets_s)\b")


@pytest.fixture(scope="module")
def clip(media_factory):
    return media_factory("make_video", "square.mp4", seconds=2.0, fps=25, size=(160, 120),
                         audio_events_s=[0.6, 1.4])


@pytest.fixture()
def tiny(tmp_path_factory, monkeypatch):
    """A tiny random model, so that a case the old code let through finishes fast (and fails)."""
    from foley_core.backends import clear_backends
    from foley_core.model.configs import write_tiny_model_dir

    folder = tmp_path_factory.getbasetemp() / "safety_tiny_model"
    if not folder.exists():
        write_tiny_model_dir(folder, window_s=2.0)
    monkeypatch.setenv("FOLEY_EMBEDDED_DIR", str(folder))
    monkeypatch.setenv("FOLEY_STUDIO_HOME", str(tmp_path_factory.getbasetemp() / "studio_home"))
    yield folder
    clear_backends()


def cli(*argv) -> int:
    try:
        args = build_parser().parse_args([str(a) for a in argv])
    except SystemExit as exit_:
        return int(exit_.code)
    return run_command(args)


def digest(folder: Path) -> dict[str, str]:
    """Every file of `folder` (symlinks as their target's name) and its content."""
    return {p.name: (f"-> {os.readlink(p)}" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir()) if p.is_symlink() or p.is_file()}


def one_error_line(capsys, *, exit_code: int, code: int = 2) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert exit_code == code, err
    assert len(lines) == 1 and "error: " in lines[0], err
    assert "Traceback" not in err and out == ""
    return lines[0]


# ------------------------------------------------------------------------------ item 1: outputs vs inputs

def _curve_named_wav(folder: Path) -> Path:
    path = folder / "curve.wav"
    path.write_text("time_s,value\n0,0.2\n1,1\n")
    return path


def _reference_pair(folder: Path) -> Path:
    import soundfile as sf

    rng = np.random.default_rng(0)
    sf.write(folder / "knock-2.wav", (0.3 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return folder / "knock-2.wav"


CLASHES = {
    # case: (extra arguments given the work folder and the video, what the message names)
    "--out is the video": (lambda d, v: ["--out", v], r"--out writes \.wav"),
    "--mp4 is the video": (lambda d, v: ["--out", d / "o.wav", "--mp4", v], "--mp4 .* same file as --video"),
    "--mp4 is a symlink to the video": (
        lambda d, v: ["--out", d / "o.wav", "--mp4", _symlink(d / "link.mp4", v)], "same file as --video"),
    "--out and --mp4 are one file": (lambda d, v: ["--out", d / "x.mp4", "--mp4", d / "x.mp4"], "--out writes"),
    "--out names an mp4": (lambda d, v: ["--out", d / "o.mp4"], r"--out writes \.wav.*'o\.mp4'"),
    "--out is the curve": (lambda d, v: ["--loudness", _curve_named_wav(d), "--out", d / "curve.wav"],
                           "--out .* same file as --loudness"),
    "a candidate is the reference": (
        lambda d, v: ["--reference", _reference_pair(d), "--candidates", "2", "--out", d / "knock.wav"],
        "--out's candidate 2 .* same file as --reference"),
}


def _symlink(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_generate_never_overwrites_an_input(case, clip, tmp_path, tiny, capsys):
    video = tmp_path / "V.mp4"
    video.write_bytes(Path(clip).read_bytes())
    extra, message = CLASHES[case]
    args = extra(tmp_path, video)
    before = digest(tmp_path)
    code = cli("generate", "--video", video, "--caption", "a knock", "--steps", "1", *args)
    line = one_error_line(capsys, exit_code=code)
    assert re.search(message, line), line
    assert digest(tmp_path) == before                        # nothing replaced, nothing added


def test_generate_refuses_a_missing_output_folder(tmp_path, tiny, capsys):
    """The project-wide rule: a missing folder is a typo to report, never created silently."""
    code = cli("generate", "--caption", "wind", "--duration", "1", "--steps", "1",
               "--out", tmp_path / "no_such_folder" / "wind.wav")
    line = one_error_line(capsys, exit_code=code)
    assert "no_such_folder" in line and "does not exist" in line
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_a_read_only_output_folder_before_the_work(tmp_path, tiny, capsys, monkeypatch):
    import foley_core.generate as gen

    monkeypatch.setattr(gen, "generate", lambda *request, **kw: pytest.fail("generated before checking --out"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root writes into a chmod'ed folder; /proc refuses new files even to root.
        if not os.path.isdir("/proc/self"):
            pytest.skip("running as root without /proc: no folder is read-only to root")
        code = cli("generate", "--caption", "wind", "--duration", "1", "--out", "/proc/self/wind.wav")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        try:
            code = cli("generate", "--caption", "wind", "--duration", "1", "--out", folder / "wind.wav")
        finally:
            folder.chmod(0o700)
    assert "not writable" in one_error_line(capsys, exit_code=code)


def test_detect_never_overwrites_its_video_and_refuses_a_missing_folder(clip, tmp_path, capsys):
    video = tmp_path / "V.mp4"
    video.write_bytes(Path(clip).read_bytes())
    before = digest(tmp_path)
    for out, message in ((video, r"--out writes \.json"),
                         (_symlink(tmp_path / "tracks.json", video), "same file as --video"),
                         (tmp_path / "missing" / "t.json", "does not exist")):
        code = cli("detect", "--video", video, "--method", "motion", "--out", out)
        assert re.search(message, one_error_line(capsys, exit_code=code))
    (tmp_path / "tracks.json").unlink()
    assert digest(tmp_path) == before
    assert not (tmp_path / "missing").exists()


# ------------------------------------------------------------------------------ item 4: one line, exit 2

@pytest.mark.parametrize("option, value", [
    ("--steps", "0"), ("--seed", str(2**70)), ("--text-scale", "nan"), ("--video-scale", "inf"),
    ("--start", "-1"), ("--duration", "-2"), ("--candidates", "1000"), ("--curve-scale", "nan"),
])
def test_generate_numbers_are_refused_in_the_options_own_names(option, value, clip, tmp_path, tiny, capsys):
    code = cli("generate", "--video", clip, "--caption", "x", option, value, "--out", tmp_path / "o.wav")
    line = one_error_line(capsys, exit_code=code)
    assert option in line and not INTERNAL_NAME.search(line), line
    assert list(tmp_path.iterdir()) == []


def test_library_messages_speak_plain_words(clip, tiny):
    """What generate() and the video reader say reaches CLI and studio users alike."""
    from foley_core import media
    from foley_core.errors import FoleyError
    from foley_core.generate import generate

    for kwargs in ({"duration_s": float("nan")}, {"duration_s": 1.0, "start_s": -1.0},
                   {"duration_s": 1.0, "text_scale": -1.0}, {"duration_s": 1.0, "video_scale": 99.0}):
        with pytest.raises(FoleyError) as err:
            generate(caption="x", **kwargs)
        assert not INTERNAL_NAME.search(str(err.value)), str(err.value)
    for kwargs in ({"start_s": 9.0}, {"start_s": 0.0, "duration_s": -1.0}, {"start_s": float("nan")}):
        with pytest.raises(FoleyError) as err:
            media.read_soundtrack(clip, **kwargs)
        assert not INTERNAL_NAME.search(str(err.value)), str(err.value)


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:3"])
def test_generate_unknown_device(device, tmp_path, tiny, capsys):
    code = cli("generate", "--caption", "wind", "--duration", "1", "--device", device, "--out", tmp_path / "o.wav")
    assert f"unknown device '{device}'" in one_error_line(capsys, exit_code=code)
    assert list(tmp_path.iterdir()) == []


def test_generate_mask_decompression_bomb(clip, tmp_path, tiny, capsys):
    import media_fixtures

    bomb = media_fixtures.make_png_bomb(tmp_path / "mask.png")
    code = cli("generate", "--video", clip, "--caption", "x", "--mask", bomb, "--out", tmp_path / "o.wav")
    assert "mask image" in one_error_line(capsys, exit_code=code)
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]


def test_mask_reader_refuses_oversized_and_broken_images(tmp_path):
    """One reader for generate and projects: the size comes from the header, before decoding."""
    import media_fixtures
    from PIL import Image

    from foley_core.errors import MaskError
    from foley_core.images import read_mask_image

    # 1e8 pixels: under PIL's error limit (only a warning there), still no video frame's size
    for bomb in (media_fixtures.make_png_bomb(tmp_path / "a.png"),
                 media_fixtures.make_png_bomb(tmp_path / "b.png", width=10000, height=10000),
                 media_fixtures.make_png_bomb(tmp_path / "c.png", width=4000, height=3000)):
        with pytest.raises(MaskError, match="cannot read the mask image|larger than any video"):
            read_mask_image(bomb)
    with pytest.raises(MaskError, match="the mask image is 4000x3000 pixels but the video is 160x120"):
        read_mask_image(tmp_path / "c.png", size_wh=(160, 120))
    truncated = tmp_path / "t.png"
    Image.fromarray(np.full((120, 160), 255, np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(MaskError, match="cannot read the mask image 't.png'"):
        read_mask_image(truncated, size_wh=(160, 120))
    good = tmp_path / "g.png"
    Image.fromarray(np.full((120, 160), 255, np.uint8)).save(good)
    assert read_mask_image(good, size_wh=(160, 120)).shape == (120, 160)


def test_project_mask_bomb_is_a_project_error(tmp_path):
    import media_fixtures

    from foley_core.errors import ProjectError
    from foley_core.project import GenerationRequest, Project, Region, Stem, load_project, save_project

    p = Project(name="bomb")
    p.add_stem(Stem(np.zeros(1600, np.float32), 16000, name="knock", settings=GenerationRequest(
        caption="a knock", region=Region(kind="image", image=np.ones((12, 16), np.float32)))))
    save_project(p, tmp_path / "proj")
    media_fixtures.make_png_bomb(next((tmp_path / "proj" / "stems").glob("*_mask.png")))
    with pytest.raises(ProjectError, match="stem 'knock': its mask image .* damaged"):
        load_project(tmp_path / "proj")


@pytest.mark.parametrize("name, content, message", [
    ("passwd", "root:x:0:0:root:/root:/bin/bash\n", "not a YOLO-World checkpoint"),
    ("fake.pt", "not a checkpoint\n", "Cannot load YOLO-World weights"),
])
def test_detect_weights_that_are_not_a_checkpoint(name, content, message, clip, tmp_path, capsys):
    weights = tmp_path / name
    weights.write_text(content)
    code = cli("detect", "--video", clip, "--method", "yolo-world", "--vocab", "dog", "--weights", weights,
               "--out", tmp_path / "t.json")
    assert message in one_error_line(capsys, exit_code=code)
    assert not (tmp_path / "t.json").exists()


def test_a_fifo_as_an_input_is_refused_not_read(clip, tmp_path, tiny, capsys):
    """The old CLI blocked forever reading a FIFO given as --loudness or --tracks; a subprocess
    with a timeout is the only way to see a hang fail."""
    fifo = tmp_path / "named_pipe"
    os.mkfifo(fifo)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for option in ("--loudness", "--tracks"):
        command = ["generate", "--video", clip, "--caption", "x", option, fifo, "--out", tmp_path / "o.wav"]
        if option == "--tracks":
            command += ["--track", "t0"]
        try:
            proc = subprocess.run([sys.executable, str(REPO / "launch.py"), *map(str, command)], cwd=REPO,
                                  env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"generate hung reading a FIFO given as {option}")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"error: {option}: ") and "not a regular file" in lines[0]
    code = cli("detect", "--video", fifo, "--method", "motion", "--out", tmp_path / "t.json")
    assert "not a regular file" in one_error_line(capsys, exit_code=code)
    assert [p.name for p in tmp_path.iterdir()] == ["named_pipe"]


def test_a_folder_as_an_input_is_refused(tmp_path, tiny, capsys):
    code = cli("generate", "--caption", "x", "--duration", "1", "--loudness", tmp_path, "--out", tmp_path / "o.wav")
    assert "--loudness" in one_error_line(capsys, exit_code=code)


@pytest.mark.parametrize("argv, message", [
    (["generate", "--caption", "x"], "required: --out"),
    (["generate", "--caption", "x", "--steps", "many", "--out", "o.wav"], "--steps: invalid int value"),
    (["detect", "--video", "v.mp4", "--out", "t.json", "--method", "magic"], "invalid choice: 'magic'"),
    (["render"], "required"),
    (["no-such-command"], "invalid choice"),
])
def test_usage_errors_are_one_line_with_a_help_hint(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    line = one_error_line(capsys, exit_code=exit_.value.code)
    assert message in line and "--help" in line, line


# ------------------------------------------------------------------------------ bugs: exit 1, traceback kept

def _crash(monkeypatch):
    import foley_core.cli.generate as gen_cli

    def run(args):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(gen_cli, "run", run)


def test_an_internal_error_is_one_line_and_the_traceback_is_kept(tmp_path, capsys, monkeypatch):
    _crash(monkeypatch)
    monkeypatch.setenv("FOLEY_STUDIO_HOME", str(tmp_path))
    monkeypatch.delenv("FOLEY_DEBUG", raising=False)
    code = cli("generate", "--caption", "x", "--out", "o.wav")
    line = one_error_line(capsys, exit_code=code, code=1)
    assert line.startswith("error: internal error") and "ValueError: boom second line" in line
    assert "--debug" in line
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "ValueError: boom" in text


@pytest.mark.parametrize("how", ["--debug after the command", "--debug before it", "FOLEY_DEBUG=1"])
def test_debug_prints_the_traceback(how, tmp_path, capsys, monkeypatch):
    _crash(monkeypatch)
    monkeypatch.setenv("FOLEY_STUDIO_HOME", str(tmp_path))
    monkeypatch.delenv("FOLEY_DEBUG", raising=False)
    argv = ["generate", "--caption", "x", "--out", "o.wav"]
    if how == "FOLEY_DEBUG=1":
        monkeypatch.setenv("FOLEY_DEBUG", "1")
    elif how == "--debug before it":
        argv = ["--debug", *argv]
    else:
        argv = [*argv, "--debug"]
    assert cli(*argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and 'raise ValueError("boom' in err
    assert err.strip().splitlines()[-1].startswith("error: internal error")
