"""The embedded backend: `FoleyPipeline` on CPU (or CUDA), from `assets/embedded/`.

If the model folder holds trained weights (`model_index.json` + safetensors, as written by
`FoleyPipeline.save_pretrained` / the training script), they are loaded. Otherwise a RANDOMLY
INITIALISED model is built from the folder's `config.json`; it produces sound-shaped noise,
obeys no instruction by itself, and says so in `description` and a logged warning.

`FOLEY_EMBEDDED_DIR` overrides the folder (tests point it at a tiny config).

Reference-guided generation (SDEdit from a fitted reference) is supported: see
`FoleyPipeline.__call__`'s `reference` and `strength`; so is span regeneration (`inpaint`: the
take's audio is VAE-encoded and the span's keep mask built here, the pipeline holds the rest).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from foley_core.backends import INSTRUCTIONS, CancelFn, Capabilities, ProgressFn, VideoCondition, WindowOutput
from foley_core.constants import CURVE_FPS, DEFAULT_STEPS, DEFAULT_TEXT_SCALE, DEFAULT_VIDEO_SCALE
from foley_core.errors import CurveError, FoleyError, MediaError, ModelUnavailableError, TimeRangeError
from foley_core.pipeline import FoleyPipeline

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / "assets" / "embedded"
ENV_DIR = "FOLEY_EMBEDDED_DIR"


def default_model_dir() -> Path:
    """`$FOLEY_EMBEDDED_DIR` if set, else assets/embedded in the repository."""
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


class EmbeddedBackend:
    """Backend protocol over `FoleyPipeline` (see foley_core.backends.Backend)."""

    name = "embedded"

    def __init__(self, model_dir: str | os.PathLike | None = None, *,
                 pipeline: FoleyPipeline | None = None):
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.pipeline: FoleyPipeline | None = pipeline
        self._lock = threading.Lock()
        self._trained = bool(pipeline.config.get("trained")) if pipeline is not None else False

    # -- loading -----------------------------------------------------------------------------------

    def load(self, device: str = "cpu") -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelUnavailableError(
                f"device '{device}' was asked for but no CUDA GPU is available here; use --device cpu")
        if self.pipeline is not None:
            self.pipeline.to(device)
            return
        index = self.model_dir / "model_index.json"
        config = self.model_dir / "config.json"
        if index.is_file():
            self.pipeline = FoleyPipeline.from_pretrained(self.model_dir, device=device)
            self._trained = bool(self.pipeline.config.get("trained"))
        elif config.is_file():
            self.pipeline = FoleyPipeline.from_config(config, device=device)
            self._trained = False
            log.warning("embedded model: no trained weights in %s; using RANDOMLY INITIALISED weights "
                        "(the output is noise shaped by the loudness curve, not a real sound)", self.model_dir)
        else:
            raise ModelUnavailableError(
                f"the embedded model folder {self.model_dir} has neither trained weights "
                "(model_index.json) nor a config.json; restore assets/embedded/ from the repository "
                f"or point {ENV_DIR} at a model folder")
        if not self._trained and self.pipeline.config.get("trained"):
            self._trained = True

    def _require(self) -> FoleyPipeline:
        if self.pipeline is None:
            raise ModelUnavailableError("the embedded model is not loaded; call load() first")
        return self.pipeline

    # -- description -------------------------------------------------------------------------------

    @property
    def trained(self) -> bool:
        return self._trained

    @property
    def description(self) -> str:
        return "embedded" if self.trained else "embedded (untrained random weights)"

    @property
    def obeys(self) -> frozenset[str]:
        """What the MODEL follows: nothing while untrained; for trained weights, what training
        recorded in the pipeline config ("obeys"), by default every instruction."""
        if not self.trained:
            return frozenset()
        listed = self._require().config.get("obeys")
        return frozenset(listed) if listed is not None else frozenset(INSTRUCTIONS)

    @property
    def ignores(self) -> frozenset[str]:
        return frozenset(INSTRUCTIONS) - self.obeys

    @property
    def curve_scale(self) -> float:
        """Default curve guidance: the value measured for these weights (1 = none)."""
        return float(self._require().config.get("curve_scale", 1.0))

    @property
    def reference_detail(self) -> bool:
        """Whether reference-guided windows get back the reference's mel detail that the VAE
        loses (`FoleyPipeline` `reference_detail`; the model folder records its measured choice)."""
        return bool(self._require().config.get("reference_detail", False))

    @property
    def supports_onsets(self) -> bool:
        """Whether these weights have TLM's onset module (models trained before it do not)."""
        return self._require().tlm.onsets is not None

    # what weights with every module give; `capabilities` says what the loaded ones do
    offers = Capabilities(reference=True, onsets=True, curve_guidance=True, reference_detail=True,
                          inpaint=True)

    @property
    def capabilities(self) -> Capabilities:
        """Reference-guided, curve-guided and span inpainting always; onsets and reference detail
        as the loaded weights have them."""
        return Capabilities(reference=True, onsets=self.supports_onsets, curve_guidance=True,
                            default_curve_scale=self.curve_scale, reference_detail=self.reference_detail,
                            inpaint=True)

    @property
    def sr(self) -> int:
        return self._require().sr

    @property
    def window_s(self) -> float:
        return self._require().window_s

    @property
    def video_fps(self) -> float:
        return self._require().video_fps

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._require().frame_size

    # -- generation --------------------------------------------------------------------------------

    def generate_window(self, *, caption: str | None, negative_caption: str | None,
                        duration_s: float, video: VideoCondition | None,
                        curve: np.ndarray | None, seeds: Sequence[int], steps: int = DEFAULT_STEPS,
                        text_scale: float = DEFAULT_TEXT_SCALE, video_scale: float = DEFAULT_VIDEO_SCALE,
                        reference: np.ndarray | None = None, strength: float = 1.0,
                        curve_scale: float | None = None, onsets_s: Sequence[float] | None = None,
                        inpaint: tuple[np.ndarray, tuple[float, float]] | None = None,
                        progress: ProgressFn | None = None,
                        cancel: CancelFn | None = None) -> WindowOutput:
        pipe = self._require()
        if onsets_s is not None and not self.supports_onsets:
            raise FoleyError("this embedded model has no onset module, so it cannot place sounds at "
                             "given onsets; leave them out or use a newer model folder")
        if not 0 < duration_s <= pipe.window_s + 1e-6:
            raise TimeRangeError(f"an embedded-model window lasts at most {pipe.window_s:g} s, "
                                 f"got {duration_s:g} s")
        if len(seeds) < 1:
            raise FoleyError("ask for at least one candidate")
        if int(steps) < 1:
            raise FoleyError(f"the number of denoising steps must be at least 1, got {steps}")
        if curve is not None:
            curve = np.asarray(curve, dtype=np.float32)
            if curve.ndim != 1 or curve.size < 1 or not np.all(np.isfinite(curve)):
                raise CurveError("the loudness curve must be a 1-D list of finite numbers")
            expected = max(1, round(duration_s * CURVE_FPS))
            if abs(curve.size - expected) > 1:
                raise CurveError(f"the loudness curve for a {duration_s:g} s window needs about "
                                 f"{expected} points at {CURVE_FPS} per second, got {curve.size}")
        if reference is not None:
            reference = _check_reference(reference, n_rows=len(seeds), n_samples=round(duration_s * pipe.sr),
                                         duration_s=duration_s)
        strength = float(strength)
        if not (np.isfinite(strength) and 0.0 <= strength <= 1.0):
            raise FoleyError(f"the reference strength must be between 0 and 1, got {strength:g}")
        frames = masks = key = None
        if video is not None:
            if abs(video.fps - pipe.video_fps) > 1e-6:
                raise ValueError(f"video frames must be at {pipe.video_fps} fps, got {video.fps}")
            frames, masks, key = video.frames, video.masks, video.cache_key
        with self._lock:          # one generation at a time: the model is not re-entrant-safe
            latent_inpaint = None if inpaint is None else _inpaint_latents(pipe, inpaint, duration_s)
            out = pipe(duration_s=duration_s, caption=caption, negative_caption=negative_caption,
                       frames=frames, masks=masks, video_cache_key=key, curve=curve, seeds=seeds,
                       num_inference_steps=int(steps), text_scale=text_scale,
                       video_scale=video_scale, reference=reference, strength=strength,
                       curve_scale=curve_scale, onsets_s=onsets_s, inpaint=latent_inpaint,
                       callback=progress, cancel=cancel)
        return WindowOutput(audios=out.audios, sr=out.sr, timings_s=out.timings_s)


def _inpaint_latents(pipe: FoleyPipeline, inpaint, duration_s: float) -> tuple:
    """(the take's latent, the span's keep mask) of a window's `inpaint` (take audio, span)."""
    take, (start_s, end_s) = inpaint
    take = np.asarray(take, dtype=np.float32).reshape(-1)
    if take.size != round(duration_s * pipe.sr) or not np.all(np.isfinite(take)):
        raise MediaError(f"the take under a {duration_s:g} s window must be {round(duration_s * pipe.sr)} "
                         f"finite samples at {pipe.sr} Hz, got {take.size}")
    if not 0 <= start_s < end_s <= duration_s + 1e-6:
        raise TimeRangeError(f"the span {start_s:g}-{end_s:g} s is outside the {duration_s:g} s window")
    return pipe.encode_audio(take, duration_s), pipe.span_keep_mask(duration_s, start_s, end_s)


def _check_reference(reference: np.ndarray, *, n_rows: int, n_samples: int, duration_s: float) -> np.ndarray:
    """A window's reference as float32 (K, n) or (1, n); MediaError if it cannot start this window."""
    ref = np.asarray(reference)
    if ref.dtype.kind != "f":
        raise MediaError(f"the reference must be float audio in [-1, 1], got dtype {ref.dtype}")
    ref = ref.astype(np.float32, copy=False)
    if ref.ndim == 1:
        ref = ref[None]
    if ref.ndim != 2 or ref.shape[0] not in (1, n_rows) or ref.shape[1] != n_samples:
        raise MediaError(f"the reference for a {duration_s:g} s window must have {n_samples} samples "
                         f"(one row, or one per candidate), got shape {np.shape(reference)}; fit it "
                         "with foley_core.library.fit_reference first")
    if not np.all(np.isfinite(ref)):
        raise MediaError("the reference has NaN or infinite samples; choose another sound")
    return ref
