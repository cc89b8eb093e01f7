"""Generation backends: the `Backend` protocol that `generate()` drives, and the name registry.

A backend turns ONE model window (at most `window_s` seconds) of instructions into K candidate
waveforms at 16 kHz. Everything around a window (reading and masking the video, slicing the curve,
long selections as crossfaded windows, conform, metadata) lives in `foley_core.generate`, so every
backend gets it for free.

Instruction names (for `obeys` / `ignores`): "text", "negative", "video", "mask", "curve".
A backend lists in `obeys` what its MODEL follows; generate() adds "curve (conform)" when the
post-hoc conform step is applied.

What a backend takes beyond the common window arguments is declared in its `capabilities`
(a `Capabilities`), never probed: generate() reads it to decide what to pass and what to refuse.
Reference-guided generation (audio-to-audio, SDEdit): a backend with `capabilities.reference`
accepts `reference` (the fitted reference slice of the window) and `strength` in
`generate_window`; it encodes the reference to its latent, noises it to the timestep
`reference_steps` says, and denoises from there. generate() refuses a reference for a backend
without it.
Span regeneration (inpainting): a backend with `capabilities.inpaint` accepts `inpaint` =
(the take's audio under the window, float32 (n,) at `sr`; (start_s, end_s) of the span in window
seconds) and regenerates only the span, holding the rest of its latent at the take's.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from foley_core.errors import ModelUnavailableError
from foley_core.sdedit import reference_steps  # noqa: F401 - part of the backend API

INSTRUCTIONS = ("text", "negative", "video", "mask", "curve", "onsets")

# name -> "module:Class". Backends are imported on first use (AudioLDM2 pulls in big models).
REGISTRY: dict[str, str] = {
    "embedded": "foley_core.backends.embedded:EmbeddedBackend",
    "audioldm2": "foley_core.backends.audioldm2:AudioLDM2Backend",
}

ProgressFn = Callable[[int, int], None]       # (step done, steps in this window)
CancelFn = Callable[[], bool]                 # True -> stop (raise GenerationCancelled)


@dataclass
class VideoCondition:
    """The video instruction for one window, already at the backend's `video_fps` and `frame_size`.

    frames: uint8 (T, H, W, 3) RGB; masks: float32 (T, H, W) in [0, 1] of the sounding object, or
    None for the whole frame. Frame t is at `t / fps` seconds from the window start.
    `cache_key`: hashable identity of (video, range, mask) so encoders can cache their features;
    None disables caching.
    """

    frames: np.ndarray
    masks: np.ndarray | None
    fps: float
    cache_key: tuple | None = None


@dataclass
class WindowOutput:
    """K candidate waveforms (K, n) float32 at `sr`, plus seconds spent per stage."""

    audios: np.ndarray
    sr: int
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a backend's `generate_window` takes beyond the common arguments.

    reference: it takes `reference` and `strength` (audio-to-audio, see the module docstring).
    onsets: it takes `onsets_s`, times in seconds from the window start where a sound starts.
    curve_guidance: it takes `curve_scale` other than 1 (how strictly the model itself follows
        the curve); `default_curve_scale` is what it uses when none is asked (1 = none).
    reference_detail: reference-guided windows get back the reference's detail its VAE loses.
    inpaint: it takes `inpaint` (regenerate a span of a take, see the module docstring).
    """

    reference: bool = False
    onsets: bool = False
    curve_guidance: bool = False
    default_curve_scale: float = 1.0
    reference_detail: bool = False
    inpaint: bool = False


@runtime_checkable
class Backend(Protocol):
    """What generate() needs from a model backend (`capabilities` says what else it takes)."""

    name: str
    sr: int                      # output sample rate (16000 for both backends)
    window_s: float              # longest window generated in one go (seconds)
    video_fps: float             # frame rate its visual encoder wants
    frame_size: tuple[int, int]  # (width, height) of frames its visual encoder wants
    obeys: frozenset[str]        # instructions the model follows (see INSTRUCTIONS)
    ignores: frozenset[str]      # instructions accepted but without effect
    trained: bool                # False: random/untrained weights (say so to the user)
    description: str             # e.g. "embedded (untrained random weights)"
    capabilities: Capabilities   # optional window arguments it takes (may depend on its weights)

    def load(self, device: str = "cpu") -> None:
        """Load weights onto `device`; raise ModelUnavailableError if they can't be had."""

    def generate_window(self, *, caption: str | None, negative_caption: str | None,
                        duration_s: float, video: VideoCondition | None,
                        curve: np.ndarray | None, seeds: Sequence[int], steps: int,
                        text_scale: float, video_scale: float,
                        progress: ProgressFn | None = None,
                        cancel: CancelFn | None = None) -> WindowOutput:
        """Generate len(seeds) candidates of `duration_s` (<= window_s) seconds.

        `curve`: relative loudness 0..1 at CURVE_FPS points/s covering the window, or None.
        Candidate i uses `seeds[i]` alone, so it equals a solo run with that seed.
        Raises GenerationCancelled when `cancel()` becomes true (checked every step).
        Backends with `capabilities.reference` also take `reference` (float32 (K, n) or (n,) at
        `sr`, n = round(duration_s * sr): the start of the SDEdit trajectory, one per candidate
        or one for all) and `strength` (0..1; see `reference_steps`); `progress` then counts
        only the steps actually run.
        """


_instances: dict[tuple, Backend] = {}
_lock = threading.Lock()


def available_backends() -> list[str]:
    return sorted(REGISTRY)


def backend_class(name: str) -> type:
    """The class registered under `name` (imports its module). Each registered class declares
    `offers`: the Capabilities its best weights give (an instance's `capabilities` may be fewer,
    as its loaded weights have them), so a front end can describe a model without loading it."""
    if name not in REGISTRY:
        raise ModelUnavailableError(
            f"unknown model '{name}': choose one of {', '.join(available_backends())}")
    module_name, _, class_name = REGISTRY[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ModelUnavailableError(f"the '{name}' model is not available in this build") from err
    return getattr(module, class_name)


def default_options(name: str) -> dict:
    """Options a backend takes from the environment (part of the reuse key in get_backend)."""
    if name == "embedded":
        import os

        return {"model_dir": os.environ.get("FOLEY_EMBEDDED_DIR") or None}
    if name == "audioldm2":
        import os

        return {"source": os.environ.get("FOLEY_AUDIOLDM2_PATH") or None,
                "adapter_path": os.environ.get("FOLEY_AUDIOLDM2_ADAPTERS") or None}
    return {}


def check_device(device: str) -> str:
    """`device` if this machine can run a model on it: "cpu", "cuda" or "cuda:N".

    Checked before any work: torch would otherwise fail deep inside a model load with a list of
    device types nobody asked about. Raises ModelUnavailableError.
    """
    text = str(device).strip().lower()
    kind, colon, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (colon and (kind == "cpu" or not index.isdigit())):
        raise ModelUnavailableError(f"unknown device '{device}': choose cpu, or cuda (cuda:N for the "
                                    "N-th GPU) on a machine with an NVIDIA GPU")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ModelUnavailableError(f"device '{device}' was asked for but no CUDA GPU is available "
                                        "here; use the cpu device")
        if index and int(index) >= torch.cuda.device_count():
            raise ModelUnavailableError(f"device '{device}' does not exist: this machine has "
                                        f"{torch.cuda.device_count()} GPU(s), cuda:0 to "
                                        f"cuda:{torch.cuda.device_count() - 1}")
    return text


def get_backend(name: str = "embedded", *, device: str = "cpu", **kwargs) -> Backend:
    """A loaded backend, reused across calls with the same name, device and options.

    Reuse matters: backends cache text and visual encodings, so a second generation that only
    changes the seed or the curve does not re-encode. Options not given come from
    `default_options(name)` (e.g. $FOLEY_EMBEDDED_DIR for the embedded model folder).
    """
    kwargs = {**default_options(name), **kwargs}
    device = check_device(device)
    key = (name, device, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _lock:
        backend = _instances.get(key)
        if backend is None:
            backend = backend_class(name)(**kwargs)
            backend.load(device)
            _instances[key] = backend
        return backend


def clear_backends() -> None:
    """Forget loaded backends (frees their memory; tests use it to start clean)."""
    with _lock:
        _instances.clear()
