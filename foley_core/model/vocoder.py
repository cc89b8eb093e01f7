"""Vocoders: normalised log-mel -> 16 kHz waveform, behind one interface.

`GriffinLimVocoder` is the baseline (no weights). It is librosa's fast Griffin-Lim (Perraudin et
al. 2013, momentum 0.99, 32 iterations) on a linear magnitude recovered from the mel; the default
engine runs the same iterations with torch.stft/istft, which measured ~0.3 s for 8 s on 2 cores
against ~3 s for `librosa.griffinlim` (engine="librosa" keeps the reference available). The
magnitude comes from the filterbank's pseudo-inverse (`inversion="pinv"`: of all spectra with
this mel, the one with the least energy) or from `inversion="smooth"`: of all spectra with this
mel, the one with the least curvature across frequency. The pseudo-inverse undoes the filters'
overlap, which turns small band-to-band differences into a ripple with the bands' spacing that
stays put over time: steady tonal lines in the output (`docs/BENCHMARKS.md`, "Vocoder").

`VocosVocoder` is a small trained vocoder of the Vocos design (Siuzdak 2023): ConvNeXt blocks
over the mel frames at the mel's own frame rate, a head that predicts the STFT log-magnitude and
phase of every frame, and one `torch.istft` (n_fft 1024, hop 160). It costs about one iSTFT plus
a few small convolutions, which suits a CPU. `scripts/train_vocoder.py` trains it and
`benchmarks/bench_vocoder.py` measures it against Griffin-Lim.

A vocoder folder holds `config.json` (`{"class": ..., ...}`) and, for trained vocoders,
`model.safetensors`: `save_vocoder` writes one, `vocoder_from_config(config, mel, weights_dir)`
loads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import librosa
import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from foley_core.atomic import write_bytes_atomic, write_text_atomic
from foley_core.errors import ModelUnavailableError
from foley_core.model.mel import MelSpectrogram

__all__ = ["Vocoder", "GriffinLimVocoder", "smooth_mel_inverse", "guided_magnitude", "INVERSIONS", "GUIDES", "VocosModel", "VocosVocoder", "vocoder_from_config",
           "save_vocoder", "WEIGHTS_NAME"]

WEIGHTS_NAME = "model.safetensors"


class Vocoder:
    """Interface: `__call__(mel (B, n_mels, T), n_samples, seeds) -> audio (B, n_samples) float32`."""

    sr: int

    @property
    def config(self) -> dict:
        raise NotImplementedError

    def __call__(self, mel_norm: torch.Tensor, n_samples: int,
                 seeds: list[int] | None = None) -> np.ndarray:
        raise NotImplementedError


class GriffinLimVocoder(Vocoder):
    """Griffin-Lim phase reconstruction of the mel's linear magnitude.

    Phases start at zero (deterministic, like librosa's init=None), so `seeds` are not needed.
    `inversion`: "pinv" (the filterbank's pseudo-inverse) or "smooth" (`smooth_mel_inverse`).
    `guide="reference"`: when the call gives the audio the mel was made from (the fitted
    reference a reference-guided take started from), the magnitude is that audio's own STFT
    magnitude times a gain smooth across frequency that gives it the mel (`guided_magnitude`),
    and Griffin-Lim starts from its phases. The mel's 64 bands cannot say where inside a band
    the energy lies; the reference can, so its partials, noise texture and transients stay
    where they were instead of being spread (or rippled) over the band.
    """

    uses_reference = False

    def __init__(self, mel: MelSpectrogram | None = None, *, n_iter: int = 32, momentum: float = 0.99,
                 engine: str = "torch", inversion: str = "pinv", guide: str = "none"):
        if engine not in ("torch", "librosa"):
            raise ValueError(f"engine must be 'torch' or 'librosa', got {engine!r}")
        if inversion not in INVERSIONS:
            raise ValueError(f"inversion must be one of {INVERSIONS}, got {inversion!r}")
        if guide not in GUIDES or (guide != "none" and engine != "torch"):
            raise ValueError(f"guide must be one of {GUIDES} (a guide needs engine 'torch'), got {guide!r}")
        self.mel = mel if mel is not None else MelSpectrogram()
        self.n_iter = n_iter
        self.momentum = momentum
        self.engine = engine
        self.inversion = inversion
        self.guide = guide
        self.uses_reference = guide == "reference"
        self.sr = int(self.mel.config.sr)
        self._smooth_inverse: torch.Tensor | None = None

    @property
    def config(self) -> dict:
        config = {"class": "GriffinLimVocoder", "n_iter": self.n_iter, "momentum": self.momentum,
                  "engine": self.engine}
        # the defaults stay unwritten, so a folder saved before they existed saves the same
        if self.inversion != "pinv":
            config["inversion"] = self.inversion
        if self.guide != "none":
            config["guide"] = self.guide
        return config

    def _smooth(self) -> torch.Tensor:
        if self._smooth_inverse is None:
            basis = self.mel.mel_basis
            self._smooth_inverse = smooth_mel_inverse(basis.cpu().numpy()).to(basis.device)
        return self._smooth_inverse

    def magnitude(self, mel_norm: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, n_mels, T) -> the linear magnitude (B, n_fft // 2 + 1, T) it
        is inverted from, by this vocoder's `inversion`."""
        mel_norm = mel_norm.to(self.mel.mel_pinv.device)
        if self.inversion == "pinv":
            return self.mel.to_magnitude(mel_norm)
        band_sums = torch.exp(self.mel.denormalize(mel_norm.float()))
        return torch.matmul(self._smooth(), band_sums).clamp_min(0.0)

    @torch.no_grad()
    def __call__(self, mel_norm: torch.Tensor, n_samples: int, seeds: list[int] | None = None,
                 reference: np.ndarray | None = None) -> np.ndarray:
        """`reference`: (B, n_samples) or (n_samples,) audio the mel was made from; used only
        with guide="reference" (None: the mel alone, as without a guide)."""
        cfg = self.mel.config
        window = self.mel.window
        # centred STFT frames of n samples: n // hop + 1 (the mel has n // hop): repeat the last
        if self.uses_reference and reference is not None:
            mel_norm = pad_mel_for_istft(mel_norm.to(window.device), n_samples, cfg.hop_length)
            ref = torch.as_tensor(np.asarray(reference, np.float32).reshape(-1, n_samples), device=window.device)
            ref_stft = torch.stft(ref, cfg.n_fft, cfg.hop_length, window=window, return_complex=True)
            magnitude = guided_magnitude(self.mel, mel_norm, ref_stft.abs(), self._smooth())
            # a silent bin has no phase to start from: 1 there, as without a guide
            angles = torch.where(ref_stft.abs() > 0, ref_stft / ref_stft.abs().clamp_min(1e-30),
                                 torch.ones_like(ref_stft))
        else:
            magnitude = pad_mel_for_istft(self.magnitude(mel_norm), n_samples, cfg.hop_length)
            angles = torch.ones_like(magnitude, dtype=torch.complex64)
        if self.engine == "librosa":
            out = [librosa.griffinlim(m.cpu().numpy(), n_iter=self.n_iter, hop_length=cfg.hop_length,
                                      n_fft=cfg.n_fft, momentum=self.momentum, init=None,
                                      length=n_samples) for m in magnitude]
            return np.stack(out).astype(np.float32)
        rebuilt = torch.zeros_like(angles)
        beta = self.momentum / (1 + self.momentum)
        for _ in range(self.n_iter):
            inverse = torch.istft(magnitude * angles, cfg.n_fft, cfg.hop_length, window=window,
                                  length=n_samples)
            previous = rebuilt
            rebuilt = torch.stft(inverse, cfg.n_fft, cfg.hop_length, window=window, return_complex=True)
            angles = rebuilt - beta * previous
            angles = angles / (angles.abs() + 1e-16)
        audio = torch.istft(magnitude * angles, cfg.n_fft, cfg.hop_length, window=window, length=n_samples)
        return audio.cpu().numpy().astype(np.float32)


GUIDES = ("none", "reference")
GUIDE_MAX_GAIN_DB = 20.0     # a reference band this much quieter than the mel's is not its source


def guided_magnitude(mel: MelSpectrogram, mel_norm: torch.Tensor, reference_magnitude: torch.Tensor,
                     smooth_inverse: torch.Tensor) -> torch.Tensor:
    """The reference's STFT magnitude (B, F, T) given the mel (B, n_mels, T): per band, the gain
    that takes the reference's band sum to the mel's (at most `GUIDE_MAX_GAIN_DB`), spread over
    the bins as each bin's average over the bands that hold it, applied twice (the spread gains
    leave a band a little off); what the bounded gains cannot supply (a band the reference has
    (almost) nothing in) comes from `smooth_inverse` of the missing band sums."""
    basis = mel.mel_basis
    spread = (basis / basis.sum(dim=0, keepdim=True).clamp_min(1e-12)).T       # (F, n_mels)
    band_sums = torch.exp(mel.denormalize(mel_norm.float()))
    max_gain = 10.0 ** (GUIDE_MAX_GAIN_DB / 20.0)
    magnitude = reference_magnitude.float()
    for _ in range(2):
        gain = (band_sums / torch.matmul(basis, magnitude).clamp_min(1e-12)).clamp(max=max_gain)
        magnitude = torch.matmul(spread, gain) * magnitude
    missing = (band_sums - torch.matmul(basis, magnitude)).clamp_min(0.0)
    return magnitude + torch.matmul(smooth_inverse, missing).clamp_min(0.0)


INVERSIONS = ("pinv", "smooth")


def smooth_mel_inverse(mel_basis: np.ndarray, smoothness: float = 1e-3) -> torch.Tensor:
    """(n_bins, n_mels) matrix taking mel band sums to the spectrum of least curvature that has
    them: argmin |M s - m|^2 + lam |D2 s|^2, with lam `smoothness` times trace(M'M) / trace(D2'D2)
    so small that the fit stays (all but) exact and lam only picks, among the spectra with this
    mel, the smoothest across frequency. Bins no filter covers (DC, Nyquist) stay 0, as with the
    pseudo-inverse."""
    basis = np.asarray(mel_basis, dtype=np.float64)
    n_bins = basis.shape[1]
    d2 = np.diff(np.eye(n_bins), n=2, axis=0)
    gram, rough = basis.T @ basis, d2.T @ d2
    lam = smoothness * np.trace(gram) / np.trace(rough)
    inverse = np.linalg.solve(gram + lam * rough, basis.T)
    inverse[basis.sum(axis=0) <= 0.0] = 0.0
    return torch.from_numpy(inverse).float()


class ConvNeXtBlock(nn.Module):
    """Depthwise conv over time, LayerNorm, pointwise MLP, layer scale, residual (Vocos's block)."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int = 7,
                 layer_scale_init: float = 0.1):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, dim, T) -> (B, dim, T)."""
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class VocosModel(ModelMixin, ConfigMixin):
    """Normalised log-mel (B, n_mels, T_stft) -> complex STFT (B, n_fft // 2 + 1, T_stft) -> audio.

    The input is the mel with one frame per STFT frame (centred STFT: n // hop + 1 frames for n
    samples); `VocosVocoder` pads the model's mel (n // hop frames) by repeating its last frame.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, n_mels: int = 64, dim: int = 192, intermediate_dim: int = 576,
                 num_layers: int = 6, kernel_size: int = 7, n_fft: int = 1024, hop_length: int = 160,
                 max_log_magnitude: float = 6.5):
        super().__init__()
        self.embed = nn.Conv1d(n_mels, dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        # layer scale 1 / num_layers as in Vocos keeps the residual stream stable at init
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim, kernel_size, 1.0 / num_layers)
                                    for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrum(self, mel_norm: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> complex STFT (B, n_fft // 2 + 1, T)."""
        x = self.embed(mel_norm.float())
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
        log_mag, phase = x.chunk(2, dim=1)
        # a bound keeps an untrained or odd input from producing overflowing magnitudes; it must
        # sit above the largest magnitude audio in [-1, 1] can have (the window's sum, 512 for
        # n_fft 1024, ln 6.2): Vocos's exp(4.6) = 100 measurably cut loud clips by ~10 dB here
        magnitude = torch.exp(log_mag.clamp(max=self.config.max_log_magnitude))
        return torch.polar(magnitude, phase)

    def forward(self, mel_norm: torch.Tensor, n_samples: int) -> torch.Tensor:
        """(B, n_mels, n_samples // hop + 1) -> audio (B, n_samples)."""
        cfg = self.config
        return torch.istft(self.spectrum(mel_norm), cfg.n_fft, cfg.hop_length, window=self.window,
                           center=True, length=n_samples)


def pad_mel_for_istft(mel_norm: torch.Tensor, n_samples: int, hop_length: int) -> torch.Tensor:
    """The model's mel (n // hop frames) as n // hop + 1 frames, repeating the last frame (also
    a magnitude made from it: any (..., T) per-frame array)."""
    need = n_samples // hop_length + 1
    if mel_norm.shape[-1] < need:
        mel_norm = torch.nn.functional.pad(mel_norm, (0, need - mel_norm.shape[-1]), mode="replicate")
    return mel_norm[..., :need]


class VocosVocoder(Vocoder):
    """A trained `VocosModel` behind the `Vocoder` interface; deterministic (no `seeds` needed)."""

    def __init__(self, model: VocosModel, mel: MelSpectrogram | None = None):
        self.mel = mel if mel is not None else MelSpectrogram()
        mc, vc = self.mel.config, model.config
        if (mc.n_mels, mc.n_fft, mc.hop_length) != (vc.n_mels, vc.n_fft, vc.hop_length):
            raise ModelUnavailableError(
                f"the vocoder was trained for mels of {vc.n_mels} bins, n_fft {vc.n_fft}, hop "
                f"{vc.hop_length}, but the model's mel has {mc.n_mels} bins, n_fft {mc.n_fft}, hop "
                f"{mc.hop_length}; use a vocoder trained for this mel (scripts/train_vocoder.py)")
        self.model = model.eval()
        self.sr = int(mc.sr)

    @property
    def config(self) -> dict:
        return {"class": "VocosVocoder",
                **{k: v for k, v in dict(self.model.config).items() if not k.startswith("_")}}

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def __call__(self, mel_norm: torch.Tensor, n_samples: int,
                 seeds: list[int] | None = None) -> np.ndarray:
        mel_in = pad_mel_for_istft(mel_norm.float().cpu(), n_samples, self.model.config.hop_length)
        return self.model.to("cpu")(mel_in, n_samples).numpy().astype(np.float32)


def _class_args(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "class" and not k.startswith("_")}


def vocoder_from_config(config: dict, mel: MelSpectrogram,
                        weights_dir: str | os.PathLike | None = None) -> Vocoder:
    """Build the vocoder a config dict names; a trained one loads `weights_dir/model.safetensors`.

    Raises ModelUnavailableError if a trained vocoder's weights are missing or do not fit.
    """
    kind = config.get("class", "GriffinLimVocoder")
    if kind == "GriffinLimVocoder":
        return GriffinLimVocoder(mel, **_class_args(config))
    if kind == "VocosVocoder":
        if weights_dir is None:
            raise ModelUnavailableError(
                "the vocoder config names a trained VocosVocoder but no folder with its weights was "
                "given; load it from the model folder that holds vocoder/model.safetensors")
        path = Path(weights_dir) / WEIGHTS_NAME
        if not path.is_file():
            raise ModelUnavailableError(
                f"the trained vocoder's weights are missing: {path} does not exist; copy the "
                "vocoder folder written by scripts/train_vocoder.py (config.json + "
                f"{WEIGHTS_NAME}) there, or set the vocoder config to GriffinLimVocoder")
        model = VocosModel(**_class_args(config))
        try:
            model.load_state_dict(load_file(str(path)), strict=True)
        except (SafetensorError, RuntimeError, OSError) as err:
            raise ModelUnavailableError(
                f"cannot load the trained vocoder from {path}: {err}; the file is damaged or was "
                "saved for another vocoder config (config.json)") from None
        return VocosVocoder(model, mel)
    raise ValueError(f"unknown vocoder class {kind!r}")


def save_vocoder(vocoder: Vocoder, directory: str | os.PathLike) -> None:
    """Write `directory/config.json` (and `model.safetensors` for a trained vocoder) atomically.

    The weights go first, so a folder whose config names a trained vocoder always has whole
    weights beside it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(vocoder, VocosVocoder):
        state = {k: v.detach().contiguous().cpu() for k, v in vocoder.model.state_dict().items()}
        write_bytes_atomic(directory / WEIGHTS_NAME, save(state))
    write_text_atomic(directory / "config.json", json.dumps(vocoder.config, indent=2) + "\n")
