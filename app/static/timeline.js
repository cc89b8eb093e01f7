// Timeline: the body of a gr.HTML `js_on_load` (gets `element`, `props`, `trigger`, `watch`),
// run after the vendored wavesurfer.js + regions plugin (global WaveSurfer).
// The value is JSON (see app/timeline_widget.py). The stems are played here with Web Audio,
// one AudioBufferSourceNode per stem -> fade gain -> gain (mute/solo/dB) -> StereoPanner ->
// master -> destination, started against the page's video player (#video-input video): its
// play/pause/seek events start, stop and restart the audio, and a drift check re-syncs it.
// Mute, solo, gain and pan act on these nodes at once; the project is told afterwards
// (COMMIT_IDLE_MS later, or at pause). Moves, trims, fades, nudges and deletes are sent at once.
// Every edit sent stays in `sent` until the server's value acknowledges its nonce: until then
// each value from the server gets it laid on top again, and it is sent again (see
// app/timeline_widget.py: gradio may read an edit's value only after an earlier reply wrote it).
const DRIFT_S = 0.02;           // re-sync the audio when it is this far from the picture
const RESYNC_GAP_MS = 250;      // ... but not more often than this
const SLOP_PX = 4;              // a press that moves less than this is a click, not a drag
const COMMIT_IDLE_MS = 1500;    // mixer changes go to the project this long after the last one
const NUDGE_IDLE_MS = 350;      // a run of arrow presses is one edit
const SHORT_TERM_S = 3;         // short-term loudness window (EBU R128)
const METER_FFT = 2048;         // samples an analyser hands over per frame
const PEAK_HOLD_S = 1.5;
const MAX_STALLS = 3;           // replies in a row that acknowledge none of the edits resent
const WaveSurfer = globalThis.WaveSurfer;
const root = element.querySelector('.tw-root');
const playBtn = element.querySelector('.tw-play');
const loopBtn = element.querySelector('.tw-loop');
const timeEl = element.querySelector('.tw-time');
const statusEl = element.querySelector('.tw-status');
const masterMeter = element.querySelector('.tw-meter-master');
const masterText = element.querySelector('.tw-mtext');
const ruler = element.querySelector('.tw-ruler');
const videoLane = element.querySelector('.tw-video');
const selEl = element.querySelector('.tw-sel');
const stemsEl = element.querySelector('.tw-stems');
const playhead = element.querySelector('.tw-playhead');

// gradio lays its progress overlay over the whole timeline while an event that updates it runs
// (a selection typed elsewhere does): clicks would land on the overlay, and the transport must
// answer at once, so the overlay lets them through.
if (!document.getElementById('tw-overlay-style')) {
  const st = document.createElement('style');
  st.id = 'tw-overlay-style';
  st.textContent = '#timeline > [data-testid="status-tracker"] { pointer-events: none; }';
  document.head.appendChild(st);
}

// this page load's id: the server counts each page's nonces (a reload starts again at 1)
const pageId = Math.random().toString(36).slice(2) + Date.now().toString(36);
let state = parse(props.value);
let loop = false;
let position = 0;               // the playhead while stopped (s)
let ac = null, master = null, masterTap = null;
let decoder = null;             // an OfflineAudioContext: decoding needs no running audio thread
const decoded = new Map();      // url -> AudioBuffer
const loading = new Map();      // url -> Promise
const voices = new Map();       // stem id -> {fade, gain, pan, an, src}
const lanes = new Map();        // stem id -> {ws, row, clip, ...}
let anchor = null;              // {ctxT, mediaT, lead}: the audio is running
let video = null;
let lastResync = 0;
let pending = null;             // {stem_id, changes, timer}: a mixer edit not yet sent
let nonce = 0;
let sent = [];                  // ops sent and not yet acknowledged: {nonce, edit, select}
let stalls = 0;
let raf = 0;
const meters = new Map();       // meter key -> {hist: [{t, ms}], peak, peakT}

function parse(text) {
  let v = {};
  try { v = typeof text === 'string' && text.trim() ? JSON.parse(text) : (text || {}); }
  catch (e) { v = {}; }
  return {
    duration_s: Number(v.duration_s) > 0 ? Number(v.duration_s) : 1,
    video_duration_s: Number(v.video_duration_s) > 0 ? Number(v.video_duration_s) : null,
    fps: Number(v.fps) > 0 ? Number(v.fps) : 25,
    selection: Array.isArray(v.selection) ? v.selection.map(Number) : null,
    ceiling_dbtp: Number.isFinite(Number(v.ceiling_dbtp)) ? Number(v.ceiling_dbtp) : -1,
    selected: typeof v.selected === 'string' ? v.selected : null,
    stems: Array.isArray(v.stems) ? v.stems.map(s => Object.assign({}, s)) : [],
    // the last of this page's ops the server handled (0: none, or another page's)
    ack: v.ack && v.ack.page === pageId && Number.isInteger(v.ack.nonce) ? v.ack.nonce : 0,
  };
}

const r4 = t => Math.round(t * 10000) / 10000;
const dbOf = x => x > 0 ? 20 * Math.log10(x) : -Infinity;
const pct = t => 100 * t / state.duration_s;
const keptEnd = s => (s.trim_end_s === null || s.trim_end_s === undefined)
  ? s.source_duration_s : s.trim_end_s;
const keptLen = s => keptEnd(s) - s.trim_start_s;
const stemById = id => state.stems.find(s => s.id === id);
function audible(s) {
  const anySolo = state.stems.some(x => x.solo);
  return !s.mute && (!anySolo || s.solo);
}

// ------------------------------------------------------------------ audio graph
// The ITU-R BS.1770 K-weighting pre-filter for sample rate `sr`: a high shelf (+4 dB above
// ~1.7 kHz, the head) then a high-pass (~38 Hz, RLB). The standard gives the coefficients at
// 48 kHz only; these are its analogue prototypes through the bilinear transform (as
// libebur128 does), which give exactly the published ones at 48 kHz and the same curve at any
// other rate the AudioContext runs at.
function kWeighting(sr) {
  let f0 = 1681.974450955533, q = 0.7071752369554196, k = Math.tan(Math.PI * f0 / sr);
  const vh = Math.pow(10, 3.999843853973347 / 20), vb = Math.pow(vh, 0.4996667741545416);
  let a0 = 1 + k / q + k * k;
  const shelf = {b: [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0],
                 a: [1, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]};
  f0 = 38.13547087602444; q = 0.5003270373238773; k = Math.tan(Math.PI * f0 / sr);
  a0 = 1 + k / q + k * k;
  const highPass = {b: [1, -2, 1], a: [1, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]};
  return [shelf, highPass];
}

// A meter's taps on a stereo signal: each channel as it is (sample peak) and K-weighted
// (loudness); an analyser alone would mix the two channels down and hide a panned stem's level.
function meterTap(c, input) {
  const analysers = src => {
    const split = c.createChannelSplitter(2), l = c.createAnalyser(), r = c.createAnalyser();
    l.fftSize = r.fftSize = METER_FFT;
    src.connect(split); split.connect(l, 0); split.connect(r, 1);
    return [l, r];
  };
  let weighted = input;
  for (const f of kWeighting(c.sampleRate)) {
    const node = c.createIIRFilter(f.b, f.a);
    weighted.connect(node); weighted = node;
  }
  return {peak: analysers(input), k: analysers(weighted)};
}

function audio() {
  if (ac) return ac;
  ac = new (window.AudioContext || window.webkitAudioContext)({latencyHint: 'interactive'});
  master = ac.createGain();
  master.connect(ac.destination);
  masterTap = meterTap(ac, master);
  return ac;
}

function voice(s) {
  let v = voices.get(s.id);
  if (!v) {
    const c = audio();
    v = {fade: c.createGain(), gain: c.createGain(), pan: c.createStereoPanner(), src: null};
    v.fade.connect(v.gain); v.gain.connect(v.pan); v.pan.connect(master);
    v.tap = meterTap(c, v.pan);
    voices.set(s.id, v);
  }
  return v;
}

function applyLevels() {
  if (!ac) return;
  const now = ac.currentTime;
  for (const s of state.stems) {
    const v = voice(s);
    const g = audible(s) ? Math.pow(10, s.gain_db / 20) : 0;
    v.gain.gain.cancelScheduledValues(now);
    v.gain.gain.setTargetAtTime(g, now, 0.004);
    v.pan.pan.setTargetAtTime(Math.max(-1, Math.min(1, s.pan)), now, 0.004);
  }
  for (const [id, v] of voices) if (!stemById(id)) { stopVoice(v); v.pan.disconnect(); voices.delete(id); }
}

function load(url) {
  if (decoded.has(url)) return Promise.resolve(decoded.get(url));
  if (!loading.has(url)) {
    const p = fetch(url).then(r => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.arrayBuffer();
    }).then(b => {
      decoder = decoder || new OfflineAudioContext(1, 1, 48000);
      return decoder.decodeAudioData(b);
    }).then(buf => {
      decoded.set(url, buf); loading.delete(url); return buf;
    }).catch(err => { loading.delete(url); status(`a stem's audio did not load (${err.message})`); throw err; });
    loading.set(url, p);
  }
  return loading.get(url);
}

// The gain of a stem `u` seconds into its kept part: the raised-cosine fades of render_stem.
function envelope(s, u) {
  const len = keptLen(s);
  let g = 1;
  if (s.fade_in_s > 0 && u < s.fade_in_s) g *= 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, u) / s.fade_in_s);
  if (s.fade_out_s > 0 && u > len - s.fade_out_s)
    g *= 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, len - u) / s.fade_out_s);
  return g;
}

function stopVoice(v) {
  if (v.src) { try { v.src.stop(); } catch (e) { /* never started */ } v.src.disconnect(); v.src = null; }
}

// Start every stem so that media time `mediaT` is heard now (the output latency is taken off).
function startVoices(mediaT) {
  const c = audio();
  if (c.state !== 'running') c.resume().catch(() => {});
  const lead = (Number(c.outputLatency) || 0) + (Number(c.baseLatency) || 0);
  const now = c.currentTime;
  anchor = {ctxT: now, mediaT: mediaT + lead, lead};
  lastResync = performance.now();
  for (const s of state.stems) {
    const v = voice(s);
    stopVoice(v);
    const buf = decoded.get(s.url);
    if (!buf) continue;
    const len = keptLen(s), t = anchor.mediaT;
    if (len <= 0 || t >= s.offset_s + len) continue;
    const wait = Math.max(0, s.offset_s - t), into = Math.max(0, t - s.offset_s);
    const src = c.createBufferSource();
    src.buffer = buf; src.connect(v.fade);
    const p = v.fade.gain;
    p.cancelScheduledValues(0);
    if (s.fade_in_s > 0 || s.fade_out_s > 0) {
      const span = len - into, n = Math.max(2, Math.min(20000, Math.ceil(span * 200)));
      const curve = new Float32Array(n);
      for (let i = 0; i < n; i++) curve[i] = envelope(s, into + span * i / (n - 1));
      p.setValueAtTime(curve[0], now);
      if (span > 0.002) p.setValueCurveAtTime(curve, now + wait + 1e-4, span - 1e-4);
    } else p.setValueAtTime(1, now);
    src.start(now + wait, s.trim_start_s + into, len - into);
    v.src = src;
  }
  applyLevels();
}

function stopVoices() {
  for (const v of voices.values()) stopVoice(v);
  anchor = null;
}

// Stopped: no audio thread runs for a page that is not playing (a running context costs CPU).
function sleepAudio() {
  if (ac && ac.state === 'running') ac.suspend().catch(() => {});
}

// The media time being heard now, or null when the audio is stopped.
function audioTime() {
  if (!anchor || !ac) return null;
  return anchor.mediaT + (ac.currentTime - anchor.ctxT) - anchor.lead;
}

// ------------------------------------------------------------------ transport
function findVideo() { return document.querySelector('#video-input video'); }

const onVideo = {
  playing: () => restart(),
  seeked: () => { if (video && !video.paused) restart(); else { position = video.currentTime; draw(position); } },
  pause: () => stopped(),
  waiting: () => stopVoices(),
  ended: () => stopped(),
  ratechange: () => restart(),
};

function attach() {
  const v = findVideo();
  if (v === video) return;
  if (video) for (const [k, f] of Object.entries(onVideo)) video.removeEventListener(k, f);
  video = v;
  if (video) for (const [k, f] of Object.entries(onVideo)) video.addEventListener(k, f);
}

function isPlaying() { return video ? !video.paused && !video.ended : anchor !== null; }

function restart() {
  if (!video || video.paused) return;
  // the onsets lane's tap-along plays the video at half speed: the stems are not heard then
  if (video.playbackRate !== 1) { stopVoices(); return; }
  startVoices(video.currentTime);
  loopTick();
}

function stopped() {
  stopVoices();
  sleepAudio();
  if (video) position = video.currentTime;
  flush();
  draw(position); setPlayLabel();
}

function now() {
  if (video) return video.currentTime;
  const t = audioTime();
  return t === null ? position : t;
}

async function play() {
  attach();
  const c = audio();
  try { await c.resume(); } catch (e) { /* resumed by the next gesture */ }
  const sel = state.selection;
  if (video) {
    if (loop && sel && (video.currentTime < sel[0] || video.currentTime >= sel[1] - 0.01))
      video.currentTime = sel[0];
    try { await video.play(); } catch (e) { status('the video would not play: ' + e.message); }
  } else {
    if (loop && sel && (position < sel[0] || position >= sel[1])) position = sel[0];
    if (position >= state.duration_s) position = 0;
    startVoices(position);
    loopTick();
  }
  setPlayLabel();
}

function pause() {
  if (video) video.pause();
  else { position = now(); stopped(); }
  setPlayLabel();
}

function toggle() { if (isPlaying()) pause(); else play(); }

function seek(t) {
  t = Math.max(0, Math.min(state.duration_s, t));
  attach();
  if (video) {
    video.currentTime = Math.min(t, Math.max(0, (video.duration || t) - 0.001));
    position = video.currentTime;
  } else {
    position = t;
    if (anchor) startVoices(t);
  }
  draw(t);
}

function setPlayLabel() {
  const on = isPlaying();
  playBtn.textContent = on ? 'Pause' : 'Play';
  playBtn.classList.toggle('tw-on', on);
  root.dataset.playing = on ? '1' : '0';
}

function loopTick() {
  cancelAnimationFrame(raf);
  raf = requestAnimationFrame(tick);
}

function tick() {
  attach();
  const playing = isPlaying();
  let t = now();
  if (playing && video && anchor && performance.now() - lastResync > RESYNC_GAP_MS) {
    const drift = audioTime() - video.currentTime;
    if (Math.abs(drift) > DRIFT_S) startVoices(video.currentTime);
  }
  const sel = state.selection;
  if (playing && loop && sel && t >= sel[1] - 0.005) { seek(sel[0]); t = sel[0]; }
  if (playing && !video && t >= state.duration_s) { position = 0; stopped(); t = 0; }
  draw(t);
  drawMeters();
  setPlayLabel();
  if (playing || anchor) raf = requestAnimationFrame(tick);
  else drawMeters(true);
}

function draw(t) {
  playhead.style.left = `calc(var(--tw-head) + (100% - var(--tw-head)) * ${Math.max(0, Math.min(1, t / state.duration_s))})`;
  timeEl.textContent = `${t.toFixed(3)} s`;
}

// ------------------------------------------------------------------ meters
const scratch = new Float32Array(METER_FFT);
function peakOf(an) {
  an.getFloatTimeDomainData(scratch);
  let peak = 0;
  for (let i = 0; i < scratch.length; i++) peak = Math.max(peak, Math.abs(scratch[i]));
  return peak;
}
function meanSquare(an) {
  an.getFloatTimeDomainData(scratch);
  let ss = 0;
  for (let i = 0; i < scratch.length; i++) ss += scratch[i] * scratch[i];
  return ss / scratch.length;
}
// the larger channel's sample peak, and the K-weighted channels' powers summed (BS.1770: left
// and right weigh 1)
function measure(tap) {
  return {peak: Math.max(peakOf(tap.peak[0]), peakOf(tap.peak[1])),
          ms: meanSquare(tap.k[0]) + meanSquare(tap.k[1])};
}

// peak (dBFS, held PEAK_HOLD_S) and short-term loudness (BS.1770: -0.691 + 10 log10 of the
// K-weighted mean square over the last SHORT_TERM_S, from the analysers' windows read each
// frame; since playback started when that is shorter) of one meter
function meterUpdate(key, peak, ms) {
  const t = performance.now() / 1000;
  let m = meters.get(key);
  if (!m) { m = {hist: [], peak: 0, peakT: 0}; meters.set(key, m); }
  m.hist.push({t, ms});
  while (m.hist.length && m.hist[0].t < t - SHORT_TERM_S) m.hist.shift();
  if (peak >= m.peak || t - m.peakT > PEAK_HOLD_S) { m.peak = peak; m.peakT = t; }
  const mean = m.hist.reduce((a, h) => a + h.ms, 0) / m.hist.length;
  m.last = {peakDb: dbOf(m.peak), nowDb: dbOf(peak), lufs: mean > 0 ? -0.691 + 10 * Math.log10(mean) : -Infinity};
  return m.last;
}

function showMeter(el, text, r) {
  const over = r.peakDb > state.ceiling_dbtp;
  const w = Math.max(0, Math.min(100, (r.nowDb + 60) / 60 * 100));
  el.querySelector('i').style.width = (Number.isFinite(w) ? w : 0) + '%';
  el.classList.toggle('tw-over', over);
  if (text) {
    text.classList.toggle('tw-over', over);
    const f = x => Number.isFinite(x) ? x.toFixed(1) : '-inf';
    text.textContent = `peak ${f(r.peakDb)} dBFS, ${f(r.lufs)} LUFS-S` + (over ? ` (over ${state.ceiling_dbtp} dB)` : '');
  }
  el.dataset.peakDb = String(r.nowDb);
  el.dataset.lufsS = String(r.lufs);
}

function drawMeters(reset) {
  if (!ac) return;
  if (reset) meters.clear();
  const x = measure(masterTap);
  const m = meterUpdate('master', x.peak, x.ms);
  showMeter(masterMeter, masterText, m);
  root.dataset.masterPeakDb = String(m.nowDb);
  for (const s of state.stems) {
    const v = voices.get(s.id), lane = lanes.get(s.id);
    if (!v || !lane) continue;
    const x = measure(v.tap);
    showMeter(lane.meter, null, meterUpdate(s.id, x.peak, x.ms));
  }
}

// ------------------------------------------------------------------ lanes
function renderRuler() {
  ruler.replaceChildren();
  const d = state.duration_s;
  // as many labels as the ruler's width holds ("12.5 s" is about 36 px wide): a phone gets fewer
  const fits = Math.max(2, Math.min(12, Math.floor((ruler.clientWidth || 480) / 40)));
  const step = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300].find(s => d / s <= fits) || 600;
  for (let t = 0; t <= d + 1e-9; t += step) {
    const sp = document.createElement('span');
    sp.style.left = pct(t) + '%'; sp.textContent = `${Math.round(t * 10) / 10} s`;
    ruler.appendChild(sp);
  }
  videoLane.style.display = state.video_duration_s ? '' : 'none';
  videoLane.style.width = '';
  const sel = state.selection;
  selEl.style.display = sel ? '' : 'none';
  if (sel) { selEl.style.left = pct(sel[0]) + '%'; selEl.style.width = (pct(sel[1]) - pct(sel[0])) + '%'; }
}

function peaksOf(buf, n) {
  const ch = [];
  for (let c = 0; c < buf.numberOfChannels; c++) ch.push(buf.getChannelData(c));
  const len = ch[0].length, out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = Math.floor(i * len / n), b = Math.max(a + 1, Math.floor((i + 1) * len / n));
    let m = 0;
    for (const d of ch) for (let j = a; j < b; j++) { const x = Math.abs(d[j]); if (x > m) m = x; }
    out[i] = m;
  }
  return out;
}

function button(cls, text, title) {
  const b = document.createElement('button');
  b.type = 'button'; b.className = cls; b.textContent = text; b.title = title;
  return b;
}

function number(cls, value, step, title) {
  const n = document.createElement('input');
  n.type = 'number'; n.className = 'tw-num ' + cls; n.step = String(step); n.value = String(value);
  n.title = title; n.setAttribute('aria-label', title);
  return n;
}

function destroyLanes() {
  for (const l of lanes.values()) { try { l.ws && l.ws.destroy(); } catch (e) { /* gone */ } }
  lanes.clear();
}

function renderLanes() {
  destroyLanes();
  stemsEl.replaceChildren();
  root.classList.toggle('tw-no-stems', !state.stems.length);
  state.stems.forEach((s, i) => {
    const row = document.createElement('div');
    row.className = 'tw-row tw-stem-row' + (s.id === state.selected ? ' tw-selected' : '');
    row.dataset.id = s.id;
    const head = document.createElement('div');
    head.className = 'tw-head';
    const name = document.createElement('span');
    name.className = 'tw-name'; name.textContent = `${s.index || i + 1}: ${s.name}`; name.title = s.name;
    const mute = button('tw-ms tw-mute', 'M', 'mute (heard at once)');
    const solo = button('tw-ms tw-solo', 'S', 'solo (heard at once)');
    const gain = number('tw-gain', s.gain_db, 0.5, 'gain (dB)');
    const pan = number('tw-pan', s.pan, 0.1, 'pan (-1 left … 1 right)');
    const meter = document.createElement('span');
    meter.className = 'tw-meter'; meter.appendChild(document.createElement('i'));
    head.append(name, mute, solo, gain, pan, meter);
    mute.addEventListener('click', () => mixer(s.id, {mute: !stemById(s.id).mute}));
    solo.addEventListener('click', () => mixer(s.id, {solo: !stemById(s.id).solo}));
    gain.addEventListener('input', () => { const x = Number(gain.value); if (gain.value !== '' && Number.isFinite(x)) mixer(s.id, {gain_db: x}); });
    pan.addEventListener('input', () => { const x = Number(pan.value); if (pan.value !== '' && Number.isFinite(x)) mixer(s.id, {pan: Math.max(-1, Math.min(1, x))}); });
    for (const n of [gain, pan]) n.addEventListener('keydown', ev => ev.stopPropagation());

    const lane = document.createElement('div');
    lane.className = 'tl-lane';
    lane.dataset.stem = String(i + 1);
    lane.dataset.id = s.id;
    const clip = document.createElement('div');
    clip.className = 'tw-clip';
    const wave = document.createElement('div');
    wave.className = 'tw-wave';
    const cutL = document.createElement('div'), cutR = document.createElement('div');
    cutL.className = cutR.className = 'tw-cut';
    const fades = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    fades.setAttribute('class', 'tw-fades'); fades.setAttribute('viewBox', '0 0 1000 100');
    fades.setAttribute('preserveAspectRatio', 'none');
    const ramp = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    ramp.setAttribute('fill', 'none'); ramp.setAttribute('stroke', 'white');
    ramp.setAttribute('stroke-width', '2'); ramp.setAttribute('vector-effect', 'non-scaling-stroke');
    fades.appendChild(ramp);
    const fin = document.createElement('div'), fout = document.createElement('div');
    fin.className = 'tw-fade tw-fade-in'; fin.title = 'fade in: drag';
    fout.className = 'tw-fade tw-fade-out'; fout.title = 'fade out: drag';
    clip.append(wave, cutL, cutR, fades, fin, fout);
    lane.appendChild(clip);
    row.append(head, lane);
    stemsEl.appendChild(row);
    const entry = {row, lane, clip, wave, cutL, cutR, ramp, fin, fout, mute, solo, gain, pan, meter,
                   ws: null, region: null};
    lanes.set(s.id, entry);
    placeLane(s);
    wireClip(s.id, entry);
    wireFade(s.id, entry, fin, 'in');
    wireFade(s.id, entry, fout, 'out');
    const buf = decoded.get(s.url);
    if (buf) makeWave(s, entry, buf);
    else load(s.url).then(b => { if (lanes.get(s.id) === entry) makeWave(stemById(s.id) || s, entry, b); }).catch(() => {});
  });
}

// where a lane's clip (the stem's whole audio) sits, and its trims, fades and mixer state
function placeLane(s) {
  const l = lanes.get(s.id);
  if (!l) return;
  const src = s.source_duration_s, start = s.offset_s - s.trim_start_s, end = s.offset_s + keptLen(s);
  l.lane.dataset.start = s.offset_s.toFixed(3);
  l.lane.dataset.end = end.toFixed(3);
  l.lane.dataset.offset = String(s.offset_s);
  l.clip.style.left = pct(start) + '%';
  l.clip.style.width = pct(src) + '%';
  const a = s.trim_start_s / src, b = keptEnd(s) / src;
  l.cutL.style.left = '0'; l.cutL.style.width = (100 * a) + '%';
  l.cutR.style.left = (100 * b) + '%'; l.cutR.style.width = (100 * (1 - b)) + '%';
  const fi = (s.trim_start_s + s.fade_in_s) / src, fo = (keptEnd(s) - s.fade_out_s) / src;
  l.fin.style.left = (100 * fi) + '%';
  l.fout.style.left = (100 * fo) + '%';
  l.ramp.setAttribute('points', [[a, 100], [fi, 2], [fo, 2], [b, 100]]
    .map(([u, y]) => `${(1000 * u).toFixed(1)},${y}`).join(' '));
  l.row.classList.toggle('tw-selected', s.id === state.selected);
  l.row.classList.toggle('tw-silent', !audible(s));
  l.mute.classList.toggle('tw-on', !!s.mute);
  l.solo.classList.toggle('tw-on', !!s.solo);
  if (document.activeElement !== l.gain) l.gain.value = String(s.gain_db);
  if (document.activeElement !== l.pan) l.pan.value = String(s.pan);
  if (l.region && (Math.abs(l.region.start - s.trim_start_s) > 1e-4 || Math.abs(l.region.end - keptEnd(s)) > 1e-4))
    l.region.setOptions({start: s.trim_start_s, end: keptEnd(s)});
}

function makeWave(s, l, buf) {
  if (!WaveSurfer) { status('the waveform library did not load'); return; }
  l.ws = WaveSurfer.create({
    container: l.wave, height: 44, waveColor: s.colour, progressColor: s.colour, cursorWidth: 0,
    interact: false, normalize: true, hideScrollbar: true, fillParent: true,
    peaks: [peaksOf(buf, 2000)], duration: s.source_duration_s,
  });
  const regions = l.ws.registerPlugin(WaveSurfer.Regions.create());
  // a region added before the waveform knows its duration is clamped to 0 s (a marker)
  l.ws.once('ready', () => {
    const cur = stemById(s.id) || s;
    l.region = regions.addRegion({start: cur.trim_start_s, end: keptEnd(cur), drag: false,
                                  resize: true, color: 'rgba(255, 255, 255, 0.07)', minLength: 0.02});
    root.dataset.regions = String(Array.from(lanes.values()).filter(x => x.region).length);
  });
  regions.on('region-updated', (region, side) => {
    const cur = stemById(s.id);
    if (!cur) return;
    if (side === 'start') {
      const ts = r4(region.start);
      // the kept audio stays where it sounds: the stem now starts later by what was cut
      edit(s.id, {trim_start_s: ts, offset_s: r4(cur.offset_s + ts - cur.trim_start_s)});
    } else {
      const te = r4(region.end);
      edit(s.id, {trim_end_s: Math.abs(te - cur.source_duration_s) < 1e-3 ? null : te});
    }
  });
  root.dataset.waves = String(Array.from(lanes.values()).filter(x => x.ws).length);
}

function fromHandle(ev) {
  return ev.composedPath().some(n => n.getAttribute && /region-handle/.test(n.getAttribute('part') || ''));
}

function wireClip(id, l) {
  let drag = null;
  l.clip.addEventListener('pointerdown', ev => {
    if (ev.button !== 0 || fromHandle(ev) || ev.target.classList.contains('tw-fade')) return;
    const s = stemById(id);
    drag = {x0: ev.clientX, offset0: s.offset_s, moved: false, width: l.lane.getBoundingClientRect().width};
    l.clip.setPointerCapture(ev.pointerId);
    root.focus({preventScroll: true});
  });
  l.clip.addEventListener('pointermove', ev => {
    if (!drag) return;
    const dx = ev.clientX - drag.x0;
    if (!drag.moved && Math.abs(dx) < SLOP_PX) return;
    drag.moved = true;
    l.clip.classList.add('tw-dragging');
    const s = stemById(id);
    s.offset_s = r4(drag.offset0 + dx / Math.max(1, drag.width) * state.duration_s);
    placeLane(s);
  });
  const end = ev => {
    if (!drag) return;
    const d = drag; drag = null;
    l.clip.classList.remove('tw-dragging');
    try { l.clip.releasePointerCapture(ev.pointerId); } catch (e) { /* released */ }
    if (d.moved) edit(id, {offset_s: stemById(id).offset_s});
    else select(id);
  };
  l.clip.addEventListener('pointerup', end);
  l.clip.addEventListener('pointercancel', ev => {
    if (!drag) return;
    const s = stemById(id); s.offset_s = drag.offset0; drag = null; placeLane(s);
  });
}

function wireFade(id, l, handle, which) {
  let on = false;
  handle.addEventListener('pointerdown', ev => {
    ev.stopPropagation(); on = true; handle.setPointerCapture(ev.pointerId);
  });
  handle.addEventListener('pointermove', ev => {
    if (!on) return;
    const s = stemById(id), b = l.clip.getBoundingClientRect();
    const u = (ev.clientX - b.left) / Math.max(1, b.width) * s.source_duration_s;
    const len = keptLen(s);
    if (which === 'in') s.fade_in_s = r4(Math.max(0, Math.min(len, u - s.trim_start_s)));
    else s.fade_out_s = r4(Math.max(0, Math.min(len, keptEnd(s) - u)));
    placeLane(s);
  });
  handle.addEventListener('pointerup', ev => {
    if (!on) return;
    on = false;
    const s = stemById(id);
    edit(id, which === 'in' ? {fade_in_s: s.fade_in_s} : {fade_out_s: s.fade_out_s});
  });
}

// ------------------------------------------------------------------ edits to the server
// every op not yet acknowledged, in the value the change event hands to the server
function post() {
  let value;
  try { value = JSON.parse(typeof props.value === 'string' && props.value ? props.value : '{}'); }
  catch (e) { value = {}; }
  Object.assign(value, {stems: state.stems, selected: state.selected, edit: null, select: null,
                        page: pageId, ops: sent});
  props.value = JSON.stringify(value);
  trigger('change');
}

function send(op) {
  sent.push(Object.assign({nonce: ++nonce, edit: null, select: null}, op));
  post();
}

// an op the server has not handled yet, laid again on the state it sent
function reapply(op) {
  if (op.select !== null && stemById(op.select)) state.selected = op.select;
  const s = op.edit && stemById(op.edit.stem_id);
  // a delete is shown when the server has made it (the page never drops a lane by itself)
  if (s && op.edit.changes) Object.assign(s, op.edit.changes);
}

function flush() {
  if (!pending) return;
  const p = pending; pending = null;
  clearTimeout(p.timer);
  send({edit: {stem_id: p.stem_id, changes: p.changes}});
}

// A finished edit: the lane already shows it; the session applies it (and keeps it for undo).
function edit(id, changes) {
  const s = stemById(id);
  if (!s) return;
  if (pending && pending.stem_id === id) { changes = Object.assign(pending.changes, changes); clearTimeout(pending.timer); pending = null; }
  else flush();
  Object.assign(s, changes);
  placeLane(s);
  if (isPlaying()) restartAudio();
  send({edit: {stem_id: id, changes}});
}

// An edit heard at once (mixer) or repeated (nudges): sent once the user stops, or at pause.
function later(id, changes, idleMs) {
  const s = stemById(id);
  if (!s) return;
  if (pending && pending.stem_id !== id) flush();
  Object.assign(s, changes);
  if (!pending) pending = {stem_id: id, changes: {}};
  Object.assign(pending.changes, changes);
  clearTimeout(pending.timer);
  pending.timer = setTimeout(flush, idleMs);
}

function mixer(id, changes) {
  later(id, changes, COMMIT_IDLE_MS);
  applyLevels();
  for (const s of state.stems) placeLane(s);
}

function restartAudio() {
  if (video && !video.paused) startVoices(video.currentTime);
  else if (!video && anchor) startVoices(now());
}

function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  for (const s of state.stems) placeLane(s);
  flush();
  send({select: id});
}

function nudge(frames) {
  const s = stemById(state.selected);
  if (!s) return;
  later(s.id, {offset_s: r4(s.offset_s + frames / state.fps)}, NUDGE_IDLE_MS);
  placeLane(s);
  if (isPlaying()) restartAudio();
}

function remove() {
  const s = stemById(state.selected);
  if (!s) return;
  flush();
  send({edit: {stem_id: s.id, delete: true}});
}

function status(text) { statusEl.textContent = text; }

// ------------------------------------------------------------------ input
playBtn.addEventListener('click', () => toggle());
loopBtn.addEventListener('click', () => {
  loop = !loop;
  loopBtn.classList.toggle('tw-on', loop);
  root.dataset.loop = loop ? '1' : '0';
});
ruler.addEventListener('pointerdown', ev => {
  const b = ruler.getBoundingClientRect();
  seek((ev.clientX - b.left) / Math.max(1, b.width) * state.duration_s);
});
root.addEventListener('keydown', ev => {
  if (ev.target.closest('input, textarea, select')) return;
  if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
    if (!state.selected) return;
    ev.preventDefault();
    nudge((ev.key === 'ArrowLeft' ? -1 : 1) * (ev.shiftKey ? 10 : 1));
  } else if (ev.key === 'Delete' || ev.key === 'Backspace') {
    if (!state.selected) return;
    ev.preventDefault(); remove();
  }
});
// Space plays/pauses anywhere on the page except where it types or presses a control
// (the onsets lane's tap-along takes it first while it runs).
function onSpace(ev) {
  if (ev.key !== ' ' || ev.repeat || ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && t.closest && t.closest('input, textarea, select, button, video, audio, [contenteditable=""], [contenteditable="true"]')) return;
  if (!document.body.contains(root)) { document.removeEventListener('keydown', onSpace); return; }
  ev.preventDefault();
  toggle();
}
if (window.__foleyTimelineSpace) document.removeEventListener('keydown', window.__foleyTimelineSpace);
window.__foleyTimelineSpace = onSpace;
document.addEventListener('keydown', onSpace);

// the labels follow the ruler's width (a rotated phone, a resized window)
let rulerWidth = 0;
new ResizeObserver(() => {
  if (ruler.clientWidth !== rulerWidth) { rulerWidth = ruler.clientWidth; renderRuler(); }
}).observe(ruler);

// A read-only view for tests and tools: the audio clock and the meters.
window.foleyTransport = Object.freeze({
  audioTime: () => audioTime(),
  videoTime: () => (video ? video.currentTime : null),
  playing: () => isPlaying(),
  loaded: () => state.stems.filter(s => decoded.has(s.url)).length,
  masterPeakDb: () => (ac ? dbOf(measure(masterTap).peak) : -Infinity),
  // the short-term loudness the master / a stem's meter shows (LUFS), -inf before playback
  lufsS: key => { const m = meters.get(key || 'master'); return m && m.last ? m.last.lufs : -Infinity; },
  selection: () => (state.selection ? state.selection.slice() : null),
  // edits made here the server has not acknowledged yet (sent, or waiting for the idle time)
  unconfirmed: () => sent.length + (pending ? 1 : 0),
});

// ------------------------------------------------------------------ value from the server
function placement(s) {
  return [s.id, s.url, s.offset_s, s.trim_start_s, s.trim_end_s, s.fade_in_s, s.fade_out_s].join('|');
}

function reload() {
  const before = state;
  state = parse(props.value);
  const unseen = sent.filter(op => op.nonce > state.ack);
  // resent and still not acknowledged, time after time: the server cannot take them
  stalls = unseen.length && unseen.length === sent.length ? stalls + 1 : 0;
  if (stalls > MAX_STALLS) {
    status(`${unseen.length} edit(s) not confirmed by the server; the lanes show the project as it holds it`);
    unseen.length = 0; stalls = 0;
  }
  sent = unseen;
  for (const op of sent) reapply(op);
  if (pending) {
    const s = stemById(pending.stem_id);
    if (s) Object.assign(s, pending.changes); else pending = null;
  }
  const same = (before.stems.length === state.stems.length) && before.duration_s === state.duration_s
    && before.stems.every((s, i) => s.id === state.stems[i].id && s.url === state.stems[i].url
                           && s.name === state.stems[i].name);
  root.dataset.total = String(state.duration_s);
  renderRuler();
  if (same && lanes.size === state.stems.length) for (const s of state.stems) placeLane(s);
  else renderLanes();
  const moved = before.stems.map(placement).join(';') !== state.stems.map(placement).join(';');
  Promise.all(state.stems.map(s => load(s.url).catch(() => null))).then(() => {
    attach();
    if (isPlaying() && (moved || !anchor)) restartAudio();
    applyLevels();
    root.dataset.loaded = String(state.stems.filter(s => decoded.has(s.url)).length);
  });
  applyLevels();
  root.dataset.value = JSON.stringify({selected: state.selected, stems: state.stems.map(s => ({
    id: s.id, offset_s: s.offset_s, trim_start_s: s.trim_start_s, trim_end_s: s.trim_end_s,
    fade_in_s: s.fade_in_s, fade_out_s: s.fade_out_s, mute: s.mute, solo: s.solo}))});
  attach();
  draw(now());
}
watch('value', () => { reload(); if (sent.length) post(); });
reload();
setPlayLabel();
// The video player is replaced when a video loads: keep listening to the current one.
setInterval(attach, 1000);
