"""The AudioLDM2 backend: hub weights (`cvssp/audioldm2`) with MAM and TLM adapters.

The diffusers `AudioLDM2Pipeline` supplies the components (CLAP + T5 -> projection -> GPT2
prompt encoding, UNet, VAE, HiFi-GAN vocoder); the sampling loop is ours, so that the
adapters and the dual classifier-free guidance of Draw an Audio (eq. 12) are applied:

    eps = e(0, 0) + s_t (e(c_t, 0) - e(0, 0)) + s_v (e(c_t, c_v) - e(c_t, 0))

where "0" text is the negative caption (or ""), and "0" video is MAM's learned null token.
Without adapter weights the model follows text and negative text only; mask, video and curve
are then ignored by the model (generate() conforms the loudness afterwards).

Output: 16 kHz mono float32, like the embedded backend. GPU in fp16 is the intended use; CPU
fp32 works but takes minutes per window.

Reference-guided generation (SDEdit): the reference's log-mel in AudioLDM's form (magnitude mel,
64 bins, hop 160, fmax 8 kHz, natural log with a 1e-5 floor) is VAE-encoded (mean x scaling
factor), noised to the first kept timestep (`foley_core.backends.reference_steps`) and denoised.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from foley_core import offline
from foley_core.backends import CancelFn, Capabilities, ProgressFn, VideoCondition, WindowOutput, reference_steps
from foley_core.backends.adapters import AudioLDM2Adapters
from foley_core import constants
from foley_core.constants import MODEL_SR
from foley_core.errors import (CurveError, FoleyError, GenerationCancelled, MaskError, MediaError,
                               ModelUnavailableError, TimeRangeError)
from foley_core.model.conditioning import MotionFrameEncoder, frames_to_tensor

DEFAULT_REPO_ID = "cvssp/audioldm2"
TINY_RANDOM_SOURCE = "tiny-random"      # random tiny components: tests and offline smoke runs
PATH_ENV = "FOLEY_AUDIOLDM2_PATH"
ADAPTERS_ENV = "FOLEY_AUDIOLDM2_ADAPTERS"   # default adapter_path (trained MAM/TLM weights)
DEFAULT_STEPS = constants.DEFAULT_STEPS
DEFAULT_TEXT_SCALE = constants.DEFAULT_TEXT_SCALE
DEFAULT_VIDEO_SCALE = constants.DEFAULT_VIDEO_SCALE
ALL_INSTRUCTIONS = frozenset({"text", "negative", "video", "mask", "curve"})
TEXT_ONLY = frozenset({"text", "negative"})


def dual_guidance(eps_uncond: torch.Tensor | None, eps_text: torch.Tensor,
                  eps_text_video: torch.Tensor | None, *, text_scale: float,
                  video_scale: float) -> torch.Tensor:
    """Dual classifier-free guidance (Draw an Audio eq. 12, InstructPix2Pix form).

    `eps_uncond` = e(0, 0) may be None only when `text_scale` is 1 (its term vanishes);
    `eps_text_video` = e(c_t, c_v) is None when there is no video branch.
    """
    eps = eps_text
    if eps_uncond is not None:
        eps = eps_uncond + text_scale * (eps_text - eps_uncond)
    elif text_scale != 1.0:
        raise ValueError("the unconditional branch is needed when text_scale != 1")
    if eps_text_video is not None:
        eps = eps + video_scale * (eps_text_video - eps_text)
    return eps


def generate_language_model(language_model: nn.Module, inputs_embeds: torch.Tensor,
                            attention_mask: torch.Tensor | None, max_new_tokens: int) -> torch.Tensor:
    """AudioLDM2's GPT2 step: `max_new_tokens` hidden states generated after `inputs_embeds`.

    Written out (with a KV cache) because the stock pipeline calls `GenerationMixin` internals
    that a plain `GPT2Model` no longer has in transformers 5 (diffusers issue #12630).
    """
    generated = []
    past = None
    step_input = inputs_embeds
    if attention_mask is None:
        attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
    for _ in range(max_new_tokens):
        output = language_model(inputs_embeds=step_input, attention_mask=attention_mask,
                                past_key_values=past, use_cache=True, output_hidden_states=True,
                                return_dict=True)
        next_hidden = output.hidden_states[-1][:, -1:, :]
        generated.append(next_hidden)
        past = output.past_key_values
        step_input = next_hidden
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], 1)
    return torch.cat(generated, dim=1)


def _pipeline_class() -> type:
    from diffusers import AudioLDM2Pipeline

    class FoleyAudioLDM2Pipeline(AudioLDM2Pipeline):
        """AudioLDM2Pipeline whose GPT2 generation works with transformers 5 (see above)."""

        def generate_language_model(self, inputs_embeds: torch.Tensor = None, max_new_tokens: int = 8,
                                    **model_kwargs: Any) -> torch.Tensor:
            if max_new_tokens is None:
                max_new_tokens = self.language_model.config.max_new_tokens
            return generate_language_model(self.language_model, inputs_embeds,
                                           model_kwargs.get("attention_mask"), int(max_new_tokens))

    return FoleyAudioLDM2Pipeline


def tiny_random_pipeline(seed: int = 0):
    """AudioLDM2 components with tiny random weights (no download): for tests and smoke runs.

    Shapes follow the real model where timing matters: 64 mel bins at 100 frames/s (hop 160 at
    16 kHz), VAE factor 4 and 8 latent channels, so the latent is (B, 8, 25 frames/s, 16).
    The output is noise.
    """
    from diffusers import AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel, AutoencoderKL, DDIMScheduler
    from transformers import (ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig,
                              GPT2Config, GPT2Model, RobertaTokenizer, SpeechT5HifiGan, SpeechT5HifiGanConfig,
                              T5Config, T5EncoderModel, T5Tokenizer)

    letters = "abcdefghijklmnopqrstuvwxyz"
    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        sample_size=16, in_channels=8, out_channels=8, block_out_channels=(16, 32), layers_per_block=1,
        norm_num_groups=8, attention_head_dim=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 16, 32], [None, 16, 32]))
    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=[8, 8, 16],
                        norm_num_groups=4, down_block_types=["DownEncoderBlock2D"] * 3,
                        up_block_types=["UpDecoderBlock2D"] * 3)
    text_config = ClapTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=16,
                                 intermediate_size=37, num_attention_heads=2, num_hidden_layers=2,
                                 vocab_size=64, projection_dim=16)
    audio_config = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37,
                                   depths=[2, 2], num_attention_heads=[2, 2], num_hidden_layers=2,
                                   hidden_size=192, projection_dim=16, patch_size=2, patch_stride=2,
                                   patch_embed_input_channels=4)
    clap = ClapModel(ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(),
                                projection_dim=16))
    t5 = T5EncoderModel(T5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2))
    gpt2 = GPT2Model(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=64, n_positions=128,
                                 bos_token_id=0, eos_token_id=2))
    gpt2.config.max_new_tokens = 8
    projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=MODEL_SR, upsample_initial_channel=16, upsample_rates=[8, 5, 4],
        upsample_kernel_sizes=[16, 10, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False))
    # Character-level tokenizers built in memory: the hub's tiny test tokenizers need a download.
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "\u0120": 5}
    for ch in letters:
        vocab[ch] = len(vocab)
        vocab["\u0120" + ch] = len(vocab)
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[], model_max_length=77)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(ch, -2.0) for ch in letters] + [("\u2581" + ch, -2.5) for ch in letters]
    tokenizer_2 = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    return _pipeline_class()(
        vae=vae, text_encoder=clap, text_encoder_2=t5, projection_model=projection, language_model=gpt2,
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, feature_extractor=ClapFeatureExtractor(),
        unet=unet, scheduler=scheduler, vocoder=vocoder)


@dataclass
class TextEmbeddings:
    """AudioLDM2's prompt encodings of one caption and its negative, each with batch 1."""

    t5: torch.Tensor                # (1, L, d_t5) encoder_hidden_states_1
    t5_mask: torch.Tensor           # (1, L)
    generated: torch.Tensor         # (1, N, d_gpt2) encoder_hidden_states (GPT2 output)
    negative_t5: torch.Tensor
    negative_t5_mask: torch.Tensor
    negative_generated: torch.Tensor


class AudioLDM2Backend:
    """AudioLDM2 (diffusers) with MAM/TLM adapters, dual CFG and a DPM-Solver++ sampler.

    Args:
        source: hub repo id or local model folder; default `$FOLEY_AUDIOLDM2_PATH`, else
            "cvssp/audioldm2". "tiny-random" builds tiny random components (tests).
        adapter_path: safetensors file of trained MAM/TLM adapters (default
            `$FOLEY_AUDIOLDM2_ADAPTERS`); without it the backend is text-only (mask, video and
            curve are ignored by the model).
        new_adapters: attach fresh zero-initialised adapters (a starting point for training;
            they leave the output unchanged).
        visual_encoder: E_v for MAM; default the embedded `MotionFrameEncoder`.
        dtype: weights dtype; default float16 on CUDA, float32 on CPU.
        cache_dir: hub cache folder (default: the huggingface_hub default).
        max_new_tokens: GPT2 tokens per prompt (default: the checkpoint's, 8 for cvssp/audioldm2).
    """

    name = "audioldm2"
    window_s = 10.0
    # starts from a reference; no onset module and no curve guidance yet (conform follows the curve)
    capabilities = offers = Capabilities(reference=True)

    def __init__(self, source: str | os.PathLike | None = None, *, adapter_path: str | os.PathLike | None = None,
                 new_adapters: bool = False, visual_encoder: nn.Module | None = None,
                 dtype: torch.dtype | None = None, cache_dir: str | os.PathLike | None = None,
                 max_new_tokens: int | None = None):
        self.source = str(source or os.environ.get(PATH_ENV) or DEFAULT_REPO_ID)
        self.new_adapters = bool(new_adapters)
        if adapter_path is None and not self.new_adapters and os.environ.get(ADAPTERS_ENV):
            adapter_path = os.environ[ADAPTERS_ENV]
        self.adapter_path = Path(adapter_path).expanduser() if adapter_path is not None else None
        if self.adapter_path is not None and self.new_adapters:
            raise ValueError("pass adapter_path or new_adapters, not both")
        self.dtype = dtype
        self.cache_dir = cache_dir
        self.max_new_tokens = max_new_tokens
        self._visual_encoder = visual_encoder
        self.sr = MODEL_SR
        self._trained = self.source != TINY_RANDOM_SOURCE
        self.device = torch.device("cpu")
        self.pipe = None
        self.adapters: AudioLDM2Adapters | None = None
        self.scheduler = None
        self._text_cache: collections.OrderedDict = collections.OrderedDict()
        self._video_cache: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._mel = None
        # Known before loading, so the UI can describe the backend without loading 3 GB.
        self.video_fps, self.frame_size = self._visual_spec()

    @classmethod
    def from_pipeline(cls, pipe: Any, *, adapters: AudioLDM2Adapters | None = None,
                      trained: bool = False, device: str = "cpu", **kwargs: Any) -> "AudioLDM2Backend":
        """A loaded backend around existing AudioLDM2 components (tests, training scripts)."""
        backend = cls(source=kwargs.pop("source", "<in-memory pipeline>"), **kwargs)
        backend._attach(pipe, device=device, trained=trained, adapters=adapters)
        return backend

    # -- description ----------------------------------------------------------------------------

    def _visual_spec(self) -> tuple[float, tuple[int, int]]:
        encoder = self._visual_encoder
        if encoder is None and self.adapter_path is not None:
            spec = AudioLDM2Adapters.read_config(self.adapter_path)["visual_encoder"].get("config", {})
            fps, size = float(spec.get("fps", 20.0)), spec.get("frame_size", 64)
        elif encoder is None:
            defaults = inspect.signature(MotionFrameEncoder).parameters
            fps, size = float(defaults["fps"].default), defaults["frame_size"].default
        else:
            fps, size = float(encoder.fps), encoder.frame_size
        if isinstance(size, int):
            size = (size, size)
        return fps, (int(size[0]), int(size[1]))

    @property
    def _adapters_active(self) -> bool:
        if self.adapters is not None:
            return not self.adapters.is_identity()
        return self.adapter_path is not None

    @property
    def obeys(self) -> frozenset[str]:
        return ALL_INSTRUCTIONS if self._adapters_active else TEXT_ONLY

    @property
    def ignores(self) -> frozenset[str]:
        return ALL_INSTRUCTIONS - self.obeys

    @property
    def trained(self) -> bool:
        return self._trained

    @property
    def description(self) -> str:
        text = f"AudioLDM2 ({self.source})"
        if not self.trained:
            text += " (untrained random weights)"
        if self._adapters_active:
            where = self.adapter_path.name if self.adapter_path is not None else "in memory"
            text += f" with MAM/TLM adapters ({where}): follows text, video, mask and curve"
        elif self.adapters is not None:
            text += ": text only, its MAM/TLM adapters are untrained (mask, video and curve are not followed)"
        else:
            text += ": text only, no adapter weights (mask, video and curve are not followed by the model)"
        if self.pipe is not None and self.device.type == "cpu":
            text += "; running on CPU (slow)"
        return text

    # -- loading --------------------------------------------------------------------------------

    def load(self, device: str = "cpu") -> None:
        """Load the pipeline (and adapters) onto `device`; ModelUnavailableError if impossible."""
        if self.pipe is not None:
            return
        device_t = torch.device(device)
        if device_t.type == "cuda" and not torch.cuda.is_available():
            raise ModelUnavailableError("AudioLDM2 was asked to run on CUDA, but no GPU is available: "
                                        "choose device 'cpu' (slow) or run on a machine with a GPU.")
        if self.source == TINY_RANDOM_SOURCE:
            self._attach(tiny_random_pipeline(), device=device, trained=False)
            return
        dtype = self.dtype or (torch.float16 if device_t.type == "cuda" else torch.float32)
        self._attach(self._from_pretrained(dtype), device=device, trained=True)

    def _from_pretrained(self, dtype: torch.dtype):
        local = Path(self.source).expanduser()
        is_repo_id = re.fullmatch(r"[\w.-]+/[\w.-]+", self.source) is not None and not self.source.startswith(".")
        offline_mode = not offline.downloads_allowed() or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        if local.is_dir():
            target, local_only = str(local), True
        elif not is_repo_id:
            raise ModelUnavailableError(
                f"AudioLDM2 model folder '{self.source}' does not exist: point {PATH_ENV} (or the model "
                "path option) at a folder saved with AudioLDM2Pipeline.save_pretrained, or at a "
                f"downloaded copy of {DEFAULT_REPO_ID}.")
        else:
            target, local_only = self.source, offline_mode
        try:
            return _pipeline_class().from_pretrained(target, dtype=dtype, local_files_only=local_only,
                                                     cache_dir=self.cache_dir)
        except (OSError, ValueError, RuntimeError, KeyError, ImportError) as err:
            raise ModelUnavailableError(self._unavailable_message(target, local_only, err)) from err
        except Exception as err:  # network errors of huggingface_hub/httpx have no common base class
            if type(err).__module__.split(".")[0] not in ("huggingface_hub", "httpx", "requests", "urllib3"):
                raise
            raise ModelUnavailableError(self._unavailable_message(target, local_only, err)) from err

    def _unavailable_message(self, target: str, local_only: bool, err: BaseException) -> str:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if Path(target).is_dir():
            return (f"the AudioLDM2 folder '{target}' cannot be loaded ({detail}): it must be a complete "
                    "copy of cvssp/audioldm2 (model_index.json plus every component folder).")
        if local_only:
            return (f"AudioLDM2 weights '{target}' are not on this machine, and downloads are off "
                    f"(offline mode). Run once with --allow-downloads (FOLEY_ALLOW_DOWNLOADS=1) on a "
                    f"machine with internet, or point {PATH_ENV} at a local copy of the model folder. "
                    f"({detail})")
        return (f"AudioLDM2 weights '{target}' could not be downloaded ({detail}). Check the internet "
                f"connection and the repo id, or point {PATH_ENV} at a local copy of the model folder.")

    def _attach(self, pipe: Any, *, device: str, trained: bool,
                adapters: AudioLDM2Adapters | None = None) -> None:
        from diffusers import DPMSolverMultistepScheduler

        vocoder_sr = int(pipe.vocoder.config.sampling_rate)
        if vocoder_sr != MODEL_SR:
            raise ModelUnavailableError(f"this AudioLDM2 checkpoint's vocoder runs at {vocoder_sr} Hz; the "
                                        f"studio needs a {MODEL_SR} Hz model such as {DEFAULT_REPO_ID}.")
        self.device = torch.device(device)
        pipe = pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        for module in (pipe.unet, pipe.vae, pipe.vocoder, pipe.text_encoder, pipe.text_encoder_2,
                       pipe.language_model, pipe.projection_model):
            module.eval().requires_grad_(False)
        self.scheduler = DPMSolverMultistepScheduler.from_config(
            pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2,
            timestep_spacing="linspace")
        self.pipe = pipe
        self._trained = trained
        try:
            if adapters is None and self.adapter_path is not None:
                adapters = AudioLDM2Adapters.from_file(self.adapter_path, pipe.unet,
                                                       visual_encoder=self._visual_encoder)
            elif adapters is None and self.new_adapters:
                adapters = AudioLDM2Adapters.for_unet(pipe.unet, latent_fps=self.mel_fps / self.vae_scale_factor,
                                                      visual_encoder=self._visual_encoder)
            if adapters is not None:
                self.attach_adapters(adapters)
        except BaseException:
            self.pipe = None    # a failed load leaves the backend unloaded, not half-loaded
            raise

    def attach_adapters(self, adapters: AudioLDM2Adapters) -> None:
        """Install `adapters` into the UNet (replacing any attached before)."""
        latent_fps = self.mel_fps / self.vae_scale_factor
        if not math.isclose(adapters.latent_fps, latent_fps):
            raise ModelUnavailableError(f"these adapters expect {adapters.latent_fps} latent frames/s; this "
                                        f"AudioLDM2 checkpoint has {latent_fps}.")
        if self.adapters is not None:
            self.adapters.uninstall(self.pipe.unet)
        adapters.to(device=self.device, dtype=self.pipe.unet.dtype).eval()
        adapters.install(self.pipe.unet)
        self.adapters = adapters
        self._video_cache.clear()
        self.video_fps = float(adapters.mam.fps)
        size = getattr(adapters.mam.visual_encoder, "frame_size", self.frame_size)
        self.frame_size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def save_adapters(self, path: str | os.PathLike) -> Path:
        """Write the attached adapters to a safetensors file."""
        if self.adapters is None:
            raise ModelUnavailableError("no adapters are attached to this AudioLDM2 backend: nothing to save")
        return self.adapters.save(path)

    def _require_loaded(self):
        if self.pipe is None:
            raise ModelUnavailableError("the AudioLDM2 backend is not loaded yet: call load() first")
        return self.pipe

    # -- shapes ---------------------------------------------------------------------------------

    @property
    def vae_scale_factor(self) -> int:
        return int(self._require_loaded().vae_scale_factor)

    @property
    def mel_fps(self) -> float:
        config = self._require_loaded().vocoder.config
        return float(config.sampling_rate) / float(np.prod(config.upsample_rates))

    def latent_shape(self, duration_s: float) -> tuple[int, int, int]:
        """(channels, latent frames, latent mel bins) of a window; frames are rounded up so the
        UNet's downsampling divides them (the tail is cut from the audio)."""
        pipe = self._require_loaded()
        multiple = self.vae_scale_factor * 2 ** int(pipe.unet.num_upsamplers)
        n_mel = int(math.ceil(duration_s * self.mel_fps / multiple)) * multiple
        return (int(pipe.unet.config.in_channels), n_mel // self.vae_scale_factor,
                int(pipe.vocoder.config.model_in_dim) // self.vae_scale_factor)

    # -- conditioning ---------------------------------------------------------------------------

    @torch.no_grad()
    def encode_text(self, caption: str | None, negative_caption: str | None = None) -> TextEmbeddings:
        """AudioLDM2's own prompt encoding of a caption and its negative (cached per pair)."""
        pipe = self._require_loaded()
        key = (caption or "", negative_caption or "")
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        t5, mask, generated = pipe.encode_prompt(
            key[0], self.device, 1, True, negative_prompt=key[1], max_new_tokens=self.max_new_tokens)
        emb = TextEmbeddings(t5=t5[1:], t5_mask=mask[1:], generated=generated[1:],
                             negative_t5=t5[:1], negative_t5_mask=mask[:1], negative_generated=generated[:1])
        self._text_cache[key] = emb
        while len(self._text_cache) > 16:
            self._text_cache.popitem(last=False)
        return emb

    @torch.no_grad()
    def encode_video(self, video: VideoCondition) -> torch.Tensor:
        """MAM's tau_visual (1, T, visual_dim) for a window's frames and masks (features cached)."""
        if self.adapters is None:
            raise ModelUnavailableError("this AudioLDM2 backend has no adapters: it cannot read video")
        frames, masks = video.frames, video.masks
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
            raise MediaError(f"video frames must be (T, H, W, 3) RGB with T >= 1, got shape {frames.shape}")
        width, height = self.frame_size
        if frames.shape[1:3] != (height, width):
            raise MediaError(f"video frames are {frames.shape[2]}x{frames.shape[1]} pixels; the AudioLDM2 "
                             f"visual encoder wants {width}x{height}.")
        if not math.isclose(video.fps, self.video_fps):
            raise MediaError(f"video frames are at {video.fps} fps; the AudioLDM2 visual encoder wants "
                             f"{self.video_fps} fps.")
        if masks is not None and masks.shape != frames.shape[:3]:
            raise MaskError(f"the mask has shape {masks.shape} but the frames are {frames.shape[:3]}: "
                            "one mask per frame, same size as the frame, is needed.")
        mam = self.adapters.mam
        features = self._video_cache.get(video.cache_key) if video.cache_key is not None else None
        if features is None:
            x, m = frames_to_tensor(frames, masks)
            dtype = next(mam.parameters()).dtype
            features = mam.encode_features(x.to(self.device, dtype), None if m is None else m.to(self.device, dtype))
            if video.cache_key is not None:
                self._video_cache[video.cache_key] = features
                while len(self._video_cache) > 4:
                    self._video_cache.popitem(last=False)
        return mam(features=features)

    @torch.no_grad()
    def encode_reference(self, audio: np.ndarray, duration_s: float) -> torch.Tensor:
        """Scaled VAE latents (K, C, T, F) (see `latent_shape`) of reference audio (K, n) or (n,)
        at 16 kHz, n = round(duration_s * 16000). Each row is encoded alone (candidates stay
        independent); the mel is padded with silence up to the latent grid."""
        from foley_core.model.mel import MelSpectrogram

        pipe = self._require_loaded()
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        n_samples = int(round(duration_s * self.sr))
        if audio.ndim != 2 or audio.shape[1] != n_samples or not np.all(np.isfinite(audio)):
            raise MediaError(f"the reference for a {duration_s:g} s window must be {n_samples} finite samples "
                             f"at {self.sr} Hz (one row per candidate), got shape {audio.shape}")
        n_bins = int(pipe.vocoder.config.model_in_dim)
        if self._mel is None or self._mel.config.n_mels != n_bins:
            self._mel = MelSpectrogram(sr=self.sr, n_fft=1024, hop_length=160, n_mels=n_bins, fmin=0.0,
                                       fmax=8000.0, log_floor=1e-5)
        n_frames = self.latent_shape(duration_s)[1] * self.vae_scale_factor
        vae = pipe.vae
        latents = []
        for row in audio:
            log_mel = self._mel.denormalize(self._mel(torch.from_numpy(row)[None]))[..., :n_frames]
            log_mel = torch.nn.functional.pad(log_mel, (0, n_frames - log_mel.shape[-1]),
                                              value=math.log(self._mel.config.log_floor))
            x = log_mel.transpose(1, 2)[:, None].to(self.device, vae.dtype)      # (1, 1, T, bins)
            latents.append(vae.encode(x).latent_dist.mode() * vae.config.scaling_factor)
        return torch.cat(latents).to(pipe.unet.dtype)

    def _check_curve(self, curve: np.ndarray | None) -> np.ndarray | None:
        if curve is None:
            return None
        curve = np.asarray(curve, dtype=np.float32)
        if curve.ndim != 1 or curve.size < 1:
            raise CurveError(f"the loudness curve must be a 1-D array of points, got shape {curve.shape}")
        if not np.all(np.isfinite(curve)):
            raise CurveError("the loudness curve contains NaN or infinite values: redraw it")
        if curve.min() < 0:
            raise CurveError(f"the loudness curve has negative values (min {curve.min():.3g}); "
                             "it must be relative loudness from 0 to 1")
        return curve

    # -- sampling -------------------------------------------------------------------------------

    def predict_noise(self, latents: torch.Tensor, t: torch.Tensor, text: TextEmbeddings, *,
                      text_scale: float, video_scale: float, tau_visual: torch.Tensor | None = None,
                      tau_signal: torch.Tensor | None = None) -> torch.Tensor:
        """Guided noise prediction for latents (K, C, T, F) at timestep `t`.

        Rows are stacked branch by branch: [e(0,0)] if text_scale != 1, e(c_t,0), and
        e(c_t,c_v) if `tau_visual` (1, N, D) is given. With adapters, the no-video rows see MAM's
        null token; `tau_signal` (1, C, T) (TLM) is added to every row's latent input.
        """
        pipe = self._require_loaded()
        k = latents.shape[0]
        branches = (["uncond"] if text_scale != 1.0 else []) + ["text"]
        if tau_visual is not None:
            if self.adapters is None:
                raise ValueError("tau_visual needs adapters")
            branches.append("video")
        n = len(branches)

        def rows(uncond: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            parts = [uncond if b == "uncond" else cond for b in branches]
            return torch.cat([p.expand(k, *p.shape[1:]) for p in parts])

        generated = rows(text.negative_generated, text.generated)
        t5 = rows(text.negative_t5, text.t5)
        t5_mask = rows(text.negative_t5_mask, text.t5_mask)
        model_input = self.scheduler.scale_model_input(torch.cat([latents] * n), t)
        if tau_signal is not None:
            model_input = self.adapters.tlm.add_to_latent(model_input, tau_signal.expand(k * n, -1, -1), time_dim=2)
        tokens = None
        if self.adapters is not None:
            n_tokens = tau_visual.shape[1] if tau_visual is not None else 1
            null = self.adapters.mam.null_tokens(1, n_tokens).to(model_input.dtype)
            tokens = torch.cat([(tau_visual if b == "video" else null).expand(k, -1, -1).to(model_input.dtype)
                                for b in branches])
        context = self.adapters.visual_tokens(tokens) if self.adapters is not None else contextlib.nullcontext()
        with context:
            out = pipe.unet(model_input, t, encoder_hidden_states=generated, encoder_hidden_states_1=t5,
                            encoder_attention_mask_1=t5_mask, return_dict=False)[0]
        chunks = dict(zip(branches, out.chunk(n)))
        return dual_guidance(chunks.get("uncond"), chunks["text"], chunks.get("video"),
                             text_scale=text_scale, video_scale=video_scale)

    def initial_latents(self, seeds: Sequence[int], duration_s: float) -> torch.Tensor:
        """Starting noise (K, C, T, F): candidate i from `seeds[i]` alone (a CPU generator, so the
        same seed gives the same noise on any device)."""
        shape = self.latent_shape(duration_s)
        noise = [torch.randn((1, *shape), generator=torch.Generator("cpu").manual_seed(int(s))) for s in seeds]
        return torch.cat(noise).to(self.device, self.pipe.unet.dtype)

    def _check_window(self, duration_s: float, seeds: Sequence[int], steps: int, curve: np.ndarray | None,
                      curve_scale: float | None, reference: np.ndarray | None,
                      strength: float) -> tuple[np.ndarray | None, float]:
        """generate_window's arguments checked: (the checked curve, strength as a float)."""
        if not (0 < duration_s <= self.window_s + 1e-6):
            raise TimeRangeError(f"an AudioLDM2 window must last between 0 and {self.window_s:g} s, "
                                 f"got {duration_s:g} s")
        if len(seeds) < 1:
            raise FoleyError("ask for at least one candidate")
        if int(steps) < 1:
            raise FoleyError(f"the number of denoising steps must be at least 1, got {steps}")
        curve = self._check_curve(curve)
        if curve_scale is not None and curve_scale != 1.0:
            raise FoleyError("curve guidance (curve_scale) is not supported by the audioldm2 backend yet; "
                             "leave it at 1 and use conform to follow the curve")
        strength = float(strength)
        if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
            raise FoleyError(f"the reference strength must be between 0 and 1, got {strength:g}")
        if reference is not None:
            rows = 1 if np.ndim(reference) == 1 else np.shape(reference)[0]
            if rows not in (1, len(seeds)):
                raise MediaError(f"give one reference for all candidates or one per candidate, got {rows} "
                                 f"for {len(seeds)}")
        return curve, strength

    def _encode_adapter_conditions(self, video: VideoCondition | None, curve: np.ndarray | None,
                                   latents: torch.Tensor) -> tuple:
        """(tau_visual, tau_signal): the video and curve tokens of the trained adapters (None
        without adapters; tau_visual None without a video)."""
        tau_visual = tau_signal = None
        if self.adapters is not None:
            if video is not None:
                tau_visual = self.encode_video(video)
            tlm = self.adapters.tlm
            n_frames = latents.shape[2]
            if curve is not None:
                curve_t = torch.as_tensor(curve, device=self.device, dtype=latents.dtype)[None]
                tau_signal = tlm(curve_t, n_frames)
            else:
                tau_signal = tlm(None, n_frames, batch_size=1)
        return tau_visual, tau_signal

    @torch.no_grad()
    def generate_window(self, *, caption: str | None, negative_caption: str | None, duration_s: float,
                        video: VideoCondition | None, curve: np.ndarray | None, seeds: Sequence[int],
                        steps: int = DEFAULT_STEPS, text_scale: float = DEFAULT_TEXT_SCALE,
                        video_scale: float = DEFAULT_VIDEO_SCALE, reference: np.ndarray | None = None,
                        strength: float = 1.0, curve_scale: float | None = None,
                        progress: ProgressFn | None = None,
                        cancel: CancelFn | None = None) -> WindowOutput:
        """len(seeds) candidates (K, n) float32 at 16 kHz of `duration_s` seconds (<= window_s).

        `reference` (K, n) or (n,) at 16 kHz and `strength` 0..1: start from the reference
        noised to the first kept timestep (SDEdit); `progress` counts the steps actually run."""
        pipe = self._require_loaded()
        curve, strength = self._check_window(duration_s, seeds, steps, curve, curve_scale, reference, strength)
        n_skip, n_run = reference_steps(int(steps), strength if reference is not None else 1.0)
        timings: dict[str, float] = {}
        with self._lock:
            start = time.perf_counter()
            text = self.encode_text(caption, negative_caption)
            timings["encode_text"] = time.perf_counter() - start

            start = time.perf_counter()
            latents = self.initial_latents(seeds, duration_s)
            tau_visual, tau_signal = self._encode_adapter_conditions(video, curve, latents)
            timings["encode_conditions"] = time.perf_counter() - start

            self.scheduler.set_timesteps(int(steps), device=self.device)
            timesteps = self.scheduler.timesteps[n_skip:]
            if n_skip == 0:
                latents = latents * self.scheduler.init_noise_sigma
            else:
                start = time.perf_counter()
                ref_latents = self.encode_reference(reference, duration_s)
                ref_latents = ref_latents.expand(latents.shape[0], *ref_latents.shape[1:])
                timings["encode_reference"] = time.perf_counter() - start
                self.scheduler.set_begin_index(n_skip)
                latents = ref_latents if n_run == 0 else self.scheduler.add_noise(ref_latents, latents, timesteps[:1])

            start = time.perf_counter()
            for i, t in enumerate(timesteps):
                if cancel is not None and cancel():
                    raise GenerationCancelled("generation cancelled: no audio was produced for this window")
                eps = self.predict_noise(latents, t, text, text_scale=text_scale, video_scale=video_scale,
                                         tau_visual=tau_visual, tau_signal=tau_signal)
                latents = self.scheduler.step(eps, t, latents).prev_sample
                if progress is not None:
                    progress(i + 1, len(timesteps))
            timings["denoise"] = time.perf_counter() - start

            start = time.perf_counter()
            mel = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
            audio = pipe.mel_spectrogram_to_waveform(mel)
            n_samples = int(round(duration_s * self.sr))
            audio = audio[:, :n_samples].numpy().astype(np.float32)
            timings["decode"] = time.perf_counter() - start
        if audio.shape[1] < n_samples:
            audio = np.pad(audio, ((0, 0), (0, n_samples - audio.shape[1])))
        return WindowOutput(audios=audio, sr=self.sr, timings_s=timings)

