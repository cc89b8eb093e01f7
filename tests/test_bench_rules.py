"""The selection rules of benchmark scripts (pure functions; the benchmarks themselves print
measurements and are not run here)."""

import pytest
from repo_modules import load_repo_module


def _bench(name: str):
    return load_repo_module(f"benchmarks/{name}.py")


# the timing-guidance bench of the LDM at step 15,858 (train items, 15 steps)
R = {1.0: 0.326, 7.5: 0.863, 15.0: 0.891, 25.0: 0.898, 40.0: 0.895}
F1 = {1.0: 0.435, 7.5: 0.676, 15.0: 0.821, 25.0: 0.918, 40.0: 0.929}
FD = {1.0: 42.4, 7.5: 36.9, 15.0: 51.4, 25.0: 75.1, 40.0: 102.3}


def test_curve_guidance_rule_relative_guard():
    choice = _bench("bench_curve_guidance").choose_scale(R, F1, FD)
    assert choice["kept"] == [1.0, 7.5]                      # 1.25 x 36.9 = 46.1
    assert choice["scale"] == 7.5 and choice["fd_limit"] == pytest.approx(46.125)


def test_curve_guidance_rule_no_worse_than_the_shipped_model():
    choose = _bench("bench_curve_guidance").choose_scale
    # the shipped model's FD at its own scale on the same items lets 15 through, not 25
    choice = choose(R, F1, FD, baseline_fd=60.3)
    assert choice["kept"] == [1.0, 7.5, 15.0] and choice["scale"] == 15.0
    # a baseline more realistic than the relative guard does not tighten it
    assert choose(R, F1, FD, baseline_fd=30.0)["scale"] == 7.5
    # without an onset module only r counts: 7.5 is within 0.03 of 15's r
    assert choose(R, None, FD, baseline_fd=60.3)["scale"] == 7.5


def _model_summary(acc, fd, r, f1):
    return {"tagger_balanced_accuracy": acc, "fd": fd, "loudness_r_mean": r, "onset_f1": f1}


def test_compare_models_replaces_only_a_model_better_on_every_measure():
    beats = _bench("compare_models").beats
    shipped = _model_summary(0.117, 49.1, 0.898, 0.803)
    assert beats(_model_summary(0.15, 40.0, 0.90, 0.81), shipped)["all"]
    # better identity and texture do not excuse a timing goal that is lost
    worse_f1 = beats(_model_summary(0.15, 40.0, 0.90, 0.79), shipped)
    assert not worse_f1["all"] and not worse_f1["onset_f1"] and worse_f1["fd"]
    # nor a loudness r that is not worse than the first but under the goal
    low_r = beats(_model_summary(0.15, 40.0, 0.84, 0.81), _model_summary(0.117, 49.1, 0.83, 0.803))
    assert not low_r["loudness_r"] and not low_r["all"]
    assert not beats(_model_summary(0.117, 40.0, 0.90, 0.81), shipped)["all"]   # a tie is no gain


def test_default_path_dev_set_holds_no_clip_the_retrieval_library_has(tmp_path):
    from types import SimpleNamespace

    index = tmp_path / "index.csv"
    index.write_text("id,source_path\nkept_id,pkg/a.ogg\nother,pkg/b.ogg#t=0.00,10.00\n")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,source_path\nkept_id,pkg/a.ogg\nwindow_of_b,pkg/b.ogg#t=10.00,20.00\n"
                        "renamed_a,pkg/a.ogg\nfree,pkg/c.ogg\n")
    clips = [SimpleNamespace(id=i) for i in ("kept_id", "window_of_b", "renamed_a", "free")]
    sfx = SimpleNamespace(clips=lambda split: clips if split == "train" else [])
    dev = _bench("bench_default_dev").dev_clips(sfx, index, manifest)
    # the same clip, another window of a library file and a library file under another id are out
    assert [c.id for c in dev] == ["free"]
