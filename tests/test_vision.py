"""Vision: tracks (linking, masks, RLE, JSON), motion fallback, motion curves and contacts,
YOLO-World path (random-init model, text features given directly: no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foley_core import media
from foley_core.errors import CaptionError, MaskError, ModelUnavailableError, TimeRangeError
from foley_core.events import detect_onsets, onset_f1
from foley_core.loudness import n_curve_points
from foley_core.vision import (
    Detection, Track, TrackFrame, TrackSet, box_mask, detect_tracks, link_detections,
    load_tracks, mask_to_rle, region_motion, rle_to_mask, save_tracks, track_masks, vocabulary,
)
from foley_core.vision import detect_yolo
from foley_core.vision.curves import energy_curve, motion_energy
from foley_core.vision.motion import motion_tracks
from foley_lab.synthetic import bouncing_square, write_scene_mp4
from foley_core.vision.tracks import box_iou, interpolate_boxes

torch.set_num_threads(1)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def scene():
    """A square bouncing on a floor at 15 fps, with exact contact times."""
    return bouncing_square(duration_s=3.0, fps=15.0, seed=1)


@pytest.fixture(scope="module")
def scene_video(scene, tmp_path_factory):
    path = tmp_path_factory.mktemp("vision") / "bounce.mp4"
    return write_scene_mp4(scene, path, fps=15.0)


@pytest.fixture(scope="module")
def world_model():
    """Random-init YOLO-World ('n' scale for speed) with a two-word vocabulary."""
    from foley_core.vision.detect_yolo import import_ultralytics

    import_ultralytics()
    from ultralytics.nn.tasks import WorldModel

    torch.manual_seed(0)
    model = WorldModel("yolov8n-worldv2.yaml", nc=2, verbose=False).eval()
    for head in model.model[-1].cv4:       # init bias -10 makes every random score ~4.5e-5:
        head.bias.data.fill_(0.0)          # spread them so that thresholds can be tested
    return model


def _feats(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(1, n, 512, generator=g), dim=-1)


def _box_track(times, boxes, *, width=320, height=240, mask=None) -> Track:
    frames = [TrackFrame(float(t), np.asarray(b, float), mask) for t, b in zip(times, boxes)]
    return Track(id="t0", label="thing", source="user", score=1.0, frames=frames,
                 width=width, height=height)


# --------------------------------------------------------------------------- geometry, RLE

def test_box_iou_and_box_mask():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert iou[0] == pytest.approx([1.0, 1 / 3, 0.0])
    m = box_mask([2.5, 1.0, 6.5, 3.0], 10, 5)
    assert m.dtype == np.float32 and m.shape == (5, 10)
    assert m.sum() == pytest.approx(4.0 * 2.0)          # area-weighted edges
    assert m[2, 2] == pytest.approx(0.5) and m[2, 4] == 1.0 and m[0].sum() == 0


@pytest.mark.parametrize("kind", ["random", "zeros", "ones", "starts_with_one"])
def test_rle_round_trip(kind):
    rng = np.random.default_rng(3)
    mask = {"random": rng.random((17, 23)) > 0.6, "zeros": np.zeros((4, 5), bool),
            "ones": np.ones((4, 5), bool), "starts_with_one": np.eye(6, dtype=bool)}[kind]
    rle = mask_to_rle(mask)
    assert rle["size"] == list(mask.shape) and sum(rle["counts"]) == mask.size
    json.dumps(rle)                                     # plain ints only
    np.testing.assert_array_equal(rle_to_mask(rle), mask)


def test_rle_rejects_damage():
    with pytest.raises(MaskError, match="damaged"):
        rle_to_mask({"size": [3, 3], "counts": [2, 3]})
    with pytest.raises(MaskError, match="malformed"):
        rle_to_mask({"counts": [9]})
    with pytest.raises(MaskError):
        mask_to_rle(np.zeros((2, 2, 2)))


# --------------------------------------------------------------------------- linking

def _moving(x0, y, step, n, size=20, label="a", score=0.9):
    return [Detection(np.array([x0 + k * step, y, x0 + k * step + size, y + size], float), score, label)
            for k in range(n)]


def test_link_two_crossing_objects_with_gap():
    n = 10
    a = _moving(0, 50, 10, n)                  # left to right
    b = _moving(200, 58, -10, n)               # right to left, crossing a around k = 9-10
    dets = [[a[k], b[k]] for k in range(n)]
    dets[4] = [b[4]]                           # a missed for one frame: gap to bridge
    times = np.arange(n) * 0.25
    tracks = link_detections(dets, times, width=320, height=240, source="yolo-world")
    assert len(tracks) == 2
    for tr in tracks:
        xs = tr.boxes[:, 0]
        assert np.all(np.diff(xs) > 0) or np.all(np.diff(xs) < 0)   # never swaps identity
    lengths = sorted(len(t.frames) for t in tracks)
    assert lengths == [n - 1, n]


def test_link_respects_labels_and_min_frames():
    n = 5
    same_place = [[Detection(np.array([10, 10, 50, 50.0]), 0.8, "dog"),
                   Detection(np.array([11, 10, 51, 50.0]), 0.6, "cat")] for _ in range(n)]
    same_place[2].append(Detection(np.array([200, 200, 220, 220.0]), 0.9, "dog"))   # one-off
    tracks = link_detections(same_place, np.arange(n) / 4.0, width=320, height=240,
                             source="yolo-world", min_frames=2)
    assert sorted(t.label for t in tracks) == ["cat", "dog"]
    assert all(len(t.frames) == n for t in tracks)
    assert {t.label: t.score for t in tracks} == pytest.approx({"dog": 0.8, "cat": 0.6})


def test_link_fast_small_object_without_overlap():
    # 10 px object moving 25 px per frame: no IoU between frames, the velocity prediction links it
    dets = [[Detection(np.array([10 + 25 * k, 100, 20 + 25 * k, 110.0]), 1.0, "ball")] for k in range(8)]
    tracks = link_detections(dets, np.arange(8) / 15, width=320, height=240, source="motion")
    assert len(tracks) == 1 and len(tracks[0].frames) == 8


def test_link_gap_too_long_splits():
    dets = [[Detection(np.array([10, 10, 30, 30.0]), 1.0, "a")] if k not in (3, 4, 5, 6) else []
            for k in range(10)]
    tracks = link_detections(dets, np.arange(10) / 4, width=320, height=240, source="x", max_gap=2)
    assert sorted(len(t.frames) for t in tracks) == [3, 3]


# --------------------------------------------------------------------------- track masks

def test_track_masks_interpolate_and_scale():
    track = _box_track([1.0, 2.0], [[0, 0, 40, 40], [100, 80, 140, 120]])
    masks = track_masks(track, [0.0, 1.0, 1.5, 2.0, 3.0], 320, 240)
    assert masks.shape == (5, 240, 320) and masks.dtype == np.float32
    assert masks[0].sum() == 0 and masks[4].sum() == 0       # before / after the track: absent
    ys, xs = np.nonzero(masks[2] > 0.5)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (50, 89, 40, 79)   # the midway box
    small = track_masks(track, [2.0], 224, 224)               # the model's frame size
    ys, xs = np.nonzero(small[0] > 0.5)
    assert xs.min() == pytest.approx(100 * 224 / 320, abs=1)
    assert ys.max() == pytest.approx(120 * 224 / 240, abs=1)
    with pytest.raises(MaskError):
        track_masks(track, [1.0], 0, 10)


def test_track_masks_move_region_mask_with_box():
    rles = []
    for x in (20, 120):
        grid = np.zeros((60, 80), bool)              # a coarser grid than the 320x240 video
        grid[5:10, x // 4:x // 4 + 5] = True         # a 20x20 px blob at (x, 20)
        rles.append(mask_to_rle(grid))
    track = _box_track([0.0, 1.0], [[20, 20, 40, 40], [120, 20, 140, 40]])
    for frame, rle in zip(track.frames, rles):
        frame.mask = rle
    m = track_masks(track, [0.0, 0.4, 1.0], 320, 240)
    for k, x0 in enumerate((20, 60, 120)):           # at 0.4 s the blob rides the moving box
        ys, xs = np.nonzero(m[k] > 0.5)
        assert abs(xs.min() - x0) <= 1 and abs(xs.max() - (x0 + 19)) <= 1
        assert abs(ys.min() - 20) <= 1 and abs(ys.max() - 39) <= 1


def test_interpolate_holds_half_spacing():
    track = _box_track([1.0, 1.5, 2.0], [[0, 0, 1, 1]] * 3)
    _, present = interpolate_boxes(track, [0.70, 0.76, 2.24, 2.3])
    assert present.tolist() == [False, True, True, False]


# --------------------------------------------------------------------------- JSON

def test_save_load_round_trip(tmp_path):
    rle = mask_to_rle(np.eye(8, dtype=bool))
    track = _box_track([0.0, 0.25], [[1, 2, 30, 40], [5, 6, 35, 46]], mask=rle)
    track.curve_times_s = np.array([0.05, 0.15], np.float32)
    track.curve = np.array([0.2, 1.0], np.float32)
    track.events_s = np.array([0.2], np.float32)
    ts = TrackSet(video="v.mp4", width=320, height=240, start_s=0.0, duration_s=0.5,
                  source="motion", tracks=[track], note="why")
    path = save_tracks(ts, tmp_path / "tracks.json")
    data = json.loads(path.read_text())
    assert data["source"] == "motion" and data["tracks"][0]["frames"][1]["box"] == [5, 6, 35, 46]
    assert set(data["tracks"][0]) >= {"id", "label", "source", "score", "frames", "curve", "events_s"}
    back = load_tracks(path)
    tr = back["t0"]
    np.testing.assert_allclose(tr.boxes, track.boxes)
    np.testing.assert_allclose(tr.curve, track.curve)
    assert tr.width == 320 and tr.frames[0].mask == rle and back.note == "why"
    np.testing.assert_array_equal(track_masks(tr, [0.1], 320, 240), track_masks(track, [0.1], 320, 240))
    with pytest.raises(MaskError, match="t0"):
        back["t9"]


def test_load_tracks_errors(tmp_path):
    with pytest.raises(MaskError, match="does not exist"):
        load_tracks(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MaskError, match="JSON"):
        load_tracks(bad)
    bad.write_text(json.dumps({"tracks": []}))
    with pytest.raises(MaskError, match="width"):
        load_tracks(bad)
    frames = [{"time_s": 1.0, "box": [0, 0, 1, 1]}, {"time_s": 0.5, "box": [0, 0, 1, 1]}]
    bad.write_text(json.dumps({"width": 4, "height": 4, "tracks": [{"id": "a", "frames": frames}]}))
    with pytest.raises(MaskError, match="increasing"):
        load_tracks(bad)
    bad.write_text(json.dumps({"width": 4, "height": 4, "tracks": [{"id": "a", "frames": [{"box": [1]}]}]}))
    with pytest.raises(MaskError, match="malformed"):
        load_tracks(bad)


# --------------------------------------------------------------------------- motion fallback

def test_motion_track_follows_bouncing_square(scene):
    tracks = motion_tracks(scene.frames, scene.times_s, width=320, height=240)
    assert tracks and tracks[0].id == "t0" and tracks[0].score == pytest.approx(1.0)
    assert all(0 < t.score <= 1 for t in tracks)
    top = tracks[0]
    boxes, present = interpolate_boxes(top, scene.times_s)
    ious = np.diag(box_iou(boxes, scene.boxes))[present]
    assert present.mean() > 0.7 and np.median(ious) > 0.6
    # region masks came along and sit on the square
    m = track_masks(top, scene.times_s[10:11], 320, 240)[0]
    truth = box_mask(scene.boxes[10], 320, 240) > 0.5
    assert (m > 0.5)[truth].mean() > 0.7 and (m > 0.5)[~truth].mean() < 0.01


def test_motion_contacts_match_physics(scene):
    """Correctness on the synthetic fixture: contact times from motion vs the exact ones."""
    tracks = motion_tracks(scene.frames, scene.times_s, width=320, height=240)
    seed = region_motion(scene.frames, scene.times_s, tracks[0])
    score = onset_f1(seed.events_s, scene.contacts_s, tol_s=0.1)
    assert score["precision"] >= 0.75 and score["f1"] >= 0.7, (seed.events_s, scene.contacts_s)


def test_landing_then_resting_is_a_contact():
    """An object that lands and then rests for most of the clip: the still-background median
    holds it at its resting place, and the landing is a stop, not a disappearance."""
    scene = bouncing_square(duration_s=3.0, fps=15.0, restitution=0.3, vx=20.0, seed=4)
    assert scene.contacts_s[-1] < 1.2                    # at rest for the last 60 % or more
    lane = np.zeros((240, 320), np.float32)
    lane[:, :100] = 1.0
    drawn = region_motion(scene.frames, scene.times_s, lane).events_s
    assert onset_f1(drawn, scene.contacts_s)["f1"] >= 0.8, (drawn, scene.contacts_s)
    tracks = motion_tracks(scene.frames, scene.times_s, width=320, height=240)
    tracked = region_motion(scene.frames, scene.times_s, tracks[0]).events_s
    assert np.min(np.abs(tracked - scene.contacts_s[0])) <= 0.1, (tracked, scene.contacts_s)


def test_still_video_has_no_tracks():
    frames = np.repeat(bouncing_square(duration_s=0.1, fps=10).frames[:1], 12, axis=0)
    assert motion_tracks(frames, np.arange(12) / 10, width=320, height=240) == []


# --------------------------------------------------------------------------- curves

def test_energy_curve_grid_and_peak():
    times = np.arange(30) / 15.0                       # 2 s at 15 fps
    energy = np.zeros(30)
    energy[14:17] = 5.0                                 # motion around 1.0 s
    grid, curve = energy_curve(energy, times, start_s=0.0, duration_s=2.0)
    assert curve.shape == (n_curve_points(2.0),) == grid.shape and curve.dtype == np.float32
    assert curve.max() == pytest.approx(1.0) and curve.min() >= 0
    assert abs(grid[np.argmax(curve)] - 1.0) <= 0.1
    grid2, _ = energy_curve(energy, times + 5.0, start_s=5.0, duration_s=2.0)
    assert grid2[0] == pytest.approx(5.05)             # absolute times on the 10 Hz grid


def test_region_motion_drawn_mask_and_box(scene):
    h, w = scene.frames.shape[1:3]
    path_mask = np.zeros((h, w), np.float32)
    path_mask[:, :120] = 1.0                            # where the square travels
    still = np.zeros((h, w), np.float32)
    still[:60, 250:] = 1.0                              # where nothing moves
    seed = region_motion(scene.frames, scene.times_s, path_mask)
    quiet = motion_energy(scene.frames, still)
    assert seed.energy.mean() > 5 * quiet.mean()
    assert seed.curve.shape == (n_curve_points(3.0),) and seed.curve.max() == pytest.approx(1.0)
    assert onset_f1(seed.events_s, scene.contacts_s)["f1"] >= 0.6
    by_box = region_motion(scene.frames, scene.times_s, [0, 0, 120, 240])
    np.testing.assert_allclose(by_box.energy, seed.energy, rtol=1e-4, atol=1e-4)
    # energy is loud while the square is moving, quiet once it rests on the floor
    rest = scene.times_s > scene.contacts_s[-1] + 0.1
    assert seed.energy[rest].mean() < 0.2 * seed.energy[~rest].mean()


def test_region_motion_bad_regions(scene):
    with pytest.raises(MaskError, match="empty"):
        region_motion(scene.frames, scene.times_s, np.zeros((240, 320)))
    with pytest.raises(MaskError, match="outside"):
        region_motion(scene.frames, scene.times_s, [400, 300, 500, 400])
    with pytest.raises(MaskError, match="shape"):
        region_motion(scene.frames, scene.times_s, np.ones((3, 240, 320)))
    with pytest.raises(MaskError, match="NaN"):
        region_motion(scene.frames, scene.times_s, np.full((240, 320), np.nan))
    with pytest.raises(MaskError):
        region_motion(scene.frames[:0], scene.times_s[:0], [0, 0, 10, 10])


# --------------------------------------------------------------------------- YOLO-World path

def test_yolo_detect_contracts(world_model):
    det = detect_yolo.YoloWorldDetector(world_model, conf=0.0, imgsz=320, max_det=7)
    det.set_vocabulary(["ball", "hand"], txt_feats=_feats(2))
    frames = bouncing_square(duration_s=0.2, fps=10).frames           # (2, 240, 320, 3)
    out = det.detect(frames)
    assert len(out) == 2 and all(len(d) == 7 for d in out)
    for d in out[0]:
        assert d.label in ("ball", "hand") and 0.0 <= d.score <= 1.0
        assert 0 <= d.box[0] < d.box[2] <= 320 and 0 <= d.box[1] < d.box[3] <= 240
    det.max_det = 300
    loose = det.detect(frames[:1])[0]
    scores = np.array([d.score for d in loose])
    assert scores.max() > scores.min()
    det.conf = float(np.median(scores))                               # threshold respected
    strict = det.detect(frames[:1])[0]
    assert 1 <= len(strict) < len(loose) and all(d.score >= det.conf for d in strict)


def test_yolo_vocabulary_and_text_side(world_model, monkeypatch, tmp_path):
    det = detect_yolo.YoloWorldDetector(world_model)
    with pytest.raises(CaptionError):
        det.set_vocabulary(["  ", ""])
    with pytest.raises(ValueError):
        det.set_vocabulary(["a", "b"], txt_feats=_feats(3))
    # no CLIP text encoder offline: a clear ModelUnavailableError naming the words
    monkeypatch.delenv("FOLEY_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.setenv("FOLEY_CLIP_TEXT_MODEL", str(tmp_path / "no-clip-here"))
    with pytest.raises(ModelUnavailableError, match="glass bottle"):
        det.set_vocabulary(["glass bottle"])
    # words the checkpoint already embedded need no text encoder
    world_model.names = {0: "person", 1: "sports ball"}
    world_model.txt_feats = _feats(2, seed=5)
    det = detect_yolo.YoloWorldDetector(world_model)
    det.set_vocabulary(["Sports Ball"])
    assert det.vocabulary == ["Sports Ball"] and world_model.model[-1].nc == 1
    torch.testing.assert_close(world_model.txt_feats[0, 0], _feats(2, seed=5)[0, 1])


def test_yolo_weights_resolution(world_model, monkeypatch, tmp_path):
    monkeypatch.delenv("FOLEY_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv(detect_yolo.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(detect_yolo, "_ultralytics_weights_dir", lambda: tmp_path / "none")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelUnavailableError, match="motion"):
        detect_yolo.resolve_weights()
    with pytest.raises(ModelUnavailableError, match="not found"):
        detect_yolo.resolve_weights(tmp_path / "missing.pt")
    monkeypatch.setenv(detect_yolo.WEIGHTS_ENV, str(tmp_path / "env-missing.pt"))
    with pytest.raises(ModelUnavailableError, match="FOLEY_YOLO_WORLD_WEIGHTS"):
        detect_yolo.resolve_weights()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="Cannot load"):
        detect_yolo.load_world_model(junk)
    ckpt = tmp_path / "world.pt"
    torch.save({"model": world_model}, ckpt)
    monkeypatch.setenv(detect_yolo.WEIGHTS_ENV, str(ckpt))
    loaded = detect_yolo.load_world_model()
    assert type(loaded).__name__ == "WorldModel" and not loaded.training


def test_yolo_tracks_end_to_end(world_model, scene_video):
    """frames -> detections -> tracks -> per-frame masks, with a random model."""
    det = detect_yolo.YoloWorldDetector(world_model, conf=0.0, imgsz=320, max_det=3)
    det.set_vocabulary(["square"], txt_feats=_feats(1))
    ts = detect_tracks(scene_video, vocab="square", method="yolo-world", detector=det,
                       duration_s=2.0, grabcut=True, max_tracks=4)
    assert ts.source == "yolo-world" and "square" in ts.note
    assert 1 <= len(ts) <= 4 and [t.id for t in ts] == [f"t{i}" for i in range(len(ts))]
    scores = [t.score for t in ts]
    assert scores == sorted(scores, reverse=True)
    for track in ts:
        assert track.source == "yolo-world" and track.label == "square"
        assert np.all(np.diff(track.times_s) > 0)
        assert np.all((track.boxes[:, :2] >= 0) & (track.boxes[:, 2:] <= [320, 240]))
        assert track.curve.shape == (n_curve_points(2.0),)
    masks = track_masks(ts.tracks[0], np.arange(0, 2.0, 0.1), 224, 224)
    assert masks.shape == (20, 224, 224) and masks.max() > 0


# --------------------------------------------------------------------------- detect_tracks

def test_detect_tracks_auto_falls_back_to_motion(scene_video, monkeypatch, tmp_path):
    monkeypatch.delenv("FOLEY_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv(detect_yolo.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(detect_yolo, "_ultralytics_weights_dir", lambda: tmp_path)
    ts = detect_tracks(scene_video, caption="a red box bounces on the floor")
    assert ts.source == "motion" and "weights" in ts.note
    assert ts.width == 320 and ts.height == 240 and len(ts) >= 1
    with pytest.raises(ModelUnavailableError):
        detect_tracks(scene_video, vocab="box", method="yolo-world")
    with pytest.raises(CaptionError):
        detect_tracks(scene_video, method="yolo-world")
    with pytest.raises(TimeRangeError):
        detect_tracks(scene_video, start_s=10.0, method="motion")


def test_vocabulary_merges_user_words_and_caption():
    words = vocabulary("Dog, car door ,", "a dog barks at a red car door")
    assert words == ["dog", "car door", "red car door"]
    assert vocabulary(None, None) == []


# --------------------------------------------------------------------------- real clips

def _red_ball_centres(frames: np.ndarray) -> np.ndarray:
    """Reference ball position: the centroid of strongly red pixels (NaN when none)."""
    f = frames.astype(np.int16)
    red = (f[..., 0] > 120) & (f[..., 0] - f[..., 1] > 60) & (f[..., 0] - f[..., 2] > 50)
    out = np.full((len(frames), 2), np.nan)
    for k, m in enumerate(red):
        ys, xs = np.nonzero(m)
        if 4 <= xs.size <= 400:
            out[k] = xs.mean(), ys.mean()
    return out


def test_real_falling_ball_tracked_and_knock_timed(shared_dir):
    video = shared_dir / "videos" / "mecavideo_balle1.mp4"
    ts = detect_tracks(video, method="motion")
    frames, times = media.read_frames(video, fps=15.0, size=None)
    ref = _red_ball_centres(frames)
    seen = np.isfinite(ref[:, 0])
    assert seen.sum() >= 10

    def follows(track):
        boxes, present = interpolate_boxes(track, times)
        ok = present & seen
        inside = ((boxes[:, 0] - 4 <= ref[:, 0]) & (ref[:, 0] <= boxes[:, 2] + 4)
                  & (boxes[:, 1] - 4 <= ref[:, 1]) & (ref[:, 1] <= boxes[:, 3] + 4))
        return (inside & ok).sum() / seen.sum()

    ball = max(ts.tracks[:3], key=follows)              # the ball is among the top 3 tracks
    assert follows(ball) > 0.7
    # the knock on the table (audio onset near 0.75 s) is one of the ball's contacts
    knock = detect_onsets(media.read_soundtrack(video), 16000)
    knock = knock[np.argmin(np.abs(knock - 0.75))]
    assert np.min(np.abs(ball.events_s - knock)) <= 0.1, (ball.events_s, knock)


def test_real_pedestrians_give_several_moving_tracks(shared_dir):
    video = shared_dir / "videos" / "opencv_vtest.mp4"
    ts = detect_tracks(video, method="motion", duration_s=4.0, max_tracks=6)
    assert len(ts) >= 3
    moved = [np.linalg.norm(t.boxes[-1, :2] - t.boxes[0, :2]) for t in ts.tracks[:3]]
    assert all(m > 10 for m in moved)                   # people walk: the boxes travel
    assert all(0 <= t.boxes.min() and t.boxes[:, 2].max() <= 640 for t in ts)


def test_importing_ultralytics_leaves_pillow_alone(tmp_path):
    """ultralytics patches PIL.Image.open to pip-install pi-heif on unreadable images; we undo it,
    so a garbage image stays a plain UnidentifiedImageError with no install attempt."""
    from PIL import Image, UnidentifiedImageError

    from foley_core.vision.detect_yolo import import_ultralytics

    import_ultralytics()
    bad = tmp_path / "garbage.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)


def test_analysis_runs_at_the_videos_own_rate_so_resampling_jerks_are_not_contacts(media_factory):
    from foley_core.vision.proposals import analysis_fps_for, region_proposal

    assert analysis_fps_for(25.0) == 25.0 and analysis_fps_for(30.0) == 30.0
    assert analysis_fps_for(50.0) == 25.0 and analysis_fps_for(59.94) == pytest.approx(29.97)
    assert analysis_fps_for(120.0) == 30.0 and analysis_fps_for(float("nan")) == 15.0
    # a square reversing at 0.8 s and 2.0 s, 25 fps: sampled at 15 or 20 fps it gave 6-10 contacts
    clip = media_factory("make_video", "square25.mp4", seconds=3.0, fps=25, size=(160, 120),
                         audio_events_s=[0.8, 2.0])
    band = np.zeros((120, 160), np.float32)
    band[:90] = 1.0                                   # leave out the frame-index strip
    seed = region_proposal(clip, band, start_s=0.5, duration_s=2.0)
    assert seed.events_s.size == 2 and np.all(np.abs(seed.events_s - [0.8, 2.0]) <= 0.05), seed.events_s


def test_seed_means_an_rng_seed_only_in_vision_names():
    # masks, tracks and curves found in the video are "proposals"; "seed" is an RNG seed
    import inspect

    import foley_core.vision as vision
    from foley_core.vision import curves, proposals

    names = set(vision.__all__)
    for module in (curves, proposals):
        names |= {n for n, _ in inspect.getmembers(module, inspect.isfunction) if _.__module__ == module.__name__}
        names |= {n for n, _ in inspect.getmembers(module, inspect.isclass) if _.__module__ == module.__name__}
    assert {"region_proposal", "MotionProposal", "detect_tracks"} <= names
    assert [n for n in names if "seed" in n.lower()] == []


def test_motion_tracks_rank_the_bouncing_object_above_a_bigger_smooth_mover():
    from foley_core.vision.motion import motion_tracks
    from foley_lab.synthetic import bouncing_square

    scene = bouncing_square(duration_s=3.0, fps=25.0, size_px=12, seed=2, vx=30)
    frames = scene.frames.copy()
    n = len(frames)
    for i in range(n):        # a 90x70 block gliding smoothly across: far more motion energy
        x = int(10 + 150 * (0.5 - 0.5 * np.cos(np.pi * i / n)))
        frames[i, 60:130, 100 + x:190 + x] = [40, 60, 160]
    tracks = motion_tracks(frames, scene.times_s, width=320, height=240, with_masks=False)
    top = tracks[0]
    centre = (top.boxes[:, :2] + top.boxes[:, 2:]) / 2
    true = (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2
    i = np.searchsorted(scene.times_s, top.times_s[len(top.times_s) // 2])
    assert np.linalg.norm(centre[len(centre) // 2] - true[i]) < 12, "t0 is the bouncing square"
    assert top.impacts > 0 and max(t.energy for t in tracks) > top.energy


def test_merge_fragments_chains_pieces_of_one_mover_but_not_a_distant_one():
    from foley_core.vision.motion import merge_fragments
    from foley_core.vision.tracks import Track, TrackFrame

    def piece(t0, t1, x0, vx, y=50.0):
        frames = [TrackFrame(time_s=t, box=np.array([x0 + vx * (t - t0), y, x0 + vx * (t - t0) + 10, y + 10]))
                  for t in np.arange(t0, t1 + 1e-9, 0.04)]
        return Track(id="x", label="motion", source="motion", score=1.0, frames=frames,
                     width=320, height=240, energy=1.0)

    a = piece(0.0, 0.96, 10.0, 50.0)            # ends at x = 58
    b = piece(1.12, 2.0, 66.0, 50.0)            # the same mover after a 0.16 s gap
    far = piece(1.12, 2.0, 250.0, 0.0)          # another object starting then, far away
    merged = merge_fragments([a, b, far], spacing_s=0.04)
    assert len(merged) == 2
    whole = max(merged, key=lambda t: len(t.frames))
    assert whole.start_s == 0.0 and abs(whole.end_s - 2.0) < 1e-6 and whole.energy == 2.0
