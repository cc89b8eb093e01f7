"""Small real test media with KNOWN content, written with the ffmpeg of imageio-ffmpeg.

Import from tests as `import media_fixtures` (pytest puts tests/ on sys.path).

`make_video` draws a white square that moves horizontally on a dark background and reverses
direction ("contact") at each time in `audio_events_s`; the audio has a short 2 kHz click that
starts exactly at each of those times. Every frame also carries its own index in a strip of
`CODE_BITS` black/white blocks along the bottom (`decode_frame_index` reads it back, also after
a resize), so a test can tell exactly which source frame a decoder returned.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile as sf

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

CODE_BITS = 10               # frame index strip: up to 1023 frames
CODE_STRIP_FRACTION = 1 / 6  # bottom part of the frame that holds the index strip
BACKGROUND = 24              # dark grey background level
CLICK_HZ = 2000.0
CLICK_S = 0.012

# codec name -> (ffmpeg encoder, extra encoder options)
VIDEO_ENCODERS: dict[str, tuple[str, list[str]]] = {
    # veryfast keeps B-frames, so decode order differs from display order as in real files
    "h264": ("libx264", ["-preset", "veryfast", "-pix_fmt", "yuv420p"]),
    "hevc": ("libx265", ["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"]),
    "mpeg4": ("mpeg4", ["-q:v", "3"]),
    "vp8": ("libvpx", ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k"]),
    "vp9": ("libvpx-vp9", ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k"]),
    "av1": ("libsvtav1", ["-preset", "12", "-pix_fmt", "yuv420p"]),
    "mjpeg": ("mjpeg", ["-q:v", "3", "-pix_fmt", "yuvj420p"]),
    "ffv1": ("ffv1", []),
    "prores": ("prores_ks", ["-profile:v", "0"]),
    "theora": ("libtheora", ["-q:v", "7"]),
}
# container -> default audio encoder (opus only runs at 48 kHz)
AUDIO_ENCODERS: dict[str, list[str]] = {
    "mp4": ["-c:a", "aac", "-b:a", "128k"],
    "mov": ["-c:a", "aac", "-b:a", "128k"],
    "mkv": ["-c:a", "flac"],
    "webm": ["-c:a", "libopus", "-b:a", "96k", "-ar", "48000"],
    "avi": ["-c:a", "pcm_s16le"],
}


def run_ffmpeg(args: list[str], *, stdin: bytes | None = None) -> None:
    """Run the bundled ffmpeg; raise RuntimeError with its stderr on failure."""
    nostdin = ["-nostdin"] if stdin is None else []
    proc = subprocess.run([FFMPEG, "-hide_banner", *nostdin, "-y", "-loglevel", "error", *args],
                          input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-2000:]}")


# --- known content -----------------------------------------------------------------------------

def click_track(seconds: float, sr: int, events_s: list[float] | None, *,
                amplitude: float = 0.8, channels: int = 1) -> np.ndarray:
    """Silence with a decaying 2 kHz click starting exactly at each event time (float32)."""
    n = int(round(seconds * sr))
    audio = np.zeros(n, dtype=np.float32)
    t = np.arange(int(CLICK_S * sr)) / sr
    click = (amplitude * np.sin(2 * np.pi * CLICK_HZ * t) * np.exp(-t / (CLICK_S / 4))).astype(np.float32)
    for event_s in events_s or []:
        start = int(round(event_s * sr))
        stop = min(n, start + click.size)
        if 0 <= start < n:
            audio[start:stop] += click[: stop - start]
    if channels > 1:
        audio = np.repeat(audio[:, None], channels, axis=1)
    return audio


def square_positions(n_frames: int, fps: float, events_s: list[float] | None) -> np.ndarray:
    """Left x of the square, as a fraction of the free width in [0, 1], for each frame index.

    The square moves at constant speed and reverses its direction at every event time, so the
    motion changes exactly at the contacts.
    """
    times = np.arange(n_frames) / fps
    duration = max(n_frames / fps, 1e-9)
    events = sorted(e for e in (events_s or []) if 0 < e < duration)
    # integrate velocity over each frame interval; the reversal lands exactly at the event time
    edges = np.concatenate([[0.0], events, [duration]])
    signs = np.array([(-1) ** i for i in range(len(edges) - 1)], dtype=float)
    knots = np.concatenate([[0.0], np.cumsum(signs * np.diff(edges))])
    x = np.interp(times, edges, knots)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def draw_frame(index: int, x_fraction: float, size: tuple[int, int]) -> np.ndarray:
    """One RGB frame (H, W, 3): dark background, white square, frame index strip at the bottom."""
    width, height = size
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    strip_h = max(4, int(round(height * CODE_STRIP_FRACTION)))
    side = max(4, (height - strip_h) // 3)
    left = int(round(x_fraction * (width - side)))
    top = (height - strip_h - side) // 2
    frame[top:top + side, left:left + side] = 255
    block_w = width / CODE_BITS
    for bit in range(CODE_BITS):
        if (index >> bit) & 1:
            frame[height - strip_h:, int(round(bit * block_w)):int(round((bit + 1) * block_w))] = 255
    return frame


def decode_frame_index(frame: np.ndarray) -> int:
    """Read back the index drawn by `draw_frame` (works after an aspect-stretch resize)."""
    height, width = frame.shape[:2]
    strip_h = max(2, int(round(height * CODE_STRIP_FRACTION)))
    strip = frame[height - strip_h + strip_h // 4: height - strip_h // 4].mean(axis=(0, 2))
    block_w = width / CODE_BITS
    index = 0
    for bit in range(CODE_BITS):
        lo, hi = int(bit * block_w + block_w / 4), int((bit + 1) * block_w - block_w / 4)
        if strip[lo:max(hi, lo + 1)].mean() > 128:
            index |= 1 << bit
    return index


def square_center_x(frame: np.ndarray) -> float:
    """Centre x of the white square as a fraction of the frame width (above the index strip)."""
    height = frame.shape[0]
    top = frame[: height - int(round(height * CODE_STRIP_FRACTION)) - 2].mean(axis=2)
    cols = np.nonzero((top > 160).any(axis=0))[0]
    return float(cols.mean() / frame.shape[1]) if cols.size else float("nan")


# --- files ---------------------------------------------------------------------------------------

def make_video(path: str | Path, *, seconds: float = 3.0, fps: float = 25, size: tuple[int, int] = (160, 120),
               codec: str = "h264", container: str | None = None,
               audio_events_s: list[float] | None = None, audio_sr: int | None = 44100,
               audio_channels: int = 2, audio_codec: list[str] | None = None, gop: int | None = None,
               extra_args: list[str] | None = None) -> Path:
    """Write a small test video with known frames (see module docstring) and return its path.

    `audio_sr=None` writes no audio track. `container` defaults to the path's suffix
    (mp4, mov, mkv, webm, avi). `gop` sets the keyframe interval in frames.
    """
    path = Path(path)
    container = container or path.suffix.lstrip(".")
    n_frames = int(round(seconds * fps))
    xs = square_positions(n_frames, fps, audio_events_s)
    frames = np.stack([draw_frame(i, xs[i], size) for i in range(n_frames)])
    encoder, options = VIDEO_ENCODERS[codec]
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "pipe:0"]
    with tempfile.TemporaryDirectory() as tmp:
        if audio_sr is not None:
            wav = Path(tmp) / "audio.wav"
            sf.write(wav, click_track(seconds, audio_sr, audio_events_s, channels=audio_channels), audio_sr,
                     subtype="PCM_16")
            args += ["-i", str(wav), "-map", "0:v", "-map", "1:a"]
            args += audio_codec if audio_codec is not None else AUDIO_ENCODERS[container]
        args += ["-c:v", encoder, *options]
        if gop is not None:
            args += ["-g", str(gop)]
        if container in ("mp4", "mov"):
            args += ["-movflags", "+faststart"]
        fmt = {"mkv": "matroska"}.get(container, container)
        args += [*(extra_args or []), "-f", fmt, str(path)]
        run_ffmpeg(args, stdin=frames.tobytes())
    return path


def make_audio(path: str | Path, *, seconds: float = 2.0, sr: int = 44100, events_s: list[float] | None = None,
               channels: int = 1, tone_hz: float | None = None, amplitude: float = 0.5) -> Path:
    """Write an audio file (format from the suffix: wav, flac, ogg, mp3, m4a, aac, opus).

    With `tone_hz` the content is a sine at that frequency; otherwise clicks at `events_s`.
    """
    path = Path(path)
    if tone_hz is not None:
        t = np.arange(int(round(seconds * sr))) / sr
        audio = (amplitude * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
        if channels > 1:
            audio = np.repeat(audio[:, None], channels, axis=1)
    else:
        audio = click_track(seconds, sr, events_s, channels=channels)
    suffix = path.suffix.lower()
    if suffix in (".wav", ".flac"):
        sf.write(path, audio, sr, subtype="PCM_16")
        return path
    codec = {".ogg": ["-c:a", "libvorbis"], ".mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
             ".m4a": ["-c:a", "aac", "-b:a", "192k"], ".aac": ["-c:a", "aac", "-f", "adts"],
             ".opus": ["-c:a", "libopus"]}[suffix]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        sf.write(wav, audio, sr, subtype="FLOAT")
        run_ffmpeg(["-i", str(wav), *codec, str(path)])
    return path


def make_text_file(path: str | Path, text: str = "this is not a video\n") -> Path:
    """A text file (give it a .mp4 name to test a misnamed file)."""
    path = Path(path)
    path.write_text(text)
    return path


def make_empty_file(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_truncated(src: str | Path, dst: str | Path, *, fraction: float = 0.5) -> Path:
    """Copy the first `fraction` of `src`'s bytes to `dst` (a download that stopped half way)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def make_still_video(path: str | Path, *, seconds: float, fps: float = 1, size: tuple[int, int] = (16, 16),
                     codec: str = "h264") -> Path:
    """A tiny flat-grey video (cheap way to make a long or a huge-resolution file)."""
    path = Path(path)
    encoder, options = VIDEO_ENCODERS[codec]
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=gray:s={size[0]}x{size[1]}:r={fps}:d={seconds}",
                "-c:v", encoder, *options, str(path)])
    return path


def make_streamed_mkv(path: str | Path, *, seconds: float = 2.0, fps: float = 25,
                      size: tuple[int, int] = (160, 120), codec: str = "vp9") -> Path:
    """A Matroska/WebM file written to a pipe, so its header carries no duration."""
    path = Path(path)
    encoder, options = VIDEO_ENCODERS[codec]
    n_frames = int(round(seconds * fps))
    xs = square_positions(n_frames, fps, None)
    frames = np.stack([draw_frame(i, xs[i], size) for i in range(n_frames)])
    fmt = "webm" if path.suffix == ".webm" else "matroska"
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "pipe:0", "-c:v", encoder, *options,
           "-f", fmt, "pipe:1"]
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace"))
    path.write_bytes(proc.stdout)
    return path


def make_video_without_frames(path: str | Path, *, seconds: float = 1.0) -> Path:
    """A Matroska file that declares an H.264 video stream but holds only audio packets."""
    import av

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        src_path = make_video(Path(tmp) / "src.mkv", seconds=seconds, audio_events_s=[0.2])
        with av.open(str(src_path)) as src, av.open(str(path), "w", format="matroska") as out:
            out.add_stream_from_template(src.streams.video[0])
            audio_out = out.add_stream_from_template(src.streams.audio[0])
            for packet in src.demux(src.streams.audio[0]):
                if packet.dts is None:
                    continue
                packet.stream = audio_out
                out.mux(packet)
    return path


def make_unknown_codec_video(path: str | Path) -> Path:
    """A Matroska file whose video codec id no decoder knows (the H.264 id renamed in place)."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_video(Path(tmp) / "src.mkv", seconds=1.0, audio_sr=None).read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    return path


def make_wav_named_mp4(path: str | Path, *, seconds: float = 1.0) -> Path:
    """A WAV file with a .mp4 name (an audio file, not a video)."""
    path = Path(path)
    sf.write(path, click_track(seconds, 16000, [0.5]), 16000, format="WAV", subtype="PCM_16")
    return path


def make_png_bomb(path: str | Path, *, width: int = 20000, height: int = 20000) -> Path:
    """A valid PNG of a few hundred bytes whose header claims width x height 1-bit pixels (all
    black): decoding it would take height x width / 8 bytes (50 MB at 20000 x 20000, 4 GB as 8-bit
    grey). Written chunk by chunk so that making it costs nothing either."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes((width + 7) // 8)          # filter byte + one row of 1-bit pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(min(height, 64))) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)     # 1-bit greyscale
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def onset_times_s(audio: np.ndarray, sr: int, *, threshold: float = 0.1, min_gap_s: float = 0.1) -> np.ndarray:
    """Times where |audio| first rises above `threshold` x its peak after `min_gap_s` of quiet."""
    mono = np.abs(audio if audio.ndim == 1 else audio.mean(axis=1))
    if mono.size == 0 or mono.max() == 0:
        return np.zeros(0)
    loud = np.nonzero(mono > threshold * mono.max())[0]
    if loud.size == 0:
        return np.zeros(0)
    starts = loud[np.concatenate([[True], np.diff(loud) > int(min_gap_s * sr)])]
    return starts / sr


def make_image_named_mp4(path: str | Path) -> Path:
    """A PNG picture with a .mp4 name (a still image, not a video)."""
    from PIL import Image

    path = Path(path)
    Image.fromarray(draw_frame(1, 0.5, (64, 48))).save(path, format="PNG")
    return path


def noise_window(n_frames: int = 20, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """In-memory model inputs: seeded noise frames uint8 (T, size, size, 3) and a square mask
    float32 (T, size, size) over pixels 4..19 (the sounding object's region)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n_frames, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n_frames, size, size), np.float32)
    masks[:, 4:20, 4:20] = 1
    return frames, masks
