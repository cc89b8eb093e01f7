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


# ---------------------------------------------------------------------- what a browser may send
def _handler(demo, name):
    """A wired event handler by its function name (the studio defines them in _wire)."""
    for fn in demo.fns.values():
        if getattr(fn.fn, "__name__", None) == name:
            return fn.fn
    raise LookupError(name)


def _autosaved_session(root, tmp_path, name):
    import numpy as np

    from app.session import Session
    from foley_core import project as fproject

    sess = Session(work_root=tmp_path / f"work-{name}", autosave_root=root)
    stem = fproject.Stem.new(np.zeros(1600, np.float32), 16000,
                             fproject.GenerationSettings(caption=f"{name}'s stem", duration_s=0.1))
    sess.project.add_stem(stem)
    sess.autosave()
    return sess


def test_the_browser_only_gets_back_autosaves_signed_for_it(demo, tmp_path):
    c = demo_components(demo)
    on_load, on_restore = _handler(demo, "on_load"), _handler(demo, "on_restore")
    root = tmp_path / "autosave"
    victim = _autosaved_session(root, tmp_path, "victim")
    attacker = _autosaved_session(root, tmp_path, "attacker")
    forged = [str(victim.autosave_dir),                        # a path, as the old page stored
              victim.autosave_dir.name,                        # the folder's id without a signature
              victim.autosave_dir.name + "." + "0" * 64,       # a made-up signature
              attacker.autosave_token.split(".")[0] + "." + victim.autosave_token.split(".")[1],
              {"path": str(victim.autosave_dir)}, "../" + victim.autosave_dir.name]
    fresh = _autosaved_session(root, tmp_path, "fresh")
    fresh.project.stems.clear()
    out = on_load(fresh, {"autosaves": forged})
    assert out[c.restore_token] is None
    assert out[c.browser]["autosaves"] == [fresh.autosave_token]    # forged entries are dropped
    for token in forged:
        with pytest.raises(gr.Error, match="not one this server made"):
            on_restore(fresh, token, "streaming (-14 LUFS)", False)
    assert fresh.project.stems == []

    # the victim's own browser (holding the victim's signed token) is offered and restores it
    out = on_load(fresh, {"autosaves": [victim.autosave_token]})
    assert out[c.restore_token] == victim.autosave_token
    assert "1 stem(s)" in out[c.restore_md]
    on_restore(fresh, victim.autosave_token, "streaming (-14 LUFS)", False)
    assert [s.settings.caption for s in fresh.project.stems] == ["victim's stem"]
    # a symlink planted in the autosave root under a signed id is not followed
    import shutil

    shutil.rmtree(attacker.autosave_dir)
    attacker.autosave_dir.symlink_to(victim.autosave_dir)
    assert fresh.autosave_folder(attacker.autosave_token) is None
    for s in (victim, attacker, fresh):
        s.close()


def test_the_key_is_private_and_stable(tmp_path):
    from foley_core.autosave_tokens import AutosaveTokens, new_autosave_id

    aid = new_autosave_id()
    one, two = AutosaveTokens(tmp_path / "autosave"), AutosaveTokens(tmp_path / "autosave")
    assert one.token(aid) == two.token(aid)                   # a restarted server reads them
    assert (one.key_path.stat().st_mode & 0o777) == 0o600
    assert AutosaveTokens(tmp_path / "other" / "autosave").token(aid) != one.token(aid)


def demo_components(demo):
    """The Studio's components (c) of a built app, found through a wired handler's closure."""
    on_load = _handler(demo, "on_load")
    studio_self = dict(zip(on_load.__wrapped__.__code__.co_freevars,
                           (cell.cell_contents for cell in on_load.__wrapped__.__closure__)))
    return studio_self["c"]


def test_uploads_are_bounded_when_launched(demo):
    from foley_core import constants

    kwargs = studio.launch_kwargs()
    assert kwargs["max_file_size"] == constants.MAX_UPLOAD_BYTES == 512 * 1024**2
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    for elem_id in ("video-input", "reference-upload", "project-load"):
        assert "up to 512 MB" in by_id[elem_id].label, elem_id


def test_an_upload_over_the_limit_is_refused_over_http(tmp_path, monkeypatch):
    """The launched server (studio's launch_kwargs, a 1 MiB limit for speed) answers 413 to a
    bigger upload, announced or streamed, and keeps none of it; a small upload is stored."""
    import http.client
    import json
    import socket

    from foley_core import constants

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(constants, "MAX_UPLOAD_BYTES", 1024**2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = studio.build_app(work_root=tmp_path / "work")
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
               quiet=True, **studio.launch_kwargs())
    try:
        def upload(size, *, chunked=False):
            boundary = "foleyboundary"
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                    f"filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
            tail = f"\r\n--{boundary}--\r\n".encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            if chunked:
                body = iter([head, *([bytes(64 * 1024)] * (size // (64 * 1024))), tail])
                conn.request("POST", "/gradio_api/upload", body=body, headers=headers,
                             encode_chunked=True)
            else:
                conn.request("POST", "/gradio_api/upload", body=head + bytes(size) + tail,
                             headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            conn.close()
            return resp.status, text

        def stored():
            return [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]

        status, text = upload(3 * 1024**2)                     # announced by Content-Length
        assert status == 413 and "larger than the studio accepts" in text
        status, text = upload(3 * 1024**2 // 2, chunked=True)  # no length: gradio's count
        assert status == 413 and "maximum allowed size" in text
        assert stored() == []
        status, text = upload(100 * 1024)
        assert status == 200, text
        [path] = json.loads(text)
        assert [p.stat().st_size for p in stored()] == [100 * 1024] and path.endswith("clip.mp4")
    finally:
        app.close()
