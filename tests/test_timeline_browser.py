"""The timeline in headless Chromium: picture and sound on one transport, monitoring in the page,
and a lane you drag.

A project (the demo clip and one stem: a steady tone) is opened through the studio's 'Open a
project'; then: after `transport-play`, the video's clock and the Web Audio clock stay within
40 ms for 3 s; muting the stem silences the master output with no request to the server while
it does; dragging the stem's lane moves it, and the project saved with 'Save project' holds the
new offset.
"""

from __future__ import annotations

import io
import json
import urllib.parse
import urllib.request
import zipfile

import numpy as np
import pytest

from test_browser import WAIT_MS, Studio, browser, playwright, server  # noqa: F401  (shared fixtures)

pytestmark = pytest.mark.browser

from playwright.sync_api import expect  # noqa: E402

SYNC_TOL_S = 0.040
SYNC_RUN_S = 3.0
SAMPLE_MS = 100
STEM_SR = 16000
STEM_S = 4.0
STEM_OFFSET_S = 1.0
TONE_HZ = 440.0
SILENT_DB = -90.0           # the master after the only stem is muted
AUDIBLE_DB = -30.0          # the tone (peak 0.3 = -10.5 dBFS, -3 dB centre pan) before
DRAG_S = 2.0                # how far the lane is dragged


@pytest.fixture(scope="module")
def project_zip(tmp_path_factory):
    from app.session import DEMO_DIR
    from foley_core import project as fproject
    from foley_core import project_archive
    from foley_core.request import GenerationRequest

    root = tmp_path_factory.mktemp("timeline-project")
    t = np.arange(int(STEM_S * STEM_SR)) / STEM_SR
    tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    project = fproject.Project(name="Timeline test")
    project.video_path = (DEMO_DIR / "mecavideo_balle_jbart.mp4").resolve()
    project.add_stem(fproject.Stem.new(tone, STEM_SR, GenerationRequest(
        caption="a steady tone", start_s=STEM_OFFSET_S, duration_s=STEM_S), name="tone"))
    return project_archive.save_archive(project, root / "timeline-test.zip", staging_dir=root / "s")


@pytest.fixture(scope="module")
def studio(server, browser, project_zip):  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    s = Studio(page, server)
    s.open()
    s.tab("Project")
    page.set_input_files("#project-load input[type=file]", str(project_zip))
    expect(page.locator("#timeline .tl-lane[data-stem]")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#video-input video")).to_be_attached(timeout=WAIT_MS)
    # the stem's audio is fetched and decoded, and its waveform drawn
    expect(page.locator("#timeline .tw-root")).to_have_attribute("data-loaded", "1",
                                                                 timeout=WAIT_MS)
    expect(page.locator("#timeline .tw-root")).to_have_attribute("data-waves", "1",
                                                                 timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelector('#video-input video').readyState >= 3",
                           timeout=WAIT_MS)
    s.idle()
    yield s
    assert s.external == [], f"the page fetched from outside: {s.external[:5]}"
    ctx.close()


def _pause(page) -> None:
    if page.evaluate("() => window.foleyTransport.playing()"):
        page.click("#transport-play")
    page.wait_for_function("() => !window.foleyTransport.playing()", timeout=WAIT_MS)


def test_video_and_web_audio_stay_together(studio):
    page = studio.page
    page.evaluate("() => { document.querySelector('#video-input video').currentTime = 0.5; }")
    page.wait_for_timeout(300)
    page.click("#transport-play")
    page.wait_for_function("() => window.foleyTransport.audioTime() !== null", timeout=WAIT_MS)
    samples = []
    for _ in range(int(SYNC_RUN_S * 1000 / SAMPLE_MS)):
        samples.append(page.evaluate(
            "() => [document.querySelector('#video-input video').currentTime,"
            " window.foleyTransport.audioTime()]"))
        page.wait_for_timeout(SAMPLE_MS)
    _pause(page)
    video_s = np.array([v for v, _ in samples])
    audio_s = np.array([np.nan if a is None else a for _, a in samples])
    gaps_ms = np.round(1000 * (audio_s - video_s), 1)
    studio.mark(f"audio - video (ms): max |gap| {np.nanmax(np.abs(gaps_ms)):.1f}, "
                f"median {np.nanmedian(gaps_ms):.1f}, over {video_s[-1] - video_s[0]:.2f} s")
    assert video_s[-1] - video_s[0] > 0.8 * SYNC_RUN_S, "the video did not play"
    assert not np.isnan(audio_s).any(), "the audio stopped while the video played"
    assert np.all(np.abs(audio_s - video_s) <= SYNC_TOL_S), gaps_ms.tolist()


def test_muting_is_heard_at_once_without_the_server(studio):
    page = studio.page
    page.evaluate(f"() => {{ document.querySelector('#video-input video').currentTime = "
                  f"{STEM_OFFSET_S + 0.5}; }}")
    page.wait_for_timeout(300)
    page.click("#transport-play")
    page.wait_for_function(f"() => window.foleyTransport.masterPeakDb() > {AUDIBLE_DB}",
                           polling=50, timeout=WAIT_MS)
    sent = []
    record = lambda r: sent.append(r.url) if "/gradio_api/" in r.url else None  # noqa: E731
    page.on("request", record)
    page.click("#timeline .tw-mute")
    page.wait_for_function(f"() => window.foleyTransport.masterPeakDb() < {SILENT_DB}",
                           polling=20, timeout=5000)
    page.remove_listener("request", record)
    assert sent == [], f"muting waited for the server: {sent}"
    # the mute reaches the project afterwards (at pause at the latest)
    _pause(page)
    expect(page.locator("#stem-mute input")).to_be_checked(timeout=WAIT_MS)
    studio.idle()
    page.click("#timeline .tw-mute")                     # heard again, for the next test
    _pause(page)
    expect(page.locator("#stem-mute input")).not_to_be_checked(timeout=WAIT_MS)
    studio.idle()


def test_dragging_a_lane_moves_the_stem_in_the_saved_project(studio, tmp_path):
    page = studio.page
    lane = page.locator("#timeline .tl-lane[data-stem]").first
    before = float(lane.get_attribute("data-start"))
    assert before == pytest.approx(STEM_OFFSET_S, abs=1e-3)
    total_s = json.loads(page.locator("#timeline .tw-root").get_attribute("data-total"))
    lane.scroll_into_view_if_needed()
    lane_box = lane.bounding_box()
    clip_box = page.locator("#timeline .tw-clip").first.bounding_box()
    dx = DRAG_S / total_s * lane_box["width"]
    x, y = clip_box["x"] + clip_box["width"] / 2, clip_box["y"] + clip_box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for f in np.linspace(0.1, 1.0, 10):
        page.mouse.move(x + f * dx, y)
    page.mouse.up()
    expected = before + DRAG_S
    tol = 2 * total_s / lane_box["width"]               # two pixels
    # the session took it: the mix controls show the new offset
    page.wait_for_function(
        "([want, tol]) => Math.abs(Number(document.querySelector('#stem-offset input').value)"
        " - want) <= tol", arg=[expected, tol + 0.01], timeout=WAIT_MS)
    studio.idle()
    doc = _saved_project(studio)
    offset = doc["stems"][0]["mix"]["offset_s"]
    studio.mark(f"dragged {dx:.0f} px: offset {before:.3f} -> {offset:.3f} s (wanted {expected:.3f})")
    assert offset == pytest.approx(expected, abs=tol)


def test_the_ruler_seeks_and_arrows_nudge_the_selected_stem_by_a_frame(studio):
    from app.session import DEMO_DIR
    from foley_core import media

    page = studio.page
    _pause(page)
    root = page.locator("#timeline .tw-root")
    total_s = float(root.get_attribute("data-total"))
    page.locator("#timeline .tw-ruler").scroll_into_view_if_needed()
    ruler = page.locator("#timeline .tw-ruler").bounding_box()
    page.mouse.click(ruler["x"] + 0.4 * ruler["width"], ruler["y"] + ruler["height"] / 2)
    page.wait_for_function(
        "([want, tol]) => Math.abs(document.querySelector('#video-input video').currentTime"
        " - want) <= tol", arg=[0.4 * total_s, 2 * total_s / ruler["width"] + 0.05],
        timeout=WAIT_MS)
    lane = page.locator("#timeline .tl-lane[data-stem]").first
    before = float(lane.get_attribute("data-offset"))
    page.locator("#timeline .tw-clip").first.click()          # selects it, focuses the timeline
    fps = media.probe_video(DEMO_DIR / "mecavideo_balle_jbart.mp4").fps
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    want = before + 2 / fps
    page.wait_for_function(
        "([want]) => Math.abs(Number(document.querySelector('#stem-offset input').value)"
        " - want) <= 0.006", arg=[want], timeout=WAIT_MS)
    assert float(lane.get_attribute("data-offset")) == pytest.approx(want, abs=1e-4)
    studio.idle()


def _drag(page, x, y, dx) -> None:
    page.mouse.move(x, y)
    page.mouse.down()
    for f in np.linspace(0.1, 1.0, 10):
        page.mouse.move(x + f * dx, y)
    page.mouse.up()


def _number(page, elem_id: str, want: float, tol: float) -> None:
    page.wait_for_function(
        "([id, want, tol]) => Math.abs(Number(document.querySelector(`#${id} input`).value)"
        " - want) <= tol", arg=[elem_id, want, tol], timeout=WAIT_MS)


def test_trim_and_fade_handles_edit_the_stem(studio):
    from test_browser import ARTIFACTS

    page = studio.page
    _pause(page)
    lane = page.locator("#timeline .tl-lane[data-stem]").first
    lane.scroll_into_view_if_needed()
    total_s = float(page.locator("#timeline .tw-root").get_attribute("data-total"))
    px_per_s = lane.bounding_box()["width"] / total_s
    tol = 2 / px_per_s + 0.01
    offset = float(lane.get_attribute("data-offset"))
    # the regions plugin's left handle (in wavesurfer's shadow root): cut the first 0.5 s
    handle = page.locator("#timeline [part~='region-handle-left']").first
    box = handle.bounding_box()
    _drag(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 0.5 * px_per_s)
    _number(page, "stem-trim-start", 0.5, tol)
    # ... and the kept audio stays where it sounded: the stem starts 0.5 s later
    _number(page, "stem-offset", offset + 0.5, tol)
    studio.idle()
    fade = page.locator("#timeline .tw-fade-in").first
    box = fade.bounding_box()
    _drag(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 0.4 * px_per_s)
    _number(page, "stem-fade-in", 0.4, tol)
    studio.idle()
    if ARTIFACTS.is_dir():
        page.locator("#timeline").screenshot(path=str(ARTIFACTS / "timeline.png"))


# --- a second project: two tones, to read the meters against BS.1770 and to solo, loop, delete

# name, Hz, amplitude: at 3 kHz K-weighting adds ~3 dB over 1 kHz; not higher, as Chromium
# resamples a 48 kHz buffer to a 44.1 kHz context by linear interpolation (-0.9 dB at 8 kHz)
TONES = (("mid", 1000.0, 0.25), ("high", 3000.0, 0.1))
COMMIT_IDLE_S = 1.5         # the page sends a mixer change this long after the last one
TONE_SR = 48000
TONES_S = 6.0
LUFS_TOL_LU = 1.0
LOOP = (1.0, 2.5)           # the selection looped (s)


def _tone(hz: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(TONES_S * TONE_SR)) / TONE_SR
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def two_tones(server, browser, tmp_path_factory):  # noqa: F811
    """A studio page with a project of two tones from 0 s: (Studio, their stem ids in order)."""
    from app.session import DEMO_DIR
    from foley_core import project as fproject
    from foley_core import project_archive
    from foley_core.request import GenerationRequest

    root = tmp_path_factory.mktemp("two-tones")
    project = fproject.Project(name="Two tones")
    project.video_path = (DEMO_DIR / "mecavideo_balle_jbart.mp4").resolve()
    for name, hz, amplitude in TONES:
        project.add_stem(fproject.Stem.new(_tone(hz, amplitude), TONE_SR, GenerationRequest(
            caption=f"a {name} tone", start_s=0.0, duration_s=TONES_S), name=name))
    path = project_archive.save_archive(project, root / "two-tones.zip", staging_dir=root / "s")
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    studio = Studio(page, server)
    studio.open()
    studio.tab("Project")
    page.set_input_files("#project-load input[type=file]", str(path))
    rows = page.locator("#timeline .tw-stem-row")
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    tw = page.locator("#timeline .tw-root")
    expect(tw).to_have_attribute("data-loaded", "2", timeout=WAIT_MS)
    expect(tw).to_have_attribute("data-waves", "2", timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelector('#video-input video').readyState >= 3",
                           timeout=WAIT_MS)
    studio.idle()
    yield studio, [rows.nth(i).get_attribute("data-id") for i in range(2)]
    assert studio.external == [], f"the page fetched from outside: {studio.external[:5]}"
    ctx.close()


def _seek_and_play(page, t_s: float) -> None:
    _pause(page)
    page.evaluate(f"() => {{ document.querySelector('#video-input video').currentTime = {t_s}; }}")
    page.wait_for_timeout(300)
    page.click("#transport-play")
    page.wait_for_function("() => window.foleyTransport.audioTime() !== null", timeout=WAIT_MS)


def _solo(page, stem_id: str) -> None:
    page.click(f"#timeline .tw-stem-row[data-id='{stem_id}'] .tw-solo")


def test_the_meters_read_bs1770_short_term_loudness(two_tones):
    studio, ids = two_tones
    from foley_core.mixing import integrated_lufs

    page = studio.page
    for (name, hz, amplitude), stem_id in zip(TONES, ids):
        # a steady tone: its integrated loudness is its short-term loudness
        want = integrated_lufs(_tone(hz, amplitude), TONE_SR)
        _pause(page)                                 # the meters start again at the next play
        _solo(page, stem_id)
        _seek_and_play(page, 1.0)
        page.wait_for_timeout(2000)
        master, stem = page.evaluate(f"() => [window.foleyTransport.lufsS('master'),"
                                     f" window.foleyTransport.lufsS('{stem_id}')]")
        text = page.locator("#timeline .tw-mtext").inner_text()
        _pause(page)
        _solo(page, stem_id)                         # solo off again, and told to the session
        page.wait_for_timeout(1000 * COMMIT_IDLE_S + 500)
        studio.idle()
        studio.mark(f"{name} ({hz:.0f} Hz): master {master:.2f}, stem {stem:.2f} LUFS-S, "
                    f"pyloudnorm {want:.2f} LUFS")
        assert abs(master - want) <= LUFS_TOL_LU, (master, want)
        assert abs(stem - want) <= LUFS_TOL_LU, (stem, want)
        assert "LUFS-S" in text and "~" not in text, text
    _pause(page)
    studio.tab("Mix")
    expect(page.locator("#stem-solo input")).not_to_be_checked(timeout=WAIT_MS)
    studio.idle()


def test_solo_silences_the_other_stem_at_once_without_the_server(two_tones):
    studio, ids = two_tones
    page = studio.page
    mid, high = ids
    studio.tab("Mix")
    _seek_and_play(page, 1.0)
    other = f"#timeline .tw-stem-row[data-id='{high}'] .tw-meter"
    page.wait_for_function(f"() => Number(document.querySelector(\"{other}\").dataset.peakDb)"
                           f" > {AUDIBLE_DB}", polling=50, timeout=WAIT_MS)
    sent = []
    record = lambda r: sent.append(r.url) if "/gradio_api/" in r.url else None  # noqa: E731
    page.on("request", record)
    _solo(page, mid)
    page.wait_for_function(f"() => Number(document.querySelector(\"{other}\").dataset.peakDb)"
                           f" < {SILENT_DB}", polling=20, timeout=5000)
    master_db = page.evaluate("() => window.foleyTransport.masterPeakDb()")
    page.remove_listener("request", record)
    assert sent == [], f"solo waited for the server: {sent}"
    assert master_db > AUDIBLE_DB, "the soloed stem went silent too"
    _pause(page)
    expect(page.locator("#stem-solo input")).to_be_checked(timeout=WAIT_MS)
    studio.idle()
    _solo(page, mid)
    _pause(page)
    expect(page.locator("#stem-solo input")).not_to_be_checked(timeout=WAIT_MS)
    studio.idle()


def test_loop_selection_wraps_playback_to_the_selection_start(two_tones):
    studio, ids = two_tones
    page = studio.page
    _pause(page)
    studio.select_range(*LOOP)
    page.wait_for_function("([a, b]) => { const s = window.foleyTransport.selection();"
                           " return s && Math.abs(s[0] - a) < 1e-3 && Math.abs(s[1] - b) < 1e-3; }",
                           arg=list(LOOP), timeout=WAIT_MS)
    studio.idle()
    # clicked while the session answers the selection: gradio's progress overlay covers the
    # timeline then, and it must let the click through to the button
    page.locator("#sel-end input").fill(str(LOOP[1]))
    page.locator("#transport-loop").click()
    expect(page.locator("#timeline .tw-root")).to_have_attribute("data-loop", "1", timeout=5000)
    try:
        page.evaluate("() => { window.__twPrev = null; window.__twWrap = null; }")
        _seek_and_play(page, LOOP[1] - 0.6)
        # the first time the picture jumps back: from where to where
        wrap = page.wait_for_function(
            "() => { const t = document.querySelector('#video-input video').currentTime;"
            " if (window.__twPrev !== null && t < window.__twPrev - 0.5)"
            "   window.__twWrap = window.__twWrap || [window.__twPrev, t];"
            " window.__twPrev = t; return window.__twWrap; }",
            polling=20, timeout=WAIT_MS).json_value()
        page.wait_for_timeout(500)
        playing = page.evaluate("() => window.foleyTransport.playing()")
        gap_s = page.evaluate("() => window.foleyTransport.audioTime()"
                              " - document.querySelector('#video-input video').currentTime")
    finally:
        _pause(page)
        page.locator("#transport-loop").click()
    studio.mark(f"loop: {wrap[0]:.3f} -> {wrap[1]:.3f} s (selection {LOOP}), audio - video "
                f"{1000 * gap_s:.1f} ms after it")
    assert LOOP[1] - 0.3 <= wrap[0] <= LOOP[1] + 0.1, wrap
    assert LOOP[0] <= wrap[1] <= LOOP[0] + 0.3, wrap
    assert playing, "playback stopped at the wrap"
    assert abs(gap_s) <= SYNC_TOL_S, gap_s
    studio.idle()


def test_delete_removes_the_selected_stem_through_the_session(two_tones):
    studio, ids = two_tones
    page = studio.page
    mid, high = ids
    _pause(page)
    clip = page.locator(f"#timeline .tw-stem-row[data-id='{high}'] .tw-clip")
    clip.scroll_into_view_if_needed()
    clip.click()                                     # selects it, focuses the timeline
    page.wait_for_function(f"() => JSON.parse(document.querySelector('#timeline .tw-root')"
                           f".dataset.value).selected === '{high}'", timeout=WAIT_MS)
    studio.idle()
    page.keyboard.press("Delete")
    # the lane goes when the session's answer comes back (the page never drops it by itself)
    rows = page.locator("#timeline .tw-stem-row")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    assert rows.first.get_attribute("data-id") == mid
    studio.idle()
    page.click("#undo-btn")                          # the session's delete is one undo step
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    studio.idle()


def _saved_project(studio) -> dict:
    """project.json of the project saved now with 'Save project'."""
    page = studio.page
    studio.tab("Project")
    page.click("#project-save-btn")
    link = page.locator("#export-file a[href*='project.zip']").first
    expect(link).to_be_attached(timeout=WAIT_MS)
    href = urllib.parse.urljoin(studio.server["url"], link.get_attribute("href"))
    with urllib.request.urlopen(href, timeout=60) as r:
        saved = r.read()
    with zipfile.ZipFile(io.BytesIO(saved)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("project.json"))
        return json.loads(zf.read(name))


def _page_mutes(page) -> dict:
    value = json.loads(page.locator("#timeline .tw-root").get_attribute("data-value"))
    return {s["id"]: s["mute"] for s in value["stems"]}


def test_an_edit_sent_while_the_last_reply_is_on_its_way_is_kept(two_tones):
    """Mute one stem, then the other: the reply about the first mute is held back (a slow
    server) until the second has been sent; it must not drop the second, in the page nor in the
    project."""
    studio, _ = two_tones
    page = studio.page
    _pause(page)
    studio.idle()
    rows = page.locator("#timeline .tw-stem-row")
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    first, second = (rows.nth(i).get_attribute("data-id") for i in range(2))
    assert _page_mutes(page) == {first: False, second: False}
    # gradio's replies come on an event stream the page opens when it sends a request: the
    # stream for the first mute is let through only once the second mute has been sent
    stream = "**/gradio_api/queue/data*"
    held = []
    page.route(stream, lambda route: held.append(route) if not held else route.continue_())
    try:
        page.click(f"#timeline .tw-stem-row[data-id='{first}'] .tw-mute")
        # a mixer change on another stem sends the first one's at once ...
        page.click(f"#timeline .tw-stem-row[data-id='{second}'] .tw-mute")
        for _ in range(100):                         # route handlers run while we wait
            if held:
                break
            page.wait_for_timeout(100)
        assert len(held) == 1, "the first mute was not sent when the second stem changed"
        # ... and the second's goes after the idle time, while the first's reply is held
        page.wait_for_timeout(1000 * COMMIT_IDLE_S + 700)
    finally:
        for route in held:
            route.fulfill(response=route.fetch(timeout=WAIT_MS))
        page.unroute(stream)
    both = {first: True, second: True}
    # the reply about the first mute has landed; then every edit is acknowledged
    mutes = ("const v = JSON.parse(document.querySelector('#timeline .tw-root').dataset.value);"
             " const m = Object.fromEntries(v.stems.map(s => [s.id, s.mute]));")
    page.wait_for_function(f"([a]) => {{ {mutes} return m[a] === true; }}", arg=[first],
                           timeout=WAIT_MS)
    page.wait_for_function("() => !window.foleyTransport.unconfirmed"
                           " || window.foleyTransport.unconfirmed() === 0", timeout=WAIT_MS)
    page.wait_for_timeout(1500)                      # any late reply lands
    studio.idle()
    shown = _page_mutes(page)
    saved = {s["id"]: s["mix"]["mute"] for s in _saved_project(studio)["stems"]}
    studio.mark(f"two mutes, the first reply held back: page {shown}, saved {saved}")
    assert shown == both, "the page dropped the edit sent while the first reply was on its way"
    assert saved == both, "the project lost the edit sent while the first reply was on its way"


def test_a_refused_mixer_edit_is_not_sent_again(two_tones):
    """A gain the project refuses (above its limit): said once, then the lane shows the stem's
    gain again and the page stops sending it."""
    studio, _ = two_tones
    page = studio.page
    _pause(page)
    studio.idle()
    row = page.locator("#timeline .tw-stem-row").first
    gain = row.locator(".tw-gain")
    before = gain.input_value()
    joins = []

    def record(request):
        # the timeline's value goes as a JSON string inside gradio's JSON body
        if "/gradio_api/queue/join" in request.url and \
                '\\"gain_db\\":99' in (request.post_data or ""):
            joins.append(request.url)

    page.on("request", record)
    try:
        gain.fill("99")
        gain.evaluate("el => el.blur()")
        expect(page.locator("#studio-notice")).to_contain_text("between -60 and 24",
                                                               timeout=WAIT_MS)
        page.wait_for_function("() => window.foleyTransport.unconfirmed() === 0",
                               timeout=WAIT_MS)
        sent = len(joins)
        page.wait_for_timeout(3000)                  # a page that sends it again does so now
    finally:
        page.remove_listener("request", record)
    studio.mark(f"a refused gain: sent {sent} time(s) before its ack, {len(joins) - sent} after")
    assert sent >= 1, "the refused gain was never sent"
    assert len(joins) == sent, "the page went on sending an edit the server refused"
    expect(gain).to_have_value(before, timeout=WAIT_MS)
    studio.idle()
