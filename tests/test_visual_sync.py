"""MAM's frame-aligned sync signal: zero at attach, aligned in time, trained, saved, per branch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foley_core.model.conditioning import VisualSyncModule, resample_frames
from foley_core.model.configs import tiny_config
from foley_core.pipeline import FoleyPipeline
from foley_lab.training import ClipCollator, ToyClipDataset, ldm_loss
from foley_lab.training.trainer import _noise_scheduler

from media_fixtures import noise_window

torch.set_num_threads(1)


def no_sync_config() -> dict:
    cfg = tiny_config()
    del cfg["mam"]["sync"]
    return cfg


def test_resample_frames_keeps_events_at_their_time():
    values = torch.zeros(1, 40, 1)
    values[0, 10] = 1.0                       # frame 10 at 20 fps is on screen at 0.5 s
    out = resample_frames(values, 50, frame_rate=25.0, source_fps=20.0)[0, :, 0]
    peak = int(out.argmax())
    assert abs((peak + 0.5) / 25.0 - 0.5) <= 0.5 / 25.0 + 1e-6    # the latent frame centred nearest 0.5 s
    assert out[peak] > 0.5 and float(out[:8].abs().max()) == 0.0


def test_sync_output_follows_an_event_in_the_masked_features():
    torch.manual_seed(0)
    sync = VisualSyncModule(feature_dim=8, latent_channels=4, latent_fps=25.0, fps=20.0, hidden_dim=16)
    with torch.no_grad():
        assert float(sync(torch.randn(1, 20, 8), torch.randn(1, 20, 8), 25).abs().max()) == 0.0   # zero init
    torch.nn.init.normal_(sync.out.weight)
    base = torch.zeros(1, 40, 8)
    event = base.clone()
    event[0, 30] = 3.0                                          # 1.5 s
    with torch.no_grad():
        diff = (sync(base, event, 50) - sync(base, base, 50)).abs().sum(1)[0]
    assert abs((int(diff.argmax()) + 0.5) / 25.0 - 1.5) <= 0.1   # the change sits at the event
    assert float(diff[:20].max()) == 0.0                          # nothing long before it


def test_attaching_sync_to_a_trained_model_changes_nothing():
    pipe = FoleyPipeline.from_config(no_sync_config())
    frames, masks = noise_window()
    kw = dict(duration_s=1.0, caption="a door", frames=frames, masks=masks, seeds=[3], num_inference_steps=3)
    before = pipe(**kw).latents
    pipe.mam.attach_sync(latent_channels=4, latent_fps=25.0, hidden_dim=8)
    np.testing.assert_array_equal(before, pipe(**kw).latents)


def test_sync_is_added_only_to_branches_that_see_the_video(unet_inputs):
    pipe = FoleyPipeline.from_config(tiny_config())
    with torch.no_grad():
        torch.nn.init.normal_(pipe.mam.sync.out.weight)
    seen = unet_inputs(pipe)
    frames, masks = noise_window(16)
    pipe(duration_s=0.8, caption="a bell", frames=frames, masks=masks, seeds=[0], num_inference_steps=1)
    (x,) = seen                                         # rows: (null, no video), (text, no video), (text, video)
    assert torch.equal(x[0], x[1]) and not torch.allclose(x[1], x[2])
    feats = pipe.encode_video(frames, masks, None)
    expected = pipe.mam.sync_signal(tuple(f.to(x.dtype) for f in feats), x.shape[-1])[0]
    torch.testing.assert_close(x[2] - x[1], expected, rtol=1e-4, atol=1e-5)


def test_sync_learns_in_training_and_is_silent_without_video():
    pipe = FoleyPipeline.from_config(tiny_config())
    ds = ToyClipDataset(4, duration_s=1.0, video=True, frame_size=32)
    batch = ClipCollator(video_fps=20, frame_size=(32, 32))([ds[i] for i in range(4)])
    ns = _noise_scheduler(pipe)
    ldm_loss(pipe, batch, noise_scheduler=ns, p_drop={}, generator=torch.Generator().manual_seed(0)).backward()
    assert float(pipe.mam.sync.out.weight.grad.abs().sum()) > 0
    pipe.mam.sync.out.weight.grad = None
    ldm_loss(pipe, batch, noise_scheduler=ns, p_drop={"video": 1.0},
             generator=torch.Generator().manual_seed(0)).backward()
    grad = pipe.mam.sync.out.weight.grad
    assert grad is None or float(grad.abs().sum()) == 0.0


def test_sync_round_trips_through_save_and_load(tmp_path):
    pipe = FoleyPipeline.from_config(tiny_config())
    with torch.no_grad():
        torch.nn.init.normal_(pipe.mam.sync.out.weight)
    pipe.save_pretrained(tmp_path / "m")
    again = FoleyPipeline.from_pretrained(tmp_path / "m")
    assert again.mam.config["sync"] == pipe.mam.config["sync"]
    torch.testing.assert_close(again.mam.sync.out.weight, pipe.mam.sync.out.weight)
    cfg = tiny_config()
    cfg["mam"]["sync"]["latent_channels"] = 8
    with pytest.raises(ValueError, match="sync"):
        FoleyPipeline.from_config(cfg)
