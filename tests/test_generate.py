"""generate(): instructions, masks, long selections, determinism, caching, metadata, errors."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from foley_core import generate as gen
from foley_core import windows as win
from foley_core.backends import Capabilities, WindowOutput, get_backend
from foley_core.errors import (
    CaptionError,
    CurveError,
    FoleyError,
    GenerationCancelled,
    MaskError,
    TimeRangeError,
)
from foley_core.generate import generate
from foley_core.request import Region
from foley_core.vision import regions
from stub_backends import StubBackend

torch.set_num_threads(1)
SR = 16000


# the embedded backend on a tiny random model for every test here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("tiny_model")


@pytest.fixture(scope="module")
def clip(media_factory):
    """3 s, 160x120, 25 fps: a white square that reverses direction at 0.8 s and 2.0 s."""
    return media_factory("make_video", "square.mp4", seconds=3.0, fps=25, size=(160, 120),
                         audio_events_s=[0.8, 2.0])


# ------------------------------------------------------------------------------ basics

def test_text_and_curve_without_video(tiny_model):
    curve = np.concatenate([np.full(10, 0.1), np.ones(5), np.full(10, 0.2)]).astype(np.float32)
    result = generate(caption="a dog barks", duration_s=2.5, curve=curve, candidates=2, steps=3, source="model")
    assert result.sr == SR
    assert len(result.audios) == 2
    assert all(a.shape == (40000,) and a.dtype == np.float32 for a in result.audios)
    assert all(np.max(np.abs(a)) <= 1.0 for a in result.audios)
    meta = result.metadata
    json.dumps(meta)                                    # JSON-able as is
    assert meta["model"] == "embedded (untrained random weights)" and meta["trained"] is False
    assert meta["seeds"] == [0, 1] and meta["steps"] == 3 and meta["sr"] == SR
    assert meta["duration_s"] == 2.5
    assert meta["text_scale"] == 3.5 and meta["video_scale"] == 4.5
    assert meta["conform"] == 1.0
    assert len(meta["curve_r_before"]) == len(meta["curve_r_after"]) == 2
    # conform makes the untrained model's output follow the drawn curve (r ~ -0.3 -> ~0.9 here)
    assert all(after > 0.75 and after > before + 0.4
               for before, after in zip(meta["curve_r_before"], meta["curve_r_after"]))
    assert meta["instructions"]["given"] == ["text", "curve"]
    assert meta["instructions"]["obeyed_by_model"] == []
    assert meta["instructions"]["enforced_after"] == ["curve (conform)"]
    for stage in ("text_encode", "denoise", "decode", "vocoder", "conform", "total"):
        assert stage in meta["timings_s"]


def test_curve_scale_reaches_the_model_and_defaults_to_the_models_value(tiny_model, monkeypatch):
    backend = get_backend("embedded")
    seen = []
    original = backend.pipeline.__class__.__call__

    def spy(self, *args, **kw):
        seen.append(kw.get("curve_scale"))
        return original(self, *args, **kw)

    monkeypatch.setattr(backend.pipeline.__class__, "__call__", spy)
    curve = np.linspace(0.1, 1.0, 10).astype(np.float32)
    meta = generate(caption="a bell", duration_s=1.0, curve=curve, steps=1, curve_scale=4.0).metadata
    assert seen == [4.0] and meta["curve_scale"] == 4.0
    meta = generate(caption="a bell", duration_s=1.0, curve=curve, steps=1).metadata
    assert seen[-1] is None                              # the pipeline applies its own default
    assert meta["curve_scale"] == backend.curve_scale == 1.0
    with pytest.raises(FoleyError, match="curve guidance scale must be a finite number between 0 and 50"):
        generate(caption="a bell", duration_s=1.0, curve=curve, steps=1, curve_scale=-2)


def test_drawn_curve_points_and_conform_off(tiny_model):
    result = generate(caption="wind", duration_s=1.0, curve=([0.0, 0.5, 1.0], [0.0, 1.0, 0.0]),
                      conform=0.0, steps=2)
    meta = result.metadata
    assert meta["conform"] == 0.0
    assert meta["curve_r_before"] == meta["curve_r_after"]
    assert meta["instructions"]["enforced_after"] == []


def test_real_video_with_box(tiny_model, shared_dir):
    video = shared_dir / "videos" / "mecavideo_balle1.mp4"
    result = generate(caption="a ball knocks on the floor", source="model", video=str(video), start_s=0.2, duration_s=1.2,
                      mask=Region(box=(100, 20, 220, 200)), steps=2)
    assert result.audios[0].shape == (round(1.2 * SR),)
    # the box gives a region, so the onsets come from its contacts
    assert result.metadata["instructions"]["given"] == ["text", "video", "mask", "onsets"]
    assert result.metadata["onsets_source"] == "video"
    assert "read_video" in result.metadata["timings_s"]


def test_whole_video_by_default(tiny_model, clip):
    result = generate(caption="a click", video=str(clip), steps=1)
    assert abs(result.metadata["duration_s"] - 3.0) < 0.05
    assert len(result.metadata["windows"]) == 2         # 3 s with a 2 s window


# ------------------------------------------------------------------------------ masks

def test_track_mask_follows_the_moving_box():
    times = np.array([0.0, 0.5, 1.0])
    track = {"times_s": [0.0, 1.0], "boxes": [[0, 0, 40, 40], [120, 0, 160, 40]]}
    masks = regions.masks_for_frames(Region(track=track), times, video_wh=(160, 120), frame_size=(32, 32))
    assert masks.shape == (3, 32, 32)
    cols = np.arange(32)
    centre_x = [(m.sum(0) * cols).sum() / m.sum() for m in masks]
    np.testing.assert_allclose(centre_x, [3.5, 15.5, 27.5], atol=0.6)
    # the detect JSON form of a track gives the same masks
    detect_form = {"id": "t0", "frames": [{"time_s": 0.0, "box": [0, 0, 40, 40]},
                                          {"time_s": 1.0, "box": [120, 0, 160, 40]}]}
    np.testing.assert_allclose(regions.masks_for_frames(Region(track=detect_form), times, video_wh=(160, 120),
                                                    frame_size=(32, 32)), masks)


def test_mask_image_and_array(tmp_path):
    from PIL import Image

    image = np.zeros((120, 160), np.uint8)
    image[:, 80:] = 255                                   # right half
    Image.fromarray(image).save(tmp_path / "mask.png")
    masks = regions.masks_for_frames(Region(image=str(tmp_path / "mask.png")), np.arange(4) / 20,
                                 video_wh=(160, 120), frame_size=(32, 32))
    assert masks.shape == (4, 32, 32)
    assert masks[:, :, :16].max() == 0 and masks[:, :, 16:].min() == 1
    arr = regions.masks_for_frames(image.astype(np.float32) / 255, np.arange(4) / 20, video_wh=(160, 120),
                               frame_size=(32, 32))
    np.testing.assert_allclose(arr, masks)
    with pytest.raises(MaskError, match="160x120"):
        regions.validate_region(np.ones((10, 10)), (160, 120))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(MaskError, match="10x10"):
        regions.validate_region(Region(image=str(tmp_path / "small.png")), (160, 120))
    with pytest.raises(MaskError):
        regions.validate_region(Region(box=(200, 10, 300, 50)), (160, 120))
    with pytest.raises(MaskError):
        Region(box=(0, 0, 1, 1), image="x.png")


def test_moving_mask_reaches_the_model(tiny_model, clip):
    """Different masks on the same video change the visual features (and so the output)."""
    left = Region(box=(0, 0, 80, 100))
    right = Region(box=(80, 0, 160, 100))
    a = generate(caption="a click", video=str(clip), duration_s=1.0, mask=left, steps=2).audios[0]
    b = generate(caption="a click", video=str(clip), duration_s=1.0, mask=right, steps=2).audios[0]
    assert not np.allclose(a, b)


# ------------------------------------------------------------------------------ long selections

class LevelStepBackend(StubBackend):
    """Stationary noise at a different level in every window (to test the joins)."""

    obeys = frozenset({"text"})
    ignores = frozenset({"negative", "video", "mask", "curve"})
    trained = True

    def __init__(self):
        self.levels = iter([0.05, 0.3, 0.02, 0.5, 0.1, 0.2, 0.07, 0.4])

    def generate_window(self, *, duration_s, seeds, **kw):
        level = next(self.levels)
        rng = np.random.default_rng(seeds[0])
        n = round(duration_s * SR)
        return WindowOutput(audios=(rng.standard_normal((len(seeds), n)) * level).astype(np.float32), sr=SR)


def short_time_rms_db(audio: np.ndarray, frame: int = 800) -> np.ndarray:
    n = len(audio) // frame
    frames = audio[: n * frame].reshape(n, frame)
    return 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)))


def test_long_selection_has_no_level_jump_at_joins():
    result = generate(caption="rain", duration_s=7.3, model=LevelStepBackend(), steps=1)
    windows = result.metadata["windows"]
    assert [w["start_s"] for w in windows] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert windows[-1]["duration_s"] == pytest.approx(1.3)
    audio = result.audios[0]
    assert audio.shape == (round(7.3 * SR),)
    rms = short_time_rms_db(audio)
    # every 50 ms frame (joins and crossfades included) stays at the first window's level
    assert np.all(np.abs(rms - rms[:10].mean()) < 1.5), rms.round(1)
    # without level matching the windows differ by up to 28 dB: the matching did the work
    assert max(abs(g) for w in result.metadata["window_join_gains_db"] for g in w) > 10


def test_long_selection_with_the_embedded_model(tiny_model):
    curve = np.abs(np.sin(np.linspace(0, 9, 45))).astype(np.float32)
    calls = []
    result = generate(caption="a train passes", source="model", duration_s=4.5, curve=curve, steps=2,
                      progress=lambda step, total: calls.append((step, total)))
    assert result.audios[0].shape == (round(4.5 * SR),)
    assert len(result.metadata["windows"]) == 4
    assert calls == [(i, 8) for i in range(1, 9)]
    # conform over the joined windows (r ~0.08 -> ~0.8 here)
    assert result.metadata["curve_r_after"][0] > max(0.6, result.metadata["curve_r_before"][0] + 0.4)


def test_plan_windows_cover_the_selection():
    for duration in (0.5, 8.0, 8.01, 15.0, 60.0, 61.3):
        windows = win.plan_windows(duration, 8.0)
        assert windows[0][0] == 0.0
        assert windows[-1][0] + windows[-1][1] == pytest.approx(duration)
        for (o1, l1), (o2, _) in zip(windows, windows[1:]):
            assert o1 + l1 - o2 >= 1.0 - 1e-9                  # overlap of at least 1 s
            assert round(o2 / 0.2, 6) == round(o2 / 0.2)        # starts on the 0.2 s grid
        assert all(length <= 8.0 for _, length in windows)


def test_slice_curve_matches_the_full_curve():
    full = np.arange(100, dtype=np.float32) / 100               # 10 s
    np.testing.assert_allclose(win.slice_curve(full, 3.0, 2.0), full[30:50], atol=1e-6)


# ------------------------------------------------------------------------------ determinism, caching

def test_candidates_equal_solo_runs(tiny_model):
    kw = dict(caption="a bell rings", duration_s=1.0, steps=3, source="model")
    both = generate(seed=5, candidates=2, **kw).audios
    solo = generate(seed=6, **kw).audios[0]
    again = generate(seed=5, **kw).audios[0]
    np.testing.assert_array_equal(both[1], solo)
    np.testing.assert_array_equal(both[0], again)
    assert not np.allclose(both[0], both[1])


def test_changing_seed_or_curve_does_not_re_encode(tiny_model, clip):
    backend = get_backend("embedded")
    pipe = backend.pipeline
    kw = dict(caption="a square bounces", video=str(clip), duration_s=1.5, mask=Region(box=(0, 0, 160, 100)),
              steps=1)
    generate(seed=0, **kw)
    n_text, n_video = pipe.text_encoder.n_encoded, pipe.n_video_encoded
    generate(seed=1, **kw)
    generate(seed=2, curve=np.linspace(0.1, 1, 15), **kw)
    assert (pipe.text_encoder.n_encoded, pipe.n_video_encoded) == (n_text, n_video)
    generate(seed=2, **{**kw, "mask": Region(box=(0, 0, 80, 100))})
    assert pipe.n_video_encoded == n_video + 1                  # a new mask is a new encoding


def test_cancel_and_progress(tiny_model):
    event = threading.Event()
    event.set()
    with pytest.raises(GenerationCancelled):
        generate(caption="a door", duration_s=1.0, steps=3, cancel=event, source="model")
    calls = []
    generate(caption="a door", duration_s=1.0, steps=3, progress=lambda s, n: calls.append(s), source="model")
    assert calls == [1, 2, 3]


# ------------------------------------------------------------------------------ bad inputs

@pytest.mark.parametrize("kwargs,error,match", [
    (dict(caption="  "), CaptionError, "empty"),
    (dict(caption="x", duration_s=None), TimeRangeError, "duration"),
    (dict(caption="x", duration_s=500.0), TimeRangeError, "limit"),
    (dict(caption="x", curve=np.full(10, 2.0)), CurveError, "relative"),
    (dict(caption="x", curve=np.full(3, 0.5)), CurveError, "points"),
    (dict(caption="x", curve=np.zeros(10)), CurveError, "silent"),
    (dict(caption="x", conform=0.5), CurveError, "curve"),
    (dict(caption="x", candidates=0), FoleyError, "candidates"),
    (dict(caption="x", steps=0), FoleyError, "steps"),
    (dict(caption="x", mask=Region(box=(0, 0, 5, 5))), MaskError, "video"),
    (dict(caption="x", model="nope"), FoleyError, "unknown model"),
])
def test_bad_inputs_without_video(tiny_model, kwargs, error, match):
    kwargs = {"duration_s": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        generate(**kwargs)


@pytest.mark.parametrize("kwargs,error", [
    (dict(start_s=5.0), TimeRangeError),
    (dict(start_s=1.0, duration_s=5.0), TimeRangeError),
    (dict(mask=np.ones((10, 10))), MaskError),
    (dict(mask=Region(track={"times_s": [10.0], "boxes": [[0, 0, 10, 10]]})), MaskError),
])
def test_bad_inputs_with_video(tiny_model, clip, kwargs, error):
    with pytest.raises(error):
        generate(caption="x", video=str(clip), steps=1, **kwargs)


def test_missing_video_is_a_media_error(tiny_model, tmp_path):
    from foley_core.errors import MediaError

    with pytest.raises(MediaError):
        generate(caption="x", video=str(tmp_path / "missing.mp4"))


# ------------------------------------------------------------------------------ the CLI's view

def test_cli_help_shows_the_default_strength_without_importing_the_engine():
    import subprocess
    import sys
    from pathlib import Path

    from foley_core import constants

    assert gen.DEFAULT_REFERENCE_STRENGTH == constants.DEFAULT_REFERENCE_STRENGTH   # re-exported
    code = ("import sys\nfrom foley_core.cli import build_parser\n"
            "p = build_parser()\nsub = p._subparsers._group_actions[0].choices['generate']\n"
            "print(sub.format_help())\n"
            "print('LOADED', [m for m in ('foley_core.generate', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, check=True).stdout
    assert f"(default {constants.DEFAULT_REFERENCE_STRENGTH:g})" in " ".join(out.split())
    assert out.strip().splitlines()[-1] == "LOADED []"
