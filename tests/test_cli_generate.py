"""`launch.py generate` through a subprocess: JSON on stdout, WAV/MP4 outputs, exit 2 on bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_core.model.configs import write_tiny_model_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    # the real MiniLM caption encoder: its loading must not print anything (stderr is for errors)
    folder = write_tiny_model_dir(tmp_path_factory.mktemp("tiny_cli_model"), window_s=2.0, text_encoder="minilm")
    return {**os.environ, "FOLEY_EMBEDDED_DIR": str(folder), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def clip(media_factory):
    return media_factory("make_video", "square.mp4", seconds=2.0, fps=25, size=(160, 120),
                         audio_events_s=[0.6, 1.4])


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "launch.py"), "generate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_generate_candidates_with_curve_box_and_mp4(env, clip, tmp_path):
    csv = tmp_path / "curve.csv"
    csv.write_text("time_s,value\n0,0.1\n0.6,1\n1.0,0.2\n1.4,1\n2.0,0.1\n")
    out = tmp_path / "stem.wav"
    proc = run_cli(["--video", str(clip), "--caption", "a square knocks", "--negative", "music",
                    "--box", "0,0,160,100", "--loudness", str(csv), "--start", "0", "--duration", "2",
                    "--seed", "7", "--candidates", "2", "--steps", "2", "--curve-scale", "2", "--out", str(out),
                    "--mp4", str(tmp_path / "stem.mp4"), "--from-scratch"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)                   # exactly one JSON object
    assert report["outputs"] == [str(tmp_path / "stem-1.wav"), str(tmp_path / "stem-2.wav")]
    assert report["seed"] == 7 and report["seeds"] == [7, 8]
    assert report["sr"] == 16000 and report["steps"] == 2 and report["duration_s"] == 2.0
    assert report["model"] == "embedded (untrained random weights)"
    assert any("RANDOMLY INITIALISED" in w for w in report["warnings"])
    assert len(report["curve_r_before"]) == 2 and len(report["curve_r_after"]) == 2
    assert report["conform"] == 1.0 and report["curve_scale"] == 2.0
    # onsets from the video's contacts (how well they are found: test_onsets, test_vision)
    assert report["onsets_source"] == "video"
    assert report["onsets_s"] and all(0 <= t < 2.0 for t in report["onsets_s"])
    assert {"denoise", "vocoder", "conform", "total"} <= set(report["timings_s"])
    for path in report["outputs"]:
        audio, sr = sf.read(path)
        assert sr == 16000 and audio.ndim == 1 and len(audio) == 32000
    assert not out.exists()
    assert (tmp_path / "stem.mp4").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.csv", "stem-1.wav", "stem-2.wav", "stem.mp4"]


def test_text_only_needs_duration_then_works(env, tmp_path):
    # the model-only path (its rate is the model's); the default path's rate: test_default_take_rate
    out = tmp_path / "wind.wav"
    proc = run_cli(["--caption", "wind", "--from-scratch", "--out", str(out)], env)
    assert proc.returncode == 2 and "--duration" in proc.stderr and not out.exists()
    proc = run_cli(["--caption", "wind", "--duration", "1.5", "--steps", "1", "--from-scratch", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["outputs"] == [str(out)] and "curve_r_before" not in report
    assert report["curve_scale"] is None                     # no curve, nothing to guide by
    assert report["onsets_s"] is None and report["onsets_source"] is None
    assert sf.info(str(out)).frames == 24000
    proc = run_cli(["--caption", "knocks", "--duration", "1.5", "--steps", "1", "--onsets", "1.0, 0.25",
                    "--from-scratch", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["onsets_s"] == [0.25, 1.0] and report["onsets_source"] == "given"


def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text("time_s,value\n0,0.5\n1,loud\n")
    return path


def small_mask(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "mask.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("case", ["missing video", "bad csv", "mask size", "empty caption", "range",
                                  "bad box", "track without tracks", "curve scale", "bad onsets",
                                  "onset outside", "onsets twice"])
def test_bad_input_exit_2_one_line_no_file(env, clip, tmp_path, case):
    out = tmp_path / "out.wav"
    args = {
        "missing video": ["--video", str(tmp_path / "nope.mp4"), "--caption", "x"],
        "bad csv": ["--video", str(clip), "--caption", "x", "--loudness", str(bad_csv(tmp_path))],
        "mask size": ["--video", str(clip), "--caption", "x", "--mask", str(small_mask(tmp_path))],
        "empty caption": ["--video", str(clip), "--caption", "   "],
        "range": ["--video", str(clip), "--caption", "x", "--start", "1.5", "--duration", "3"],
        "bad box": ["--video", str(clip), "--caption", "x", "--box", "1,2,3"],
        "track without tracks": ["--video", str(clip), "--caption", "x", "--track", "t1"],
        "curve scale": ["--video", str(clip), "--caption", "x", "--curve-scale", "-1"],
        "bad onsets": ["--video", str(clip), "--caption", "x", "--onsets", "0.5,soon"],
        "onset outside": ["--video", str(clip), "--caption", "x", "--onsets", "0.5,2.5"],
        "onsets twice": ["--video", str(clip), "--caption", "x", "--onsets", "0.5", "--no-video-onsets"],
    }[case]
    proc = run_cli([*args, "--out", str(out), "--mp4", str(tmp_path / "out.mp4")], env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not out.exists() and not (tmp_path / "out.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".wav", ".mp4") or p.name.startswith(".out")]


# ------------------------------------------------------------------------------ --reference (audio-to-audio)

def reference_wav(tmp_path: Path, name: str = "knock.wav", *, sr: int = 44100, seconds: float = 0.8,
                  fill=None, whole: bool = False, subtype: str = "PCM_16") -> Path:
    rng = np.random.default_rng(0)
    n = int(sr * seconds)
    audio = (0.4 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.1 * sr))).astype(np.float32)
    if fill is not None:
        audio[: n if whole else n // 2] = fill
    path = tmp_path / name
    sf.write(path, audio, sr, subtype=subtype)
    return path


def test_reference_library_clip_with_default_strength(env, tmp_path):
    from foley_core.backends import reference_steps
    from foley_core.generate import DEFAULT_REFERENCE_STRENGTH

    out = tmp_path / "steps.wav"
    proc = run_cli(["--caption", "footsteps on gravel", "--duration", "1.5", "--steps", "4", "--reference",
                    "0ad_footsteps_footstep_gravel_walking", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["strength"] == DEFAULT_REFERENCE_STRENGTH
    assert report["steps"] == 4 and report["steps_run"] == reference_steps(4, DEFAULT_REFERENCE_STRENGTH)[1]
    ref = report["reference"]
    assert ref["id"] == ref["fields"]["clip_id"] == "0ad_footsteps_footstep_gravel_walking"
    assert ref["library_clip"] is True and "Wildfire Games" in ref["attribution"]
    assert report["instructions"]["given"] == ["text", "reference"]
    assert sf.info(str(out)).frames == 24000


@pytest.mark.parametrize("case", ["missing", "not audio", "silent", "nan", "strength 1.5",
                                  "strength from scratch", "unknown id"])
def test_bad_reference_exit_2_one_line_no_file(env, tmp_path, case):
    out = tmp_path / "out.wav"
    ref = {
        "missing": lambda: tmp_path / "nope.wav",
        "not audio": lambda: make_text(tmp_path / "notes.wav"),
        "silent": lambda: reference_wav(tmp_path, "silent.wav", fill=0.0, seconds=0.5, whole=True),
        "nan": lambda: reference_wav(tmp_path, "nan.wav", fill=np.nan, subtype="FLOAT"),
        "strength 1.5": lambda: reference_wav(tmp_path),
        "strength from scratch": lambda: None,
        "unknown id": lambda: "no_such_library_clip",
    }[case]()
    args = ["--caption", "x", "--duration", "1", "--out", str(out)]
    if ref is not None:
        args += ["--reference", str(ref)]
    if case.startswith("strength"):
        args += ["--strength", "1.5" if case == "strength 1.5" else "0.5"]
    if case == "strength from scratch":      # a strength needs a sound to start from
        args += ["--from-scratch"]
    proc = run_cli(args, env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out") or p.name == "out.wav"]


def make_text(path: Path) -> Path:
    path.write_text("this is not audio\n")
    return path


def test_default_take_reports_its_library_clips_and_from_scratch_does_not(env, tmp_path):
    out = tmp_path / "take.wav"
    proc = run_cli(["--caption", "footsteps on gravel", "--duration", "1", "--steps", "2",
                    "--candidates", "2", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["source"] == "library" and len(report["references"]) == 2
    assert len({r["id"] for r in report["references"]}) == 2
    assert all(r["licence"] and r["attribution"] for r in report["references"])
    proc = run_cli(["--caption", "footsteps on gravel", "--duration", "1", "--steps", "2",
                    "--from-scratch", "--out", str(tmp_path / "scratch.wav")], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["source"] == "model" and "references" not in report and "reference" not in report


def test_library_folder_adds_the_users_clips_to_the_default_take(env, tmp_path):
    """A caption only the user's clip matches picks that clip; its attribution is in the report."""
    folder = tmp_path / "my sounds"
    (folder / "hits").mkdir(parents=True)
    n = 44100
    rng = np.random.default_rng(3)
    sf.write(folder / "hits" / "Zorblat_Whirr_01.wav",
             (0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / 8000)).astype(np.float32), 44100)
    sf.write(folder / "paper_crumple.flac", (0.2 * rng.standard_normal(n)).astype(np.float32), 44100)
    (folder / "hits" / "damaged.wav").write_bytes(b"RIFF....")          # skipped, not fatal
    out = tmp_path / "take.wav"
    args = ["--caption", "a zorblat whirr", "--duration", "1", "--steps", "1", "--out", str(out)]
    proc = run_cli([*args, "--library-folder", str(folder)], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    ref = report["references"][0]
    assert report["source"] == "library" and ref["id"] == "user/my sounds/hits/Zorblat_Whirr_01.wav"
    assert ref["library_clip"] is False and "your sound" in ref["attribution"]
    assert ref["source_sr"] == 44100 and report["sr"] == 44100
    assert any("damaged.wav" in w for w in report["warnings"])
    # without the folder the same caption takes a bundled clip
    proc = run_cli([*args[:-1], str(tmp_path / "bundled.wav")], env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["references"][0]["library_clip"] is True
    # a clip of the folder by its id, as `library search` lists it
    proc = run_cli([*args[:-1], str(tmp_path / "by_id.wav"), "--library-folder", str(folder),
                    "--reference", "user/my sounds/paper_crumple.flac", "--strength", "0"], env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reference"]["id"] == "user/my sounds/paper_crumple.flac"
    # without the folder that id is named with what to add, in the command's words
    proc = run_cli([*args[:-1], str(tmp_path / "no_folder.wav"), "--reference", "user/my sounds/paper_crumple.flac"],
                   env)
    assert proc.returncode == 2 and proc.stdout == "" and not (tmp_path / "no_folder.wav").exists()
    assert proc.stderr.strip() == ("error: --reference 'user/my sounds/paper_crumple.flac' is a clip of your own "
                                   "sound folders; add --library-folder with the folder it is in"), proc.stderr


@pytest.mark.parametrize("case, expected", [("missing", "Sound folder not found"), ("file", "is a file, not a folder"),
                                            ("unreadable", "None of the 1 audio files"),
                                            ("scratch", "--from-scratch uses none")])
def test_bad_library_folder_exit_2_one_line_no_file(env, tmp_path, case, expected):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.wav").write_bytes(b"not audio")
    folder = {"missing": tmp_path / "nowhere", "file": bad / "a.wav", "unreadable": bad, "scratch": bad}[case]
    out = tmp_path / "out.wav"
    proc = run_cli(["--caption", "a door", "--duration", "1", "--steps", "1", "--out", str(out),
                    "--library-folder", str(folder), *(["--from-scratch"] if case == "scratch" else [])], env)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("caption, above_cap", [("exotic birds", True), ("a tennis ball bounces", False)])
def test_default_take_rate_is_its_references_rate_capped_at_48k(env, tmp_path, caption, above_cap):
    """The default path keeps the retrieved clips' bandwidth: the take runs at the highest rate of
    its references (never below the model's 16 kHz), capped at 48 kHz."""
    from foley_core.fullband import MAX_OUTPUT_SR

    out = tmp_path / "take.wav"
    proc = run_cli(["--caption", caption, "--duration", "1", "--steps", "1", "--candidates", "3",
                    "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["source"] == "library"
    source_srs = [r["source_sr"] for r in report["references"]]
    # the captions are chosen so that the rule is not the model's rate: a clip above 16 kHz
    # ("a tennis ball bounces": 44.1 kHz) and one above the cap ("exotic birds": 96 kHz)
    assert max(source_srs) > 16000 and (max(source_srs) > MAX_OUTPUT_SR) == above_cap
    expected_sr = min(MAX_OUTPUT_SR, max(source_srs))
    assert report["sr"] == expected_sr
    for path in report["outputs"]:
        info = sf.info(path)
        assert info.samplerate == expected_sr and info.frames == expected_sr


def test_sketch_gives_curve_and_onsets(env, tmp_path):
    sr = 16000
    n = sr * 2
    voice = np.zeros(n, np.float32)
    rng = np.random.default_rng(0)
    for t in (0.3, 0.9, 1.5):                  # three "tk" bursts
        i = int(t * sr)
        voice[i:i + 1600] += (rng.standard_normal(1600) * np.exp(-np.arange(1600) / 300)).astype(np.float32) * 0.5
    sketch = tmp_path / "voice.wav"
    sf.write(sketch, voice, sr)
    proc = run_cli(["--caption", "a knock", "--duration", "2", "--steps", "2", "--sketch", str(sketch),
                    "--out", str(tmp_path / "o.wav")], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["onsets_s"] == pytest.approx([0.3, 0.9, 1.5], abs=0.03)
    assert report["sketch"]["onsets_s"] == report["onsets_s"]
    assert "curve" in report["instructions"]["given"] and report["curve_r_after"] is not None
    proc = run_cli(["--caption", "a knock", "--duration", "2", "--sketch", str(sketch), "--onsets", "0.5",
                    "--out", str(tmp_path / "p.wav")], env)
    assert proc.returncode == 2 and "--sketch gives the curve and the onsets" in proc.stderr


def test_point_follows_the_clicked_object(env, tmp_path, media_factory):
    from foley_lab.synthetic import bouncing_square, write_scene_mp4

    scene = bouncing_square(duration_s=2.0, fps=25.0, seed=3)
    video = write_scene_mp4(scene, tmp_path / "bounce.mp4", fps=25.0)
    k = len(scene.frames) // 2
    x0, y0, x1, y1 = scene.boxes[k]
    proc = run_cli(["--caption", "a ball bounces", "--video", str(video), "--steps", "1",
                    "--point", f"{(x0 + x1) / 2:.1f},{(y0 + y1) / 2:.1f}@{scene.times_s[k]:.3f}",
                    "--out", str(tmp_path / "o.wav")], env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["onsets_source"] == "video"
    hits = np.asarray(scene.contacts_s)
    assert len(report["onsets_s"]) == len(hits)
    assert np.max(np.abs(np.asarray(report["onsets_s"]) - hits)) < 0.05
    # the report says how the object was followed: without YOLO-World weights, the tracker alone
    from foley_core.vision.detect_yolo import WEIGHTS_ENV, configured_weights

    if not env.get(WEIGHTS_ENV) and configured_weights() is None:
        assert report["follow"] == {"detector": None, "label": "picked object"}
    bad = run_cli(["--caption", "x", "--duration", "1", "--point", "1,2", "--out", str(tmp_path / "b.wav")], env)
    assert bad.returncode == 2 and "need a --video" in bad.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_progress_and_one_line_per_take(env, tmp_path, monkeypatch, capsys):
    # piped, stderr stays empty (test above); on a terminal a person sees the steps and the takes
    from foley_core.cli import build_parser, run_command

    monkeypatch.setenv("FOLEY_EMBEDDED_DIR", env["FOLEY_EMBEDDED_DIR"])
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    out = tmp_path / "knock.wav"
    args = build_parser().parse_args(["generate", "--caption", "a knock", "--duration", "2",
                                      "--steps", "3", "--candidates", "2", "--from-scratch",
                                      "--out", str(out)])
    assert run_command(args) == 0
    report = json.loads(capsys.readouterr().out)
    shown = terminal.getvalue()
    assert "generating" in shown and "step" in shown           # the tqdm bar
    lines = [l for l in shown.splitlines() if l.startswith("wrote ")]
    assert [l.split(":")[0] for l in lines] == [f"wrote {p}" for p in report["outputs"]]
    assert all("from scratch" in l and f"{report['sr']} Hz" in l for l in lines)


def test_a_terminal_is_told_which_library_clip_and_licence_each_take_came_from(env, tmp_path, monkeypatch,
                                                                                capsys):
    from foley_core.cli import build_parser, run_command

    monkeypatch.setenv("FOLEY_EMBEDDED_DIR", env["FOLEY_EMBEDDED_DIR"])
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = build_parser().parse_args(["generate", "--caption", "a small object bounces", "--duration", "2",
                                      "--steps", "3", "--candidates", "2", "--out", str(tmp_path / "b.wav")])
    assert run_command(args) == 0
    report = json.loads(capsys.readouterr().out)
    lines = [l for l in terminal.getvalue().splitlines() if l.startswith("wrote ")]
    assert len(lines) == 2
    for line, ref in zip(lines, report["references"]):
        assert f"library clip {ref['id']}" in line and ref["caption"] in line
        assert ref["licence"].split(" (", 1)[0] in line
