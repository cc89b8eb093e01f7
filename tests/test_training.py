"""Training: bucketing and collation, VAE and LDM losses fall, checkpoints reload and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from repo_modules import load_repo_module
from foley_core.model.configs import tiny_config
from foley_core.pipeline import FoleyPipeline
from foley_lab.training import (
    BucketBatchSampler,
    ClipCollator,
    ToyClipDataset,
    TrainConfig,
    find_checkpoint,
    ldm_loss,
    train,
    vae_loss,
)
from foley_lab.training.trainer import _noise_scheduler, load_training_state

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset():
    return ToyClipDataset(8, duration_s=1.0, video=True, frame_size=32)


def fixed_batch(dataset):
    return ClipCollator(video_fps=20, frame_size=(32, 32))([dataset[i] for i in range(4)])


def test_toy_dataset_and_collation():
    ds = ToyClipDataset(6, duration_s=[1.0, 1.6, 3.0], video=True, frame_size=48)
    item = ds[1]
    assert item["audio"].shape == (25600,) and item["frames"].shape == (32, 48, 48, 3)
    assert item["masks"].shape == (32, 48, 48) and item["caption"]
    np.testing.assert_array_equal(ds[1]["audio"], item["audio"])           # deterministic
    sampler = BucketBatchSampler(ds, 4)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:                                                       # one bucket per batch
        assert len({ds.bucket_of(i) for i in b}) == 1
    capped = BucketBatchSampler(ds, 4, max_batch_seconds=2.0)               # 2 x 1 s, 1 x 2 s, 1 x 4 s
    assert max(len(b) for b in capped if ds.bucket_of(b[0]) == 4.0) == 1
    assert max(len(b) for b in capped if ds.bucket_of(b[0]) == 1.0) == 2
    collate = ClipCollator(video_fps=20, frame_size=(32, 32))
    no_video = {"audio": np.zeros(8000, np.float32), "caption": "silence", "frames": None}
    batch = collate([ds[1], no_video])                  # 1.6 s and 0.5 s -> 1.6 s
    assert batch["audio"].shape == (2, 25600)
    assert batch["frames"].shape == (2, 32, 3, 32, 32) and batch["masks"].shape == (2, 32, 1, 32, 32)
    assert batch["has_video"].tolist() == [True, False]
    assert batch["captions"] == [item["caption"], "silence"]


def test_vae_and_ldm_losses_fall_and_checkpoint_round_trip(dataset, tmp_path):
    pipe = FoleyPipeline.from_config(tiny_config())
    batch = fixed_batch(dataset)
    out = tmp_path / "run"

    def fixed_vae_loss():
        with torch.no_grad():
            return vae_loss(pipe, batch["audio"], kl_weight=1e-4, generator=torch.Generator().manual_seed(0))[0].item()

    before = fixed_vae_loss()
    result = train(pipe, dataset, TrainConfig(stage="vae", out_dir=str(out), max_steps=25, batch_size=4,
                                              learning_rate=3e-3, device="cpu", resume=False))
    assert result.step == 25
    assert fixed_vae_loss() < 0.7 * before
    assert pipe.vae.config.scaling_factor != 1.0                     # set from the data
    assert load_training_state(find_checkpoint(out))["stage"] == "vae"

    ns = _noise_scheduler(pipe)

    def fixed_ldm_loss():
        # same noise, timesteps and dropout every time: only the weights change
        with torch.no_grad():
            return np.mean([ldm_loss(pipe, batch, noise_scheduler=ns,
                                     generator=torch.Generator().manual_seed(s)).item() for s in range(4)])

    before = fixed_ldm_loss()
    result = train(pipe, dataset, TrainConfig(stage="ldm", out_dir=str(out), max_steps=30, batch_size=4,
                                              learning_rate=3e-3, device="cpu"))
    assert result.step == 30
    after = fixed_ldm_loss()
    assert after < 0.8 * before, (before, after)

    checkpoint = find_checkpoint(out)
    meta = json.loads((checkpoint / "training.json").read_text())
    assert meta["stage"] == "ldm" and meta["step"] == 30
    loaded = FoleyPipeline.from_pretrained(checkpoint)
    assert loaded.config["trained"] is True
    assert loaded.vae.config.scaling_factor == pipe.vae.config.scaling_factor
    item = dataset[0]
    kw = dict(duration_s=1.0, caption=item["caption"], frames=item["frames"], masks=item["masks"],
              curve=np.linspace(0, 1, 10), seeds=[3], num_inference_steps=3)
    np.testing.assert_array_equal(loaded(**kw).audios, pipe(**kw).audios)

    # resume: continues at step 30 with the saved optimizer state, up to the new max_steps
    result = train(pipe, dataset, TrainConfig(stage="ldm", out_dir=str(out), max_steps=33, batch_size=4,
                                              learning_rate=3e-3, device="cpu"))
    assert result.step == 33 and len(result.losses) == 33
    # a VAE run on a folder that already holds an LDM checkpoint does not overwrite it
    result = train(pipe, dataset, TrainConfig(stage="vae", out_dir=str(out), max_steps=5, batch_size=4,
                                              device="cpu"))
    assert result.step == 0
    assert load_training_state(find_checkpoint(out))["stage"] == "ldm"


def test_condition_dropout_reaches_the_unet(dataset, monkeypatch):
    pipe = FoleyPipeline.from_config(tiny_config())
    batch = fixed_batch(dataset)
    seen = {}
    original = pipe.unet.forward

    def spy(sample, timestep, **kw):
        seen.update(text=kw["text_present"].tolist(), video=kw["visual_mask"].sum(1).tolist())
        return original(sample, timestep, **kw)

    monkeypatch.setattr(pipe.unet, "forward", spy)
    ns = _noise_scheduler(pipe)
    ldm_loss(pipe, batch, noise_scheduler=ns, p_drop={"all": 1.0})
    assert seen["text"] == [False] * 4 and seen["video"] == [1] * 4
    ldm_loss(pipe, batch, noise_scheduler=ns, p_drop={})
    assert seen["text"] == [True] * 4 and seen["video"] == [batch["frames"].shape[1]] * 4


def test_train_command_toy_data_and_export(tmp_path, capsys):
    from foley_core.cli import run_command
    from foley_lab.cli import build_parser
    from foley_core.model.configs import write_tiny_model_dir

    config = write_tiny_model_dir(tmp_path / "tiny") / "config.json"
    args = build_parser().parse_args(
        ["train", "--data", "toy", "--config", str(config), "--out", str(tmp_path / "run"), "--vae-steps", "2",
         "--steps", "2", "--batch-size", "2", "--export", str(tmp_path / "model"), "--device", "cpu"])
    assert run_command(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    summary = lines[-1]
    assert summary["stages"]["vae"]["steps"] == 2 and summary["stages"]["ldm"]["steps"] == 2
    assert any(row.get("stage") == "ldm" and row.get("step") == 1 for row in lines[:-1])
    exported = FoleyPipeline.from_pretrained(tmp_path / "model")
    assert exported.config["trained"] is True


def test_ldm_checkpoint_holds_ema_weights_and_resume_restores_raw(dataset, tmp_path):
    from safetensors.torch import load_file

    pipe = FoleyPipeline.from_config(tiny_config())
    out = tmp_path / "run"
    train(pipe, dataset, TrainConfig(stage="ldm", out_dir=str(out), max_steps=6, batch_size=4,
                                     learning_rate=3e-3, device="cpu", resume=False))
    checkpoint = find_checkpoint(out)
    state = load_training_state(checkpoint)
    raw = {k[len("unet."):]: v for k, v in state["raw_model"].items() if k.startswith("unet.")}
    saved = load_file(next((checkpoint / "unet").glob("*.safetensors")))
    assert set(raw) == set(saved)
    # the pipeline on disk (what the app loads) is the moving average, not the last raw step
    assert any(not torch.equal(raw[k], saved[k]) for k in raw)
    # after training, the in-memory pipeline holds exactly what was saved
    for k, v in pipe.unet.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)
    # resuming puts the raw weights back under training (and the EMA in its state)
    resumed = FoleyPipeline.from_config(tiny_config())
    train(resumed, dataset, TrainConfig(stage="ldm", out_dir=str(out), max_steps=6, batch_size=4,
                                        learning_rate=3e-3, device="cpu"))
    state2 = load_training_state(find_checkpoint(out))
    for k, v in state["raw_model"].items():
        torch.testing.assert_close(state2["raw_model"][k], v, rtol=0, atol=0)


def test_decoder_stage_trains_the_decoder_alone_and_keeps_the_latent_space(dataset, tmp_path):
    from foley_lab.training import decoder_loss
    from foley_lab.training.trainer import encoder_parts

    pipe = FoleyPipeline.from_config(tiny_config())
    train(pipe, dataset, TrainConfig(stage="vae", out_dir=str(tmp_path / "vae"), max_steps=10,
                                     batch_size=4, learning_rate=3e-3, device="cpu", resume=False))
    scale = pipe.vae.config.scaling_factor
    encoder = {k: v.clone() for part in encoder_parts(pipe.vae) for k, v in part.state_dict().items()}
    decoder = {k: v.clone() for k, v in pipe.vae.decoder.state_dict().items()}
    batch = fixed_batch(dataset)

    def fixed_loss():
        with torch.no_grad():
            return decoder_loss(pipe, batch["audio"], generator=torch.Generator().manual_seed(0))[0].item()

    before = fixed_loss()
    out = tmp_path / "decoder"
    result = train(pipe, dataset, TrainConfig(stage="decoder", out_dir=str(out), max_steps=25,
                                              batch_size=4, learning_rate=3e-3, device="cpu"))
    assert result.step == 25
    assert fixed_loss() < before
    # the encoder and the latent scale are untouched, so an LDM trained on them still applies
    after = {k: v for part in encoder_parts(pipe.vae) for k, v in part.state_dict().items()}
    for k, v in encoder.items():
        torch.testing.assert_close(after[k], v, rtol=0, atol=0)
    assert any(not torch.equal(v, decoder[k]) for k, v in pipe.vae.decoder.state_dict().items())
    loaded = FoleyPipeline.from_pretrained(find_checkpoint(out))
    assert loaded.vae.config.scaling_factor == scale
    assert load_training_state(find_checkpoint(out))["stage"] == "decoder"
    # resumes its own run
    result = train(pipe, dataset, TrainConfig(stage="decoder", out_dir=str(out), max_steps=27,
                                              batch_size=4, learning_rate=3e-3, device="cpu"))
    assert result.step == 27

    # scripts/swap_decoder.py puts the new decoder into the model it was fine-tuned from
    swap = load_repo_module("scripts/swap_decoder.py").swap_decoder
    model_dir = find_checkpoint(tmp_path / "vae")
    merged = swap(find_checkpoint(out), model_dir, tmp_path / "merged")
    assert merged["out"] == str(tmp_path / "merged") and not (tmp_path / "merged.tmp").exists()
    loaded = FoleyPipeline.from_pretrained(tmp_path / "merged")
    for k, v in pipe.vae.state_dict().items():
        torch.testing.assert_close(loaded.vae.state_dict()[k], v, rtol=0, atol=0)
    original = FoleyPipeline.from_pretrained(model_dir)
    for k, v in original.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[k], v, rtol=0, atol=0)
    assert not (tmp_path / "merged" / "training_state.pt").exists()
    # another model's latents are not what this decoder decodes
    other, fresh = tmp_path / "other", FoleyPipeline.from_config(tiny_config())
    fresh.vae.register_to_config(scaling_factor=scale)
    fresh.save_pretrained(other)
    with pytest.raises(SystemExit, match="different VAE encoders"):
        swap(find_checkpoint(out), other, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_decoder_stage_refuses_another_stages_run_folder(dataset, tmp_path):
    pipe = FoleyPipeline.from_config(tiny_config())
    out = tmp_path / "run"
    train(pipe, dataset, TrainConfig(stage="ldm", out_dir=str(out), max_steps=2, batch_size=4,
                                     device="cpu", resume=False))
    from foley_core.errors import FoleyError

    with pytest.raises(FoleyError, match="run folder of its own"):
        train(pipe, dataset, TrainConfig(stage="decoder", out_dir=str(out), max_steps=4,
                                         batch_size=4, device="cpu"))
    assert load_training_state(find_checkpoint(out))["stage"] == "ldm"


def test_train_command_decoder_stage_needs_a_model(tmp_path, capsys):
    from foley_core.cli import run_command
    from foley_lab.cli import build_parser
    from foley_core.model.configs import write_tiny_model_dir

    config = write_tiny_model_dir(tmp_path / "tiny") / "config.json"
    args = build_parser().parse_args(["train", "--stage", "decoder", "--data", "toy", "--config",
                                      str(config), "--out", str(tmp_path / "run")])
    assert run_command(args) == 2
    assert "--init MODEL_DIR" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
