"""Regenerating a span of a take: the rest of the take is kept bit for bit, the span is new,
its edges do not click, the model sees the kept context (latent inpainting), and the request,
the backend and the CLI refuse what cannot work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from foley_core import constants
from foley_core.audio_io import read_audio, write_wav
from foley_core.backends import Capabilities, WindowOutput
from foley_core.errors import FoleyError, TimeRangeError
from foley_core.generate import generate
from foley_core.model.configs import tiny_config
from foley_core.pipeline import FoleyPipeline
from foley_core.request import GenerationRequest
from stub_backends import StubBackend

REPO = Path(__file__).resolve().parents[1]
SR = 16000
TAKE_S = 4.0


@pytest.fixture(scope="module")
def take(tiny_model) -> np.ndarray:
    """A 4 s take made by the tiny model itself (the case of one wrong hit in a good take)."""
    return generate(duration_s=TAKE_S, source="model", seed=1, steps=4).audios[0]


def click_free(out: np.ndarray, take: np.ndarray, sr: int, span_s: tuple[float, float]) -> bool:
    """No sample-to-sample jump around either span edge (+-2 crossfades) larger than sqrt(2)
    times the 99.9th percentile |diff| of the take outside the span or of the new audio in the
    span's interior: a splice step shows up as a jump neither side has of its own. (sqrt(2): an
    equal-power crossfade sums cos and sin gains, so two coherent tones mid-fade can move that
    much faster than either; a hard cut jumps by up to the sum of both amplitudes.)"""
    i0, i1 = round(span_s[0] * sr), round(span_s[1] * sr)
    n_fade = round(constants.SPAN_CROSSFADE_S * sr)
    outside = np.abs(np.diff(np.r_[take[:i0], take[i1:]]))
    interior = np.abs(np.diff(out[i0 + 2 * n_fade:i1 - 2 * n_fade]))
    limit = max(np.percentile(outside, 99.9), np.percentile(interior, 99.9))
    jumps = [np.abs(np.diff(out[max(0, i - 2 * n_fade):i + 2 * n_fade])).max()
             for i in (i0, i1) if 0 < i < len(out)]
    return max(jumps) <= np.sqrt(2) * limit


@pytest.mark.parametrize("span_s, n_windows", [((1.5, 2.5), 3), ((0.0, 0.6), 1), ((3.3, 4.0), 1)],
                         ids=["middle", "start", "end"])
def test_outside_the_span_the_take_is_kept_bit_for_bit(take, span_s, n_windows):
    result = generate(duration_s=TAKE_S, source="model", seed=7, steps=4, take=(take, SR),
                      regenerate_span_s=span_s)
    out = result.audios[0]
    i0, i1 = round(span_s[0] * SR), round(span_s[1] * SR)
    assert result.sr == SR and out.shape == take.shape and out.dtype == np.float32
    assert np.array_equal(out[:i0], take[:i0]) and np.array_equal(out[i1:], take[i1:])
    assert np.mean(np.abs(out[i0:i1] - take[i0:i1])) > 0.01 * np.mean(np.abs(take))
    assert click_free(out, take, SR, span_s)
    assert result.report.regenerated_span_s == list(span_s)
    # only the model windows the span touches ran (2 s windows every 1 s)
    assert len(result.report.windows) == n_windows


class SineBackend(StubBackend):
    """Returns a smooth 330 Hz sine for every window, so the new audio is known exactly and a
    hard cut into the 220 Hz take is a clear step."""

    name = "sine"
    window_s = 8.0
    ignores = frozenset()
    trained = True
    description = "sine"
    capabilities = Capabilities(inpaint=True)

    def __init__(self):
        self.inpaint = None

    def generate_window(self, *, duration_s, seeds, inpaint=None, **kw):
        self.inpaint = inpaint
        t = np.arange(round(duration_s * SR)) / SR
        return WindowOutput(audios=np.tile(0.5 * np.sin(2 * np.pi * 330 * t + 1.0), (len(seeds), 1))
                            .astype(np.float32), sr=SR)


def test_the_crossfades_leave_no_click_where_a_hard_cut_would():
    """The click criterion is not vacuous: splicing the same new audio without crossfades
    (a hard cut at the span's edges) fails it, the crossfaded splice passes."""
    t = np.arange(round(TAKE_S * SR)) / SR
    take = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    span_s = (1.2031, 2.7013)
    backend = SineBackend()
    result = generate(duration_s=TAKE_S, model=backend, source="model", steps=1, take=(take, SR),
                      regenerate_span_s=span_s)
    out = result.audios[0]
    assert backend.inpaint is not None and backend.inpaint[1] == pytest.approx(span_s)
    i0, i1 = round(span_s[0] * SR), round(span_s[1] * SR)
    naive = take.copy()
    naive[i0:i1] = (0.5 * np.sin(2 * np.pi * 330 * t + 1.0))[i0:i1]
    assert not click_free(naive, take, SR, span_s)
    assert click_free(out, take, SR, span_s)
    assert np.array_equal(out[:i0], take[:i0]) and np.array_equal(out[i1:], take[i1:])
    # in the span's middle: the new audio itself, gained by the reported level match (two
    # tones of one amplitude: within 1 dB over the 15 ms crossfades; reported to 0.01 dB)
    gain_db = result.report.span_gain_db[0]
    mid = slice(i0 + 1000, i1 - 1000)
    assert abs(gain_db) < 1.0 and np.allclose(out[mid], naive[mid] * 10 ** (gain_db / 20), rtol=1e-3, atol=1e-4)


def test_a_full_band_take_keeps_its_rate():
    take_sr = 48000
    t = np.arange(round(TAKE_S * take_sr)) / take_sr
    take = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    result = generate(duration_s=TAKE_S, model=SineBackend(), source="model", steps=1,
                      take=(take, take_sr), regenerate_span_s=(1.0, 2.0))
    out = result.audios[0]
    assert result.sr == take_sr and out.shape == take.shape
    assert np.array_equal(out[:take_sr], take[:take_sr]) and np.array_equal(out[2 * take_sr:], take[2 * take_sr:])
    # the span holds the model's 330 Hz, resampled to the take's rate
    spectrum = np.abs(np.fft.rfft(out[round(1.2 * take_sr):round(1.8 * take_sr)]))
    assert np.fft.rfftfreq(round(0.6 * take_sr), 1 / take_sr)[np.argmax(spectrum)] == pytest.approx(330, abs=3)


def test_inpainting_holds_the_kept_latent_and_conditions_the_span_on_it():
    pipe = FoleyPipeline.from_config(tiny_config(window_s=2.0))
    take = pipe(duration_s=2.0, seeds=[3], num_inference_steps=6).audios
    known = pipe.encode_audio(take, 2.0)
    keep = pipe.span_keep_mask(2.0, 0.8, 1.2)
    assert keep[0] == 1 and keep[-1] == 1 and keep.min() == 0
    assert np.all(np.diff(keep[:keep.argmin() + 1]) <= 0)        # a ramp down into the span, no jump back
    inpainted = pipe(duration_s=2.0, seeds=[5], num_inference_steps=6, inpaint=(known, keep)).latents
    free = pipe(duration_s=2.0, seeds=[5], num_inference_steps=6).latents
    kept = torch.as_tensor(keep) == 1
    assert torch.equal(inpainted[..., kept], known[..., kept])
    # the same seed without the kept context gives another span: the context steers it
    span = torch.as_tensor(keep) == 0
    assert (inpainted[..., span] - free[..., span]).abs().mean() > 0.1 * free[..., span].abs().mean()
    # and nothing changes for a call without inpaint
    assert torch.equal(free, pipe(duration_s=2.0, seeds=[5], num_inference_steps=6).latents)


def test_span_edge_at_the_window_ends_frees_the_padding():
    pipe = FoleyPipeline.from_config(tiny_config(window_s=2.0))
    start = pipe.span_keep_mask(2.0, 0.0, 0.4)
    end = pipe.span_keep_mask(2.0, 1.6, 2.0)
    assert start[0] == 0 and start[-1] == 1 and end[-1] == 0 and end[0] == 1


@pytest.mark.parametrize("fields, error, match", [
    ({"regenerate_span_s": (0.5, 1.0)}, FoleyError, "needs the take"),
    ({"take": "TAKE"}, FoleyError, "give regenerate_span_s"),
    ({"take": "TAKE", "regenerate_span_s": (1.5, 2.5)}, TimeRangeError, "outside the 2.000 s take"),
    ({"take": "TAKE", "regenerate_span_s": (-0.1, 0.5)}, TimeRangeError, "outside"),
    ({"take": "TAKE", "regenerate_span_s": (1.0, 1.05)}, TimeRangeError, "at least 0.1 s"),
    ({"take": "TAKE", "regenerate_span_s": (1.0,)}, TimeRangeError, "two times"),
    ({"take": "TAKE", "regenerate_span_s": (0.5, 1.0), "duration_s": 3.0}, TimeRangeError, "cover the selection"),
])
def test_the_request_refuses_a_bad_span(fields, error, match):
    fields = dict(fields)
    if fields.get("take") == "TAKE":
        fields["take"] = (np.zeros(2 * SR, np.float32), SR)
    fields.setdefault("duration_s", None)
    with pytest.raises(error, match=match) as info:
        GenerationRequest(source="model", **fields)
    assert "\n" not in str(info.value)


def test_the_take_sets_the_selection_length():
    request = GenerationRequest(take=(np.zeros(2 * SR, np.float32), SR), regenerate_span_s=(0.5, 1.0))
    assert request.duration_s == 2.0 and not request.take[0].flags.writeable


def test_without_a_span_no_window_is_inpainted():
    backend = SineBackend()
    backend.inpaint = "unset"
    result = generate(duration_s=TAKE_S, model=backend, source="model", steps=1)
    assert backend.inpaint is None and result.report.regenerated_span_s is None
    assert "regenerated_span_s" not in result.report.to_json()


def test_a_backend_without_inpainting_is_refused():
    backend = SineBackend()
    backend.capabilities = Capabilities()
    with pytest.raises(FoleyError, match="cannot regenerate a span"):
        generate(model=backend, source="model", steps=1, take=(np.zeros(SR, np.float32), SR),
                 regenerate_span_s=(0.2, 0.5))


def _cli(*args, env_dir: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "FOLEY_EMBEDDED_DIR": str(env_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "launch.py"), "generate", *args],
                          capture_output=True, text=True, env=env, cwd=REPO)


def test_cli_writes_a_new_file_and_never_overwrites_the_take(tiny_model, take, tmp_path):
    take_path = write_wav(tmp_path / "take.wav", take, SR)
    before = take_path.read_bytes()
    out = tmp_path / "fixed.wav"
    done = _cli("--caption", "a knock", "--from-scratch", "--steps", "2", "--take", str(take_path),
                "--span", "1.0,1.5", "--out", str(out), env_dir=tiny_model)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["regenerated_span_s"] == [1.0, 1.5] and report["outputs"] == [str(out)]
    written, sr = read_audio(out)
    kept, _ = read_audio(take_path)
    assert sr == SR and np.array_equal(written[:SR], kept[:SR]) and np.array_equal(written[24000:], kept[24000:])
    assert not np.array_equal(written, kept)
    refused = _cli("--caption", "a knock", "--from-scratch", "--take", str(take_path), "--span", "1.0,1.5",
                   "--out", str(take_path), env_dir=tiny_model)
    assert refused.returncode != 0 and "same file as --take" in refused.stderr
    assert take_path.read_bytes() == before
    missing = _cli("--caption", "a knock", "--from-scratch", "--span", "1.0,1.5", "--duration", "2",
                   "--out", str(tmp_path / "x.wav"), env_dir=tiny_model)
    assert missing.returncode != 0 and "--span needs --take" in missing.stderr
