"""Broadcast WAV chunks (foley_core.bwf) and the exports that carry them."""

from __future__ import annotations

import io
import subprocess
import zipfile

import numpy as np
import pytest
import soundfile as sf
import wavinfo

from foley_core import audio_io, bwf, export
from foley_core.errors import MediaError
from foley_core.media import ffmpeg_exe
from tests.test_export import make_project

OUT_SR = 48_000


def ffmpeg_decode(path) -> np.ndarray:
    """The file's audio as FFmpeg decodes it: float32 (n, 2)."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2))).astype(np.float32)


def test_bext_and_ixml_sit_between_fmt_and_data_and_the_audio_is_unchanged(tmp_path):
    audio = noise(OUT_SR // 2)
    plain, tagged = tmp_path / "plain.wav", tmp_path / "tagged.wav"
    audio_io.write_export_wav(plain, audio, OUT_SR)
    ref = 5 * OUT_SR * 3600 + 17      # past 2**32 would need the high word: checked below
    audio_io.write_export_wav(tagged, audio, OUT_SR, ixml=bwf.ixml("Reel 1", "glass shatters"),
                              bext=bwf.Bext(description="glass shatters - Reel 1", time_reference=ref))
    ids = [cid for cid, _ in bwf.read_chunks(tagged)]
    assert ids.index(b"fmt ") < ids.index(b"bext") < ids.index(b"iXML") < ids.index(b"data")
    # an independent reader (wavinfo) sees the fields
    info = wavinfo.WavInfoReader(str(tagged))
    assert info.bext.time_reference == ref
    assert info.bext.description == "glass shatters - Reel 1"
    assert info.bext.originator == "Foley studio" and info.bext.version == 1
    assert info.ixml.project == "Reel 1"
    assert (info.fmt.sample_rate, info.fmt.channel_count, info.fmt.bits_per_sample) == (48_000, 2, 24)
    # libsndfile and FFmpeg read the same samples as from the plain file
    a, sr_a = sf.read(plain, dtype="float32")
    b, sr_b = sf.read(tagged, dtype="float32")
    assert sr_a == sr_b == OUT_SR and np.array_equal(a, b)
    assert np.array_equal(ffmpeg_decode(plain), ffmpeg_decode(tagged))
    assert np.abs(b - audio).max() < 2e-7          # 24-bit quantisation only


def test_time_reference_beyond_32_bits_and_ascii_fields(tmp_path):
    path = tmp_path / "x.wav"
    ref = (1 << 32) + 12345          # a day at 48 kHz is 4.1e9 samples: the high word is used
    audio_io.write_export_wav(path, noise(480), OUT_SR,
                              bext=bwf.Bext(description="Café crème " + "x" * 300, time_reference=ref))
    fields = bwf.read_bext(path)
    assert fields["time_reference"] == ref == wavinfo.WavInfoReader(str(path)).bext.time_reference
    assert fields["description"].startswith("Cafe creme x") and len(fields["description"]) == 256
    assert fields["umid"] == bytes(64)
    with pytest.raises(MediaError):
        bwf.Bext(time_reference=-1).to_bytes()


def test_add_chunks_refuses_a_file_that_is_not_a_wav(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wave file at all")
    with pytest.raises(MediaError, match="not a RIFF WAVE"):
        bwf.add_chunks(path, {b"bext": bwf.Bext().to_bytes()})
    assert path.read_bytes() == b"not a wave file at all"


def test_stems_zip_and_mix_carry_bext_from_time_zero(tmp_path):
    p = make_project()
    report = export.export_stems_zip(p, tmp_path / "stems.zip")
    export.export_mix_wav(p, tmp_path / "mix.wav")
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        for name in report["files"]:
            if name.endswith(".wav"):
                (tmp_path / name).write_bytes(zf.read(name))
    for name, stem in zip(report["files"][1:3], p.stems):
        info = wavinfo.WavInfoReader(str(tmp_path / name))
        # the stems zip holds full-length files from the project's time 0
        assert info.bext.time_reference == 0
        assert info.bext.description == f"{stem.name} - Export test"
        assert info.ixml.project == "Export test"
    mix = wavinfo.WavInfoReader(str(tmp_path / "mix.wav"))
    assert mix.bext.originator == "Foley studio" and mix.bext.description == "mix - Export test"
    assert mix.bext.coding_history.startswith("A=PCM,F=48000,W=24,M=stereo")
