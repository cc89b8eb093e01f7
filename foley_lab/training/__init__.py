"""Training of the embedded model (VAE, then the LDM with MAM and TLM) through accelerate."""

from foley_lab.training.data import (
    AudioOnlyDataset,
    DEFAULT_BUCKETS_S,
    BucketBatchSampler,
    ClipCollator,
    ClipDataset,
    ToyClipDataset,
    bucket_for,
)
from foley_lab.training.trainer import (
    TrainConfig,
    TrainResult,
    decoder_loss,
    find_checkpoint,
    ldm_loss,
    save_checkpoint,
    train,
    vae_loss,
)

__all__ = [
    "AudioOnlyDataset",
    "DEFAULT_BUCKETS_S", "BucketBatchSampler", "ClipCollator", "ClipDataset", "ToyClipDataset", "bucket_for",
    "TrainConfig", "TrainResult", "decoder_loss", "find_checkpoint", "ldm_loss", "save_checkpoint", "train", "vae_loss",
]
