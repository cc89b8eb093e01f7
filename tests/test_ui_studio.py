"""The gradio layer of the studio: it builds, keeps the e2e contract's elem_ids, serves no
external fonts, and turns errors into messages (never tracebacks)."""

from __future__ import annotations

import argparse
import types

import gradio as gr
import pytest

from app import serve, studio
from app.panels import common
from foley_core.errors import MediaError

CONTRACT = ["video-input", "frame-slider", "mask-editor", "loudness-curve", "caption", "seed",
            "generate-btn", "candidate-audio", "add-stem-btn", "stems-table", "mix-audio",
            "export-wav-btn", "export-mp4-btn", "export-daw-btn", "export-file", "project-save-btn",
            "project-load",
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


def test_user_errors_become_messages(monkeypatch):
    """A refused input or a bug is a message; no output is marked as errored (gr.skip())."""
    told = []
    monkeypatch.setattr(common, "notify", lambda level, msg, **kw: told.append((level, msg)))

    @common.user_errors
    def bad_input():
        raise MediaError("That file is not a video.")

    @common.user_errors
    def bug():
        raise KeyError("oops")

    assert bad_input() == gr.skip()
    assert told.pop() == ("warning", "That file is not a video.")
    assert bug() == gr.skip()
    level, msg = told.pop()
    assert "KeyError" in msg and "server log" in msg and "Traceback" not in msg


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
    """A wired event handler by its function name (each panel defines them in its wire())."""
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
                             fproject.GenerationRequest(caption=f"{name}'s stem", duration_s=0.1))
    sess.project.add_stem(stem)
    sess.autosave()
    return sess


def test_the_browser_only_gets_back_autosaves_signed_for_it(demo, tmp_path, told):
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
        assert on_restore(fresh, token, "streaming (-14 LUFS)", False) == gr.skip()
        assert "not one this server made" in told.pop()[1]
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

        # announced by Content-Length: answered before the body is sent at all
        with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
            raw.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: multipart/form-data; boundary=x\r\n"
                        + f"Content-Length: {3 * 1024**2}\r\n\r\n".encode())
            # the server closes the connection after its answer: read headers and body, which
            # may come in separate packets
            chunks = []
            while chunk := raw.recv(65536):
                chunks.append(chunk)
            reply = b"".join(chunks).decode(errors="replace")
        assert reply.startswith("HTTP/1.1 413") and "larger than the studio accepts" in reply
        status, text = upload(3 * 1024**2 // 2, chunked=True)  # no length: gradio's count
        assert status == 413 and "maximum allowed size" in text
        assert stored() == []
        status, text = upload(100 * 1024)
        assert status == 200, text
        [path] = json.loads(text)
        assert [p.stat().st_size for p in stored()] == [100 * 1024] and path.endswith("clip.mp4")
    finally:
        app.close()


# ---------------------------------------------------------------------- state through errors
@pytest.fixture
def told(monkeypatch):
    messages = []
    monkeypatch.setattr(common, "notify", lambda level, msg, **kw: messages.append((level, msg)))
    return messages


@pytest.fixture
def loaded(tmp_path, media_factory):
    from app.session import Session

    video = media_factory("make_video", "square.mp4", seconds=4.0, fps=25, size=(160, 120),
                          audio_events_s=[1.0, 2.5])
    sess = Session(work_root=tmp_path / "work", autosave_root=tmp_path / "autosave")
    sess.load_video(video)
    sess.set_selection(1.0, 3.0)
    yield sess
    sess.close()


def _keep_a_take(sess, monkeypatch, caption="a knock"):
    import numpy as np

    import foley_core.generate

    class Result:
        audios, sr = [np.full(16000, 0.1, np.float32)], 16000
        metadata = {"seeds": [1], "model": "fake"}
        # the typed report the session reads: the same values as `metadata`
        report = types.SimpleNamespace(seeds=[1], model="fake", curve_r_before=None, curve_r_after=None,
                                       onsets_s=None, reference=None, to_json=lambda: dict(Result.metadata))

    monkeypatch.setattr(foley_core.generate, "generate", lambda request, **kw: Result())
    sess.generate(caption=caption, steps=1)
    return sess.keep_candidate(0)


def test_a_bad_video_leaves_everything_as_it_was(demo, loaded, told, tmp_path):
    c = demo_components(demo)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    before = (loaded.video.path, loaded.selection)
    out = _handler(demo, "on_video")(loaded, str(bad), {"autosaves": []})
    # only the player changes: back to the video in use (not the refused file, not blank)
    assert out == {c.video: str(loaded.video.path)}
    assert (loaded.video.path, loaded.selection) == before
    assert told and told[-1][0] == "warning" and "broken.mp4" in told[-1][1]


def test_a_failed_detection_keeps_the_region_panels(demo, loaded, told, monkeypatch):
    from foley_core.errors import ModelUnavailableError

    def fail(*a, **k):
        raise ModelUnavailableError("YOLO-World weights are not installed.")

    monkeypatch.setattr(loaded, "propose_region", fail)
    out = _handler(demo, "on_propose")(loaded, "", "a ball", 0.0, progress=lambda *a, **k: None)
    assert out == gr.skip()                 # overlay, region, tracks, curve: untouched
    assert told == [("warning", "YOLO-World weights are not installed.")]


def test_cancel_is_not_an_error_and_keeps_the_last_take(demo, loaded, told, monkeypatch):
    import foley_core.generate
    from foley_core.errors import GenerationCancelled

    _keep_a_take(loaded, monkeypatch)
    take = loaded.candidates[0]

    def cancelled(request, **kw):
        raise GenerationCancelled("Generation cancelled.")

    monkeypatch.setattr(foley_core.generate, "generate", cancelled)
    out = _handler(demo, "on_generate")(loaded, "a thud", "", 3, 1, 3.5, 4.5, True, 1.0, 1.0, 1,
                                        "embedded", 0.4, True, progress=lambda *a, **k: None)
    assert out == gr.skip()
    assert loaded.candidates == [take]
    assert told == [("info", "Generation cancelled: the previous takes are kept.")]


def test_a_reversed_selection_is_refused_not_corrected(demo, loaded, told):
    c = demo_components(demo)
    out = _handler(demo, "on_sel_start")(loaded, 3.5)          # past the end in use (3.0)
    assert loaded.selection == (1.0, 3.0)
    assert out == {c.sel_start: 1.0, c.sel_end: 3.0}             # the boxes show what is used
    assert "must come after its start" in told[-1][1] and "stays 1.00–3.00 s" in told[-1][1]


def test_a_start_box_event_arriving_after_the_end_s_keeps_the_new_end(demo, loaded, told):
    # start typed, tab, end typed, Enter: the start's blur and the end's submit are two requests
    # that can reach the server in either order; the late start must not bring the old end back
    c = demo_components(demo)
    assert loaded.selection == (1.0, 3.0)
    _handler(demo, "on_sel_end")(loaded, 2.5)
    out = _handler(demo, "on_sel_start")(loaded, 0.5)
    assert loaded.selection == (0.5, 2.5)
    assert '"duration_s": 2.0' in out[c.onset_lane]             # the lane comes with the reply
    _handler(demo, "on_sel_start")(loaded, 2.8)                  # past the end in use: refused
    assert loaded.selection == (0.5, 2.5) and "must come after its start" in told[-1][1]


def test_an_out_of_range_gain_is_refused_and_the_used_value_shown(demo, loaded, told,
                                                                   monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)
    out = _handler(demo, "on_stem_apply")(loaded, stem.id, 1000, 0.0, 1.0, 0.0, None, 0.0, 0.0,
                                          False, False, "streaming (-14 LUFS)", False)
    assert loaded.stem(stem.id).mix.gain_db == 0.0
    assert out[c.gain] == 0.0
    assert told[-1] == ("warning", "Gain (dB) must be between -60 and 24; got 1000.")


def test_a_new_video_starts_a_new_project_and_keeps_the_old_one(demo, loaded, told, monkeypatch,
                                                                 media_factory):
    c = demo_components(demo)
    _keep_a_take(loaded, monkeypatch)
    old_dir = loaded.autosave_dir
    other = media_factory("make_video", "other.mp4", seconds=2.0, fps=25, size=(160, 120))
    out = _handler(demo, "on_video")(loaded, str(other), {"autosaves": []})
    assert loaded.project.stems == [] and loaded.autosave_dir != old_dir
    assert "1 stem(s) were made for square.mp4" in told[-1][1]
    tokens = out[c.browser]["autosaves"]
    assert loaded.autosave_folder(tokens[1]) == old_dir
    from app.session import describe_autosave

    assert describe_autosave(old_dir).startswith("1 stem(s) on square.mp4")


# ---------------------------------------------------------------------- what gradio accepts back
def _sent_to_browser(demo, name, out):
    """What gradio makes of a handler's return value for the event it is wired to (its own
    postprocessing: a dict whose keys are not all components fails the whole event)."""
    import asyncio

    fn = next(f for f in demo.fns.values() if getattr(f.fn, "__name__", None) == name)
    return dict(zip(fn.outputs, asyncio.run(demo.postprocess_data(fn, out, None))))


def test_a_video_without_stems_reaches_the_page(demo, loaded, told, media_factory):
    """A first video (no stem yet) updates the page: its info line names it. The browser test
    stayed on "No video loaded" when the stem editor's empty update was a gr.skip() merged into
    the component dict."""
    c = demo_components(demo)
    other = media_factory("make_video", "other.mp4", seconds=2.0, fps=25, size=(160, 120))
    out = _handler(demo, "on_video")(loaded, str(other), {"autosaves": []})
    sent = _sent_to_browser(demo, "on_video", out)
    assert "other.mp4" in sent[c.video_md] and told == []
    assert sent[c.gain] == gr.skip()                   # no stem: its editor is left as it was


def test_deleting_the_last_stem_reaches_the_page(demo, loaded, told, monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)
    out = _handler(demo, "on_stem_delete")(loaded, stem.id, "streaming (-14 LUFS)", False)
    sent = _sent_to_browser(demo, "on_stem_delete", out)
    assert loaded.project.stems == [] and told == []
    assert sent[c.stem_pick]["choices"] == [] and sent[c.gain] == gr.skip()


def test_the_daw_export_button_gives_a_session_zip(demo, loaded, told, monkeypatch):
    import zipfile

    from tests.test_daw_session import parse_rpp, tracks_of

    c = demo_components(demo)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert by_id["export-daw-btn"] is c.export_daw
    out = _handler(demo, "on_export_daw")(loaded, progress=lambda *a, **k: None)   # no stem yet
    assert out == gr.skip() and "no stems yet" in told[-1][1]
    stem = _keep_a_take(loaded, monkeypatch, caption="a knock on wood")
    loaded.project.rename("Reel 1")
    out = _handler(demo, "on_export_daw")(loaded, progress=lambda *a, **k: None)
    sent = _sent_to_browser(demo, "on_export_daw", out)
    assert "reel_1.rpp" in sent[c.export_md] and "and the video" in sent[c.export_md]
    with zipfile.ZipFile(out[c.export_file]) as zf:
        (track,) = [t for t in tracks_of(parse_rpp(zf.read("reel_1/reel_1.rpp").decode())) if t["kind"] == "WAVE"]
        assert f"reel_1/{track['file']}" in zf.namelist()
    assert track["name"] == stem.name == "a knock on wood"
    assert track["position_s"] == stem.mix.offset_s == 1.0            # where the selection started


def test_search_results_have_thumbnails_play_urls_and_only_use_picks(demo, loaded, told):
    import urllib.parse
    from pathlib import Path

    from gradio.utils import is_static_file

    from app.panels.reference import result_choices
    from app.session import sound_library
    from foley_core.library.peaks import THUMBNAIL_BINS

    c = demo_components(demo)
    search = _handler(demo, "on_ref_search")
    out = search(loaded, "footsteps", "", "all categories", None, 1.0)
    results = out[c.ref_results]
    hits = results.props["hits"]
    assert hits and results.value == "" and loaded.reference is None
    assert "at most 1 s long" in results.props["heading"]
    for hit, (label, clip_id) in zip(hits, result_choices(results)):
        entry = sound_library().get(clip_id)
        assert hit["id"] == clip_id and entry.seconds <= 1.0
        assert len(hit["peaks"]) == THUMBNAIL_BINS and max(hit["peaks"]) > 0
        # each result shows its licence, and its full attribution on hover
        assert entry.licence and label.endswith(f" · {entry.licence}") and entry.id in hit["attribution"]
        # the clip plays from its own file, which the server serves as a static file
        served = Path(urllib.parse.unquote(hit["url"].removeprefix("gradio_api/file=")))
        assert served == entry.path and is_static_file(served)
    # the page sends an empty length box as 0: no bound (no clip lasts 0 s)
    unbounded = search(loaded, "footsteps", "", "all categories", 0, 0)[c.ref_results]
    assert unbounded.props["hits"] and " long" not in unbounded.props["heading"]
    assert max(sound_library().get(h["id"]).seconds for h in unbounded.props["hits"]) > 1.0
    # a bad range is a message, and nothing changes
    assert search(loaded, "footsteps", "", "all categories", 3.0, 1.0) == gr.skip()
    assert told[-1][0] == "warning" and "minimum duration" in told[-1][1]

    # "Use" (the widget's input event with the clip id) picks it as the stem's reference
    out = _handler(demo, "on_ref_pick")(loaded, hits[1]["id"], 0.5)
    assert loaded.reference.entry.id == hits[1]["id"] and out[c.ref_results].value == hits[1]["id"]
    assert hits[1]["caption"] in out[c.ref_md]
    # a refused "Use" shows the clip still in use checked, not the refused one
    out = _handler(demo, "on_ref_pick")(loaded, "no-such-clip", 0.5)
    assert list(out) == [c.ref_results] and out[c.ref_results].value == hits[1]["id"]
    assert told[-1][0] == "warning" and "no-such-clip" in told[-1][1]
    assert loaded.reference.entry.id == hits[1]["id"]


def test_selection_events_run_one_at_a_time_in_the_order_sent(demo):
    # tabbing from the start box to the end box sends the start's blur (old end) before the
    # end's submit; if they ran side by side the stale one could finish last and win
    ids = {b._id for b in demo.blocks.values() if getattr(b, "elem_id", None) in ("sel-start", "sel-end")}
    fns = [f for f in demo.fns.values() if any(t in ids for t, _ in f.targets)]
    assert len(fns) == 4                                   # submit and blur of both boxes
    sel_all = next(f for f in demo.fns.values() if getattr(f.fn, "__name__", None) == "on_sel_all")
    groups = {(f.concurrency_id, f.concurrency_limit) for f in [*fns, sel_all]}
    assert len(groups) == 1 and next(iter(groups))[1] == 1, groups
