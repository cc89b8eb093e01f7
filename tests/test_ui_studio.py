"""The gradio layer of the studio: it builds, keeps the e2e contract's elem_ids, serves no
external fonts, and turns errors into messages (never tracebacks)."""

from __future__ import annotations

import argparse

import gradio as gr
import pytest

from app import serve, studio
from foley_core.errors import MediaError

CONTRACT = ["video-input", "frame-slider", "mask-editor", "loudness-curve", "caption", "seed",
            "generate-btn", "candidate-audio", "add-stem-btn", "stems-table", "mix-audio",
            "export-wav-btn", "export-mp4-btn", "export-file", "project-save-btn", "project-load",
            "reference-search", "reference-results", "reference-upload", "reference-strength",
            "stem-trim-start", "stem-trim-end"]


@pytest.fixture(scope="module")
def demo():
    return studio.build_app()


def test_contract_elem_ids_present_once(demo):
    ids = [getattr(b, "elem_id", None) for b in demo.blocks.values()]
    for elem_id in CONTRACT:
        assert ids.count(elem_id) == 1, elem_id


def test_theme_uses_system_fonts_only():
    css = studio.theme()._get_theme_css()
    assert "fonts.googleapis" not in css and "@import url(" not in css
    assert "system-ui" in css


def test_user_errors_become_messages():
    @studio.user_errors
    def bad_input():
        raise MediaError("That file is not a video.")

    @studio.user_errors
    def bug():
        raise KeyError("oops")

    with pytest.raises(gr.Error) as err:
        bad_input()
    assert err.value.message == "That file is not a video."
    with pytest.raises(gr.Error) as err:
        bug()
    assert "KeyError" in err.value.message and "server log" in err.value.message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_serve_arguments():
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    args = parser.parse_args(["--host", "0.0.0.0", "--port", "8000", "--share"])
    assert (args.host, args.port, args.share) == ("0.0.0.0", 8000, True)


def test_reference_picker_defaults(demo):
    from foley_core.generate import DEFAULT_REFERENCE_STRENGTH

    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    strength = by_id["reference-strength"]
    assert (strength.minimum, strength.maximum, strength.value) == (0, 1, DEFAULT_REFERENCE_STRENGTH)
    assert "0 = the reference as it is, 1 = ignore it" in strength.info
    categories = [c[0] if isinstance(c, tuple) else c for c in by_id["reference-category"].choices]
    assert categories[0] == "all categories" and "footsteps" in categories
    assert by_id["reference-upload"].type == "filepath"
