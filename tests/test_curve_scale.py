"""The drawn curve, the curve generation follows and the achieved loudness on one scale, and the
'Hits' preset as an impact envelope."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app import views
from foley_core import constants, loudness
from foley_core.generate import prepare_curve
from foley_core.vision.curves import IMPACT_DECAY_S, IMPACT_FALL_20DB_S, hits_curve

COLUMNS_PER_S = 25          # static/curve.js: what a hand-drawn curve sends


def drawn(duration_s: float, shape) -> tuple[np.ndarray, np.ndarray]:
    n = int(round(duration_s * COLUMNS_PER_S)) + 1
    t = duration_s * np.arange(n) / (n - 1)
    return t, np.asarray([shape(x) for x in t], np.float64)


@pytest.mark.parametrize("column", [10, 11, 12, 13])
def test_a_drawn_peak_keeps_its_height_on_the_grid(column):
    t, v = drawn(2.5, lambda x: 0.0)
    v[column] = 1.0                                 # one column drawn to the top
    assert loudness.resample_curve(t, v, duration_s=2.5, keep_peaks=True).max() == 1.0
    assert prepare_curve((t, v), 2.5).max() == 1.0  # what generation follows
    # a peak of 0.63 stays 0.63
    assert prepare_curve((t, v * 0.63), 2.5).max() == pytest.approx(0.63, abs=1e-6)


def test_a_peak_on_a_frame_boundary_lands_in_one_frame_whatever_the_float_width():
    """A project stores a curve in float32 (0.7 s becomes 0.69999999): replayed, its peak must
    take the same grid frame as the float64 curve the take was made from."""
    times, values = [0.0, 0.7, 1.5], [0.2, 1.0, 0.3]
    wide = loudness.resample_curve(times, values, duration_s=1.5, keep_peaks=True)
    narrow = loudness.resample_curve(np.float32(times), np.float32(values), duration_s=1.5,
                                     keep_peaks=True)
    np.testing.assert_array_equal(narrow, wide)
    assert wide.argmax() == 7                       # frame 7 spans 0.7-0.8 s


def test_point_sampling_alone_lost_the_drawn_peak():
    t, v = drawn(2.5, lambda x: 0.0)
    v[10] = 1.0
    assert loudness.resample_curve(t, v, duration_s=2.5).max() < 0.5


def test_keeping_peaks_leaves_ramps_and_plateaus_as_they_were():
    for shape in (lambda x: x / 2.5, lambda x: 1 - x / 2.5, lambda x: 0.4):
        t, v = drawn(2.5, shape)
        np.testing.assert_array_equal(loudness.resample_curve(t, v, duration_s=2.5, keep_peaks=True),
                                      loudness.resample_curve(t, v, duration_s=2.5))


def test_result_plot_traces_share_the_editor_scale():
    sr, d = constants.MODEL_SR, 2.5
    t, v = drawn(d, lambda x: 0.63 * max(0.05, 1.0 - abs(x / d - 0.4) * 2.0))
    assert v.max() == pytest.approx(0.63, abs=0.01)
    # a candidate that follows the curve's shape
    n = int(d * sr)
    env = np.interp(np.arange(n) / sr, t, v / v.max())
    audio = (0.5 * env * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)
    traces = views.result_curves(audio, sr, curve=(t, v), duration_s=d, start_s=1.0)
    drawn_t, drawn_v = traces["drawn"]
    _, followed = traces["followed"]
    achieved_t, achieved = traces["achieved"]
    # all three peak where the user drew the peak, at the height drawn
    assert drawn_v.max() == pytest.approx(v.max())
    assert followed.max() == pytest.approx(v.max(), abs=1e-3)
    assert achieved.max() == pytest.approx(v.max(), abs=1e-3)
    assert drawn_t[0] == pytest.approx(1.0) and achieved_t[0] == pytest.approx(1.05)
    # without a curve, the achieved loudness peaks at 1 (the stem's loudest moment)
    alone = views.result_curves(audio, sr, curve=None)
    assert alone["followed"] is None and alone["achieved"][1].max() == pytest.approx(1.0)
    assert views.spectrogram_png(audio, sr, curve=(t, v), duration_s=d).shape[2] == 3


def test_hits_preset_is_an_impact_envelope():
    fps = constants.CURVE_FPS
    times, values = hits_curve([0.52], duration_s=2.0)
    hit = int(np.argmax(values))
    assert values[hit] == 1.0 and times[hit] == pytest.approx(0.55)     # the frame holding it
    assert values[hit - 1] <= 0.05                                        # nothing before: attack
    # a frame that starts IMPACT_FALL_20DB_S after the contact is 20 dB down (a tenth) or more
    later = times - 0.5 / fps >= 0.52 + IMPACT_FALL_20DB_S
    assert later.any() and values[later].max() <= 0.1 + 1e-9
    assert math.isclose(math.exp(-IMPACT_FALL_20DB_S / IMPACT_DECAY_S), 0.1)
    assert IMPACT_FALL_20DB_S < 0.3          # an impact, not the 0.58 s the old 0.25 s decay took


def test_the_impact_measure_reads_a_known_decay():
    from scripts.measure_impact_decay import attack_and_fall_s

    sr = 16000
    t = np.arange(int(1.0 * sr)) / sr
    tau = 0.1                                   # falls 20 dB in tau * ln 10 = 0.230 s
    audio = np.where(t < 0.2, 0.0, np.exp(-(t - 0.2) / tau)) * np.sin(2 * np.pi * 300 * t)
    attack, fall = attack_and_fall_s(audio.astype(np.float32), sr)
    assert attack <= 0.02 and fall == pytest.approx(tau * math.log(10), abs=0.02)
