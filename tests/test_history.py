"""The undo/redo history (foley_core.history) and the studio session's use of it: every edit is
one step, undo and redo give back exactly the state there was, a new edit clears redo."""

from __future__ import annotations

import numpy as np
import pytest

from app import curve_widget
from app.session import Session
from foley_core.errors import NothingToUndo, ProjectError
from foley_core.history import History
from test_ui_session import fake_engine, sess, square_video  # noqa: F401  (shared fixtures)


def test_history_undo_redo_and_a_new_edit_clears_redo():
    h: History[int] = History(depth=5)
    state = 0
    for new in (1, 2, 3):
        h.record(state)
        state = new
    assert len(h) == 3 and h.can_undo and not h.can_redo
    state = h.undo(state)
    state = h.undo(state)
    assert state == 1 and h.can_redo
    state = h.redo(state)
    assert state == 2
    h.record(state)                 # a new edit after undo: 3 can no longer be redone
    state = 9
    assert not h.can_redo
    with pytest.raises(NothingToUndo, match="Nothing to redo"):
        h.redo(state)
    assert [h.undo(s) for s in (9, 2, 1)] == [2, 1, 0]
    with pytest.raises(NothingToUndo, match="Nothing to undo"):
        h.undo(0)


def test_history_is_bounded_and_drops_the_oldest():
    h: History[int] = History(depth=3)
    for s in range(10):
        h.record(s)
    assert len(h) == 3
    assert [h.undo(99), h.undo(98), h.undo(97)] == [9, 8, 7]
    assert not h.can_undo
    with pytest.raises(ValueError):
        History(depth=0)


def test_nothing_to_undo_is_a_user_message():
    assert issubclass(NothingToUndo, ProjectError)


# ---------------------------------------------------------------------- the session
def _state(sess: Session) -> dict:
    """Everything the history covers, as plain values to compare."""
    pts = curve_widget.curve_points(sess.curve_json)
    return {"stems": [(s.id, s.name, s.mix.gain_db, s.mix.pan, s.mix.offset_s, s.mix.mute,
                       s.mix.solo, s.mix.fade_in_s, s.mix.fade_out_s, s.mix.trim_start_s,
                       s.mix.trim_end_s) for s in sess.project.stems],
            "name": sess.project.name,
            "curve": None if pts is None else (pts[0].tolist(), pts[1].tolist()),
            "onsets": sess.lane_onsets(), "region": sess.region.kind}


def test_session_edits_undo_and_redo_to_equal_states(sess, square_video, fake_engine):
    sess.load_video(square_video)
    sess.set_selection(0.5, 1.5)
    sess.generate(caption="a ball hits a wall", seed=1, steps=2)
    states = [_state(sess)]
    edits = [
        lambda: sess.keep_candidate(0),
        lambda: sess.update_stem(sess.project.stems[0].id, gain_db=-6.0, pan=0.3),
        lambda: sess.rename_stem(sess.project.stems[0].id, "ball on wall"),
        lambda: sess.curve_preset("fade in"),
        lambda: sess.set_onsets({"onsets_s": [0.2, 0.6]}),
        lambda: sess.update_stem(sess.project.stems[0].id, offset_s=0.75, fade_in_s=0.05,
                                 mute=True),
        lambda: sess.clear_region(),
    ]
    sess.set_drawn_mask([_layer()])
    states = [_state(sess)]
    for edit in edits:
        edit()
        states.append(_state(sess))
    assert len({repr(s) for s in states}) == len(states), "an edit changed nothing"
    for expected in reversed(states[:-1]):
        sess.undo()
        assert _state(sess) == expected
    for expected in states[1:]:
        sess.redo()
        assert _state(sess) == expected
    with pytest.raises(ProjectError, match="Nothing to redo"):
        sess.redo()


def test_a_new_edit_clears_redo_and_no_change_is_no_step(sess, square_video, fake_engine):
    sess.load_video(square_video)
    sess.generate(caption="tick", steps=1)
    stem = sess.keep_candidate(0)
    sess.update_stem(stem.id, gain_db=-3.0)
    sess.undo()
    assert sess.history.can_redo
    steps = len(sess.history)
    # the same values again, or the curve widget sending back what it was given, is no edit
    sess.update_stem(stem.id, gain_db=0.0)
    sess.set_curve(sess.curve_json)
    assert len(sess.history) == steps and sess.history.can_redo
    sess.update_stem(stem.id, pan=-0.5)
    assert not sess.history.can_redo and len(sess.history) == steps + 1
    # a refused edit leaves no step
    with pytest.raises(ProjectError):
        sess.rename_stem(stem.id, "a/b")
    assert len(sess.history) == steps + 1


def test_undo_keeps_the_curve_where_it_was_in_the_video(sess, square_video):
    sess.load_video(square_video)
    sess.set_selection(1.0, 3.0)
    sess.set_curve(curve_widget.with_curve(sess.curve_json, [0.0, 1.0, 2.0], [0.0, 1.0, 0.0]))
    sess.curve_preset("flat")
    sess.set_selection(0.5, 3.0)         # the selection moved after the edit
    sess.undo()
    t, v = curve_widget.curve_points(sess.curve_json)
    # the drawn peak was at 2.0 s in the video: 1.5 s into the new selection
    assert t[int(np.argmax(v))] == pytest.approx(1.5, abs=1e-3)


def test_undo_depth_is_bounded(sess, square_video):
    from app.session import UNDO_DEPTH

    sess.load_video(square_video)
    for i in range(UNDO_DEPTH + 5):
        sess.set_curve(curve_widget.with_curve(sess.curve_json, [0.0, 1.0], [0.5, i / 100]))
    assert len(sess.history) == UNDO_DEPTH


def _layer():
    layer = np.zeros((60, 80, 4), np.uint8)
    layer[10:20, 30:50, 3] = 255
    return layer


def test_another_video_starts_a_new_history(sess, square_video, media_factory):
    sess.load_video(square_video)
    sess.curve_preset("fade in")
    sess.load_video(square_video)           # the same video again: its edits stay undoable
    assert sess.history.can_undo
    other = media_factory("make_video", "other.mp4", seconds=2.0, fps=25, size=(160, 120))
    sess.load_video(other)
    assert not sess.history.can_undo and not sess.history.can_redo
