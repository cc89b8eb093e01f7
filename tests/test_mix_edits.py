"""A user's edits to a stem's mix (foley_core.project.MixSettings.edited): the limits of
constants.MIX_LIMITS read when the edit is made, the trim against the stem's length, and
refusals in plain words."""

from __future__ import annotations

import pytest

from foley_core import constants
from foley_core.errors import MixError
from foley_core.project import MixSettings


def test_typed_values_are_applied_and_the_rest_kept():
    mix = MixSettings(gain_db=-3.0, pan=0.5, mute=True)
    out = mix.edited({"gain_db": "6", "offset_s": 1, "trim_end_s": None, "solo": 1},
                     source_duration_s=2.0)
    assert (out.gain_db, out.pan, out.offset_s, out.trim_end_s) == (6.0, 0.5, 1.0, None)
    assert (out.mute, out.solo) == (True, True)
    assert mix.gain_db == -3.0                          # a new settings object; the old one kept


@pytest.mark.parametrize("changes, message", [
    ({"gain_db": 1000}, r"^Gain \(dB\) must be between -60 and 24; got 1000\.$"),
    ({"pan": "left"}, r"^Pan must be a number; got 'left'\.$"),
    ({"fade_in_s": float("nan")}, r"^Fade in \(s\) must be a finite number"),
    ({"trim_start_s": 1.0, "trim_end_s": 0.5}, r"^The trim end \(0\.5 s\) must come after"),
    ({"trim_start_s": 2.5}, r"^The trim start \(2\.5 s\) is past the end of the stem \(2\.00 s\)"),
])
def test_refusals_name_the_control_and_its_range(changes, message):
    with pytest.raises(MixError, match=message):
        MixSettings().edited(changes, source_duration_s=2.0)


def test_the_limits_are_read_when_the_edit_is_made(monkeypatch):
    tighter = {**constants.MIX_LIMITS, "gain_db": ("gain (dB)", -12.0, 6.0)}
    monkeypatch.setattr(constants, "MIX_LIMITS", tighter)
    with pytest.raises(MixError, match=r"between -12 and 6; got 10\."):
        MixSettings().edited({"gain_db": 10}, source_duration_s=1.0)
    assert MixSettings().edited({"gain_db": 6}, source_duration_s=1.0).gain_db == 6.0


def test_an_unknown_setting_is_a_bug_not_a_user_error():
    with pytest.raises(ValueError, match="unknown stem settings"):
        MixSettings().edited({"volume": 1}, source_duration_s=1.0)
