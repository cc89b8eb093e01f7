"""foley_core.audio_io: reading any format, soxr resampling, atomic WAV writing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import media_fixtures as mf
from foley_core import audio_io, constants
from foley_core.audio_io import read_audio, resample, write_export_wav, write_wav
from foley_core.errors import FoleyError, MediaError

EVENTS = [0.5, 1.25]


def _sine(freq_hz: float, sr: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-20)


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("subtype, step", [("PCM_16", 2 ** -15), ("PCM_24", 2 ** -23), ("FLOAT", 1e-7)])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_round_trip(tmp_path, subtype, step, channels):
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.9, 0.9, size=(4000, channels) if channels > 1 else 4000).astype(np.float32)
    path = write_wav(tmp_path / "x.wav", audio, 22050, subtype=subtype)
    assert sf.info(str(path)).subtype == subtype
    back, sr = read_audio(path, mono=False)
    assert sr == 22050 and back.dtype == np.float32
    assert back.shape == (4000, channels)
    np.testing.assert_allclose(back.reshape(audio.shape), audio, atol=step)


def test_write_wav_clips_to_full_scale(tmp_path):
    path = write_wav(tmp_path / "loud.wav", np.array([0.0, 1.5, -2.0, 0.25], np.float32), 8000)
    back, _ = read_audio(path)
    np.testing.assert_allclose(back, [0.0, 32767 / 32768, -1.0, 0.25], atol=1e-4)


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3", "m4a", "opus"])
def test_read_formats_keep_events(media_factory, suffix):
    sr = 48000 if suffix == "opus" else 44100
    path = media_factory("make_audio", f"clicks.{suffix}", seconds=2.0, sr=sr, events_s=EVENTS)
    audio, file_sr = read_audio(path)
    assert file_sr == sr and audio.ndim == 1 and audio.dtype == np.float32
    assert abs(audio.shape[0] - 2 * sr) <= 0.01 * sr          # decoder padding is trimmed
    assert np.abs(audio).max() <= 1.0
    onsets = mf.onset_times_s(audio, sr)
    assert len(onsets) == len(EVENTS)
    np.testing.assert_allclose(onsets, EVENTS, atol=0.005)


@pytest.mark.parametrize("name, codec, audio_sr", [("clip.mp4", "h264", 44100), ("clip.webm", "vp9", 48000),
                                                    ("clip.mkv", "ffv1", 44100)])
def test_read_audio_of_a_video(media_factory, name, codec, audio_sr):
    path = media_factory("make_video", name, seconds=2.0, codec=codec, audio_events_s=EVENTS)
    audio, sr = read_audio(path, mono=False)
    assert sr == audio_sr and audio.shape[1] == 2
    assert abs(audio.shape[0] / sr - 2.0) < 0.01
    np.testing.assert_allclose(mf.onset_times_s(audio, sr), EVENTS, atol=0.005)


def test_mono_and_resample_on_read(media_factory):
    path = media_factory("make_audio", "stereo.flac", seconds=2.0, sr=44100, events_s=EVENTS, channels=2)
    stereo, _ = read_audio(path, mono=False)
    mono, _ = read_audio(path)
    np.testing.assert_allclose(mono, stereo.mean(axis=1), atol=1e-6)
    audio, sr = read_audio(path, sr=16000)
    assert sr == 16000 and audio.shape == (32000,)
    np.testing.assert_allclose(mf.onset_times_s(audio, sr), EVENTS, atol=0.002)


# --- resampling ----------------------------------------------------------------------------------

def test_resample_sine_keeps_frequency_and_level():
    x = _sine(1000.0, 16000, seconds=1.0)
    y = resample(x, 16000, 48000)
    assert y.dtype == np.float32 and y.shape == (48000,)
    core = y[4800:-4800]                              # away from the edges
    assert abs(_rms_db(core) - _rms_db(x[1600:-1600])) < 0.05
    spectrum = np.abs(np.fft.rfft(core * np.hanning(core.size)))
    freqs = np.fft.rfftfreq(core.size, 1 / 48000)
    assert abs(freqs[np.argmax(spectrum)] - 1000.0) < 48000 / core.size
    # no images of the 1 kHz tone above the old Nyquist (8 kHz): 120 dB below the peak
    assert spectrum[freqs > 8500].max() < spectrum.max() * 1e-6


def test_resample_down_removes_content_above_new_nyquist():
    x = _sine(12000.0, 48000) + _sine(1000.0, 48000)
    y = resample(x, 48000, 16000)
    spectrum = np.abs(np.fft.rfft(y[1600:-1600] * np.hanning(y.size - 3200)))
    freqs = np.fft.rfftfreq(y.size - 3200, 1 / 16000)
    alias = spectrum[np.abs(freqs - 4000) < 50].max()   # 12 kHz would fold to 4 kHz
    assert alias < spectrum.max() * 1e-5


def test_resample_multichannel_matches_per_channel():
    left, right = _sine(440.0, 22050), _sine(3000.0, 22050, amplitude=0.2)
    both = resample(np.stack([left, right], axis=1), 22050, 44100)
    assert both.shape == (44100, 2)
    np.testing.assert_allclose(both[:, 0], resample(left, 22050, 44100), atol=1e-6)
    np.testing.assert_allclose(both[:, 1], resample(right, 22050, 44100), atol=1e-6)


def test_resample_same_rate_and_empty():
    x = _sine(100.0, 8000)
    y = resample(x, 8000, 8000)
    np.testing.assert_array_equal(x, y)
    assert y is not x
    assert resample(np.zeros((0, 2), np.float32), 8000, 16000).shape == (0, 2)


@pytest.mark.parametrize("orig_sr, target_sr", [(0, 16000), (16000, -1), (16000.5, 8000), (True, 8000)])
def test_resample_bad_rates(orig_sr, target_sr):
    with pytest.raises(MediaError, match="Hz"):
        resample(np.zeros(10, np.float32), orig_sr, target_sr)


# --- export --------------------------------------------------------------------------------------

def test_write_export_wav_is_48k_24bit(tmp_path):
    x = _sine(1000.0, 16000)
    path = write_export_wav(tmp_path / "mix.wav", x, 16000)
    info = sf.info(str(path))
    assert (info.samplerate, info.subtype, info.channels) == (constants.EXPORT_SR, constants.EXPORT_SUBTYPE, 1)
    assert info.frames == 48000
    back, _ = read_audio(path)
    np.testing.assert_allclose(back, resample(x, 16000, 48000), atol=2 ** -22)


def test_write_export_wav_keeps_stereo_and_48k_input(tmp_path):
    x = np.stack([_sine(500.0, 48000), np.zeros(48000, np.float32)], axis=1)
    path = write_export_wav(tmp_path / "st.wav", x, 48000)
    back, sr = read_audio(path, mono=False)
    assert sr == 48000 and back.shape == (48000, 2)
    np.testing.assert_allclose(back, x, atol=2 ** -22)


# --- bad input -----------------------------------------------------------------------------------

def test_read_audio_bad_files(tmp_path, media_factory):
    with pytest.raises(MediaError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(MediaError, match="folder"):
        read_audio(tmp_path)
    with pytest.raises(MediaError, match="empty"):
        read_audio(mf.make_empty_file(tmp_path / "empty.wav"))
    with pytest.raises(MediaError, match="'notes.wav' cannot be opened as audio or video: it is not a media "
                                         "file, or it is damaged or incomplete.*FFmpeg said: "):
        read_audio(mf.make_text_file(tmp_path / "notes.wav"))
    silent_video = media_factory("make_video", "silent.mp4", seconds=1.0, audio_sr=None)
    with pytest.raises(MediaError, match="has no audio track"):
        read_audio(silent_video)


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3", "m4a"])
def test_read_audio_truncated(tmp_path, media_factory, suffix):
    good = media_factory("make_audio", f"long.{suffix}", seconds=2.0, sr=44100, events_s=EVENTS)
    cut = mf.make_truncated(good, tmp_path / f"cut.{suffix}", fraction=0.5)
    with pytest.raises(MediaError, match="truncated|damaged|incomplete"):
        read_audio(cut)


def test_read_audio_header_only_wav(tmp_path, media_factory):
    good = media_factory("make_audio", "long.wav", seconds=2.0, sr=44100, events_s=EVENTS)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(good.read_bytes()[:44])
    with pytest.raises(MediaError, match="truncated"):
        read_audio(header_only)


def test_write_wav_refuses_nan_and_keeps_old_file(tmp_path):
    path = write_wav(tmp_path / "out.wav", _sine(100.0, 8000), 8000)
    before = path.read_bytes()
    bad = _sine(100.0, 8000)
    bad[4000] = np.nan
    with pytest.raises(MediaError, match=r"NaN/infinite.*0\.500 s"):
        write_wav(path, bad, 8000)
    bad[4000] = np.inf
    with pytest.raises(MediaError, match="NaN"):
        write_export_wav(path, bad, 8000)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]   # no temp files left


@pytest.mark.parametrize("audio, match", [
    (np.zeros(100, np.int16), "float"),
    (np.zeros((2, 48000), np.float32), "transposed"),
    (np.zeros((10, 2, 2), np.float32), "shape"),
    (np.zeros(0, np.float32), "empty"),
])
def test_write_wav_bad_arrays(tmp_path, audio, match):
    with pytest.raises(MediaError, match=match):
        write_wav(tmp_path / "x.wav", audio, 16000)
    assert not (tmp_path / "x.wav").exists()


def test_write_wav_bad_arguments(tmp_path):
    x = np.zeros(100, np.float32)
    with pytest.raises(MediaError, match="sr"):
        write_wav(tmp_path / "x.wav", x, 0)
    with pytest.raises(MediaError, match="subtype"):
        write_wav(tmp_path / "x.wav", x, 16000, subtype="MP3ISH")
    with pytest.raises(MediaError, match="folder"):
        write_wav(tmp_path, x, 16000)
    assert issubclass(MediaError, FoleyError)
    assert audio_io.to_mono(np.ones((5, 2), np.float32)).shape == (5,)
