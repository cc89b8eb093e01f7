"""The reference-strength sweep (issue 7): the choice rule on hand-made rows, strength parsing,
and `python -m foley_lab eval --reference-sweep` end to end on a tiny random model with real val clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foley_core import loudness
from foley_core.constants import MODEL_SR
from foley_core.errors import FoleyError
from foley_lab.evaluation import metrics
from foley_lab.evaluation.harness import stretch_curve
from foley_lab.evaluation.reference_sweep import (NOT_KEPT, RULE, SweepConfig, choose_strength,
                                                   parse_strengths)
from foley_lab.evaluation.references import fit_length

SHARED = Path(__file__).resolve().parents[2] / "shared"
SR = MODEL_SR


def _rows(acc, r, f1, strengths=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)):
    return [{"strength": s, "tagger_balanced_accuracy": a, "loudness_r": lr, "onset_f1": f}
            for s, a, lr, f in zip(strengths, acc, r, f1)]


# ------------------------------------------------------------------------------ the rule

def test_choose_strength_picks_the_best_trade_off_among_those_keeping_identity():
    # real 0.5 -> threshold 0.4: 0.2 and 0.4 keep identity; 0.6 / 0.8 follow better but lose
    # it; strength 1 and 0 are never candidates however good they look
    rows = _rows(acc=[0.5, 0.45, 0.42, 0.3, 0.2, 0.9],
                 r=[0.1, 0.3, 0.5, 0.8, 0.9, 1.0],
                 f1=[0.1, 0.3, 0.4, 0.7, 0.8, 1.0])
    choice = choose_strength(rows, 0.5)
    assert choice["strength"] == 0.4 and choice["identity_kept"] is True
    assert choice["kept"] == [0.2, 0.4]
    assert choice["threshold"] == pytest.approx(0.4)
    assert choice["score"] == pytest.approx(0.45)
    assert choice["rule"] == RULE and "0.8 x" in RULE
    # the threshold is inclusive, the order of the rows does not matter, summaries are read
    rows[3]["tagger_balanced_accuracy"] = 0.4
    rows[3]["loudness_r"] = {"mean": 0.8, "median": 0.9}
    assert choose_strength(rows[::-1], 0.5)["strength"] == 0.6


def test_choose_strength_when_no_strength_keeps_identity():
    rows = _rows(acc=[0.6, 0.2, 0.35, 0.1, 0.1, 0.05], r=[0, 0.9, 0.1, 0.9, 0.9, 0.9],
                 f1=[0, 0.9, 0.1, 0.9, 0.9, 0.9])
    choice = choose_strength(rows, 0.6)           # threshold 0.48: nobody but strength 0
    assert choice["identity_kept"] is False and choice["kept"] == []
    assert choice["strength"] == 0.4             # the highest accuracy, not the best follower
    assert NOT_KEPT in choice["note"]


def test_choose_strength_ties_go_to_the_lower_strength():
    rows = _rows(acc=[0.5, 0.5, 0.5, 0.5], r=[0.2, 0.6, 0.6, 0.4], f1=[0.2, 0.4, 0.4, 0.6],
                 strengths=(0.0, 0.3, 0.7, 0.9))
    assert choose_strength(rows, 0.5)["strength"] == 0.3      # 0.5 = 0.5 = 0.5: lowest wins
    none_kept = _rows(acc=[0.1, 0.2, 0.2], r=[0, 0, 0], f1=[0, 0, 0],
                      strengths=(0.25, 0.5, 0.75))
    assert choose_strength(none_kept, 1.0)["strength"] == 0.5


def test_choose_strength_with_unmeasured_metrics_and_bad_input():
    # no timing set: the mean is loudness r alone; NaN accuracy never keeps identity
    rows = _rows(acc=[0.5, float("nan"), 0.5], r=[0.9, 0.95, 0.7], f1=[None, None, None],
                 strengths=(0.2, 0.5, 0.8))
    choice = choose_strength(rows, 0.5)
    assert choice["strength"] == 0.2 and choice["score"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="strictly between"):
        choose_strength(_rows([0.5, 0.5], [1, 1], [1, 1], strengths=(0.0, 1.0)), 0.5)
    with pytest.raises(ValueError, match="real references"):
        choose_strength(rows, float("nan"))


def test_parse_strengths():
    assert parse_strengths("1, 0,0.5") == (0.0, 0.5, 1.0)
    assert parse_strengths("0.3") == (0.3,)
    for bad, needle in [("abc", "not a number"), ("0,1.5", "not a strength"),
                        ("-0.1,0.5", "not a strength"), ("nan,0.5", "not a strength"),
                        ("0,1", "strictly between"), ("0.2,0.2", "twice"), ("", "empty"),
                        ("0.5,", "not a number")]:
        with pytest.raises(FoleyError, match=needle):
            parse_strengths(bad)
    with pytest.raises(FoleyError, match="--n-val"):
        SweepConfig(n_val=1).check()


# ------------------------------------------------------------------------------ generation

@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from foley_core.model.configs import write_tiny_model_dir

    return write_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


def test_strength_one_is_text_only(tiny_model_dir):
    """The text-only row is generate() without the reference: that must be what strength 1 with
    the reference gives (same seed), so the row is the sweep's endpoint."""
    from foley_lab.evaluation.harness import load_backend
    from foley_core.generate import generate

    backend = load_backend("embedded", tiny_model_dir)
    rng = np.random.default_rng(3)
    ref = (0.2 * rng.standard_normal(SR) * np.hanning(SR)).astype(np.float32)
    curve = np.concatenate([np.linspace(0.1, 1, 8), np.linspace(1, 0.3, 7)])
    kw = dict(caption="a door slams", duration_s=1.5, curve=curve, conform=0.0, seed=4, steps=2,
              model=backend)
    plain = generate(**kw, source="model").audios[0]
    at_one = generate(reference=(ref, SR), strength=1.0, **kw).audios[0]
    halfway = generate(reference=(ref, SR), strength=0.5, **kw).audios[0]
    assert np.array_equal(plain, at_one)
    assert not np.allclose(plain, halfway)


def test_default_path_takes_are_measured_at_the_model_rate(tiny_model_dir, tmp_path):
    """A retrieved 44.1 kHz clip gives a 44.1 kHz take; the sweep's metrics read 16 kHz audio, so
    the take is resampled (read as 16 kHz it was 2.76 times too long and its curve failed)."""
    import soundfile as sf

    from foley_lab.evaluation.harness import load_backend
    from foley_lab.evaluation.reference_sweep import _generate_default
    from foley_core.library import SoundLibrary

    folder = tmp_path / "sounds"
    folder.mkdir()
    t = np.arange(44100) / 44100
    sf.write(folder / "steady_hum.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    lib = SoundLibrary(bundled=False, folders=[folder], cache_dir=None)
    cfg = SweepConfig(steps=2)
    audio, _, meta = _generate_default(load_backend("embedded", tiny_model_dir), cfg, lib, seed=0,
                                       caption="a steady hum", duration_s=1.0, curve=np.full(10, 0.8))
    assert meta.sr == 44100                          # the take itself is full-band
    assert audio.shape == (SR,) and audio.dtype == np.float32
    assert metrics.curve_fit(audio, SR, np.linspace(0.2, 1.0, 10))["r"] is not None


# ------------------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def sweep_run(tiny_model_dir, tmp_path_factory):
    if not (SHARED / "sfx" / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    import contextlib
    import io

    import torch

    from foley_lab import __main__ as lab

    tmp = tmp_path_factory.mktemp("sweep")
    out = tmp / "results" / "reference_sweep.json"
    threads = torch.get_num_threads()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = lab.main(["eval", "--reference-sweep", "--quick", "--weights",
                            str(tiny_model_dir), "--n-val", "3", "--n-scenes", "3",
                            "--n-selectivity", "0", "--steps", "2", "--strengths", "0,0.5,1",
                            "--bootstrap", "20", "--threads", "1", "--scenes-dir",
                            str(tmp / "scenes"), "--out", str(out)])
    return {"code": code, "out": out, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(),
            "threads_before": threads, "threads_after": torch.get_num_threads()}


def test_sweep_command_writes_every_row(sweep_run):
    assert sweep_run["code"] == 0, sweep_run["stderr"]
    assert sweep_run["threads_after"] == sweep_run["threads_before"]     # --threads does not leak
    assert "[eval] reference 1/3" in sweep_run["stderr"]                 # progress on stderr
    out = sweep_run["out"]
    results = json.loads(out.read_text())
    md = out.with_suffix(".md").read_text()
    assert sweep_run["stdout"] == md

    rows = results["rows"]
    assert [r["strength"] for r in rows] == [0.0, 0.5, 1.0]
    finite = lambda v: v is not None and np.isfinite(v)  # noqa: E731
    for row in [*rows, results["real_references"]]:
        for key in ("tagger_accuracy", "tagger_balanced_accuracy"):
            assert 0.0 <= row[key] <= 1.0
        assert finite(row["loudness_r"]["mean"]) and finite(row["loudness_mae"]["mean"])
        assert finite(row["onset_f1"]["mean"]) and row["onset_f1"]["n"] == 3
    for row in rows:
        assert row["s_per_item"]["n"] == 6                    # 3 curve items + 3 timing items
        diff = row["accuracy_minus_real"]
        assert diff["lo"] <= diff["diff"] <= diff["hi"]
    # (that strength 0 is the fitted reference, no model: test_strength_zero_row_is_the_fitted_reference)

    choice = results["choice"]
    assert choice["strength"] == 0.5                          # the only candidate
    assert results["rule"] == RULE == choice["rule"]
    assert results["model"]["trained"] is False
    assert results["model"]["reference_detail"] is False and "no reference detail restored" in md

    for label in ("0 (fitted reference)", "**0.5**", "1 (text only: no reference)",
                  "real references", "Chosen default strength: 0.5", "Rows for docs/BENCHMARKS.md",
                  "reference-guided (strength 0.5)", "text only"):
        assert label in md, label
    assert RULE in md

    # references: val split only, curves from another category, scenes of another clip
    from foley_lab.data.sfx import SfxLibrary

    lib = SfxLibrary(SHARED / "sfx")
    items = results["semantics_items"]
    assert len(items) == 3
    for item in items:
        assert lib.get(item["clip_id"]).split == "val"
        assert item["curve_category"] != item["category"]
        assert item["predicted"].keys() == {"0", "0.5", "1", "default", "real"}
    for t in results["timing_items"]:
        assert t["scene_clip_id"] != t["clip_id"]
        assert t["f1"].keys() == {"0", "0.5", "1", "default", "real"}

    # the default path retrieves from the bundled library, which holds no val clip
    from foley_core.library import default_library

    default_row = results["default_path"]
    assert default_row["default_path"] is True and default_row["s_per_item"]["n"] == 6
    assert finite(default_row["onset_f1"]["mean"]) and "default: retrieval + model" in md
    bundled = default_library()
    val_ids = {c.id for c in lib.clips("val")}
    for item in items:
        assert item["default_reference"] in bundled and item["default_reference"] not in val_ids


def test_strength_zero_row_is_the_fitted_reference(sweep_run):
    """Recompute the strength 0 numbers from scratch: the fitted reference (seed of the item)
    against the swapped curve, and, placed at the scene's contacts, against its events."""
    from foley_lab.data.sfx import SfxLibrary
    from foley_core.library import fit_reference
    from foley_core.library.retrieve import wanted_kind

    assert sweep_run["code"] == 0, sweep_run["stderr"]
    results = json.loads(sweep_run["out"].read_text())
    lib = SfxLibrary(SHARED / "sfx")
    items = {it["clip_id"]: it for it in results["semantics_items"]}
    for i, item in enumerate(results["semantics_items"]):
        partner = items[item["curve_from"]]
        lender = fit_length(lib.load(partner["clip_id"]), int(round(partner["duration_s"] * SR)))
        curve = loudness.normalize_curve(stretch_curve(
            loudness.relative_loudness(lender, SR), loudness.n_curve_points(item["duration_s"])))
        # as generate() fits it: a curve that stays up asks for sound throughout (wanted_kind)
        fitted = fit_reference(lib.load(item["clip_id"]), SR, duration_s=item["duration_s"],
                               seed=results["config"]["seed"] + i,
                               sustain=wanted_kind(None, curve) == "sustained")
        assert item["loudness_r"]["0"] == pytest.approx(
            metrics.curve_fit(fitted, SR, curve)["r"], abs=1e-4)
    for i, t in enumerate(results["timing_items"]):
        fitted = fit_reference(lib.load(t["clip_id"]), SR, duration_s=t["duration_s"],
                               seed=results["config"]["seed"] + 1000 + i, onsets_s=t["onsets_s"])
        assert t["f1"]["0"] == pytest.approx(
            metrics.timing_scores(fitted, SR, t["intended_s"])["f1"], abs=1e-4)


def test_sweep_command_bad_strengths_exit_2(tmp_path, capsys, tiny_model_dir):
    from foley_lab import __main__ as lab

    cases = [
        (["--reference-sweep", "--strengths", "0,abc"], "not a number"),
        (["--reference-sweep", "--strengths", "0,1.5"], "not a strength"),
        (["--reference-sweep", "--strengths", "0,1"], "strictly between"),
        (["--reference-sweep", "--strengths", "0.4,0.4"], "twice"),
        (["--strengths", "0,0.5"], "--reference-sweep"),
        (["--reference-sweep", "--no-speed"], "--no-speed"),
        (["--reference-sweep", "--n-val", "1"], "--n-val"),
    ]
    for argv, needle in cases:
        code = lab.main(["eval", "--quick", "--quiet", "--weights", str(tiny_model_dir),
                            *argv, "--out", str(tmp_path / "sweep.json")])
        err = capsys.readouterr().err.strip()
        assert code == 2, argv
        assert len(err.splitlines()) == 1 and needle in err, err
    assert not any(tmp_path.iterdir())
