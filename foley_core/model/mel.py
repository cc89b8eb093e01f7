"""The model's log-mel front end: 16 kHz audio <-> normalised log-mel (64 bins, 100 frames/s).

librosa provides the filterbank, torch.stft the transform (no torchaudio). The log-mel is mapped
to about [-1, 1] with fixed constants stored in the config, so a saved model always decodes with
the constants it was trained with.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from foley_core import constants


class MelSpectrogram(nn.Module, ConfigMixin):
    """Audio (B, n) float -> normalised log-mel (B, n_mels, n // hop_length), and back to magnitude.

    Frame j covers samples around j * hop_length (centred STFT); a clip of n samples gives
    n // hop_length frames, so durations map exactly to frame counts (8 s -> 800 frames).
    """

    config_name = "mel_config.json"

    @register_to_config
    def __init__(self, sr: int = constants.MODEL_SR, n_fft: int = constants.N_FFT,
                 hop_length: int = constants.HOP_LENGTH, n_mels: int = constants.N_MELS,
                 fmin: float = 0.0, fmax: float = 8000.0, log_floor: float = 1e-5,
                 log_min: float = -11.512925464970229, log_max: float = 2.5):
        super().__init__()
        mel_basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel_basis).float(), persistent=False)
        self.register_buffer("mel_pinv", torch.from_numpy(np.linalg.pinv(mel_basis)).float(),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def frames_per_second(self) -> float:
        return self.config.sr / self.config.hop_length

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.config.hop_length

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, n) or (n,) audio in [-1, 1] -> (B, n_mels, n // hop_length) in about [-1, 1]."""
        if audio.ndim == 1:
            audio = audio[None]
        cfg = self.config
        spec = torch.stft(audio.float(), cfg.n_fft, cfg.hop_length, window=self.window,
                          center=True, return_complex=True).abs()
        mel = torch.matmul(self.mel_basis, spec)[..., : self.n_frames(audio.shape[-1])]
        return self.normalize(torch.log(mel.clamp_min(cfg.log_floor)))

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return (log_mel - cfg.log_min) / (cfg.log_max - cfg.log_min) * 2.0 - 1.0

    def denormalize(self, mel_norm: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return (mel_norm + 1.0) / 2.0 * (cfg.log_max - cfg.log_min) + cfg.log_min

    def to_magnitude(self, mel_norm: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, n_mels, T) -> linear magnitude STFT (B, n_fft//2+1, T).

        The pseudo-inverse of the filterbank (clipped at 0) is the classic fast inversion;
        librosa's NNLS is more exact but seconds slower for 8 s.
        """
        mel = torch.exp(self.denormalize(mel_norm.float()))
        return torch.matmul(self.mel_pinv, mel).clamp_min(0.0)
