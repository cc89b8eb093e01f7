"""The audition route (app/audition.py): the page plays a sound of the user's folders by its clip
id, and gets nothing else - no other file, no path, nothing once the studio is open to others."""

from __future__ import annotations

import os
import urllib.parse

import numpy as np
import pytest
import soundfile as sf
from starlette.applications import Starlette
from starlette.testclient import TestClient

import app.session
from app import audition
from app.panels import reference
from foley_core.library import SearchHit
from test_ui_library_folders import SR, settings, sfx  # noqa: F401

KNOCK = "user/My SFX/hits/Zorblat_Knock_02.wav"


@pytest.fixture
def added(settings, sfx):  # noqa: F811
    app.session.SAVED_FOLDERS.add(str(sfx))
    return sfx


def _client(host: str = "127.0.0.1") -> TestClient:
    return TestClient(Starlette(routes=audition.routes()), client=(host, 50000))


def _get(client: TestClient, clip_id: str):
    return client.get("/" + audition.audition_url(clip_id))


def test_an_indexed_user_clip_is_served_by_its_id(added):
    r = _get(_client(), KNOCK)
    assert r.status_code == 200
    assert r.content == (added / "hits" / "Zorblat_Knock_02.wav").read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff"
    # a browser seeks with Range requests
    part = _client().get("/" + audition.audition_url(KNOCK), headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100


def test_a_format_the_browser_cannot_play_comes_as_a_cached_wav_preview(added):
    tone = (0.25 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    sf.write(added / "Zorblat_Beep.aiff", tone, SR, format="AIFF")
    app.session.SAVED_FOLDERS.add(str(added))           # rescan: the new file is indexed
    client = _client()
    first = _get(client, "user/My SFX/Zorblat_Beep.aiff")
    assert first.status_code == 200 and first.content[:4] == b"RIFF"
    preview = audition.playable_file((added / "Zorblat_Beep.aiff").resolve())
    assert preview.suffix == ".wav" and preview.read_bytes() == first.content
    mtime = preview.stat().st_mtime_ns
    assert _get(client, "user/My SFX/Zorblat_Beep.aiff").content == first.content
    assert preview.stat().st_mtime_ns == mtime          # made once
    audio, sr = sf.read(preview, dtype="float32")
    assert sr == SR and np.max(np.abs(audio - tone)) < 1e-3


def test_anything_that_is_not_an_indexed_user_clip_is_refused(added, tmp_path):
    secret = tmp_path / "secret.wav"
    sf.write(secret, np.full(SR, 0.1, np.float32), SR)
    client = _client()
    bundled_id = next(e.id for e in app.session.sound_library() if e.category != "user")
    for clip_id in ("user/My SFX/hits/truncated.wav",       # in the folder, but not indexed
                    "user/My SFX/notes.txt",
                    str(added / "hits" / "Zorblat_Knock_02.wav"),   # a path, not an id
                    str(secret),
                    "user/My SFX/../secret.wav", "user/My SFX/hits/../../../secret.wav",
                    "../../secret.wav", "user/My%20SFX/hits/Zorblat_Knock_02.wav",
                    bundled_id, ""):
        r = _get(client, clip_id)
        assert r.status_code == 404, clip_id
        assert b"RIFF" not in r.content
    # raw traversal in the query string and no id at all
    assert client.get("/foley/audition?id=..%2F..%2Fsecret.wav").status_code == 404
    assert client.get("/foley/audition").status_code == 404
    assert client.get("/foley/audition/" + urllib.parse.quote(str(secret))).status_code == 404


def test_a_link_leading_out_of_the_folder_is_not_followed(settings, sfx, tmp_path):  # noqa: F811
    outside = tmp_path / "private"
    outside.mkdir()
    sf.write(outside / "diary.wav", (0.2 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32), SR)
    os.symlink(outside / "diary.wav", sfx / "Zorblat_Link.wav")
    os.symlink(sfx / "hits" / "Zorblat_Knock_02.wav", sfx / "Zorblat_Inner_Link.wav")
    app.session.SAVED_FOLDERS.add(str(sfx))
    lib = app.session.sound_library()
    assert "user/My SFX/Zorblat_Link.wav" in lib          # the scan lists it, the route does not serve it
    client = _client()
    assert _get(client, "user/My SFX/Zorblat_Link.wav").status_code == 404
    # a link to a file inside the folder is that file
    inner = _get(client, "user/My SFX/Zorblat_Inner_Link.wav")
    assert inner.status_code == 200 and inner.content == (sfx / "hits" / "Zorblat_Knock_02.wav").read_bytes()
    # a file swapped for a link after the scan is checked again at each request
    os.replace(sfx / "Zorblat_Hum_Loop.flac", tmp_path / "moved.flac")
    os.symlink(tmp_path / "moved.flac", sfx / "Zorblat_Hum_Loop.flac")
    assert _get(client, "user/My SFX/Zorblat_Hum_Loop.flac").status_code == 404


def test_nothing_is_served_when_the_studio_is_open_to_other_machines(added, monkeypatch):
    assert _get(_client(), KNOCK).status_code == 200
    # a request from another machine, even to a loopback-only studio (a proxy in front of it)
    r = _get(_client("192.168.1.20"), KNOCK)
    assert r.status_code == 403 and b"RIFF" not in r.content
    monkeypatch.setattr(app.session.SAVED_FOLDERS, "browser_may_add", False)
    for host in ("127.0.0.1", "192.168.1.20"):
        r = _get(_client(host), KNOCK)
        assert r.status_code == 403 and "open to other machines" in r.text


def test_user_results_carry_the_route_url_or_say_why_they_do_not_play(added, monkeypatch):
    lib = app.session.sound_library()
    hits = [SearchHit(lib.get(KNOCK), 1.0)]
    item, = reference.result_items(hits, [np.ones(4, np.float32)])
    assert item["url"] == audition.audition_url(KNOCK) and item["why_silent"] == ""
    assert item["url"].startswith("foley/audition?id=") and "/" not in item["url"].split("=", 1)[1]
    monkeypatch.setattr(app.session.SAVED_FOLDERS, "browser_may_add", False)
    item, = reference.result_items(hits, [np.ones(4, np.float32)])
    assert item["url"] == "" and "open to other machines" in item["why_silent"]
    assert item["peaks"] == [1.0] * 4       # the thumbnail is only levels, drawn either way
