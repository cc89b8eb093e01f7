"""`launch.py detect`: tracks JSON for the generate CLI, the auto note, one-line errors, exit 2,
no output file on failure. Runs the CLI in-process (same parser and dispatch as launch.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foley_core.cli import build_parser, run_command
from foley_core.vision import detect_yolo, load_tracks, track_masks
from foley_lab.synthetic import bouncing_square, write_scene_mp4

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    scene = bouncing_square(duration_s=2.0, fps=15.0, seed=2)
    return write_scene_mp4(scene, tmp_path_factory.mktemp("cli") / "bounce.mp4", fps=15.0)


@pytest.fixture()
def no_weights(monkeypatch, tmp_path):
    """A machine without YOLO-World weights and without downloads."""
    monkeypatch.delenv("FOLEY_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv(detect_yolo.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(detect_yolo, "_ultralytics_weights_dir", lambda: tmp_path / "weights")
    monkeypatch.chdir(tmp_path)


def detect(*argv) -> int:
    args = build_parser().parse_args(["detect", *map(str, argv)])
    return run_command(args)


def _check_schema(data: dict, width: int, height: int) -> None:
    assert data["width"] == width and data["height"] == height and data["tracks"]
    for tr in data["tracks"]:
        assert set(tr) >= {"id", "label", "source", "score", "frames", "curve", "events_s"}
        assert isinstance(tr["id"], str) and isinstance(tr["score"], float)
        times = [f["time_s"] for f in tr["frames"]]
        assert times == sorted(times)
        for f in tr["frames"]:
            x0, y0, x1, y1 = f["box"]
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        values = np.array(tr["curve"]["values"])
        assert len(values) == len(tr["curve"]["times_s"]) and values.min() >= 0 and values.max() <= 1


def test_motion_writes_tracks_json(video, tmp_path, capsys):
    out = tmp_path / "tracks.json"
    assert detect("--video", video, "--method", "motion", "--out", out) == 0
    data = json.loads(out.read_text())
    assert data["source"] == "motion" and data["video"] == str(video)
    _check_schema(data, 320, 240)
    assert all(tr["source"] == "motion" for tr in data["tracks"])
    top = data["tracks"][0]
    assert top["id"] == "t0" and top["events_s"]                 # the bounces
    assert "mask" in top["frames"][0]                            # RLE region masks
    err = capsys.readouterr().err
    assert "note: method used: motion" in err and "t0" in err
    # what the generate CLI does with it
    track = load_tracks(out)["t0"]
    masks = track_masks(track, np.arange(0.0, 2.0, 0.25), 224, 224)
    assert masks.shape == (8, 224, 224) and masks.max() == pytest.approx(1.0)


def test_auto_without_weights_says_it_used_motion(video, tmp_path, capsys, no_weights):
    out = tmp_path / "auto.json"
    assert detect("--video", video, "--caption", "a red box bounces on the floor",
                  "--start", "0.5", "--duration", "1.0", "--out", out) == 0
    data = json.loads(out.read_text())
    assert data["source"] == "motion" and "weights" in data["note"]
    assert data["start_s"] == 0.5 and data["duration_s"] == 1.0
    for tr in data["tracks"]:
        assert all(0.5 - 1e-6 <= f["time_s"] < 1.5 for f in tr["frames"])
        assert len(tr["curve"]["values"]) == 10
    err = capsys.readouterr().err
    assert "note: method used: motion" in err and "YOLO-World" in err


def test_yolo_world_with_local_weights(video, tmp_path, capsys, no_weights):
    """The YOLO-World path end to end, offline: a random tiny checkpoint whose stored class
    embedding is the vocabulary word, so no CLIP text encoder is needed."""
    from foley_core.vision.detect_yolo import import_ultralytics

    import_ultralytics()
    from ultralytics.nn.tasks import WorldModel

    torch.manual_seed(0)
    model = WorldModel("yolov8n-worldv2.yaml", nc=1, verbose=False).eval()
    for head in model.model[-1].cv4:
        head.bias.data.fill_(0.0)            # random scores near 0.5 rather than 4.5e-5
    model.names = {0: "square"}
    model.txt_feats = torch.nn.functional.normalize(torch.randn(1, 1, 512), dim=-1)
    ckpt = tmp_path / "world.pt"
    torch.save({"model": model}, ckpt)
    out = tmp_path / "yolo.json"
    assert detect("--video", video, "--method", "yolo-world", "--vocab", "square", "--weights", ckpt,
                  "--duration", "1.5", "--fps", "2", "--conf", "0.3", "--max-tracks", "3",
                  "--out", out) == 0
    data = json.loads(out.read_text())
    assert data["source"] == "yolo-world" and "square" in data["note"]
    _check_schema(data, 320, 240)
    assert len(data["tracks"]) <= 3
    assert all(tr["label"] == "square" and tr["source"] == "yolo-world" for tr in data["tracks"])
    assert "method used: yolo-world" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--method", "yolo-world", "--vocab", "dog"], "weights"),
    (["--weights", "missing.pt", "--vocab", "dog"], "not found"),
    (["--start", "9"], "outside the video"),
    (["--duration", "0"], "positive"),
    (["--fps", "0"], "--fps"),
    (["--conf", "2"], "--conf"),
])
def test_errors_one_line_exit_2_no_output(video, tmp_path, capsys, no_weights, extra, message):
    out = tmp_path / "tracks.json"
    out.write_text("previous good copy")
    assert detect("--video", video, *extra, "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert out.read_text() == "previous good copy"
    assert [p.name for p in tmp_path.iterdir()] == ["tracks.json"]    # no temp file left


def test_bad_video_files(tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    for bad in (tmp_path / "missing.mp4", text):
        out = tmp_path / "t.json"
        assert detect("--video", bad, "--method", "motion", "--out", out) == 2
        assert not out.exists()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")


def test_out_is_a_folder(video, tmp_path, capsys):
    assert detect("--video", video, "--method", "motion", "--out", tmp_path) == 2
    assert "folder" in capsys.readouterr().err


def test_method_choices_are_checked(video, tmp_path):
    with pytest.raises(SystemExit) as exc:
        detect("--video", video, "--method", "magic", "--out", tmp_path / "t.json")
    assert exc.value.code == 2
