"""Evaluation harness: metric functions on hand-made cases, the tagger, reference rows, and the
`python -m foley_lab eval` command end to end on a tiny random model (quick preset)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from foley_core import loudness
from foley_core.constants import MODEL_SR
from foley_core.errors import FoleyError, MediaError
from foley_lab.evaluation import metrics
from foley_lab.evaluation.harness import (ROWS, SCENE_ROWS, EvalConfig, select_val_clips, stretch_curve,
                                           swap_partners)
from foley_lab.evaluation.references import (CaptionRetriever, coloured_noise, fit_length,
                                              shaped_noise)
from foley_lab.evaluation.tagger import (DEFAULT_TAGGER_DIR, AudioTagger, TrainConfig,
                                          load_tagger, save_tagger, tagger_features, train_tagger)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SR = MODEL_SR


def clicks(times_s, duration_s: float = 2.0, sr: int = SR) -> np.ndarray:
    """Short decaying 2 kHz bursts starting at `times_s` over a faint noise floor."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(int(duration_s * sr)) * 1e-4).astype(np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    burst = (np.sin(2 * np.pi * 2000 * t) * np.exp(-t / 0.006)).astype(np.float32)
    for s in times_s:
        i = int(round(s * sr))
        x[i:i + burst.size] += burst[: x.size - i]
    return x


# ------------------------------------------------------------------------------ loudness metrics

def test_pearson_r_hand_cases():
    a = np.array([0.0, 1.0, 2.0, 3.0])
    assert metrics.pearson_r(a, 2 * a + 1) == pytest.approx(1.0)
    assert metrics.pearson_r(a, -a) == pytest.approx(-1.0)
    assert metrics.pearson_r(a, np.ones(4)) == 0.0          # constant: undefined -> 0
    with pytest.raises(ValueError):
        metrics.pearson_r(a, a[:3])


def test_curve_fit_perfect_and_wrong_curves():
    rng = np.random.default_rng(1)
    n = 3 * SR
    env = np.linspace(0.05, 1.0, n)                        # a crescendo
    audio = (rng.standard_normal(n) * 0.1 * env).astype(np.float32)
    own = loudness.relative_loudness(audio, SR)
    fit = metrics.curve_fit(audio, SR, own)
    assert fit["r"] == pytest.approx(1.0) and fit["mae"] == pytest.approx(0.0, abs=1e-6)
    reversed_fit = metrics.curve_fit(audio, SR, own[::-1])
    assert reversed_fit["r"] < -0.9 and reversed_fit["mae"] > 0.3
    # a curve given at any scale is normalised first (relative loudness)
    assert metrics.curve_fit(audio, SR, own * 0.5)["r"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------ timing metrics

def test_timing_scores_perfect_shifted_partial():
    events = [0.3, 0.8, 1.4]
    audio = clicks(events)
    perfect = metrics.timing_scores(audio, SR, events)
    assert perfect["f1"] == pytest.approx(1.0) and perfect["av_align"] == pytest.approx(1.0)
    shifted = metrics.timing_scores(audio, SR, [t + 0.15 for t in events])
    assert shifted["f1"] == 0.0 and shifted["av_align"] == 0.0
    # two of three intended events sounded: p = 1, r = 2/3
    partial = metrics.timing_scores(clicks(events[:2]), SR, events)
    assert partial["precision"] == pytest.approx(1.0)
    assert partial["recall"] == pytest.approx(2 / 3)
    assert partial["f1"] == pytest.approx(0.8)
    assert partial["av_align"] == pytest.approx(2 / 3)        # p r / (p + r - p r)
    # AV-Align uses the visual contacts when given, F1 the intended events
    mixed = metrics.timing_scores(audio, SR, events, visual_contacts_s=[0.3])
    assert mixed["f1"] == pytest.approx(1.0) and mixed["av_align"] == pytest.approx(1 / 3)


def test_selectivity_gap_hand_cases():
    a, b = [0.2, 0.9], [0.5, 1.4]
    assert metrics.selectivity_gap(a, a, b) == pytest.approx(1.0)
    assert metrics.selectivity_gap(b, a, b) == pytest.approx(-1.0)
    assert metrics.selectivity_gap(a + b, a, b) == pytest.approx(0.0)   # sound of both
    assert metrics.selectivity_gap([], a, b) == pytest.approx(0.0)      # silence


def test_timing_on_real_encoded_video_with_known_events(media_factory):
    """A real H.264 + AAC file with clicks at known times and a square that reverses there:
    onsets from the decoded soundtrack and contacts from the decoded frames agree."""
    import media_fixtures

    from foley_core import media
    from foley_core.audio_io import read_audio
    from foley_core.events import visual_contact_times

    events = [0.6, 1.3, 2.1]
    path = media_factory("make_video", "events.mp4", seconds=3.0, fps=25,
                         audio_events_s=events)
    audio, sr = read_audio(path, sr=SR)
    frames, _ = media.read_frames(path, fps=25, size=None)
    xs = np.array([media_fixtures.square_center_x(f) for f in frames])
    contacts = visual_contact_times(np.stack([xs, np.zeros_like(xs)], axis=1), 25)
    scores = metrics.timing_scores(audio, sr, events, visual_contacts_s=contacts)
    assert scores["f1"] == pytest.approx(1.0)
    assert scores["av_align"] == pytest.approx(1.0)
    late = metrics.timing_scores(audio, sr, [t + 0.15 for t in events])
    assert late["f1"] == 0.0


def test_timing_on_a_real_shared_video_soundtrack():
    path = SHARED / "videos" / "mecavideo_balle1.mp4"
    if not path.is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    from foley_core.audio_io import read_audio
    from foley_core.events import detect_onsets

    audio, sr = read_audio(path, sr=SR)
    onsets = detect_onsets(audio, sr)
    assert onsets.size >= 1                              # the ball's knock
    assert metrics.timing_scores(audio, sr, onsets)["f1"] == pytest.approx(1.0)
    assert metrics.timing_scores(audio, sr, onsets + 0.15)["f1"] == 0.0


# ------------------------------------------------------------------------------ semantics metrics

def test_accuracy_and_confusion():
    assert metrics.accuracy(["a", "b", "b"], ["a", "b", "a"]) == pytest.approx(2 / 3)
    cm = metrics.confusion_matrix(["a", "b", "b"], ["a", "b", "a"], ["a", "b"])
    assert cm.tolist() == [[1, 1], [0, 1]]                 # rows: expected
    with pytest.raises(ValueError):
        metrics.accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        metrics.confusion_matrix(["c"], ["a"], ["a", "b"])


def test_balanced_accuracy_and_paired_bootstrap():
    expected = ["a"] * 16 + ["b"] * 4
    always_a = ["a"] * 20
    assert metrics.accuracy(always_a, expected) == pytest.approx(0.8)
    assert metrics.balanced_accuracy(always_a, expected) == pytest.approx(0.5)
    assert metrics.balanced_accuracy(expected, expected) == 1.0
    good = metrics.paired_bootstrap_diff(expected, always_a, expected, n_boot=300, seed=1)
    assert good["diff"] == pytest.approx(0.5) and good["lo"] > 0 and good["p_below_zero"] < 0.05
    same = metrics.paired_bootstrap_diff(always_a, always_a, expected, n_boot=50)
    assert same["diff"] == 0 and same["lo"] == 0 == same["hi"]
    assert metrics.paired_bootstrap_diff(expected, always_a, expected, n_boot=300, seed=1) == good
    with pytest.raises(ValueError):
        metrics.paired_bootstrap_diff(["a"], ["a", "b"], ["a", "b"])


def test_frechet_distance_known_gaussians():
    d = 3
    # N(0, I) vs N(1, 4I): |1|^2 d + d (1 + 4 - 2 * 2) = 2d
    assert metrics.frechet_distance(np.zeros(d), np.eye(d), np.ones(d), 4 * np.eye(d)) \
        == pytest.approx(2 * d)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert metrics.frechet_distance([0.5], [[0.25]], [2.0], [[9.0]]) \
        == pytest.approx(1.5 ** 2 + (0.5 - 3.0) ** 2)
    # non-commuting covariances: symmetric, zero only for identical inputs
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    fd12 = metrics.frechet_distance([0, 0], s1, [0, 0], s2)
    assert fd12 == pytest.approx(metrics.frechet_distance([0, 0], s2, [0, 0], s1), rel=1e-6)
    assert fd12 > 0
    assert metrics.frechet_distance([0, 0], s1, [0, 0], s1) == pytest.approx(0, abs=1e-9)


def test_frechet_from_samples_and_bootstrap():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 4))
    y = rng.standard_normal((4000, 4)) * 2.0 + 1.0
    assert metrics.frechet_distance_embeddings(x, x) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance_embeddings(x, y) == pytest.approx(8.0, rel=0.05)
    same = metrics.bootstrap_frechet(x[:300], x, n_boot=50, seed=1)
    far = metrics.bootstrap_frechet(y[:300], x, n_boot=50, seed=1)
    assert same["lo"] <= same["mean"] <= same["hi"] and same["n"] == 300
    assert far["lo"] > same["hi"]                               # intervals separate them
    assert far["lo"] <= far["fd"] <= far["hi"]
    assert metrics.bootstrap_frechet(y[:300], x, n_boot=50, seed=1) == far   # deterministic
    # fewer samples than dimensions: still finite
    assert np.isfinite(metrics.frechet_distance_embeddings(x[:3], y[:5]))


def test_summarize_ignores_missing():
    s = metrics.summarize([1.0, None, 3.0, float("nan")])
    assert s == {"mean": 2.0, "median": 2.0, "std": 1.0, "n": 2}
    assert metrics.summarize([])["n"] == 0


# ------------------------------------------------------------------------------ harness helpers

class _Clip:
    def __init__(self, i: int, category: str):
        self.id, self.category, self.caption, self.seconds = f"c{i}", category, category, 1.0


def test_val_selection_is_stratified_and_deterministic():
    clips = [_Clip(i, cat) for i, cat in enumerate(["a"] * 10 + ["b"] * 3 + ["c"] * 2)]
    pick = select_val_clips(clips, 6, seed=0)
    assert len(pick) == 6 and len({c.id for c in pick}) == 6
    assert {c.category for c in pick} == {"a", "b", "c"}        # small n still covers all
    assert [c.id for c in pick] == [c.id for c in select_val_clips(clips, 6, seed=0)]
    assert len(select_val_clips(clips, None, seed=0)) == len(clips)


def test_swap_partners_always_cross_category():
    cats = ["a", "a", "b", "c", "c", "c"]
    partners = swap_partners(cats, seed=3)
    assert all(cats[j] != cats[i] for i, j in enumerate(partners))
    with pytest.raises(FoleyError):
        swap_partners(["a", "a"], seed=0)


def test_stretch_curve():
    c = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    out = stretch_curve(c, 9)
    assert out.shape == (9,) and out[4] == pytest.approx(1.0) and out[0] == pytest.approx(0.0)
    assert np.array_equal(stretch_curve(c, 3), c)


def test_eval_config_rejects_bad_values():
    for bad in (dict(n_val=1), dict(steps=0), dict(n_scenes=-1), dict(n_boot=2),
                dict(min_val_s=5.0, max_val_s=2.0)):
        with pytest.raises(FoleyError):
            EvalConfig(**bad).check()


# ------------------------------------------------------------------------------ reference rows

def test_fit_length_and_noise_colours():
    assert np.array_equal(fit_length(np.ones(3), 5), [1, 1, 1, 0, 0])
    assert fit_length(np.arange(10.0), 4).tolist() == [0, 1, 2, 3]
    white, pink = coloured_noise(SR, colour="white"), coloured_noise(SR, colour="pink")
    assert np.sqrt(np.mean(pink ** 2)) == pytest.approx(0.1, rel=1e-3)

    def low_to_high(x):
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        return p[(f > 50) & (f < 500)].mean() / p[(f > 4000) & (f < 8000)].mean()

    assert low_to_high(white) == pytest.approx(1.0, rel=0.3)
    assert low_to_high(pink) > 10                              # 1/f: more power low down
    with pytest.raises(ValueError):
        coloured_noise(100, colour="purple")


def test_shaped_noise_follows_the_curve():
    curve = np.concatenate([np.linspace(0.05, 1.0, 15), np.linspace(1.0, 0.1, 15)])
    noise = shaped_noise(curve, 3.0, SR, seed=2)
    assert noise.shape == (3 * SR,)
    assert metrics.curve_fit(noise, SR, curve)["r"] > 0.95
    with pytest.raises(FoleyError):
        shaped_noise(np.zeros(30), 3.0, SR)


class _ToyLibrary:
    """A stand-in sound library: clips with captions, audio made on demand."""

    root = "toy"

    def __init__(self, spec):
        from foley_lab.data.sfx import SfxClip

        self._clips = [SfxClip(id=f"{split}{i}", path=Path("/nonexistent"), caption=cap,
                               category=cat, split=split, seconds=0.5)
                       for i, (cap, cat, split) in enumerate(spec)]
        self._audio = {}

    @property
    def categories(self):
        return sorted({c.category for c in self._clips})

    def clips(self, split=None):
        return [c for c in self._clips if split is None or c.split == split]

    def load(self, clip):
        if clip.id not in self._audio:
            rng = np.random.default_rng(zlib.crc32(clip.id.encode()))
            n = int(clip.seconds * SR)
            if clip.category == "tone":
                f = rng.uniform(300, 3000)
                x = 0.3 * np.sin(2 * np.pi * f * np.arange(n) / SR)
            else:
                x = 0.1 * rng.standard_normal(n)
            self._audio[clip.id] = (x * np.hanning(n) ** 0.2).astype(np.float32)
        return self._audio[clip.id]


def _bag_of_words(captions):
    vocab = ["dog", "barks", "door", "slams", "rain", "falls"]
    return np.array([[float(w in c.split()) for w in vocab] + [1e-3] for c in captions])


def test_caption_retrieval_with_a_toy_encoder():
    lib = _ToyLibrary([("a dog barks", "noise", "train"), ("a door slams", "noise", "train"),
                       ("rain falls", "tone", "train")])
    retriever = CaptionRetriever(lib, "train", encoder=_bag_of_words)
    got = retriever.retrieve(["the door slams shut", "heavy rain falls", "dog"])
    assert [c.caption for c in got] == ["a door slams", "rain falls", "a dog barks"]
    audios, clips = retriever.retrieve_audio(["rain falls"], [SR])
    assert audios[0].shape == (SR,) and clips[0].caption == "rain falls"
    with pytest.raises(FoleyError):
        retriever.retrieve([" "])


def test_caption_retrieval_with_minilm_on_the_library():
    if not (SHARED / "sfx" / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    from foley_lab.data.sfx import SfxLibrary

    retriever = CaptionRetriever(SfxLibrary(SHARED / "sfx"), "train")
    got = retriever.retrieve(["a cow mooing in a field", "heavy rain on a roof",
                              "footsteps walking on gravel"])
    assert [c.category for c in got] == ["animal", "rain", "footsteps"]
    assert all(c.split == "train" for c in got)


# ------------------------------------------------------------------------------ tagger

def test_tagger_features_are_level_free():
    x = clicks([0.2, 0.6], 1.0)
    f = tagger_features(x, SR)
    assert f.shape == (64, 101) and f.dtype == np.float32
    assert f.min() >= 0.0 and f.max() == pytest.approx(1.0)
    assert np.allclose(tagger_features(0.1 * x, SR), f, atol=1e-4)
    assert not np.any(tagger_features(np.zeros(SR, np.float32), SR))      # silence
    assert tagger_features(np.zeros(10, np.float32), SR).shape[0] == 64   # very short
    for bad in (np.zeros(100, np.int16), np.array([0.0, np.nan], np.float32), np.zeros(0)):
        with pytest.raises(MediaError):
            tagger_features(bad, SR)


def _toy_tagger_library():
    spec = [(f"{cat} {i}", cat, split) for cat in ("noise", "tone")
            for i, split in enumerate(["train"] * 12 + ["val"] * 4)]
    return _ToyLibrary(spec)


def test_tagger_training_is_deterministic_learns_and_round_trips(tmp_path):
    from foley_lab.evaluation.tagger import evaluate_on_split

    lib = _toy_tagger_library()
    cfg = TrainConfig(seed=3, epochs=6, batch_size=8, lr=1e-2, channels=(8, 8), embed_dim=4,
                      crop_frames=40)
    model_a, record = train_tagger(lib, cfg)
    model_b, _ = train_tagger(lib, cfg)
    for (name, pa), pb in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch_equal(pa, pb), name
    assert record["epoch_losses"][-1] < record["epoch_losses"][0]
    val = evaluate_on_split(model_a, lib, "val")
    assert val["accuracy"] >= 0.75 and val["n"] == 8
    save_tagger(model_a, tmp_path / "tagger", record, val)
    written = {p.name for p in (tmp_path / "tagger").iterdir()}
    assert {"config.json", "README.md", "training.json"} <= written
    loaded = load_tagger(tmp_path / "tagger")
    audios = [lib.load(c) for c in lib.clips("val")]
    assert np.allclose(loaded.embed(audios), AudioTagger(model_a).embed(audios), atol=1e-6)
    assert loaded.embed(audios).shape == (8, 4)
    probs = loaded.predict_proba(audios)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the batch grouping does not change a clip's embedding
    assert np.allclose(loaded.embed(audios[:1]), loaded.embed(audios)[:1], atol=1e-5)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_missing_tagger_is_a_clear_error(tmp_path):
    with pytest.raises(FoleyError, match="tagger train"):
        load_tagger(tmp_path / "nothing")


def test_committed_tagger_recognises_real_val_clips():
    if not (SHARED / "sfx" / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    from foley_lab.data.sfx import SfxLibrary

    tagger = load_tagger(DEFAULT_TAGGER_DIR)
    assert tagger.embed_dim == 32 and len(tagger.categories) == 19
    size = sum(p.stat().st_size for p in DEFAULT_TAGGER_DIR.iterdir())
    assert size < 2_000_000
    lib = SfxLibrary(SHARED / "sfx")
    clips = lib.clips("val")
    pred = tagger.predict([lib.load(c) for c in clips])
    acc = metrics.accuracy(pred, [c.category for c in clips])
    assert acc > 0.25                                          # chance is 1/19 = 0.05
    # the weights are the ones the model card describes
    assert acc == pytest.approx(tagger.model.config.metrics["val_accuracy"], abs=1e-3)
    noise = [coloured_noise(SR, seed=i) for i in range(5)]
    assert len(set(tagger.predict(noise))) <= 2                # noise is noise, not everything


# ------------------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from foley_core.model.configs import write_tiny_model_dir

    return write_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


def test_conform_row_equals_generate_with_conform(tiny_model_dir):
    """The harness conforms the TLM-only output itself; that must be what generate does."""
    from foley_lab.evaluation.harness import load_backend
    from foley_core.generate import generate

    backend = load_backend("embedded", tiny_model_dir)
    curve = np.concatenate([np.linspace(0.1, 1, 10), np.linspace(1, 0.2, 10)])
    kw = dict(caption="a door slams", duration_s=2.0, curve=curve, seed=5, steps=2,
              model=backend)
    off = generate(conform=0.0, **kw).audios[0]
    on = generate(conform=1.0, **kw).audios[0]
    assert np.allclose(loudness.conform(off, SR, curve, strength=1.0), on, atol=1e-6)


def test_harness_and_sweep_share_one_set_up(tiny_model_dir, tmp_path, monkeypatch):
    """The harness and the reference sweep take their library, tagger and backend from
    `eval_setup`: a given backend is used as it is, the model `cfg` names is loaded otherwise."""
    if not (SHARED / "sfx" / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    from foley_lab.evaluation import harness, reference_sweep

    given = object()
    setup = harness.eval_setup(EvalConfig(weights=str(tiny_model_dir)), backend=given)
    assert setup.backend is given and setup.tagger_dir == DEFAULT_TAGGER_DIR
    assert setup.tagger.categories and setup.library.clips("val")
    loaded = harness.eval_setup(EvalConfig(weights=str(tiny_model_dir)), progress=lambda m: None)
    assert loaded.backend.name == "embedded" and loaded.backend.trained is False

    calls = []

    def spy(cfg, **kw):
        calls.append(type(cfg).__name__)
        raise RuntimeError("stop after the set-up")

    monkeypatch.setattr(harness, "eval_setup", spy)
    monkeypatch.setattr(reference_sweep, "eval_setup", spy)
    for run, cfg in ((harness.run_evaluation, EvalConfig(weights=str(tiny_model_dir))),
                     (reference_sweep.run_reference_sweep, reference_sweep.SweepConfig(weights=str(tiny_model_dir)))):
        with pytest.raises(RuntimeError, match="stop after the set-up"):
            run(cfg, out_path=tmp_path / "r.json")
    assert calls == ["EvalConfig", "SweepConfig"]


def test_eval_command_end_to_end_quick(tiny_model_dir, tmp_path, capsys):
    if not (SHARED / "sfx" / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    import torch

    from foley_lab import __main__ as lab

    threads = torch.get_num_threads()
    out = tmp_path / "results" / "eval.json"
    code = lab.main(["eval", "--quick", "--weights", str(tiny_model_dir), "--n-val", "4",
                        "--n-scenes", "3", "--n-selectivity", "1", "--steps", "2",
                        "--bootstrap", "20", "--threads", "1", "--quiet", "--scenes-dir",
                        str(tmp_path / "scenes"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert torch.get_num_threads() == threads              # --threads does not leak
    results = json.loads(out.read_text())
    md = out.with_suffix(".md").read_text()
    assert "| method |" in md and captured.out == md
    assert results["model"]["trained"] is False and "untrained" in results["model"]["description"]
    rows = results["rows"]
    assert set(rows) == set(ROWS) | set(SCENE_ROWS)      # the tiny model has an onset module
    finite = lambda v: v is not None and np.isfinite(v)  # noqa: E731
    for key in ROWS:                                      # loudness + semantics: every row
        assert finite(rows[key]["loudness_r"]["mean"]) and finite(rows[key]["loudness_mae"]["mean"])
        assert finite(rows[key]["tagger_accuracy"])
        assert finite(rows[key]["tagger_balanced_accuracy"])
        fd = rows[key]["tagger_fd"]
        assert finite(fd["fd"]) and fd["lo"] <= fd["hi"]
    for key in ("model_tlm", "real", "retrieved", "noise"):    # timing: the rows without conform
        assert finite(rows[key]["onset_f1"]["mean"]) and finite(rows[key]["av_align"]["mean"])
    for key in ("model_tlm", "model_no_onsets", "real", "retrieved"):
        assert finite(rows[key]["selectivity_gap"]["mean"])
    for key in SCENE_ROWS:
        assert finite(rows[key]["onset_f1"]["mean"]) and "loudness_r" not in rows[key]
    for key in ("model_tlm", "model_conform"):
        assert rows[key]["s_per_8s_stem"]["repeat"] > 0
    # references behave as references: conform makes anything follow the curve; the real
    # isolated sound is selective; noise shaped by the curve follows it
    assert rows["noise"]["loudness_r"]["mean"] > 0.9
    assert rows["real_conform"]["loudness_r"]["mean"] > rows["real"]["loudness_r"]["mean"]
    assert rows["real"]["selectivity_gap"]["mean"] > 0.5
    assert rows["real"]["onset_f1"]["mean"] > 0.5
    assert len(results["val"]["items"]) == 4
    for item in results["val"]["items"]:
        assert item["curve_category"] != item["category"]
    assert all(k in results["goals"] for k in ("onset_f1 >= 0.8", "selectivity_gap >= 0.4"))
    assert set(results["val"]["accuracy_vs_noise"]) == {"model_tlm", "model_conform"}
    # every instruction gets a verdict from the stated rule; an untrained tiny model has no
    # safetensors, so there is no digest to promote it by
    assert set(results["obeys"]) == {"curve", "video", "mask", "onsets", "text", "negative"}
    assert results["obeys"]["onsets"]["obeyed"] == (rows["model_onsets_given"]["onset_f1"]["mean"] >= 0.5)
    assert results["obeys"]["curve"]["obeyed"] == (rows["model_tlm"]["loudness_r"]["mean"] >= 0.5)
    assert results["model"]["weights_digest"] is None


def test_eval_command_bad_inputs(tmp_path, capsys, tiny_model_dir):
    from foley_lab import __main__ as lab

    cases = [
        (["--out", str(tmp_path / "eval.txt")], ".json"),
        (["--n-val", "1", "--out", str(tmp_path / "a.json")], "--n-val"),
        (["--weights", str(tmp_path / "missing"), "--out", str(tmp_path / "b.json")], "folder"),
        (["--tagger", str(tmp_path / "none"), "--weights", str(tiny_model_dir),
          "--out", str(tmp_path / "c.json")], "tagger"),
    ]
    for argv, needle in cases:
        code = lab.main(["eval", "--quick", "--quiet", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2, argv
        assert len(err.splitlines()) == 1 and needle in err, err
    assert not any(p.suffix in (".json", ".md") for p in tmp_path.iterdir())


def _noise(seed: int, n: int) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(n)


def test_tonal_lines_find_a_steady_sine_in_noise():
    n = 3 * MODEL_SR
    t = np.arange(n) / MODEL_SR
    noise = _noise(0, n)
    sine = 0.05 * np.sin(2 * np.pi * 440.0 * t)          # 1/8 of the noise's power
    assert metrics.tonal_line_share(noise, MODEL_SR) < 0.005
    with_line = metrics.tonal_line_share(noise + sine, MODEL_SR)
    assert 0.08 < with_line < 0.15                      # about the sine's share of the energy
    assert metrics.added_tonal_lines(noise + sine, noise, MODEL_SR) > 0.08
    # a sweep, a decaying burst, brown noise and silence have no steady line
    sweep = 0.1 * np.sin(2 * np.pi * (200.0 * t + 300.0 * t ** 2))
    brown = np.cumsum(noise) * 0.01
    for audio in (sweep, noise * np.exp(-5.0 * t), brown - brown.mean(), np.zeros(n)):
        assert metrics.tonal_line_share(audio, MODEL_SR) < 0.01


def test_tonal_lines_do_not_penalise_a_tone_the_original_holds():
    n = 3 * MODEL_SR
    t = np.arange(n) / MODEL_SR
    tone = 0.05 * np.sin(2 * np.pi * 440.0 * t) + 0.02 * np.sin(2 * np.pi * 1320.0 * t)
    original, output = _noise(1, n) + tone, _noise(2, n) + tone    # other noise, the same tone
    assert metrics.tonal_line_share(original, MODEL_SR) > 0.1
    assert abs(metrics.added_tonal_lines(output, original, MODEL_SR)) < 0.01
    # losing the tone reads as negative, adding one more as positive
    assert metrics.added_tonal_lines(_noise(2, n), original, MODEL_SR) < -0.1
    extra = 0.05 * np.sin(2 * np.pi * 3000.0 * t)
    assert metrics.added_tonal_lines(output + extra, original, MODEL_SR) > 0.05
