// Onsets lane: the body of a gr.HTML `js_on_load` (gets `element`, `props`, `trigger`, `watch`).
// The value is JSON (see app/onsets_widget.py): times in seconds from the selection start;
// "onsets_s": null = untouched (the video's contacts are used and drawn as red markers).
// Click on the empty lane adds a hit, drag moves one, double-click or select + Delete removes
// one. "Tap along" plays the selection in the video player and records a key (space or T) at
// each hit; the taps replace the markers when the selection ends, or on Esc / the button.
const CLICK_SLOP_PX = 4;       // a press that moves less than this is a click, not a drag
const root = element.querySelector('.ol-root');
const track = element.querySelector('.ol-track');
const axis = element.querySelector('.ol-axis');
const status = element.querySelector('.ol-status');
const tapBtn = element.querySelector('.ol-tap');
const speedSel = element.querySelector('.ol-speed');
const snapBox = element.querySelector('.ol-snap');
let state = parse(props.value);
let selected = -1;
let drag = null;               // {index, x0, moved} while a marker is pressed
let tap = null;                // the running tap-along, or null

function parse(text) {
  let v = {};
  try { v = typeof text === 'string' && text.trim() ? JSON.parse(text) : (text || {}); }
  catch (e) { v = {}; }
  return {
    start_s: Number(v.start_s) || 0,
    duration_s: Number(v.duration_s) > 0 ? Number(v.duration_s) : 0,
    contacts_s: Array.isArray(v.contacts_s) ? v.contacts_s.map(Number) : [],
    onsets_s: Array.isArray(v.onsets_s) ? v.onsets_s.map(Number) : null,
  };
}

const r4 = t => Math.round(t * 10000) / 10000;
function shown() { return state.onsets_s === null ? state.contacts_s : state.onsets_s; }
function xOf(t) { return state.duration_s ? 100 * t / state.duration_s : 0; }
function timeAt(clientX) {
  const b = track.getBoundingClientRect();
  const u = Math.max(0, Math.min(1, (clientX - b.left) / Math.max(1, b.width)));
  // a hit must start inside the selection: never exactly at its end
  return Math.min(u * state.duration_s, Math.max(0, state.duration_s - 0.001));
}

function render() {
  track.replaceChildren();
  axis.replaceChildren();
  if (!state.duration_s) { status.textContent = 'load a video to place hits'; return; }
  for (const c of state.contacts_s) {
    const d = document.createElement('div');
    d.className = 'ol-contact'; d.style.left = xOf(c) + '%';
    track.appendChild(d);
  }
  shown().forEach((t, i) => {
    const m = document.createElement('div');
    m.className = 'ol-marker' + (state.onsets_s === null ? ' ol-from-video' : '')
      + (i === selected ? ' ol-selected' : '');
    m.style.left = xOf(t) + '%'; m.dataset.index = String(i); m.dataset.time = String(t);
    m.title = `${t.toFixed(3)} s`;
    track.appendChild(m);
  });
  if (tap) {
    const p = document.createElement('div');
    p.className = 'ol-playhead'; p.style.left = xOf(tap.last || 0) + '%';
    track.appendChild(p);
  }
  const step = [0.1, 0.2, 0.5, 1, 2, 5].find(s => state.duration_s / s <= 10) || 10;
  for (let t = 0; t <= state.duration_s + 1e-9; t += step) {
    const s = document.createElement('span');
    s.style.left = xOf(t) + '%'; s.textContent = (Math.round((state.start_s + t) * 10) / 10) + ' s';
    axis.appendChild(s);
  }
  const n = shown().length;
  status.textContent = tap ? `tapping: ${tap.taps.length} tap(s) (space or T; Esc to stop)`
    : state.onsets_s === null ? `video contacts: ${n} (used as found again at Generate)`
    : n ? `your hits: ${n}` : 'no hits (you emptied the lane)';
  root.dataset.onsets = JSON.stringify(state.onsets_s);
}

function commit(extra) {
  let value;
  try { value = JSON.parse(typeof props.value === 'string' && props.value ? props.value : '{}'); }
  catch (e) { value = {}; }
  Object.assign(value, {start_s: state.start_s, duration_s: state.duration_s,
                        contacts_s: state.contacts_s, tapped: false, snap: false},
                extra || {});
  value.onsets_s = state.onsets_s === null ? null
    : state.onsets_s.map(r4).sort((a, b) => a - b);
  props.value = JSON.stringify(value);
  root.dataset.lane = props.value;
  trigger('change');
}

// Editing an untouched lane starts from the contacts it shows.
function own() { if (state.onsets_s === null) state.onsets_s = state.contacts_s.slice(); }

track.addEventListener('pointerdown', ev => {
  if (!state.duration_s || tap) return;
  track.focus();
  const m = ev.target.closest('.ol-marker');
  drag = {index: m ? Number(m.dataset.index) : -1, x0: ev.clientX, moved: false};
  if (m) {
    // only the class: re-rendering here would replace the marker between the two clicks of
    // a double-click, and the dblclick would then not reach it
    selected = drag.index;
    track.querySelectorAll('.ol-marker').forEach(
      el => el.classList.toggle('ol-selected', el === m));
  }
  track.setPointerCapture(ev.pointerId);
});
track.addEventListener('pointermove', ev => {
  if (!drag || drag.index < 0) return;
  if (!drag.moved && Math.abs(ev.clientX - drag.x0) < CLICK_SLOP_PX) return;
  if (!drag.moved) { own(); drag.moved = true; }
  state.onsets_s[drag.index] = timeAt(ev.clientX);
  render();
});
function release(ev) {
  if (!drag) return;
  const d = drag; drag = null;
  try { track.releasePointerCapture(ev.pointerId); } catch (e) { /* already released */ }
  if (d.index >= 0) {
    if (d.moved) {
      const t = state.onsets_s[d.index];
      state.onsets_s.sort((a, b) => a - b);
      selected = state.onsets_s.indexOf(t);
      render(); commit();
    }
    return;
  }
  if (Math.abs(ev.clientX - d.x0) >= CLICK_SLOP_PX) return;
  own();
  const t = timeAt(ev.clientX);
  state.onsets_s.push(t); state.onsets_s.sort((a, b) => a - b);
  selected = state.onsets_s.indexOf(t);
  render(); commit();
}
track.addEventListener('pointerup', release);
track.addEventListener('pointercancel', ev => { drag = null; });
function remove(i) {
  if (i < 0 || i >= shown().length) return;
  own(); state.onsets_s.splice(i, 1); selected = -1; render(); commit();
}
track.addEventListener('dblclick', ev => {
  const m = ev.target.closest('.ol-marker');
  if (m) { remove(Number(m.dataset.index)); return; }
  // the markers may have been redrawn under the pointer: take the nearest within its width
  const b = track.getBoundingClientRect(), list = shown();
  let best = -1, bestPx = 7;
  list.forEach((t, i) => {
    const px = Math.abs(b.left + b.width * xOf(t) / 100 - ev.clientX);
    if (px < bestPx) { best = i; bestPx = px; }
  });
  if (best >= 0) remove(best);
});
track.addEventListener('keydown', ev => {
  if ((ev.key === 'Delete' || ev.key === 'Backspace') && selected >= 0 && !tap) {
    ev.preventDefault(); remove(selected);
  }
});
element.querySelector('.ol-clear').addEventListener('click', () => {
  if (tap) stopTap(false);
  state.onsets_s = []; selected = -1; render(); commit();
});
element.querySelector('.ol-video').addEventListener('click', () => {
  if (tap) stopTap(false);
  state.onsets_s = null; selected = -1; render(); commit();
});

// ---------------------------------------------------------------- tap along
// The media time of a key press: the video's clock is only sampled per frame (and currentTime
// can lag the picture), so keep the last frame's (presentation time, media time) pair from
// requestVideoFrameCallback and extrapolate it to the key event's timestamp.
let outputLatencyS = null;
function latency() {
  if (outputLatencyS !== null) return outputLatencyS;
  try {
    const ac = new (window.AudioContext || window.webkitAudioContext)();
    outputLatencyS = Number(ac.outputLatency) || Number(ac.baseLatency) || 0;
    ac.close();
  } catch (e) { outputLatencyS = 0; }
  return outputLatencyS;
}
function videoEl() { return document.querySelector('#video-input video'); }

function mediaTimeAt(video, eventMs) {
  const rate = video.playbackRate || 1;
  const m = tap.map;
  if (m && !video.paused && eventMs >= m.perfMs - 100)
    return m.mediaS + (eventMs - m.perfMs) / 1000 * rate;
  return video.currentTime - (performance.now() - eventMs) / 1000 * rate;
}

function onFrame(video) {
  return (now, meta) => {
    if (!tap || tap.video !== video) return;
    tap.map = {perfMs: meta.presentationTime || now, mediaS: meta.mediaTime};
    video.requestVideoFrameCallback(onFrame(video));
  };
}

function onTapKey(ev) {
  if (!tap) return;
  if (ev.key === 'Escape') { ev.preventDefault(); stopTap(true); return; }
  if (ev.repeat || !(ev.key === ' ' || ev.key === 't' || ev.key === 'T')) return;
  ev.preventDefault(); ev.stopPropagation();
  const v = tap.video;
  // what the user heard was played `latency` ago: a tap on a heard hit is that much late
  const t = mediaTimeAt(v, ev.timeStamp) - latency() * (v.playbackRate || 1) - state.start_s;
  if (t >= 0 && t < state.duration_s) tap.taps.push(t);
  tap.last = t; render();
}

function onTime() {
  if (!tap) return;
  const v = tap.video;
  tap.last = v.currentTime - state.start_s; render();
  if (v.currentTime >= state.start_s + state.duration_s - 0.01 || v.ended) stopTap(true);
}

async function startTap() {
  const video = videoEl();
  if (!video || !state.duration_s) { status.textContent = 'load a video to tap along'; return; }
  latency();
  tap = {video, taps: [], map: null, last: 0, rate: Number(speedSel.value) || 1};
  tapBtn.classList.add('ol-on'); tapBtn.textContent = 'Stop tapping';
  track.classList.add('ol-tapping');
  document.addEventListener('keydown', onTapKey, true);
  video.addEventListener('timeupdate', onTime);
  video.addEventListener('ended', onTime);
  video.pause();
  video.currentTime = state.start_s;
  await new Promise(res => { video.addEventListener('seeked', res, {once: true}); setTimeout(res, 2000); });
  if (!tap) return;
  video.playbackRate = tap.rate;
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame(video));
  tap.poll = setInterval(onTime, 20);   // timeupdate comes only every ~250 ms
  root.dataset.tapping = '1';
  try { await video.play(); } catch (e) { status.textContent = 'the video would not play: ' + e; }
  render();
}

function stopTap(keep) {
  const t = tap;
  if (!t) return;
  tap = null;
  clearInterval(t.poll);
  document.removeEventListener('keydown', onTapKey, true);
  t.video.removeEventListener('timeupdate', onTime);
  t.video.removeEventListener('ended', onTime);
  t.video.pause(); t.video.playbackRate = 1;
  tapBtn.classList.remove('ol-on'); tapBtn.textContent = 'Tap along';
  track.classList.remove('ol-tapping');
  root.dataset.tapping = '0';
  if (keep && !t.taps.length) {
    // a run with no taps (stopped at once, or the video would not play) is not "no hits"
    render(); status.textContent = 'no taps recorded: the hits are unchanged';
  } else if (keep) {
    state.onsets_s = t.taps.slice().sort((a, b) => a - b);
    selected = -1; render();
    commit({tapped: true, snap: !!snapBox.checked});
  } else render();
}
tapBtn.addEventListener('click', () => { if (tap) stopTap(true); else startTap(); });

function reload() {
  if (tap) stopTap(false);
  state = parse(props.value);
  selected = -1;
  root.dataset.lane = typeof props.value === 'string' ? props.value : JSON.stringify(props.value || {});
  render();
}
watch('value', reload);
reload();
