// Loudness-curve editor: the body of a gr.HTML `js_on_load` (gets `element`, `props`, `trigger`,
// `watch`). The component's value is a JSON string:
//   {"times_s": [...], "values": [...],          the drawn curve (relative 0..1), [] = no curve
//    "duration_s": D, "start_s": S,               selection length, and its start in video time
//    "background": {"fps": 10, "motion": [...], "loudness": [...]},   faint traces (0..1)
//    "events_s": [...]}                            detected contacts (selection time)
// Drawing over a time span overwrites the curve there; the server reads the value on `change`.
const COLUMNS_PER_S = 25;      // drawing resolution; the model resamples to 10 points/s
const HEIGHT_PX = 170;
const PAD = {left: 34, right: 10, top: 10, bottom: 22};

const root = element.querySelector('.lc-root');
const canvas = element.querySelector('canvas.lc-canvas');
const status = element.querySelector('.lc-status');
const ctx = canvas.getContext('2d');
let state = parse(props.value);
let cols = null;         // Float32Array of values (NaN = not drawn) or null when no curve
let drawing = false;
let lastCol = null;

function parse(text) {
  let v = {};
  try { v = typeof text === 'string' && text.trim() ? JSON.parse(text) : (text || {}); }
  catch (e) { v = {}; }
  const duration = Number(v.duration_s) > 0 ? Number(v.duration_s) : 0;
  return {
    times_s: Array.isArray(v.times_s) ? v.times_s.map(Number) : [],
    values: Array.isArray(v.values) ? v.values.map(Number) : [],
    duration_s: duration,
    start_s: Number(v.start_s) || 0,
    background: v.background || {},
    events_s: Array.isArray(v.events_s) ? v.events_s.map(Number) : [],
  };
}

function nCols() { return Math.max(2, Math.round(state.duration_s * COLUMNS_PER_S) + 1); }
function colTime(i) { return state.duration_s * i / (nCols() - 1); }

// Curve points -> columns (linear interpolation, constant at the ends).
function toColumns() {
  const t = state.times_s, v = state.values;
  if (!state.duration_s || !t.length || t.length !== v.length) { cols = null; return; }
  const order = t.map((x, i) => i).sort((a, b) => t[a] - t[b]);
  const ts = order.map(i => t[i]), vs = order.map(i => v[i]);
  cols = new Float32Array(nCols());
  for (let i = 0; i < cols.length; i++) {
    const x = colTime(i);
    let k = 0;
    while (k < ts.length - 1 && ts[k + 1] < x) k++;
    if (x <= ts[0]) cols[i] = vs[0];
    else if (x >= ts[ts.length - 1]) cols[i] = vs[vs.length - 1];
    else {
      const a = ts[k], b = ts[k + 1];
      const w = b > a ? (x - a) / (b - a) : 0;
      cols[i] = vs[k] * (1 - w) + vs[k + 1] * w;
    }
  }
}

function plotRect() {
  const w = canvas.clientWidth, h = HEIGHT_PX;
  return {x0: PAD.left, y0: PAD.top, w: Math.max(10, w - PAD.left - PAD.right),
          h: h - PAD.top - PAD.bottom};
}
function xOf(t, r) { return r.x0 + (state.duration_s ? t / state.duration_s : 0) * r.w; }
function yOf(v, r) { return r.y0 + (1 - v) * r.h; }

// At most 12 time labels, and fewer on a narrow canvas (a phone): one per MIN_LABEL_PX at most,
// so the labels never overlap.
const MIN_LABEL_PX = 48;
function gridStep(d, widthPx) {
  const most = Math.max(2, Math.min(12, Math.floor(widthPx / MIN_LABEL_PX)));
  for (const s of [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300]) if (d / s <= most) return s;
  return 600;
}

function trace(values, fps, colour, r) {
  if (!Array.isArray(values) || !values.length || !fps) return;
  ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath();
  values.forEach((v, i) => {
    const x = xOf((i + 0.5) / fps, r), y = yOf(Math.max(0, Math.min(1, Number(v) || 0)), r);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function render() {
  const dpr = window.devicePixelRatio || 1;
  const cssW = Math.max(100, root.clientWidth);
  canvas.style.width = cssW + 'px'; canvas.style.height = HEIGHT_PX + 'px';
  canvas.width = Math.round(cssW * dpr); canvas.height = Math.round(HEIGHT_PX * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, HEIGHT_PX);
  const r = plotRect();
  const dark = document.body.classList.contains('dark');
  ctx.fillStyle = dark ? '#1f2430' : '#fbfbfd'; ctx.fillRect(r.x0, r.y0, r.w, r.h);
  ctx.font = '11px system-ui, sans-serif'; ctx.fillStyle = dark ? '#aab' : '#556';
  if (!state.duration_s) {
    ctx.fillText('Load a video (or set a duration) to draw a loudness curve.', r.x0 + 8, r.y0 + r.h / 2);
    status.textContent = 'no selection';
    return;
  }
  // time grid in seconds of the video
  const step = gridStep(state.duration_s, r.w);
  ctx.strokeStyle = dark ? '#3a4150' : '#e3e5ea'; ctx.lineWidth = 1;
  const first = Math.ceil(state.start_s / step - 1e-9) * step;
  for (let T = first; T <= state.start_s + state.duration_s + 1e-9; T += step) {
    const x = xOf(T - state.start_s, r);
    ctx.beginPath(); ctx.moveTo(x, r.y0); ctx.lineTo(x, r.y0 + r.h); ctx.stroke();
    const label = (Math.round(T * 10) / 10).toFixed(step < 1 ? 1 : 0) + ' s';
    ctx.fillText(label, Math.min(x - 8, r.x0 + r.w - 28), r.y0 + r.h + 15);
  }
  for (const v of [0, 0.5, 1]) {
    const y = yOf(v, r);
    ctx.beginPath(); ctx.moveTo(r.x0, y); ctx.lineTo(r.x0 + r.w, y); ctx.stroke();
    ctx.fillText(v.toFixed(1), 4, y + 4);
  }
  // faint background: the video's motion and its own soundtrack loudness
  const bg = state.background || {};
  trace(bg.motion, bg.fps, 'rgba(70, 140, 220, 0.35)', r);
  trace(bg.loudness, bg.fps, 'rgba(120, 120, 120, 0.45)', r);
  ctx.setLineDash([3, 3]); ctx.strokeStyle = 'rgba(220, 80, 60, 0.6)';
  for (const e of state.events_s) {
    const x = xOf(e, r);
    ctx.beginPath(); ctx.moveTo(x, r.y0); ctx.lineTo(x, r.y0 + r.h); ctx.stroke();
  }
  ctx.setLineDash([]);
  // the drawn curve
  if (cols) {
    ctx.beginPath();
    let started = false;
    for (let i = 0; i < cols.length; i++) {
      const x = xOf(colTime(i), r), y = yOf(cols[i], r);
      if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
    }
    ctx.strokeStyle = '#f97316'; ctx.lineWidth = 2.5; ctx.stroke();
    ctx.lineTo(xOf(state.duration_s, r), r.y0 + r.h); ctx.lineTo(r.x0, r.y0 + r.h); ctx.closePath();
    ctx.fillStyle = 'rgba(249, 115, 22, 0.12)'; ctx.fill();
    status.textContent = `curve: ${cols.length} points over ${state.duration_s.toFixed(2)} s`;
  } else {
    ctx.fillText('Draw here: drag left to right (your highest point = the stem\'s loudest moment).',
                 r.x0 + 8, r.y0 + 14);
    status.textContent = 'no curve (the model chooses the loudness)';
  }
  root.dataset.points = cols ? String(cols.length) : '0';
}

function eventToColValue(ev) {
  const rect = canvas.getBoundingClientRect(), r = plotRect();
  const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
  const u = Math.max(0, Math.min(1, (x - r.x0) / r.w));
  const v = Math.max(0, Math.min(1, 1 - (y - r.y0) / r.h));
  return [Math.round(u * (nCols() - 1)), v];
}

function paint(col, v) {
  if (!cols) { cols = new Float32Array(nCols()); cols.fill(v); }
  if (lastCol === null) { cols[col] = v; }
  else {
    const [c0, v0] = lastCol;
    const n = Math.abs(col - c0);
    for (let k = 0; k <= n; k++) {
      const c = c0 + Math.sign(col - c0) * k;
      cols[c] = n ? v0 + (v - v0) * k / n : v;
    }
  }
  lastCol = [col, v];
}

function commit() {
  let value;
  try { value = JSON.parse(typeof props.value === 'string' && props.value ? props.value : '{}'); }
  catch (e) { value = {}; }
  value.duration_s = state.duration_s; value.start_s = state.start_s;
  value.times_s = cols ? Array.from(cols, (v, i) => Math.round(colTime(i) * 1000) / 1000) : [];
  value.values = cols ? Array.from(cols, v => Math.round(v * 1000) / 1000) : [];
  state.times_s = value.times_s; state.values = value.values;
  props.value = JSON.stringify(value);
  root.dataset.curve = props.value;
  trigger('change');
}

canvas.addEventListener('pointerdown', ev => {
  if (!state.duration_s) return;
  drawing = true; lastCol = null;
  canvas.setPointerCapture(ev.pointerId);
  const [c, v] = eventToColValue(ev); paint(c, v); render();
});
canvas.addEventListener('pointermove', ev => {
  if (!drawing) return;
  const [c, v] = eventToColValue(ev); paint(c, v); render();
});
function stop(ev) {
  if (!drawing) return;
  drawing = false; lastCol = null;
  try { canvas.releasePointerCapture(ev.pointerId); } catch (e) { /* already released */ }
  commit();
}
canvas.addEventListener('pointerup', stop);
canvas.addEventListener('pointercancel', stop);
element.querySelector('.lc-clear').addEventListener('click', () => { cols = null; render(); commit(); });

function reload() {
  state = parse(props.value);
  toColumns();
  root.dataset.curve = typeof props.value === 'string' ? props.value : JSON.stringify(props.value || {});
  render();
}
watch('value', reload);
new ResizeObserver(() => render()).observe(root);
reload();
