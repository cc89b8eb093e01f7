"""Model configs: the embedded CPU config (assets/embedded/config.json) and a tiny test config.

`tiny_config()` builds in milliseconds and runs a 25-step window in well under a second; tests
(ours and other engineers') point `FOLEY_EMBEDDED_DIR` at `write_tiny_model_dir(tmp)`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from foley_core.atomic import write_text_atomic

EMBEDDED_CONFIG_PATH = Path(__file__).resolve().parents[2] / "assets" / "embedded" / "config.json"


def embedded_config() -> dict:
    """The shipped CPU-sized config."""
    return json.loads(EMBEDDED_CONFIG_PATH.read_text())


def tiny_config(*, window_s: float = 4.0, text_encoder: str = "hash") -> dict:
    """A very small model with the embedded model's structure (for tests)."""
    cfg = copy.deepcopy(embedded_config())
    cfg["pipeline"].update({"name": "embedded", "window_s": window_s, "trained": False, "init_seed": 0})
    cfg["vae"].update({"block_out_channels": [16, 16, 16], "latent_channels": 4})
    cfg["unet"].update({"in_channels": 4, "out_channels": 4, "block_out_channels": [16, 24],
                        "attention_levels": [True, True], "cross_attention_dim": 16,
                        "attention_head_dim": 8, "text_embed_dim": 16, "latent_fps": 25.0,
                        "n_time_features": 16})
    cfg["vae"]["n_mels"] = cfg["mel"]["n_mels"]
    cfg["mam"] = {"visual_encoder": {"class": "MotionFrameEncoder", "fps": 20.0, "frame_size": 32,
                                     "feature_dim": 16, "channels": [8, 8], "patch_size": 4,
                                     "temporal_kernel": 3},
                  "n_time_features": 16,
                  "sync": {"latent_channels": 4, "latent_fps": 25.0, "hidden_dim": 8}}
    cfg["tlm"] = {"hidden_dim": 8, "context_frames": 3, "onsets": {"hidden_dim": 8}}
    if text_encoder == "hash":
        cfg["text_encoder"] = {"class": "HashTextEncoder", "embed_dim": 16, "max_tokens": 16}
    else:
        cfg["text_encoder"] = {"class": "SentenceEncoder", "max_tokens": 32}
        cfg["unet"]["text_embed_dim"] = 384
    cfg["vocoder"] = {"class": "GriffinLimVocoder", "n_iter": 4, "momentum": 0.99, "engine": "torch"}
    return cfg


def write_tiny_model_dir(directory: str | Path, **kwargs) -> Path:
    """Write `tiny_config(**kwargs)` as `directory/config.json` (an untrained model folder)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / "config.json", json.dumps(tiny_config(**kwargs), indent=2) + "\n")
    return directory
