"""Audio files in and out: read any common format (or a video's soundtrack), resample, write WAV.

Reading tries soundfile (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3) first and PyAV (FFmpeg)
for the rest (M4A/AAC, the audio of MP4/MOV/MKV/WebM/AVI files). Resampling is soxr 'VHQ'.
Arrays follow the project convention: float32, mono `(n,)` or `(n, channels)`, in [-1, 1].
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

from foley_core import bwf, constants
from foley_core.atomic import atomic_path
from foley_core.errors import FoleyError, MediaError

MAX_SR = 768_000
MAX_CHANNELS = 16
# A file may end a little before what its header declares (encoder padding, rounding); beyond
# this it is reported as truncated.
_TRUNCATION_TOLERANCE_S = 0.05
_TRUNCATION_TOLERANCE_FRACTION = 0.01

__all__ = [
    "read_audio", "resample", "write_wav", "write_export_wav", "to_mono", "check_input_file",
    "decode_audio_stream", "open_container",
]


def check_input_file(path: str | os.PathLike, kind: str = "file",
                     error: type[FoleyError] = MediaError) -> Path:
    """Return `path` as a Path if it is an existing, non-empty, readable regular file.

    The one check of a file a user names: a FIFO, a device or a folder is refused (reading a
    FIFO would hang). Raises `error` (MediaError by default; a caller whose failures are, say,
    CurveError passes that class) with a one-line message.
    """
    try:
        p = Path(path)
    except TypeError:
        raise error(f"Expected a path to a {kind}, got {type(path).__name__}.") from None
    if not p.exists():
        raise error(f"{kind[:1].upper() + kind[1:]} not found: '{p}'. Check the path and try again.")
    if p.is_dir():
        raise error(f"'{p}' is a folder, not a {kind}. Choose a file inside it.")
    if not p.is_file():
        raise error(f"'{p}' is not a regular file (a pipe or a device?); choose a {kind}.")
    try:
        size = p.stat().st_size
    except OSError as err:
        raise error(f"Cannot read '{p}': {err.strerror}.") from None
    if size == 0:
        raise error(f"'{p.name}' is empty (0 bytes). It may be an interrupted download or copy; "
                    "choose the complete file.")
    if not os.access(p, os.R_OK):
        raise error(f"'{p.name}' cannot be read (permission denied).")
    return p


# --- reading -------------------------------------------------------------------------------------

def read_audio(path: str | os.PathLike, *, sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file (or the soundtrack of a video) as float32 in [-1, 1].

    Returns `(audio, sr)`: audio is `(n,)` when `mono` (channels averaged), else `(n, channels)`.
    With `sr` the audio is resampled (soxr VHQ) to that rate; otherwise the file's rate is kept.
    Raises MediaError for a missing, empty, truncated or non-audio file.
    """
    if sr is not None:
        _check_sr(sr, "sr")
    p = check_input_file(path, "audio file")
    audio, file_sr = _read_soundfile(p)
    if audio is None:
        audio, file_sr = _read_pyav(p)
    if audio.shape[0] == 0:
        raise MediaError(f"'{p.name}' contains no audio samples (0 s long).")
    if mono:
        audio = to_mono(audio)
    if sr is not None and sr != file_sr:
        audio = resample(audio, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(audio, dtype=np.float32), int(file_sr)


def _read_soundfile(p: Path) -> tuple[np.ndarray | None, int]:
    """Read with libsndfile; (None, 0) when libsndfile does not know the format."""
    try:
        info = sf.info(str(p))
    except sf.LibsndfileError:
        return None, 0
    try:
        audio, file_sr = sf.read(str(p), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise MediaError(f"'{p.name}' is truncated or damaged and cannot be decoded ({err}). "
                         "Re-export or re-download the file.") from None
    declared = _wav_declared_frames(p, info) if info.format in ("WAV", "WAVEX") else info.frames
    _check_not_truncated(p, declared / file_sr if declared else None, audio.shape[0] / file_sr)
    return audio, int(file_sr)


def _wav_declared_frames(p: Path, info) -> int | None:
    """Frames the RIFF 'data' chunk header declares (libsndfile silently shortens a cut WAV)."""
    block_align = info.channels * _SUBTYPE_BYTES.get(info.subtype, 0)
    if block_align == 0:
        return None
    with open(p, "rb") as fh:
        header = fh.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mean "unknown" (a WAV streamed to a pipe)
                return None if chunk_size in (0, 0xFFFFFFFF) else chunk_size // block_align
            fh.seek(chunk_size + (chunk_size & 1), os.SEEK_CUR)


_SUBTYPE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                  "ULAW": 1, "ALAW": 1}


def _check_not_truncated(p: Path, declared_s: float | None, decoded_s: float) -> None:
    if declared_s is None or not math.isfinite(declared_s) or declared_s <= 0:
        return
    tolerance = max(_TRUNCATION_TOLERANCE_S, _TRUNCATION_TOLERANCE_FRACTION * declared_s)
    if decoded_s < declared_s - tolerance:
        raise MediaError(f"'{p.name}' is truncated or damaged: it declares {declared_s:.2f} s of audio but "
                         f"only {decoded_s:.2f} s could be read. Re-export or re-download the file.")


def open_container(path: str | os.PathLike, *, kind: str = "audio or video",
                   expected: str = "a media file") -> av.container.InputContainer:
    """Open a media file with PyAV for reading (use it as a context manager).

    A file FFmpeg cannot open raises MediaError: "'NAME' cannot be opened as `kind`: it is not
    `expected`, or it is damaged or incomplete ...", e.g. kind="a video", expected="a video file".
    """
    p = Path(path)
    try:
        return av.open(str(p), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise MediaError(f"'{p.name}' cannot be opened as {kind}: it is not {expected}, or it is damaged or "
                         f"incomplete (e.g. a download that stopped early). FFmpeg said: {_av_reason(err)}."
                         ) from None


def _av_reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _read_pyav(p: Path) -> tuple[np.ndarray, int]:
    with open_container(p) as container:
        if not container.streams.audio:
            what = "a video without sound" if container.streams.video else "not an audio file"
            raise MediaError(f"'{p.name}' has no audio track ({what}).")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise MediaError(f"'{p.name}' uses an audio codec that cannot be decoded here; convert it to WAV "
                             "or FLAC first.")
        file_sr = int(stream.codec_context.sample_rate or stream.rate or 0)
        if file_sr <= 0:
            raise MediaError(f"'{p.name}' has an audio track without a sample rate; it is damaged.")
        origin_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        audio = decode_audio_stream(container, stream, sr=file_sr, origin_s=origin_s, name=p.name)
        # only a stream's own duration is trusted; a container's may be a bitrate estimate (ADTS)
        declared_s = float(stream.duration * stream.time_base) if stream.duration else None
        _check_not_truncated(p, declared_s, audio.shape[0] / file_sr)
        if declared_s is not None:
            # the decoder returns whole codec frames; the container knows where the audio ends
            audio = audio[: int(round(declared_s * file_sr))]
    return audio, file_sr


def decode_audio_stream(container: av.container.InputContainer, stream: av.AudioStream, *, sr: int,
                        origin_s: float = 0.0, start_s: float = 0.0, end_s: float | None = None,
                        name: str = "file") -> np.ndarray:
    """Decode an audio stream to float32 `(n, channels)` at its own rate `sr`, placed on a timeline.

    Sample 0 of the result is at time `start_s` after `origin_s` (container seconds), using each
    frame's timestamp, so gaps and a late start become silence and the result stays in sync with
    the video. With `end_s` the result is exactly `round((end_s - start_s) * sr)` samples long
    (zero-padded past the end of the track). Seeks close to `start_s` first.
    """
    channels = stream.codec_context.channels or 1
    resampler = av.AudioResampler(format="fltp")
    chunks: list[tuple[int, np.ndarray]] = []
    next_pos: int | None = None
    n_total = None if end_s is None else int(round((end_s - start_s) * sr))
    first_s = origin_s + start_s
    # timestamps are rounded to the stream's time base (1 ms in Matroska): a frame that starts
    # within that (or 5 ms) of where the previous one ended is contiguous, not a gap or overlap
    jitter = max(2, math.ceil(float(stream.time_base) * sr) + 1, int(0.005 * sr))
    try:
        if start_s > 0.5:
            # land before start_s: the seek goes to a packet at or before the target
            container.seek(max(0, int((first_s - 0.5) / stream.time_base)), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is not None:
                pos = int(round((float(frame.pts * frame.time_base) - first_s) * sr))
                # keep contiguous audio contiguous despite timestamp rounding
                if next_pos is not None and abs(pos - next_pos) <= jitter:
                    pos = next_pos
            else:
                pos = next_pos if next_pos is not None else 0
            for out in resampler.resample(frame):
                chunks.append((pos, _planar_to_array(out)))
                pos += out.samples
            next_pos = pos
            if n_total is not None and next_pos >= n_total:
                break
    except (av.FFmpegError, ValueError) as err:   # ValueError: the format changed mid-stream
        raise MediaError(f"The audio of '{name}' cannot be decoded: the file is damaged or truncated "
                         f"({_av_reason(err)}).") from None
    for out in resampler.resample(None):
        chunks.append((next_pos or 0, _planar_to_array(out)))
        next_pos = (next_pos or 0) + out.samples
    if chunks:
        channels = chunks[0][1].shape[1]
    end = n_total if n_total is not None else max((pos + data.shape[0] for pos, data in chunks), default=0)
    audio = np.zeros((max(end, 0), channels), dtype=np.float32)
    for pos, data in chunks:
        if data.shape[1] != channels:
            raise MediaError(f"The audio of '{name}' changes from {channels} to {data.shape[1]} channels part way "
                             "through; convert it to a plain WAV first.")
        lo, hi = max(pos, 0), min(pos + data.shape[0], end)
        if hi > lo:
            audio[lo:hi] = data[lo - pos: hi - pos]
    return audio


def _planar_to_array(frame: av.AudioFrame) -> np.ndarray:
    """(samples, channels) float32 from a planar float frame (to_ndarray gives (channels, samples))."""
    return frame.to_ndarray().reshape(-1, frame.samples).T.astype(np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of `(n, channels)` audio; `(n,)` is returned unchanged (float32)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1, dtype=np.float32) if audio.ndim == 2 else audio


def mono_float(audio, name: str = "audio", *, require_samples: bool = False) -> np.ndarray:
    """Validate samples handed to an analysis: float (n,) or (n, channels) -> mono float32 (n,).

    Raises MediaError, naming `name`, for non-numeric or integer samples, other shapes, NaN or
    infinite values, and (with `require_samples`) no samples at all. Torch tensors are accepted.
    """
    if hasattr(audio, "detach"):  # torch tensor, without importing torch
        audio = audio.detach().cpu().numpy()
    x = np.asarray(audio)
    if x.dtype.kind not in "fiu":
        raise MediaError(f"{name} must be numeric samples, got dtype {x.dtype}.")
    if x.dtype.kind in "iu":
        raise MediaError(f"{name} must be float samples in [-1, 1], got integer dtype {x.dtype}; "
                         "divide by 32768 (16-bit) first.")
    if x.ndim == 2 and x.shape[1] <= 16:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise MediaError(f"{name} must be mono (n,) or (n, channels), got shape {x.shape}.")
    if require_samples and x.size == 0:
        raise MediaError(f"{name} has no samples.")
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise MediaError(f"{name} has a NaN or infinite sample at index {bad}.")
    return x.astype(np.float32, copy=False)


# --- resampling ----------------------------------------------------------------------------------

def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample mono `(n,)` or multi-channel `(n, channels)` audio with soxr 'VHQ' (float32)."""
    _check_sr(orig_sr, "orig_sr")
    _check_sr(target_sr, "target_sr")
    audio = _as_audio_array(audio)
    if orig_sr == target_sr:
        return audio.copy()
    if audio.shape[0] == 0:
        return np.zeros((0, *audio.shape[1:]), dtype=np.float32)
    out = soxr.resample(np.ascontiguousarray(audio), int(orig_sr), int(target_sr), quality="VHQ")
    return np.asarray(out, dtype=np.float32)


def _check_sr(sr: object, name: str) -> None:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 0 < int(sr) <= MAX_SR:
        raise MediaError(f"{name} must be a whole number of Hz between 1 and {MAX_SR}, got {sr!r}.")


def _as_audio_array(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.dtype.kind != "f":
        raise MediaError(f"Audio must be a float array with values in [-1, 1], got dtype {audio.dtype}; "
                         "convert integer PCM with x / 32768 (16-bit) first.")
    if audio.ndim not in (1, 2):
        raise MediaError(f"Audio must be (n,) or (n, channels), got shape {audio.shape}.")
    if audio.ndim == 2 and not 1 <= audio.shape[1] <= MAX_CHANNELS:
        raise MediaError(f"Audio has shape {audio.shape}: expected (n, channels) with at most {MAX_CHANNELS} "
                         "channels. A (channels, n) array must be transposed first.")
    return audio.astype(np.float32, copy=False)


# --- writing -------------------------------------------------------------------------------------

def write_wav(path: str | os.PathLike, audio: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> Path:
    """Write `audio` to a WAV file atomically and return its path.

    Values are clipped to [-1, 1]; NaN or infinite values are refused with MediaError (they mean a
    broken render, and would otherwise be written as loud garbage or silence).
    """
    _check_sr(sr, "sr")
    path = Path(path)
    audio = _as_audio_array(audio)
    if audio.shape[0] == 0:
        raise MediaError(f"Refusing to write '{path.name}': the audio is empty (0 samples).")
    _check_finite(audio, sr, path)
    if not sf.check_format("WAV", subtype):
        raise MediaError(f"WAV cannot hold subtype {subtype!r}; use one of PCM_16, PCM_24, PCM_32, FLOAT.")
    if path.is_dir():
        raise MediaError(f"Cannot write '{path}': it is a folder. Give a file name ending in .wav.")
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    n_bytes = audio.shape[0] * channels * _SUBTYPE_BYTES.get(subtype, 4)
    container_format = "RF64" if n_bytes > 0xFFFFFFFF - 1_000_000 else "WAV"  # plain WAV stops at 4 GiB
    try:
        with atomic_path(path, suffix=".wav") as tmp:
            sf.write(str(tmp), np.clip(audio, -1.0, 1.0), int(sr), subtype=subtype, format=container_format)
    except OSError as err:
        raise MediaError(f"Cannot write '{path}': {err.strerror or err}.") from None
    except sf.LibsndfileError as err:
        raise MediaError(f"Cannot write '{path}': {err}.") from None
    return path


def _check_finite(audio: np.ndarray, sr: int, path: Path) -> None:
    bad = ~np.isfinite(audio)
    if bad.any():
        first = int(np.argmax(bad.any(axis=1) if audio.ndim == 2 else bad))
        raise MediaError(f"Refusing to write '{path.name}': the audio contains {int(bad.sum())} NaN/infinite "
                         f"values (first at {first / sr:.3f} s). The render failed; try again or change "
                         "the settings.")


def write_export_wav(path: str | os.PathLike, audio: np.ndarray, sr: int, *, bext: bwf.Bext | None = None,
                     ixml: bytes | None = None) -> Path:
    """Write a delivery WAV: resampled to EXPORT_SR (48 kHz) if needed, 24-bit PCM, mono or stereo as given.

    With `bext` (and optionally an `ixml` document) it is a Broadcast WAV: those chunks sit between
    `fmt ` and `data`; `bext.time_reference` counts samples at 48 kHz.
    """
    _check_sr(sr, "sr")
    audio = _as_audio_array(audio)
    if sr != constants.EXPORT_SR:
        _check_finite(audio, sr, Path(path))    # before soxr spreads a NaN over its whole filter
        audio = resample(audio, sr, constants.EXPORT_SR)
    path = write_wav(path, audio, constants.EXPORT_SR, subtype=constants.EXPORT_SUBTYPE)
    chunks = {}
    if bext is not None:
        chunks[b"bext"] = bext.to_bytes()
    if ixml is not None:
        chunks[b"iXML"] = ixml
    if chunks:
        try:
            bwf.add_chunks(path, chunks)
        except OSError as err:
            raise MediaError(f"Cannot write '{path}': {err.strerror or err}.") from None
    return path
