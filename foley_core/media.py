"""Video files: probe, frames at a fixed rate, the original soundtrack, and MP4 muxing.

Reading uses PyAV (FFmpeg's libraries); writing an MP4 runs the ffmpeg binary bundled with
imageio-ffmpeg. Time 0 is the first frame of the video stream, for frames and audio alike, so
frames, soundtrack and generated stems share one timeline.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from foley_core import constants
from foley_core.atomic import atomic_path, work_dir
from foley_core.audio_io import (
    _as_audio_array, _av_reason, _check_sr, check_input_file, decode_audio_stream, mono_float, open_container,
    resample, to_mono,
)
from foley_core.errors import MediaError, TimeRangeError

__all__ = [
    "VideoInfo", "probe_video", "video_duration_s", "read_frames", "frame_at", "read_soundtrack",
    "mux_mp4", "write_frames_mp4", "MP4_COPY_CODECS", "ffmpeg_exe",
]

# Video codecs an MP4 can carry as they are; anything else is re-encoded to H.264.
MP4_COPY_CODECS = frozenset({"h264", "hevc", "mpeg4", "av1", "vp9"})
MUX_SR = constants.EXPORT_SR
MUX_AUDIO_BITRATE = "256k"
MAX_FRAMES_BYTES = 4 * 1024**3     # read_frames refuses to allocate more than this
_STILL_IMAGE_FORMATS = ("image2", "_pipe")   # single pictures (PNG, JPEG, ...); animated GIF is a video
_TIME_EPS = 1e-6


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` found. Times in seconds; `fps` is the average frame rate.

    `start_s` is the container timestamp of the first frame (usually 0); every time in this
    module's API counts from that frame.
    """

    path: str
    duration_s: float
    fps: float
    width: int
    height: int
    n_frames: int
    codec: str
    has_audio: bool
    audio_sr: int | None
    audio_channels: int | None
    audio_codec: str | None
    start_s: float = 0.0


# --- probing -------------------------------------------------------------------------------------

def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file (MP4, MOV, WebM, MKV, AVI), checking that it can be used.

    Raises MediaError for a missing, empty, truncated or corrupt file, a file that is not a video,
    a video without frames or with a codec that cannot be decoded, and one above
    `constants.MAX_VIDEO_PIXELS` or `constants.MAX_VIDEO_SECONDS`. The duration is measured from
    the packets at the end of the stream, so it is right even when the container has none.
    """
    p = check_input_file(path, "video file")
    stat = p.stat()
    return _probe_cached(str(p.resolve()), stat.st_mtime_ns, stat.st_size)


def video_duration_s(path: str | os.PathLike) -> float:
    """Duration of the video stream in seconds (see `probe_video`)."""
    return probe_video(path).duration_s


@functools.lru_cache(maxsize=64)
def _probe_cached(path: str, mtime_ns: int, size: int) -> VideoInfo:
    return _probe(Path(path))


def _open(p: Path) -> av.container.InputContainer:
    return open_container(p, kind="a video", expected="a video file")


def _video_stream(container: av.container.InputContainer, p: Path) -> av.VideoStream:
    fmt = container.format.name
    if not container.streams.video:
        kind = f"an audio file ({fmt})" if container.streams.audio else f"'{fmt}' data"
        raise MediaError(f"'{p.name}' contains no video stream: it is {kind}, not a video. "
                         "Choose an MP4, MOV, WebM, MKV or AVI video.")
    if any(tag in fmt for tag in _STILL_IMAGE_FORMATS):
        raise MediaError(f"'{p.name}' is a still image ({fmt}), not a video. "
                         "Choose an MP4, MOV, WebM, MKV or AVI video.")
    stream = _main_video_stream(container)
    if stream is None:
        raise MediaError(f"'{p.name}' holds only a cover picture, not a video.")
    if stream.codec_context is None:
        raise MediaError(f"'{p.name}' uses a video codec that cannot be decoded here "
                         f"({_codec_label(stream)}). Convert it to H.264 MP4 first.")
    return stream


def _main_video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream that is not an attached cover picture."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _codec_label(stream: av.stream.Stream) -> str:
    ctx = stream.codec_context
    if ctx is not None:
        return ctx.codec.canonical_name   # 'av1', not the decoder's name 'libdav1d'
    return stream.metadata.get("codec_name") or "unknown codec"


def _origin_s(stream: av.VideoStream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _probe(p: Path) -> VideoInfo:
    with _open(p) as container:
        vs = _video_stream(container, p)
        ctx = vs.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > constants.MAX_VIDEO_PIXELS:
            raise MediaError(f"'{p.name}' is {width}x{height} pixels; the largest supported video is "
                             f"{constants.MAX_VIDEO_PIXELS:,} pixels (3840x2160, 4K UHD). Scale it down first.")
        first = _first_frame(container, vs, p)
        if width * height == 0:
            width, height = first.width, first.height
        origin = _origin_s(vs)
        declared_end = _declared_video_end_s(vs)
        video_end, all_end, counted = _packet_ends(container, vs, declared_end)
        if video_end is None:
            raise MediaError(f"'{p.name}' has a video stream without any frames.")
        duration_s = video_end - origin
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        # a last packet without a duration makes the data look one frame short
        tolerance = max(0.05, 1.5 / fps if fps > 0 else 0.5)
        container_s = container.duration / av.time_base if container.duration else None
        container_start = container.start_time / av.time_base if container.start_time is not None else 0.0
        claims = [(declared_end, video_end), (container_s, all_end - container_start if all_end else None)]
        missing = [claim - found for claim, found in claims if claim and found is not None]
        if missing and max(missing) > tolerance:
            said = max(declared_end - origin if declared_end else 0.0, container_s or 0.0)
            raise MediaError(f"'{p.name}' is truncated or damaged: its header says {said:.2f} s but the video "
                             f"data ends at {duration_s:.2f} s. Re-export or re-download the complete file.")
        if duration_s <= 0:
            duration_s = (1.0 / fps) if fps > 0 else 0.0
        if duration_s > constants.MAX_VIDEO_SECONDS:
            raise MediaError(f"'{p.name}' is {duration_s:.1f} s long; the longest supported video is "
                             f"{constants.MAX_VIDEO_SECONDS:.0f} s. Trim it first.")
        n_frames = vs.frames if vs.frames > 0 else (counted or max(1, int(round(duration_s * fps))))
        if fps <= 0:
            fps = n_frames / duration_s if duration_s > 0 else 0.0
        audio = container.streams.audio[0] if container.streams.audio else None
        actx = audio.codec_context if audio is not None else None
        return VideoInfo(
            path=str(p), duration_s=float(duration_s), fps=float(fps), width=width, height=height,
            n_frames=int(n_frames), codec=_codec_label(vs), has_audio=audio is not None,
            audio_sr=int(actx.sample_rate) if actx is not None and actx.sample_rate else None,
            audio_channels=int(actx.channels) if actx is not None and actx.channels else None,
            audio_codec=_codec_label(audio) if audio is not None else None, start_s=origin,
        )


def _first_frame(container: av.container.InputContainer, vs: av.VideoStream, p: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(vs):
            return frame
    except av.FFmpegError as err:
        raise MediaError(f"The video in '{p.name}' cannot be decoded ({vs.codec_context.name}: "
                         f"{_av_reason(err)}); the file is damaged.") from None
    raise MediaError(f"'{p.name}' has a video stream without any frames.")


def _declared_video_end_s(vs: av.VideoStream) -> float | None:
    """The latest end time (container seconds) the headers claim for the video stream, or None."""
    origin = _origin_s(vs)
    claims = []
    if vs.duration:
        claims.append(origin + float(vs.duration * vs.time_base))
    rate = vs.average_rate or vs.base_rate
    if vs.frames > 0 and rate:
        claims.append(origin + vs.frames / float(rate))
    tag = vs.metadata.get("DURATION") or vs.metadata.get("duration")
    if tag:
        claims.append(_parse_hms(tag))   # Matroska: the track's end timestamp
    claims = [c for c in claims if c and math.isfinite(c) and c > 0]
    return max(claims) if claims else None


def _parse_hms(text: str) -> float:
    try:
        parts = [float(x) for x in text.strip().split(":")]
    except ValueError:
        return 0.0
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _packet_ends(container: av.container.InputContainer, vs: av.VideoStream,
                 declared_end_s: float | None) -> tuple[float | None, float | None, int | None]:
    """End time of the last video packet and of the last packet of any stream (container s).

    Only the last few seconds are demuxed when the duration is known (no decoding); otherwise
    the whole file is, and the video packets are counted (third value).
    """
    if declared_end_s is not None and declared_end_s - _origin_s(vs) > 4.0:
        try:
            container.seek(int((declared_end_s - 4.0) / vs.time_base), stream=vs, backward=True)
            video_end, all_end, _ = _scan_packets(container, vs)
            if video_end is not None:
                return video_end, all_end, None
        except av.FFmpegError:
            pass   # no index, or the data there is missing: scan the whole file
    container.seek(0)
    return _scan_packets(container, vs)


def _scan_packets(container: av.container.InputContainer,
                  vs: av.VideoStream) -> tuple[float | None, float | None, int]:
    video_end = all_end = None
    count = 0
    try:
        for packet in container.demux():
            if packet.pts is None or packet.size == 0:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            all_end = end if all_end is None else max(all_end, end)
            if packet.stream.index == vs.index:
                count += 1
                video_end = end if video_end is None else max(video_end, end)
    except av.FFmpegError:
        pass  # a damaged tail: whatever was read counts, the truncation check reports the rest
    return video_end, all_end, count


# --- frames --------------------------------------------------------------------------------------

def read_frames(path: str | os.PathLike, *, fps: float = constants.VIDEO_FPS,
                size: tuple[int, int] | None = (constants.VIDEO_SIZE, constants.VIDEO_SIZE),
                start_s: float = 0.0, duration_s: float | None = None,
                letterbox: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Frames sampled at `fps` over [start_s, start_s + duration_s), and their times.

    Returns uint8 `(T, H, W, 3)` RGB frames (the frame on screen at each time
    t_k = start_s + k / fps) and the float64 times `(T,)`. `size` is (width, height): frames are
    stretched to exactly that size, or fitted inside it with black bars when `letterbox`; None
    keeps the stored size. `duration_s=None` reads to the end. The video is decoded once, in
    order, from the keyframe before `start_s`. Raises TimeRangeError for a range outside the video.
    """
    info = probe_video(path)
    fps = _check_positive(fps, "fps")
    start_s, end_s = _check_range(info, start_s, duration_s)
    out_w, out_h = _out_size(info, size)
    n = max(1, math.ceil((end_s - start_s) * fps - 1e-9))
    n_bytes = n * out_w * out_h * 3
    if n_bytes > MAX_FRAMES_BYTES:
        raise MediaError(f"Reading {n} frames of {out_w}x{out_h} would need {n_bytes / 1024**3:.1f} GiB "
                         f"(limit {MAX_FRAMES_BYTES / 1024**3:.0f} GiB); ask for a shorter range, a lower fps or a "
                         "smaller size.")
    times = start_s + np.arange(n, dtype=np.float64) / fps
    times = times[times < max(end_s, start_s + _TIME_EPS)]
    frames = _sample_frames(Path(info.path), times, (out_w, out_h), letterbox)
    return frames, times


def frame_at(path: str | os.PathLike, time_s: float, *, size: tuple[int, int] | None = None,
             letterbox: bool = False) -> np.ndarray:
    """The uint8 `(H, W, 3)` RGB frame on screen at `time_s` (one seek; for a scrubber)."""
    info = probe_video(path)
    start_s, _ = _check_range(info, time_s, None)
    return _sample_frames(Path(info.path), np.array([start_s]), _out_size(info, size), letterbox)[0]


def _check_positive(value: float, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MediaError(f"{name} must be a positive number, got {value!r}.") from None
    if not math.isfinite(value) or value <= 0:
        raise MediaError(f"{name} must be a positive number, got {value!r}.")
    return value


def _check_range(info: VideoInfo, start_s: float, duration_s: float | None) -> tuple[float, float]:
    """Validated (start_s, end_s); the end may pass the video's by at most one frame."""
    name, total = Path(info.path).name, info.duration_s
    try:
        start_s = float(start_s)
        duration_s = None if duration_s is None else float(duration_s)
    except (TypeError, ValueError):
        raise TimeRangeError(f"the start and the length must be numbers of seconds, got {start_s!r}, "
                             f"{duration_s!r}.") from None
    if not math.isfinite(start_s) or (duration_s is not None and not math.isfinite(duration_s)):
        raise TimeRangeError(f"the start and the length must be finite numbers of seconds, got {start_s!r}, {duration_s!r}.")
    if start_s < 0 or start_s >= total:
        raise TimeRangeError(f"the start {start_s:.3f} s is outside the video: '{name}' is {total:.3f} s long "
                             f"(valid start: 0 to {total:.3f} s).")
    if duration_s is None:
        return start_s, total
    if duration_s <= 0:
        raise TimeRangeError(f"the length must be positive, got {duration_s:.3f} s.")
    end_s = start_s + duration_s
    slack = 1.0 / info.fps if info.fps > 0 else 0.0
    if end_s > total + slack + _TIME_EPS:
        raise TimeRangeError(f"The range {start_s:.3f}-{end_s:.3f} s goes past the end of the video: '{name}' is "
                             f"{total:.3f} s long.")
    return start_s, end_s


def _out_size(info: VideoInfo, size: tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        return info.width, info.height
    try:
        width, height = (int(v) for v in size)
        ok = (width, height) == tuple(size) and 0 < width <= 8192 and 0 < height <= 8192
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MediaError(f"size must be (width, height) in whole pixels between 1 and 8192, got {size!r}.")
    return width, height


def _sample_frames(p: Path, times: np.ndarray, size: tuple[int, int], letterbox: bool) -> np.ndarray:
    """Decode once from the keyframe before times[0]; keep the frame on screen at each time."""
    out = np.empty((len(times), size[1], size[0], 3), dtype=np.uint8)
    for attempt in ("seek", "from_start"):
        with _open(p) as container:
            vs = _main_video_stream(container)
            vs.thread_type = "AUTO"
            origin = _origin_s(vs)
            sar = vs.sample_aspect_ratio or vs.codec_context.sample_aspect_ratio
            pixel_aspect = (float(sar) if sar and sar > 0 else 1.0) if letterbox else None
            if attempt == "seek" and times[0] > 0:
                try:
                    container.seek(int((origin + times[0]) / vs.time_base), stream=vs, backward=True)
                except av.FFmpegError:
                    continue
            if _decode_into(container, vs, p, times, origin, size, pixel_aspect, out,
                            strict_start=attempt == "seek" and times[0] > 0):
                return out
    raise MediaError(f"'{p.name}' could not be decoded at {times[0]:.3f} s.")


def _decode_into(container, vs, p: Path, times: np.ndarray, origin: float, size: tuple[int, int],
                 letterbox: float | None, out: np.ndarray, strict_start: bool) -> bool:
    """Fill `out`; False if a seek landed after times[0] (the caller then decodes from the start)."""
    k, n = 0, len(times)
    shown = shown_array = None
    last_t = None
    try:
        for frame in container.decode(vs):
            if frame.time is not None:
                t = frame.time - origin
            else:
                t = 0.0 if last_t is None else last_t + 1.0 / float(vs.average_rate or 25)
            last_t = t
            if shown is None and t > times[0] + _TIME_EPS and strict_start:
                return False
            while k < n and times[k] < t - _TIME_EPS:
                if shown is None:       # sample before the first frame: show the first frame
                    shown, shown_array = frame, None
                if shown_array is None:
                    shown_array = _to_rgb(shown, size, letterbox)
                out[k] = shown_array
                k += 1
            if k >= n:
                return True
            shown, shown_array = frame, None
    except av.FFmpegError as err:
        raise MediaError(f"The video in '{p.name}' cannot be decoded near {times[k]:.2f} s: the file is damaged "
                         f"({_av_reason(err)}).") from None
    if shown is None:
        raise MediaError(f"'{p.name}' has no video frames at {times[0]:.3f} s.")
    if shown_array is None:
        shown_array = _to_rgb(shown, size, letterbox)
    out[k:] = shown_array
    return True


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int], letterbox: float | None) -> np.ndarray:
    """RGB at `size`: stretched, or with `letterbox` = the pixel aspect ratio, fitted inside it."""
    width, height = size
    if not letterbox:
        return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    display_w = frame.width * letterbox
    scale = min(width / display_w, height / frame.height)
    fit_w = min(width, max(1, int(round(display_w * scale))))
    fit_h = min(height, max(1, int(round(frame.height * scale))))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - fit_h) // 2, (width - fit_w) // 2
    canvas[top:top + fit_h, left:left + fit_w] = frame.to_ndarray(
        format="rgb24", width=fit_w, height=fit_h, interpolation="AREA")
    return canvas


# --- soundtrack ----------------------------------------------------------------------------------

def read_soundtrack(path: str | os.PathLike, *, sr: int = constants.MODEL_SR, start_s: float = 0.0,
                    duration_s: float | None = None) -> np.ndarray:
    """The video's original audio over [start_s, start_s + duration_s), mono float32 at `sr`.

    Aligned to the video's timeline (time 0 = first video frame) and exactly
    `round(duration * sr)` samples long; where the audio track is shorter than the range the rest
    is silence. Resampled with soxr VHQ. MediaError if the video has no audio track.
    """
    audio, _ = _soundtrack(path, sr=sr, start_s=start_s, duration_s=duration_s, channels=1)
    return audio[:, 0]


def _soundtrack(path: str | os.PathLike, *, sr: int, start_s: float, duration_s: float | None,
                channels: int | None) -> tuple[np.ndarray, VideoInfo]:
    """(n, channels) float32 soundtrack at `sr` (channels None keeps the file's)."""
    _check_sr(sr, "sr")
    info = probe_video(path)
    p = Path(info.path)
    if not info.has_audio:
        raise MediaError(f"'{p.name}' has no audio track.")
    start_s, end_s = _check_range(info, start_s, duration_s)
    margin_s = 0.05   # decoded either side so the resampler has context at the edges
    lo_s = max(0.0, start_s - margin_s)
    with _open(p) as container:
        vs, stream = _main_video_stream(container), container.streams.audio[0]
        if stream.codec_context is None:
            raise MediaError(f"The audio codec of '{p.name}' ({_codec_label(stream)}) cannot be decoded here.")
        file_sr = int(stream.codec_context.sample_rate)
        audio = decode_audio_stream(container, stream, sr=file_sr, origin_s=_origin_s(vs), start_s=lo_s,
                                    end_s=end_s + margin_s, name=p.name)
    if channels == 1:
        audio = to_mono(audio)[:, None]
    elif channels == 2 and audio.shape[1] != 2:
        audio = np.repeat(to_mono(audio)[:, None], 2, axis=1)   # mono or surround to stereo
    audio = resample(audio, file_sr, sr)
    offset = int(round((start_s - lo_s) * sr))
    n = int(round((end_s - start_s) * sr))
    audio = audio[offset:offset + n]
    if audio.shape[0] < n:
        audio = np.concatenate([audio, np.zeros((n - audio.shape[0], audio.shape[1]), np.float32)])
    return np.ascontiguousarray(audio, dtype=np.float32), info


# --- muxing --------------------------------------------------------------------------------------

def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def mux_mp4(video_path: str | os.PathLike, audio: np.ndarray, sr: int, out_path: str | os.PathLike, *,
            original_audio: str = "drop", original_gain_db: float = -12.0) -> Path:
    """Write an MP4 of `video_path`'s picture with `audio` as its soundtrack; return `out_path`.

    The video stream is copied when MP4 can hold its codec (h264, hevc, mpeg4, av1, vp9), else
    re-encoded to H.264 (libx264, yuv420p). The audio is AAC stereo 48 kHz (mono duplicated),
    padded with silence or trimmed to the video's duration. `original_audio`: "drop" (only the
    new audio), "track" (the original kept as a second, labelled audio track) or "mix" (the
    original mixed under the new audio at `original_gain_db`). If the audio would exceed full
    scale it is scaled down to peak at 1.0 rather than clipped. Written atomically, +faststart.
    """
    if original_audio not in ("drop", "track", "mix"):
        raise MediaError(f"original_audio must be 'drop', 'track' or 'mix', got {original_audio!r}.")
    gain_db = float(original_gain_db)
    if not math.isfinite(gain_db):
        raise MediaError(f"original_gain_db must be a finite number of dB, got {original_gain_db!r}.")
    _check_sr(sr, "sr")
    audio = _as_audio_array(audio)
    if audio.ndim == 2 and audio.shape[1] > 2:
        raise MediaError(f"mux_mp4 takes mono or stereo audio, got {audio.shape[1]} channels; mix it down first.")
    if audio.shape[0] == 0:
        raise MediaError("The audio to put in the MP4 is empty (0 samples).")
    if not np.isfinite(audio).all():
        raise MediaError("The audio to put in the MP4 contains NaN/infinite values; the render failed.")
    info = probe_video(video_path)
    src = Path(info.path)
    out_path = Path(out_path)
    if out_path.is_dir():
        raise MediaError(f"Cannot write '{out_path}': it is a folder. Give a file name ending in .mp4.")
    if original_audio != "drop" and not info.has_audio:
        raise MediaError(f"'{src.name}' has no audio track, so original_audio={original_audio!r} is impossible; "
                         "use 'drop'.")

    n = int(round(info.duration_s * MUX_SR))
    stereo = audio if audio.ndim == 2 else audio[:, None]
    stereo = resample(stereo, sr, MUX_SR) if sr != MUX_SR else stereo
    if stereo.shape[1] == 1:
        stereo = np.repeat(stereo, 2, axis=1)
    stereo = _fit_length(stereo, n)
    if original_audio == "mix":
        original, _ = _soundtrack(src, sr=MUX_SR, start_s=0.0, duration_s=info.duration_s, channels=2)
        stereo = stereo + _fit_length(original, n) * np.float32(10 ** (gain_db / 20))
    peak = float(np.abs(stereo).max()) if stereo.size else 0.0
    if peak > 1.0:
        stereo = stereo / np.float32(peak)

    with work_dir("mux-") as tmp:
        wav = tmp / "audio.wav"
        sf.write(str(wav), stereo, MUX_SR, subtype="FLOAT")
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
        fmt, video_index = _format_and_video_index(src)
        if fmt.startswith("avi"):
            cmd += ["-fflags", "+genpts"]     # AVI packets carry no pts
        cmd += ["-i", str(src)]
        if info.start_s:
            cmd += ["-itsoffset", f"{info.start_s:.6f}"]   # our timeline starts at the first frame
        cmd += ["-i", str(wav), "-map", f"0:{video_index}", "-map", "1:a:0"]
        if original_audio == "track":
            cmd += ["-map", "0:a:0"]
        cmd += _video_args(info.codec)
        cmd += ["-c:a:0", "aac", "-b:a:0", MUX_AUDIO_BITRATE, "-ar:a:0", str(MUX_SR), "-ac:a:0", "2",
                "-metadata:s:a:0", "title=Foley", "-metadata:s:a:0", "handler_name=Foley",
                "-disposition:a:0", "default"]
        if original_audio == "track":
            copy = info.audio_codec == "aac"
            cmd += ["-c:a:1", "copy"] if copy else ["-c:a:1", "aac", "-b:a:1", MUX_AUDIO_BITRATE]
            cmd += ["-metadata:s:a:1", "title=Original soundtrack",
                    "-metadata:s:a:1", "handler_name=Original soundtrack", "-disposition:a:1", "0"]
        cmd += ["-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4"]
        try:
            with atomic_path(out_path, suffix=".mp4") as tmp_out:
                _run_ffmpeg([*cmd, str(tmp_out)], what=f"writing '{out_path.name}'")
        except OSError as err:
            raise MediaError(f"Cannot write '{out_path}': {err.strerror or err}.") from None
    return out_path


def write_frames_mp4(frames: np.ndarray, out_path: str | os.PathLike, *, fps: float,
                     audio: np.ndarray | None = None, sr: int = constants.MODEL_SR,
                     crf: int = 18) -> Path:
    """Encode RGB frames (T, H, W, 3) uint8 as an H.264 MP4 (yuv420p, +faststart) at `fps`;
    with `audio` (mono float at `sr`) muxed as AAC. Written atomically; return `out_path`.

    yuv420p needs even frame sides: odd ones raise MediaError before anything is written.
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise MediaError(f"Frames must be a (T, H, W, 3) RGB array with T >= 1, got shape {frames.shape}.")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise MediaError(f"MP4 (yuv420p) needs even frame sides; these frames are {w}x{h}. "
                         "Render them at an even size.")
    fps = _check_positive(fps, "fps")
    out_path = Path(out_path)
    with work_dir("frames-") as tmp:
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "-"]
        if audio is not None:
            wav = tmp / "audio.wav"
            _check_sr(sr, "sr")
            sf.write(wav, mono_float(audio, require_samples=True), sr, subtype="PCM_16")
            cmd += ["-i", str(wav), "-c:a", "aac", "-b:a", "128k"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(crf)), "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", "-f", "mp4"]
        with atomic_path(out_path, suffix=".mp4") as tmp_out:
            _run_ffmpeg([*cmd, str(tmp_out)], what=f"writing '{out_path.name}'", stdin=frames.tobytes())
    return out_path


def _fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[0] >= n:
        return audio[:n]
    return np.concatenate([audio, np.zeros((n - audio.shape[0], audio.shape[1]), dtype=audio.dtype)])


def _format_and_video_index(p: Path) -> tuple[str, int]:
    with _open(p) as container:
        return container.format.name, _main_video_stream(container).index


def _video_args(codec: str) -> list[str]:
    if codec in MP4_COPY_CODECS:
        args = ["-c:v", "copy"]
        if codec == "hevc":
            args += ["-tag:v", "hvc1"]           # the tag Apple players require
        if codec == "mpeg4":
            args += ["-bsf:v", "mpeg4_unpack_bframes"]   # DivX 'packed B-frames' are invalid in MP4
        return args
    # 4:2:0 needs even dimensions; limited range because players mishandle full-range H.264 (MJPEG)
    return ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2:out_range=tv", "-color_range", "tv"]


@functools.lru_cache(maxsize=1)
def _prctl():
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int, prctl) -> None:
    """In the forked child, before exec: the kernel kills it when its parent dies, even by
    SIGKILL, so an export never leaves an orphaned ffmpeg behind. Only a prepared ctypes call
    and plain os calls run here (the child of a threaded parent must not take locks)."""
    prctl(_PR_SET_PDEATHSIG, 9)             # SIGKILL
    if os.getppid() != parent_pid:          # the parent died before prctl took effect
        os._exit(1)


def _child_options() -> dict:
    prctl = _prctl() if sys.platform.startswith("linux") else None
    if prctl is None:
        return {}
    return {"preexec_fn": functools.partial(_die_with_parent, os.getpid(), prctl)}


def _run_ffmpeg(cmd: list[str], *, what: str, stdin: bytes | None = None) -> None:
    # subprocess.run kills ffmpeg when it is interrupted (Ctrl-C, SIGTERM via atomic.terminate_raises)
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False, **_child_options())
    except OSError as err:
        raise MediaError(f"ffmpeg could not be started for {what}: {err}.") from None
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg failed while {what}: {_last_meaningful_line(proc.stderr)}")


_FFMPEG_GENERIC = ("conversion failed", "error opening output", "error while", "exiting", "terminating thread",
                   "task finished with error", "nothing was written", "error selecting an encoder",
                   "could not open encoder before eof")


def _last_meaningful_line(stderr: bytes) -> str:
    """The last stderr line that says what went wrong, without ffmpeg's '[ctx @ 0x..]' prefixes."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln).strip() for ln in stderr.decode(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    for line in reversed(lines):
        if not any(g in line.lower() for g in _FFMPEG_GENERIC):
            return line
    return lines[-1] if lines else "(no message)"


# ------------------------------------------------------------------------------ frame cache

_frame_cache: collections.OrderedDict = collections.OrderedDict()
_frame_lock = threading.Lock()


def read_frames_cached(path: str, *, fps: float, size: tuple[int, int], start_s: float,
                       duration_s: float) -> tuple[np.ndarray, np.ndarray, tuple]:
    """`read_frames` of a selection, remembered for the last few (file, range, rate, size):
    regenerating with another seed or curve reads the video once. Returns (frames, times_s,
    key); the key (file identity included) lets encoders cache their features too."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, round(start_s, 6),
           round(duration_s, 6), float(fps), tuple(size))
    with _frame_lock:
        hit = _frame_cache.get(key)
        if hit is not None:
            _frame_cache.move_to_end(key)
            return hit[0], hit[1], key
    frames, times = read_frames(path, fps=fps, size=size, start_s=start_s, duration_s=duration_s)
    with _frame_lock:
        _frame_cache[key] = (frames, times)
        while len(_frame_cache) > 4:
            _frame_cache.popitem(last=False)
    return frames, times, key
