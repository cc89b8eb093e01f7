// Reference search results: the body of a gr.HTML `js_on_load` (gets `element`, `props`,
// `trigger`, `watch`). props.hits (app/panels/reference.py result_items): per clip its id,
// label, attribution, url ('' = cannot play here; why_silent says why) and peaks (0..1, or
// null). props.value is the stem's reference clip id ('' = none), shown as the checked radio.
// A click on a result plays it in the page (and stops the one playing); only its "Use" button
// makes it the reference (value = its id, then an `input` event for the server).
const heading = element.querySelector('.rr-heading');
const list = element.querySelector('.rr-list');
let rows = [];                 // [{hit, row, audio, head}]
let current = null;            // the row whose clip is playing
let frame = 0;

function hits() { return Array.isArray(props.hits) ? props.hits : []; }

function thumbnail(peaks) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'rr-wave');
  svg.setAttribute('preserveAspectRatio', 'none');
  if (!Array.isArray(peaks) || !peaks.length) {
    svg.setAttribute('viewBox', '0 0 1 2');
    return svg;
  }
  // each clip fills its own thumbnail: the shape matters here, not the level across clips
  const top = Math.max(...peaks) || 1;
  const n = peaks.length;
  svg.setAttribute('viewBox', `0 0 ${n} 2`);
  let d = 'M0 1';
  peaks.forEach((p, i) => { d += ` L${i} ${1 - p / top} L${i + 1} ${1 - p / top}`; });
  for (let i = n - 1; i >= 0; i--) d += ` L${i + 1} ${1 + peaks[i] / top} L${i} ${1 + peaks[i] / top}`;
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d + ' Z');
  svg.appendChild(path);
  return svg;
}

function stop(r) {
  if (!r) return;
  r.audio.pause();
  r.audio.currentTime = 0;
  r.row.classList.remove('rr-playing');
  r.head.style.left = '0%';
  if (current === r) current = null;
}

function follow() {
  cancelAnimationFrame(frame);
  const r = current;
  if (!r) return;
  const d = r.audio.duration;
  if (d > 0) r.head.style.left = (100 * Math.min(1, r.audio.currentTime / d)) + '%';
  frame = requestAnimationFrame(follow);
}

function play(r) {
  if (current === r) { stop(r); return; }    // a second click on the playing clip stops it
  stop(current);
  if (!r.hit.url) return;
  current = r;
  r.row.classList.add('rr-playing');
  r.audio.currentTime = 0;
  const started = r.audio.play();
  if (started && started.catch) started.catch(() => { if (current === r) stop(r); });
  follow();
}

function use(r) {
  props.value = r.hit.id;
  markChosen();
  trigger('input');
}

function markChosen() {
  for (const r of rows) {
    const chosen = r.hit.id === props.value;
    r.radio.checked = chosen;
    r.row.classList.toggle('rr-chosen', chosen);
    r.use.textContent = chosen ? 'In use' : 'Use';
  }
}

function render() {
  stop(current);
  for (const r of rows) r.audio.removeAttribute('src');
  rows = [];
  list.replaceChildren();
  heading.textContent = props.heading || '';
  const group = 'rr-' + Math.random().toString(36).slice(2, 9);
  for (const hit of hits()) {
    const row = document.createElement('div');
    row.className = 'rr-row';
    row.dataset.id = hit.id;
    row.tabIndex = 0;
    row.title = hit.attribution || '';
    const btn = document.createElement('span');
    btn.className = 'rr-play';
    btn.setAttribute('aria-hidden', 'true');
    const wrap = document.createElement('div');
    wrap.className = 'rr-thumb';
    const head = document.createElement('div');
    head.className = 'rr-head';
    wrap.append(thumbnail(hit.peaks), head);
    const label = document.createElement('label');
    label.className = 'rr-label';
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = group;
    radio.tabIndex = -1;
    const text = document.createElement('span');
    text.textContent = hit.label;
    label.append(radio, text);
    const useBtn = document.createElement('button');
    useBtn.type = 'button';
    useBtn.className = 'rr-use';
    useBtn.textContent = 'Use';
    useBtn.setAttribute('aria-label', `Use "${hit.caption}" as the reference`);
    const audio = document.createElement('audio');
    audio.preload = hit.url ? 'auto' : 'none';
    if (hit.url) audio.src = hit.url;
    else {
      row.classList.add('rr-silent');
      row.title = (hit.why_silent || 'This file does not play in the browser.') + ' ' + row.title;
    }
    row.append(btn, wrap, label, useBtn, audio);
    const r = {hit, row, audio, head, radio, use: useBtn};
    audio.addEventListener('ended', () => stop(r));
    row.addEventListener('click', ev => {
      if (ev.target.closest('.rr-use')) { use(r); return; }
      ev.preventDefault();        // a click on the label must not check its radio: listening is not choosing
      play(r);
    });
    row.addEventListener('keydown', ev => {
      if (ev.target !== row) return;
      if (ev.key === ' ' || ev.key === 'Enter') { ev.preventDefault(); play(r); }
    });
    rows.push(r);
    list.appendChild(row);
  }
  markChosen();
}

watch(['hits', 'heading'], render);
watch('value', markChosen);
render();
