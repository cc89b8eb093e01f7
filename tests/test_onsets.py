"""TLM's onset module: the track, zero at attach, every branch, training, and generate()'s onsets
(given by the user, or from the contacts the video's motion shows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foley_core.errors import CurveError, FoleyError
from foley_core.model.conditioning import onset_track
from foley_core.model.configs import tiny_config
from foley_core.pipeline import FoleyPipeline
from foley_lab.training import ClipCollator, ToyClipDataset, ldm_loss
from foley_lab.training.trainer import _noise_scheduler

torch.set_num_threads(1)
pytestmark = pytest.mark.usefixtures("tiny_model")


def no_onsets_config() -> dict:
    cfg = tiny_config()
    del cfg["tlm"]["onsets"]
    return cfg


@pytest.fixture(scope="module")
def clip(media_factory):
    """3 s, 160x120, 25 fps: a white square that reverses direction at 0.8 s and 2.0 s."""
    return media_factory("make_video", "square.mp4", seconds=3.0, fps=25, size=(160, 120),
                         audio_events_s=[0.8, 2.0])


def test_onset_track_peaks_at_the_onset_and_encodes_its_position_between_frames():
    track = onset_track([0.5], 50, frame_rate=25.0, sigma_s=0.02, decay_s=0.15)
    assert track.shape == (2, 50)
    peak = int(track[0].argmax())
    assert abs((peak + 0.5) / 25.0 - 0.5) <= 0.5 / 25.0 + 1e-6
    assert float(track[0, :8].max()) < 1e-6 and float(track[1, :12].max()) == 0.0   # nothing before
    later = onset_track([0.515], 50, frame_rate=25.0, sigma_s=0.02, decay_s=0.15)
    assert not torch.allclose(track, later)          # 15 ms later is a different track
    assert float(track[1, 13]) > float(track[1, 20]) > 0.0      # decays after the onset
    assert torch.equal(onset_track([], 10, frame_rate=25.0, sigma_s=0.02, decay_s=0.15), torch.zeros(2, 10))


def test_attaching_onsets_to_a_trained_model_changes_nothing():
    pipe = FoleyPipeline.from_config(no_onsets_config())
    kw = dict(duration_s=1.0, caption="a door", seeds=[3], num_inference_steps=3)
    before = pipe(**kw).latents
    pipe.tlm.attach_onsets(hidden_dim=8)
    np.testing.assert_array_equal(before, pipe(**kw).latents)
    np.testing.assert_array_equal(before, pipe(**kw, onsets_s=[0.2, 0.6]).latents)   # zero output layer


def test_a_model_without_the_module_refuses_onsets():
    pipe = FoleyPipeline.from_config(no_onsets_config())
    with pytest.raises(ValueError, match="no onset module"):
        pipe(duration_s=1.0, caption="a door", onsets_s=[0.2], seeds=[0], num_inference_steps=1)


def test_onsets_enter_every_branch_and_timing_guidance_removes_them(unet_inputs):
    pipe = FoleyPipeline.from_config(tiny_config())
    torch.manual_seed(0)
    with torch.no_grad():
        torch.nn.init.normal_(pipe.tlm.onsets.out.weight)
    seen = unet_inputs(pipe)
    kw = dict(duration_s=0.8, caption="a bell", seeds=[0], num_inference_steps=1)
    pipe(**kw, onsets_s=[0.3], curve_scale=1.0)
    pipe(**kw, onsets_s=[], curve_scale=1.0)
    pipe(**kw, onsets_s=None, curve_scale=1.0)
    pipe(**kw, onsets_s=[0.3], curve_scale=4.0)
    with_onsets, empty, without, guided = seen
    assert torch.equal(with_onsets[0], with_onsets[1])           # (null text), (caption): same z input
    diff = (with_onsets[1] - empty[1]).abs().sum(0)
    # the change starts at the onset (frame 7 is centred on 0.3 s; later frames carry the decay)
    assert float(diff[6:9].max()) > 0.1 * float(diff.max())
    assert float(diff[:3].max()) < 1e-6 * float(diff.max())     # and nothing long before it
    assert not torch.allclose(empty[1], without[1])              # "none here" is not "no instruction"
    assert guided.shape[0] == 3                                  # + the branch without timing
    torch.testing.assert_close(guided[2], without[1])
    torch.testing.assert_close(guided[1], with_onsets[1])


def test_training_sends_gradient_to_the_onset_module_unless_dropped():
    torch.manual_seed(0)
    pipe = FoleyPipeline.from_config(tiny_config())
    ds = ToyClipDataset(4, duration_s=1.0)
    items = [ds[i] for i in range(4)]
    for item in items:
        item["audio_onsets_s"] = np.array([0.25, 0.9, 1.5])   # 1.5 s lies past the 1 s batch
    batch = ClipCollator(video_fps=20.0, frame_size=(32, 32))(items)
    assert [list(o) for o in batch["onsets_s"]] == [[0.25, 0.9]] * 4
    sched = _noise_scheduler(pipe)
    ldm_loss(pipe, batch, noise_scheduler=sched, p_drop={"onsets": 0.0},
             generator=torch.Generator().manual_seed(0)).backward()
    assert float(pipe.tlm.onsets.out.weight.grad.abs().sum()) > 0
    pipe.zero_grad = None
    for p in pipe.tlm.onsets.parameters():
        p.grad = None
    ldm_loss(pipe, batch, noise_scheduler=sched, p_drop={"onsets": 1.0},
             generator=torch.Generator().manual_seed(0)).backward()
    assert pipe.tlm.onsets.out.weight.grad is None or float(pipe.tlm.onsets.out.weight.grad.abs().sum()) == 0
    assert float(pipe.tlm.onsets.null_embedding.grad.abs().sum()) > 0


def test_generate_with_given_onsets_and_their_errors(tiny_model):
    from foley_core.generate import generate

    res = generate(caption="a door knock", duration_s=1.5, onsets_s=[1.0, 0.25], steps=2)
    assert res.metadata["onsets_s"] == [0.25, 1.0] and res.metadata["onsets_source"] == "given"
    assert "onsets" in res.metadata["instructions"]["given"]
    for bad, match in (([0.2, float("nan")], "NaN"), ([1.6], "outside"), ([-0.1], "outside"),
                       ("soon", "list of times")):
        with pytest.raises(CurveError, match=match):
            generate(caption="a door knock", duration_s=1.5, onsets_s=bad, steps=1)


def test_generate_places_onsets_at_the_videos_contacts(tiny_model, clip):
    from foley_core.generate import generate

    band = np.zeros((120, 160), np.float32)
    band[:90] = 1.0                                   # the square's band, not the frame-index strip
    res = generate(caption="a ball bounces", video=str(clip), mask=band, start_s=0.5, duration_s=2.0,
                   steps=2)
    assert res.metadata["onsets_source"] == "video"
    # the square reverses at 0.8 s and 2.0 s of the video: 0.3 s and 1.5 s of the selection
    found = np.asarray(res.metadata["onsets_s"])
    assert found.size == 2 and np.all(np.abs(found - [0.3, 1.5]) <= 0.1), found
    off = generate(caption="a ball bounces", video=str(clip), mask=band, start_s=0.5, duration_s=2.0,
                   steps=2, video_onsets=False)
    assert off.metadata["onsets_s"] is None and off.metadata["onsets_source"] is None
    # without a mask nothing says whose contacts count: none are placed
    whole = generate(caption="a ball bounces", video=str(clip), start_s=0.5, duration_s=2.0, steps=2)
    assert whole.metadata["onsets_s"] is None and whole.metadata["onsets_source"] is None
    given = generate(caption="a ball bounces", video=str(clip), start_s=0.5, duration_s=2.0, steps=2,
                     onsets_s=[1.0])
    assert given.metadata["onsets_s"] == [1.0] and given.metadata["onsets_source"] == "given"


def test_the_videos_contacts_are_analysed_once_per_selection_and_region(clip, monkeypatch):
    # another seed or curve on the same selection and region must not redo the motion analysis
    # (a third of a warm 8 s default take); another region, range or file must
    import foley_core.generate as gen
    from foley_core import media

    runs = []
    real = gen.region_motion

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "region_motion", counting)
    monkeypatch.setattr(gen, "_ONSETS_CACHE", type(gen._ONSETS_CACHE)())
    info = media.probe_video(str(clip))
    band = np.zeros((120, 160), np.float32)
    band[:90] = 1.0
    first = gen.video_contact_onsets(str(clip), info, band, start_s=0.5, duration_s=2.0)
    again = gen.video_contact_onsets(str(clip), info, band, start_s=0.5, duration_s=2.0)
    assert again == first and len(runs) == 1
    again.append(9.0)                                  # the caller's list is its own
    assert gen.video_contact_onsets(str(clip), info, band, start_s=0.5, duration_s=2.0) == first
    top = np.zeros((120, 160), np.float32)
    top[:20] = 1.0
    gen.video_contact_onsets(str(clip), info, top, start_s=0.5, duration_s=2.0)
    gen.video_contact_onsets(str(clip), info, band, start_s=0.4, duration_s=2.0)
    assert len(runs) == 3


def test_a_backend_without_onsets_refuses_given_ones_and_skips_the_videos(tmp_path, clip, monkeypatch):
    from foley_core.backends import clear_backends
    from foley_core.generate import generate
    from foley_core.model.configs import write_tiny_model_dir

    folder = write_tiny_model_dir(tmp_path / "old", window_s=2.0)
    import json
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["tlm"]["onsets"]
    (folder / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("FOLEY_EMBEDDED_DIR", str(folder))
    clear_backends()
    try:
        with pytest.raises(FoleyError, match="cannot place sounds at given onsets"):
            generate(caption="a door", duration_s=1.0, onsets_s=[0.5], steps=1, source="model")
        res = generate(caption="a ball", video=str(clip), mask=np.ones((120, 160), np.float32),
                       duration_s=1.0, steps=1, source="model")
        assert res.metadata["onsets_s"] is None and "onsets" not in res.metadata["instructions"]["given"]
    finally:
        clear_backends()


def test_a_oneshot_reference_is_placed_at_the_videos_contacts(tiny_model, clip):
    from foley_core.events import detect_onsets
    from foley_core.generate import generate

    rng = np.random.default_rng(0)
    n = 8000                                          # a 0.5 s knock at 16 kHz
    knock = (0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / 400.0)).astype(np.float32)
    band = np.zeros((120, 160), np.float32)
    band[:90] = 1.0
    kw = dict(caption="a knock", video=str(clip), mask=band, start_s=0.5, duration_s=2.0,
              reference=(knock, 16000))
    res = generate(strength=0.0, **kw)                # no model runs: the placed reference itself
    meta = res.metadata
    assert meta["onsets_source"] == "video" and meta["reference"]["placed_at_onsets"] is True
    assert "onsets (the reference placed at each)" in meta["instructions"]["enforced_after"]
    assert "onsets" not in meta["instructions"]["ignored_by_model"]
    found = detect_onsets(res.audios[0], 16000)
    assert found.size == 2 and np.all(np.abs(found - [0.3, 1.5]) <= 0.1), found
    # with the model, the same onsets also reach its onset module
    guided = generate(strength=0.5, steps=2, **kw).metadata
    assert guided["onsets_s"] == meta["onsets_s"] and guided["reference"]["placed_at_onsets"] is True
    off = generate(strength=0.0, video_onsets=False, **kw).metadata
    assert off["onsets_s"] is None and off["reference"]["placed_at_onsets"] is False
