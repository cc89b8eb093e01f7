"""foley_core.media: probe, frames, soundtrack and MP4 mux on generated and real videos."""

from __future__ import annotations

import csv
import hashlib
import math
import re

import av
import numpy as np
import pytest

import media_fixtures as mf
from foley_core import constants, media
from foley_core.errors import MediaError, TimeRangeError
from foley_core.media import frame_at, mux_mp4, probe_video, read_frames, read_soundtrack

EVENTS = [0.5, 1.25, 2.2]
SECONDS = 3.0
FPS = 25
AAC_FRAME_S = 1024 / 48000

# (file name, codec, expected audio codec, expected audio rate)
CONTAINERS = [
    ("h264.mp4", "h264", "aac", 44100),
    ("hevc.mp4", "hevc", "aac", 44100),
    ("h264.mov", "h264", "aac", 44100),
    ("prores.mov", "prores", "aac", 44100),
    ("vp9.webm", "vp9", "opus", 48000),
    ("vp8.webm", "vp8", "opus", 48000),
    ("ffv1.mkv", "ffv1", "flac", 44100),
    ("av1.mkv", "av1", "flac", 44100),
    ("mpeg4.avi", "mpeg4", "pcm_s16le", 44100),
    ("mjpeg.avi", "mjpeg", "pcm_s16le", 44100),
]


@pytest.fixture
def clip(media_factory):
    """`clip("h264.mp4", **options)`: a 3 s, 25 fps, 160x120 test video with clicks at EVENTS."""
    def make(name: str = "h264.mp4", **kwargs):
        codec = kwargs.pop("codec", name.split(".")[0])
        kwargs.setdefault("seconds", SECONDS)
        kwargs.setdefault("audio_events_s", EVENTS)
        return media_factory("make_video", name, codec=codec, **kwargs)
    return make


def _indices(frames: np.ndarray) -> list[int]:
    return [mf.decode_frame_index(f) for f in frames]


def _expected_indices(times: np.ndarray, fps: float = FPS) -> list[int]:
    return [int(math.floor(t * fps + 1e-6)) for t in times]


# --- probe ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, codec, audio_codec, audio_sr", CONTAINERS)
def test_probe_containers(clip, name, codec, audio_codec, audio_sr):
    info = probe_video(clip(name))
    assert info.duration_s == pytest.approx(SECONDS, abs=1e-3)
    assert info.fps == pytest.approx(FPS)
    assert (info.width, info.height, info.n_frames) == (160, 120, 75)
    assert info.codec == codec
    assert info.has_audio and info.audio_codec == audio_codec
    assert (info.audio_sr, info.audio_channels) == (audio_sr, 2)
    assert info.start_s == 0.0


def test_probe_without_audio(clip):
    info = probe_video(clip("silent.mp4", codec="h264", audio_sr=None))
    assert not info.has_audio
    assert (info.audio_sr, info.audio_channels, info.audio_codec) == (None, None, None)
    assert media.video_duration_s(info.path) == info.duration_s


@pytest.mark.parametrize("name, codec", [("streamed.webm", "vp9"), ("streamed.mkv", "h264")])
def test_probe_container_without_duration(media_factory, name, codec):
    path = media_factory("make_streamed_mkv", name, seconds=2.0, codec=codec)
    with av.open(str(path)) as container:
        assert container.duration is None            # the header really has no duration
    info = probe_video(path)
    assert info.duration_s == pytest.approx(2.0, abs=1e-3)
    assert info.n_frames == 50
    frames, times = read_frames(path, fps=10, size=None, start_s=1.0)
    assert _indices(frames) == _expected_indices(times)


def test_probe_sees_a_replaced_file(tmp_path):
    path = mf.make_video(tmp_path / "v.mp4", seconds=1.0, audio_sr=None)
    assert probe_video(path).duration_s == pytest.approx(1.0, abs=1e-3)
    mf.make_video(tmp_path / "v.mp4", seconds=2.0, audio_sr=None)
    assert probe_video(path).duration_s == pytest.approx(2.0, abs=1e-3)


def test_probe_bad_files(tmp_path, clip):
    cases = [
        (tmp_path / "missing.mp4", "not found"),
        (tmp_path, "folder"),
        (mf.make_empty_file(tmp_path / "empty.mp4"), "empty"),
        (mf.make_text_file(tmp_path / "notes.mp4"), "not a video file"),
        (mf.make_wav_named_mp4(tmp_path / "sound.mp4"), "no video stream.*audio file"),
        (mf.make_truncated(clip("h264.mp4"), tmp_path / "half.mp4", fraction=0.5), "truncated"),
        (mf.make_truncated(clip("h264.mp4"), tmp_path / "most.mp4", fraction=0.95), "truncated"),
        (mf.make_truncated(clip("vp9.webm"), tmp_path / "half.webm", fraction=0.5), "truncated"),
        (mf.make_truncated(clip("mpeg4.avi"), tmp_path / "half.avi", fraction=0.5), "truncated"),
        (mf.make_truncated(clip("h264_8s.mp4", codec="h264", seconds=8.0), tmp_path / "cut8.mp4", fraction=0.6),
         "truncated"),
        (mf.make_image_named_mp4(tmp_path / "picture.mp4"), "still image"),
        (mf.make_truncated(clip("h264.mov", extra_args=["-movflags", "-faststart"]), tmp_path / "head.mov",
                           fraction=0.9), "not a video file.*damaged or incomplete"),
        (mf.make_video_without_frames(tmp_path / "noframes.mkv"), "without any frames"),
        (mf.make_unknown_codec_video(tmp_path / "codec.mkv"), "codec that cannot be decoded"),
    ]
    for path, message in cases:
        with pytest.raises(MediaError, match=message):
            probe_video(path)


def test_probe_limits(tmp_path):
    huge = mf.make_still_video(tmp_path / "huge.mp4", seconds=1, size=(4096, 2304))
    with pytest.raises(MediaError, match=r"4096x2304.*8,294,400 pixels"):
        probe_video(huge)
    long = mf.make_still_video(tmp_path / "long.mkv", seconds=constants.MAX_VIDEO_SECONDS + 10)
    with pytest.raises(MediaError, match=r"610\.0 s long.*600 s"):
        probe_video(long)


def test_readers_refuse_bad_files(tmp_path):
    notes = mf.make_text_file(tmp_path / "notes.mp4")
    for call in (lambda: read_frames(notes), lambda: read_soundtrack(notes), lambda: frame_at(notes, 0.0),
                 lambda: mux_mp4(notes, np.zeros(100, np.float32), 16000, tmp_path / "out.mp4")):
        with pytest.raises(MediaError, match="not a video file"):
            call()
    assert not (tmp_path / "out.mp4").exists()


# --- frames --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, options", [("h264.mp4", {"gop": 10}), ("vp9.webm", {}), ("mpeg4.avi", {}),
                                           ("ffv1.mkv", {}), ("hevc.mp4", {"gop": 12})])
def test_frames_at_model_rate(clip, name, options):
    path = clip(f"gop_{name}", codec=name.split(".")[0], **options)
    frames, times = read_frames(path)                     # 4 fps, 224x224
    assert frames.dtype == np.uint8
    assert frames.shape == (12, constants.VIDEO_SIZE, constants.VIDEO_SIZE, 3)
    np.testing.assert_allclose(times, np.arange(12) / 4)
    assert times.dtype == np.float64
    assert _indices(frames) == _expected_indices(times)
    # the stretch keeps the square where it was, horizontally
    xs = mf.square_positions(75, FPS, EVENTS)
    side = (120 - 20) // 3
    for frame, index in zip(frames, _indices(frames)):
        expected = (xs[index] * (160 - side) + side / 2) / 160
        assert mf.square_center_x(frame) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("fps", [25, 30, 7.3])
def test_frames_at_other_rates(clip, fps):
    frames, times = read_frames(clip("h264.mp4"), fps=fps, size=None)
    assert frames.shape == (math.ceil(SECONDS * fps - 1e-9), 120, 160, 3)
    assert _indices(frames) == _expected_indices(times)
    if fps == 25:
        assert _indices(frames) == list(range(75))


def test_frames_time_range(clip):
    path = clip("h264_gop.mp4", codec="h264", gop=10)
    frames, times = read_frames(path, fps=4, start_s=1.3, duration_s=1.0)
    np.testing.assert_allclose(times, [1.3, 1.55, 1.8, 2.05])
    assert _indices(frames) == [32, 38, 45, 51]
    frames, times = read_frames(path, fps=25, size=(64, 48), start_s=2.5)
    assert frames.shape == (13, 48, 64, 3)
    assert _indices(frames) == list(range(62, 75))


def test_frames_letterbox(clip):
    frames, _ = read_frames(clip("h264.mp4"), fps=1, size=(224, 224), letterbox=True)
    assert frames.shape == (3, 224, 224, 3)
    bar = (224 - 168) // 2                              # 160x120 fits as 224x168
    assert frames[:, :bar - 1].max() == 0 and frames[:, 224 - bar + 1:].max() == 0
    assert frames[:, bar + 2: 224 - bar - 2].mean() > mf.BACKGROUND / 2
    stretched, _ = read_frames(clip("h264.mp4"), fps=1, size=(224, 224))
    assert stretched[:, :bar].min() > 0


def test_frame_at_matches_read_frames(clip):
    path = clip("h264_gop.mp4", codec="h264", gop=10)
    for t in (0.0, 1.0, 1.33, 2.99):
        frame = frame_at(path, t)
        assert frame.shape == (120, 160, 3)
        assert mf.decode_frame_index(frame) == int(math.floor(t * FPS + 1e-6))
    frames, _ = read_frames(path, fps=1, size=(80, 60), start_s=1.33, duration_s=0.5)
    np.testing.assert_array_equal(frame_at(path, 1.33, size=(80, 60)), frames[0])
    with pytest.raises(TimeRangeError, match="3.000 s long"):
        frame_at(path, 3.0)


@pytest.mark.parametrize("start_s, duration_s", [(-0.1, None), (3.0, None), (5.0, 1.0), (2.0, 2.0),
                                                 (0.0, 0.0), (1.0, -1.0), (float("nan"), None),
                                                 (0.0, float("inf"))])
def test_frames_bad_time_range(clip, start_s, duration_s):
    with pytest.raises(TimeRangeError) as err:
        read_frames(clip("h264.mp4"), start_s=start_s, duration_s=duration_s)
    if math.isfinite(start_s) and (duration_s is None or 0 < duration_s < math.inf):
        assert "3.000 s long" in str(err.value)


def test_frames_bad_arguments(clip):
    path = clip("h264.mp4")
    for fps in (0, -4, float("nan")):
        with pytest.raises(MediaError, match="fps"):
            read_frames(path, fps=fps)
    for size in ((0, 10), (10,), "224", (10.5, 10)):
        with pytest.raises(MediaError, match="size"):
            read_frames(path, size=size)
    with pytest.raises(MediaError, match="GiB"):
        read_frames(path, fps=20000, size=(2000, 2000))


# --- soundtrack ----------------------------------------------------------------------------------

def test_soundtrack_16k_from_44k(clip):
    path = clip("h264.mp4")
    assert probe_video(path).audio_sr == 44100
    audio = read_soundtrack(path)
    assert audio.dtype == np.float32 and audio.shape == (int(SECONDS * constants.MODEL_SR),)
    assert np.abs(audio).max() > 0.3 and np.sqrt(np.mean(audio ** 2)) > 0.005   # not silence
    np.testing.assert_allclose(mf.onset_times_s(audio, constants.MODEL_SR), EVENTS, atol=0.005)


@pytest.mark.parametrize("name", ["vp9.webm", "ffv1.mkv", "mpeg4.avi", "prores.mov"])
def test_soundtrack_other_containers(clip, name):
    audio = read_soundtrack(clip(name), sr=22050)
    assert audio.shape == (int(SECONDS * 22050),)
    np.testing.assert_allclose(mf.onset_times_s(audio, 22050), EVENTS, atol=0.005)


@pytest.mark.parametrize("name", ["h264.mp4", "vp9.webm", "ffv1.mkv", "mpeg4.avi"])
def test_soundtrack_time_range(clip, name):
    audio = read_soundtrack(clip(name), start_s=1.0, duration_s=1.5)
    assert audio.shape == (24000,)
    np.testing.assert_allclose(mf.onset_times_s(audio, 16000), [0.25, 1.2], atol=0.005)
    audio = read_soundtrack(clip(name), start_s=2.0)            # to the end
    assert audio.shape == (16000,)
    np.testing.assert_allclose(mf.onset_times_s(audio, 16000), [0.2], atol=0.005)


def test_soundtrack_range_errors(clip):
    with pytest.raises(TimeRangeError, match="3.000 s long"):
        read_soundtrack(clip("h264.mp4"), start_s=2.0, duration_s=5.0)


def test_soundtrack_without_audio(clip):
    with pytest.raises(MediaError, match="has no audio track"):
        read_soundtrack(clip("silent.mp4", codec="h264", audio_sr=None))


# --- real clips ----------------------------------------------------------------------------------

def _manifest(shared_dir):
    videos = shared_dir / "videos"
    if not (videos / "manifest.csv").is_file():
        pytest.skip("shared videos not found")
    with open(videos / "manifest.csv", newline="") as fh:
        return videos, list(csv.DictReader(fh))


def test_real_clips_probe_and_frames(shared_dir):
    videos, rows = _manifest(shared_dir)
    assert len(rows) == 5
    for row in rows:
        info = probe_video(videos / row["file"])
        assert info.duration_s == pytest.approx(float(row["seconds"]), abs=0.05), row["id"]
        assert info.has_audio == (row["has_audio"] == "true"), row["id"]
        assert info.codec == "h264" and info.width <= 640 and info.fps > 0
        frames, times = read_frames(videos / row["file"], fps=4, duration_s=1.0)
        assert frames.shape == (4, 224, 224, 3) and frames.std() > 5   # real pictures, not blank


def test_real_clip_soundtrack_is_not_silent(shared_dir):
    videos, _ = _manifest(shared_dir)
    path = videos / "renpy_oa4_launch.mp4"
    info = probe_video(path)
    audio = read_soundtrack(path, sr=16000)
    assert audio.shape == (int(round(info.duration_s * 16000)),)
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
    assert rms_db > -45 and np.abs(audio).max() > 0.05
    # the rumble from about 2.5 s on is louder than the first second
    assert np.sqrt(np.mean(audio[48000:112000] ** 2)) > 0.5 * np.sqrt(np.mean(audio[:16000] ** 2))
    # an audio track shorter than the video is padded with silence to the video's length
    short = videos / "mecavideo_balle1.mp4"
    audio = read_soundtrack(short, sr=16000)
    assert audio.shape == (int(round(probe_video(short).duration_s * 16000)),)
    assert np.abs(audio[int(1.2 * 16000):]).max() < 1e-3


# --- mux -----------------------------------------------------------------------------------------

def _video_packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def _streams(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        v = (video.codec_context.codec.canonical_name, video.codec_context.pix_fmt,
             float(video.duration * video.time_base))
        audio = [(a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels,
                  float(a.duration * a.time_base), a.metadata.get("handler_name")) for a in container.streams.audio]
    return v, audio


def _new_audio(sr=16000, seconds=SECONDS, events=(0.3, 1.0, 2.8)):
    return mf.click_track(seconds, sr, list(events), amplitude=0.9)


def _decoded_stream(path, index):
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        return np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1).T


def test_mux_copies_h264(clip, tmp_path):
    src = clip("h264.mp4")
    out = mux_mp4(src, _new_audio(), 16000, tmp_path / "out.mp4")
    (vcodec, _, vdur), audio = _streams(out)
    assert vcodec == "h264" and vdur == pytest.approx(SECONDS)
    src_packets, out_packets = _video_packets(src), _video_packets(out)
    assert [len(p) for p in out_packets] == [len(p) for p in src_packets]
    assert hashlib.sha256(b"".join(out_packets)).digest() == hashlib.sha256(b"".join(src_packets)).digest()
    assert len(audio) == 1
    codec, sr, channels, adur, title = audio[0]
    assert (codec, sr, channels) == ("aac", 48000, 2)
    assert abs(adur - vdur) <= AAC_FRAME_S
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")          # +faststart
    decoded = _decoded_stream(out, 0)
    np.testing.assert_allclose(decoded[:, 0], decoded[:, 1], atol=1e-6)   # mono duplicated
    np.testing.assert_allclose(mf.onset_times_s(decoded, 48000), [0.3, 1.0, 2.8], atol=0.003)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


@pytest.mark.parametrize("name, codec", [("mpeg4.avi", "mpeg4"), ("vp9.webm", "vp9"), ("hevc.mp4", "hevc")])
def test_mux_copies_mp4_friendly_codecs(clip, tmp_path, name, codec):
    out = mux_mp4(clip(name), _new_audio(), 16000, tmp_path / "out.mp4")
    (vcodec, _, vdur), audio = _streams(out)
    assert vcodec == codec and vdur == pytest.approx(SECONDS)
    assert [len(p) for p in _video_packets(out)] == [len(p) for p in _video_packets(clip(name))]
    assert abs(audio[0][3] - vdur) <= AAC_FRAME_S


@pytest.mark.parametrize("name", ["vp8.webm", "mjpeg.avi"])
def test_mux_reencodes_other_codecs(clip, tmp_path, name):
    out = mux_mp4(clip(name), _new_audio(), 16000, tmp_path / "out.mp4")
    (vcodec, pix_fmt, vdur), audio = _streams(out)
    assert (vcodec, pix_fmt) == ("h264", "yuv420p")
    assert vdur == pytest.approx(SECONDS, abs=1e-3) and abs(audio[0][3] - vdur) <= AAC_FRAME_S
    frames, times = read_frames(out, fps=25, size=None)
    assert _indices(frames) == list(range(75))               # same pictures, same timing


def test_mux_stereo_and_length(clip, tmp_path):
    src = clip("h264.mp4")
    stereo = np.zeros((int(5.0 * 44100), 2), np.float32)     # longer than the video: trimmed
    stereo[int(1.0 * 44100):int(1.01 * 44100), 0] = 0.5
    out = mux_mp4(src, stereo, 44100, tmp_path / "long.mp4")
    decoded = _decoded_stream(out, 0)
    assert abs(decoded.shape[0] / 48000 - SECONDS) <= AAC_FRAME_S
    assert np.abs(decoded[:, 0]).max() > 0.3 and np.abs(decoded[:, 1]).max() < 0.01
    short = mux_mp4(src, _new_audio(seconds=1.0, events=(0.5,)), 16000, tmp_path / "short.mp4")
    _, audio = _streams(short)                                # shorter: padded with silence
    assert abs(audio[0][3] - SECONDS) <= AAC_FRAME_S


def test_mux_keeps_original_as_track(clip, tmp_path):
    out = mux_mp4(clip("h264.mp4"), _new_audio(), 16000, tmp_path / "track.mp4", original_audio="track")
    _, audio = _streams(out)
    assert len(audio) == 2
    assert audio[0][4] == "Foley" and audio[1][4] == "Original soundtrack"
    np.testing.assert_allclose(mf.onset_times_s(_decoded_stream(out, 0), 48000), [0.3, 1.0, 2.8], atol=0.003)
    np.testing.assert_allclose(mf.onset_times_s(_decoded_stream(out, 1), 44100), EVENTS, atol=0.003)


def test_mux_mixes_original_under_new_audio(clip, tmp_path):
    out = mux_mp4(clip("h264.mp4"), _new_audio(), 16000, tmp_path / "mix.mp4", original_audio="mix",
                  original_gain_db=-12.0)
    _, audio = _streams(out)
    assert len(audio) == 1
    mixed = _decoded_stream(out, 0).mean(axis=1)
    for t in [0.3, 1.0, 2.8]:                                   # the new clicks
        assert np.abs(mixed[int(t * 48000):int((t + 0.01) * 48000)]).max() > 0.7
    original_peak = np.abs(read_soundtrack(clip("h264.mp4"), sr=48000)).max()
    for t in EVENTS:                                            # the original, 12 dB down
        peak = np.abs(mixed[int(t * 48000):int((t + 0.01) * 48000)]).max()
        assert peak == pytest.approx(original_peak * 10 ** (-12 / 20), rel=0.15)


def test_mux_mix_is_peak_safe(clip, tmp_path):
    loud = np.full(int(SECONDS * 16000), 0.99, np.float32) * np.sign(np.sin(np.arange(48000) * 0.05))
    out = mux_mp4(clip("h264.mp4"), loud.astype(np.float32), 16000, tmp_path / "loud.mp4",
                  original_audio="mix", original_gain_db=0.0)
    assert np.abs(_decoded_stream(out, 0)).max() < 1.1        # scaled, not wrapped or clipped hard


def test_mux_real_clip_with_offset_free_sync(shared_dir, tmp_path):
    videos, _ = _manifest(shared_dir)
    src = videos / "renpy_oa4_launch.mp4"
    info = probe_video(src)
    out = mux_mp4(src, _new_audio(seconds=info.duration_s), 16000, tmp_path / "renpy.mp4",
                  original_audio="track")
    (vcodec, _, vdur), audio = _streams(out)
    assert vcodec == "h264" and vdur == pytest.approx(info.duration_s, abs=1e-3)
    assert len(audio) == 2 and abs(audio[0][3] - vdur) <= AAC_FRAME_S


def test_mux_bad_inputs_leave_no_file(clip, tmp_path):
    src, silent = clip("h264.mp4"), clip("silent.mp4", codec="h264", audio_sr=None)
    out = tmp_path / "out.mp4"
    good = _new_audio()
    nan = good.copy()
    nan[100] = np.nan
    cases = [
        (lambda: mux_mp4(silent, good, 16000, out, original_audio="track"), "has no audio track"),
        (lambda: mux_mp4(silent, good, 16000, out, original_audio="mix"), "has no audio track"),
        (lambda: mux_mp4(src, good, 16000, out, original_audio="replace"), "original_audio"),
        (lambda: mux_mp4(src, good, 16000, out, original_gain_db=float("nan")), "original_gain_db"),
        (lambda: mux_mp4(src, nan, 16000, out), "NaN"),
        (lambda: mux_mp4(src, np.zeros(0, np.float32), 16000, out), "empty"),
        (lambda: mux_mp4(src, np.zeros((100, 6), np.float32), 16000, out), "mono or stereo"),
        (lambda: mux_mp4(src, good, 0, out), "sr"),
        (lambda: mux_mp4(tmp_path / "missing.mp4", good, 16000, out), "not found"),
        (lambda: mux_mp4(src, good, 16000, tmp_path), "folder"),
    ]
    for call, message in cases:
        with pytest.raises(MediaError, match=message):
            call()
        assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_mux_ffmpeg_failure_keeps_previous_output(clip, tmp_path, monkeypatch):
    src = clip("h264.mp4")
    out = mux_mp4(src, _new_audio(), 16000, tmp_path / "out.mp4")
    before = out.read_bytes()
    monkeypatch.setattr(media, "_video_args", lambda codec: ["-c:v", "no_such_encoder"])
    with pytest.raises(MediaError, match="ffmpeg failed.*Unknown encoder 'no_such_encoder'"):
        mux_mp4(src, _new_audio(), 16000, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


# --- frames -> MP4 (the one writer: simulated scenes and synthetic fixtures call it) --------------

def test_write_frames_mp4_round_trip_with_and_without_audio(tmp_path):
    rng = np.random.default_rng(3)
    frames = np.zeros((12, 32, 48, 3), np.uint8)
    for i in range(12):                                  # a bright block moving right
        frames[i, 8:24, 2 * i:2 * i + 12] = (200, 120, 40)
    out = media.write_frames_mp4(frames, tmp_path / "f.mp4", fps=12.0)
    info = probe_video(out)
    assert (info.width, info.height) == (48, 32) and info.fps == pytest.approx(12.0)
    assert not info.has_audio and info.duration_s == pytest.approx(1.0, abs=0.01)
    back, _ = read_frames(out, fps=12.0, size=None)
    assert back.shape == frames.shape
    assert np.abs(back.astype(float) - frames.astype(float)).mean() < 4.0
    audio = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    with_audio = media.write_frames_mp4(frames, tmp_path / "a.mp4", fps=12.0, audio=audio, sr=16000)
    assert probe_video(with_audio).has_audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "f.mp4"]    # no temporaries


@pytest.mark.parametrize("frames, needle", [
    (np.zeros((4, 31, 32, 3), np.uint8), "even"),
    (np.zeros((0, 32, 32, 3), np.uint8), "T >= 1"),
    (np.zeros((4, 32, 32), np.uint8), "(T, H, W, 3)"),
])
def test_write_frames_mp4_refuses_bad_frames_before_writing(frames, needle, tmp_path):
    target = tmp_path / "bad.mp4"
    with pytest.raises(MediaError, match=re.escape(needle)):
        media.write_frames_mp4(frames, target, fps=10.0)
    assert not list(tmp_path.iterdir())
    with pytest.raises(MediaError, match="fps"):
        media.write_frames_mp4(np.zeros((2, 8, 8, 3), np.uint8), target, fps=0)
    assert not list(tmp_path.iterdir())
