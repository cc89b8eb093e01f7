"""Retrieval by default: with a caption and no reference, generation starts from library clips
that match the caption (one distinct clip per candidate); "from scratch" keeps the model alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from foley_core import constants
from foley_core.errors import FoleyError
from foley_core.generate import generate
from foley_core.library import SoundLibrary, default_library, fit_reference
from foley_core.library.retrieve import SEARCH_POOL, retrieve_references

torch.set_num_threads(1)
SR = 16000

pytestmark = pytest.mark.usefixtures("tiny_model")


def test_default_take_starts_from_the_best_library_matches():
    result = generate(caption="footsteps on gravel", duration_s=1.5, candidates=3, steps=4, seed=1)
    meta = result.metadata
    assert meta["source"] == "library"
    refs = meta["references"]
    assert len(refs) == 3 and meta["reference"] == refs[0]
    assert len({r["id"] for r in refs}) == 3                    # candidates differ in their source clip
    assert [r["rank"] for r in refs] == sorted(r["rank"] for r in refs)
    lib = default_library()
    assert all(lib.get(r["id"]).category == "footsteps" for r in refs)
    assert all(r["library_clip"] and r["licence"] and r["attribution"] for r in refs)
    assert meta["strength"] == constants.DEFAULT_REFERENCE_STRENGTH
    assert meta["steps_run"] == round(4 * constants.DEFAULT_REFERENCE_STRENGTH)
    assert "reference" in meta["instructions"]["given"]


def test_from_scratch_is_the_model_alone():
    meta = generate(caption="footsteps on gravel", duration_s=1.0, steps=2, source="model").metadata
    assert meta["source"] == "model" and meta["reference"] is None and meta["references"] is None
    assert meta["steps_run"] == 2 and meta["strength"] is None


def test_strength_zero_gives_the_fitted_retrieved_clip():
    result = generate(caption="a door slams", duration_s=1.2, strength=0.0, seed=2)
    ref = result.metadata["reference"]
    audio, sr = sf.read(ref["path"], dtype="float32")
    expected = fit_reference(audio, sr, duration_s=1.2, target_sr=SR, seed=2,
                             mode="oneshot" if ref["kind"] == "oneshot" else "loop")
    peak = float(np.max(np.abs(expected)))
    limit = 10 ** (constants.TAKE_PEAK_DBFS / 20)
    expected = expected * (limit / peak if peak > limit else 1.0)
    np.testing.assert_allclose(result.audios[0], expected, atol=1e-6)


def test_onsets_prefer_one_shot_clips_and_place_them():
    result = generate(caption="a heavy impact", duration_s=2.0, onsets_s=[0.3, 1.1], strength=0.0)
    ref = result.metadata["reference"]
    assert ref["kind"] == "oneshot" and ref["placed_at_onsets"]
    pool = retrieve_references("a heavy impact", n=SEARCH_POOL)
    assert [r.rank for r in pool] == list(range(SEARCH_POOL))   # no preference: the search order
    for prefer in ("oneshot", "sustained"):
        of_kind = [r for r in pool if r.kind == prefer]
        first = retrieve_references("a heavy impact", n=1, prefer=prefer)[0]
        # the best-ranked clip of the preferred kind among near matches, else the best match
        assert first.entry.id == (of_kind[0] if of_kind else pool[0]).entry.id


def test_user_library_is_used_and_an_empty_one_is_refused(tmp_path):
    folder = tmp_path / "sounds"
    folder.mkdir()
    t = np.arange(SR) / SR
    sf.write(folder / "glass_clink.wav", (0.4 * np.sin(2 * math.pi * 3000 * t) * np.exp(-t * 8)).astype(np.float32), SR)
    sf.write(folder / "low_rumble.wav", (0.4 * np.sin(2 * math.pi * 60 * t)).astype(np.float32), SR)
    lib = SoundLibrary(bundled=False, folders=[folder], cache_dir=None)
    meta = generate(caption="glass clink", duration_s=1.0, steps=2, library=lib).metadata
    assert meta["reference"]["path"].endswith("glass_clink.wav")
    with pytest.raises(FoleyError, match="library is empty"):
        generate(caption="glass clink", duration_s=1.0, steps=2,
                 library=SoundLibrary(bundled=False, cache_dir=None))


@pytest.mark.parametrize("kwargs, match", [
    (dict(source="sometimes"), "source must be one of"),
    (dict(source="model", reference="0ad_footsteps_footstep_gravel_walking"), "contradict"),
    (dict(source="model", strength=0.3), "give a reference"),
    (dict(caption=None, source="library"), "needs a caption"),
])
def test_contradictory_sources_are_refused(kwargs, match):
    with pytest.raises(FoleyError, match=match):
        generate(**{"caption": "a door", "duration_s": 1.0, "steps": 1, **kwargs})


def test_takes_leave_headroom():
    for source in ("library", "model"):
        audio = generate(caption="an explosion", duration_s=1.0, steps=2, source=source).audios[0]
        assert 20 * np.log10(np.max(np.abs(audio))) <= constants.TAKE_PEAK_DBFS + 1e-4


# ---------------------------------------------------------------------- sustained requests
def _click_library(tmp_path) -> SoundLibrary:
    """A library holding only a 0.2 s one-shot (a click that dies away)."""
    folder = tmp_path / "clicks"
    folder.mkdir()
    t = np.arange(int(0.2 * SR)) / SR
    rng = np.random.default_rng(0)
    sf.write(folder / "wood_click.wav", (0.5 * rng.standard_normal(t.size) * np.exp(-t * 30)).astype(np.float32), SR)
    return SoundLibrary(bundled=False, folders=[folder], cache_dir=None)


def _rms_db(x: np.ndarray) -> float:
    return 20 * math.log10(max(float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))), 1e-12))


def test_wanted_kind_reads_onsets_then_the_curve():
    from foley_core.library.retrieve import wanted_kind

    fade_in = np.linspace(0.0, 1.0, 20)
    one_bump = np.zeros(20)
    one_bump[3:6] = 1.0
    assert wanted_kind([0.4], fade_in) == "oneshot"           # hits to place win
    assert wanted_kind([], None) == "sustained"              # a region with no contact
    assert wanted_kind(None, fade_in) == "sustained"
    assert wanted_kind(None, np.full(20, 0.8)) == "sustained"
    assert wanted_kind(None, one_bump) is None
    assert wanted_kind(None, None) is None
    assert wanted_kind(None, np.zeros(20)) is None


def test_a_sustained_request_repeats_a_short_one_shot_instead_of_silence(tmp_path):
    # a fade in over 2 s from a library that only has a 0.2 s click: padding would leave 1.8 s of
    # silence the conform cannot raise (the take would not follow the curve at all)
    lib = _click_library(tmp_path)
    curve = np.linspace(0.0, 1.0, 20)
    result = generate(caption="wood click", duration_s=2.0, curve=curve, strength=0.0, library=lib)
    meta = result.metadata
    assert meta["reference"]["kind"] == "oneshot"
    take = result.audios[0]
    assert _rms_db(take[SR:]) > _rms_db(take[: SR // 2]) > -60     # louder later, as the curve asks
    # the user's explicit "pad with silence" still pads (and so cannot follow the fade in)
    padded = generate(caption="wood click", duration_s=2.0, curve=curve, strength=0.0, library=lib,
                      reference_fit="oneshot")
    assert np.max(np.abs(padded.reference_audios[0][int(0.3 * SR):])) == 0.0
    assert meta["curve_r_after"][0] > padded.metadata["curve_r_after"][0] + 0.3
    # with no curve, one click stays one
    single = generate(caption="wood click", duration_s=2.0, strength=0.0, library=lib).audios[0]
    assert np.max(np.abs(single[int(0.3 * SR):])) == 0.0


def test_sustain_fit_repeats_the_whole_one_shot():
    from foley_core.library.fit import repeat_times

    t = np.arange(int(0.2 * SR)) / SR
    click = (0.5 * np.sin(2 * math.pi * 500 * t) * np.exp(-t * 30)).astype(np.float32)
    y = fit_reference(click, SR, duration_s=1.6, target_sr=SR, mode="oneshot", sustain=True)
    starts = repeat_times(0.2, 1.6)
    assert starts == pytest.approx([0.0, 0.5, 1.0, 1.5])
    for s in starts:                    # a copy of the click at each start, silence between
        i = int(round(s * SR))
        n = min(click.size, y.size - i)
        np.testing.assert_allclose(y[i + 1: i + n // 2], click[1: n // 2], atol=1e-6)
        assert np.max(np.abs(y[i + click.size: i + int(0.45 * SR)])) == 0.0 if s < 1.5 else True
    assert repeat_times(0.8, 2.0) == pytest.approx([0.0, 0.8, 1.6])  # longer clips back to back
    # without sustain a one-shot is padded with silence, as before
    padded = fit_reference(click, SR, duration_s=1.6, target_sr=SR, mode="oneshot")
    assert np.max(np.abs(padded[int(0.25 * SR):])) == 0.0


# ---------------------------------------------------------------------- fitted to the curve
class _ReferenceSpy:
    """A model that returns the reference it was given, unchanged, and records it: what the model
    starts from is then exactly what comes out below the crossover."""

    name = "reference-spy"
    sr = SR
    window_s = 4.0
    video_fps = 20.0
    frame_size = (32, 32)
    obeys = frozenset()
    ignores = frozenset({"text", "negative", "video", "mask", "curve"})
    trained = False
    description = "reference-spy"

    def __init__(self):
        from foley_core.backends import Capabilities

        self.capabilities = Capabilities(reference=True)
        self.references = []

    def load(self, device="cpu"):
        pass

    def generate_window(self, *, duration_s, seeds, steps, reference=None, strength=1.0, progress=None, **kw):
        from foley_core.backends import WindowOutput

        self.references.append(reference.copy())
        return WindowOutput(audios=np.broadcast_to(reference, (len(seeds), reference.shape[-1])).astype(np.float32),
                            sr=SR)


def _hum_library(tmp_path, sr: int = 48_000) -> tuple[SoundLibrary, np.ndarray]:
    """A library holding only a steady 3 s hum (sustained: trimmed, never placed) at `sr`."""
    folder = tmp_path / "hums"
    folder.mkdir()
    t = np.arange(3 * sr) / sr
    rng = np.random.default_rng(4)
    hum = (0.3 * np.sin(2 * math.pi * 110 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    sf.write(folder / "machine_hum.wav", hum, sr)
    return SoundLibrary(bundled=False, folders=[folder], cache_dir=None), hum


def test_a_retrieved_clip_is_fitted_to_the_curve_before_the_model(tmp_path):
    # a dip over a steady hum: the hum as retrieved is flat (r near 0 with the dip); the model
    # must start from it already riding the curve, in both bands of the take
    from foley_core import loudness

    lib, hum = _hum_library(tmp_path)
    curve = np.concatenate([np.linspace(1.0, 0.05, 10), np.linspace(0.05, 1.0, 10)])
    spy = _ReferenceSpy()
    result = generate(caption="machine hum", duration_s=2.0, curve=curve, conform=0.0, library=lib,
                      model=spy, steps=10)
    assert result.metadata["source"] == "library" and result.sr == 48_000
    started = spy.references[0][0]
    flat = fit_reference(hum, 48_000, duration_s=2.0, target_sr=SR, mode="loop")
    assert loudness.curve_correlation(flat, SR, curve) < 0.5
    assert loudness.curve_correlation(started, SR, curve) > 0.95
    # the take's high band was shaped the same way (the reference it reports is the shaped one)
    assert loudness.curve_correlation(result.reference_audios[0], 48_000, curve) > 0.95
    assert loudness.curve_correlation(result.audios[0], 48_000, curve) > 0.95


def test_a_given_reference_keeps_its_own_dynamics(tmp_path):
    # the user chose this sound (its envelope may be the point); only retrieved clips are shaped,
    # and at strength 0 (no model) the stem is the fitted clip itself whatever its source
    from foley_core import loudness

    lib, hum = _hum_library(tmp_path)
    curve = np.concatenate([np.linspace(1.0, 0.05, 10), np.linspace(0.05, 1.0, 10)])
    spy = _ReferenceSpy()
    generate(caption="machine hum", duration_s=2.0, curve=curve, conform=0.0, reference=(hum, 48_000),
             model=spy, steps=10)
    assert loudness.curve_correlation(spy.references[0][0], SR, curve) < 0.5
    still = generate(caption="machine hum", duration_s=2.0, curve=curve, conform=0.0, library=lib,
                     model=spy, strength=0.0)
    assert loudness.curve_correlation(still.reference_audios[0], 48_000, curve) < 0.5


def test_a_user_folder_clip_id_is_found_in_the_library_given(tmp_path):
    """The Python API resolves `user/<folder>/<path>` through `library=` (as the CLI, batch and
    the studio do); without a library holding it the error names the id and what to pass."""
    lib, hum = _hum_library(tmp_path)
    clip_id = next(e.id for e in lib if e.is_user_sound)
    assert clip_id.startswith("user/")
    result = generate(caption="machine hum", duration_s=2.0, reference=clip_id, strength=0.0, library=lib)
    meta = result.metadata
    assert meta["source"] == "reference" and meta["reference"]["id"] == clip_id
    # strength 0: the take is the fitted clip itself, so it is this very file's sound
    np.testing.assert_allclose(result.reference_audios[0],
                               fit_reference(hum, 48_000, duration_s=2.0, target_sr=result.sr, mode="loop"),
                               atol=1e-4)
    for library in (None, SoundLibrary(bundled=False, cache_dir=None)):
        with pytest.raises(FoleyError) as err:
            generate(caption="machine hum", duration_s=2.0, reference=clip_id, strength=0.0, library=library)
        message = str(err.value)
        assert clip_id in message and "library=SoundLibrary(folders=[...])" in message and "\n" not in message
