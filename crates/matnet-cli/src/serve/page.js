// matnet serve's page: draw a digit, watch the network's matrices respond.
// Plain JS and canvas; everything it needs is served by `matnet serve`.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { models: [], tab: 'draw', busy: false, dirty: false, last: 0 };

async function post(path, body) {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(json.error || r.statusText);
  return json;
}

function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

// ----- colour maps -------------------------------------------------------

// Signed values: blue below zero, orange above, black at zero.
function diverging(v, scale) {
  const t = Math.max(-1, Math.min(1, v / scale));
  return t < 0 ? [40 * -t, 120 * -t, 255 * -t] : [255 * t, 160 * t, 40 * t];
}

// Unsigned values from lo (black) through purple and orange to pale yellow.
function sequential(t) {
  t = Math.max(0, Math.min(1, t));
  return [255 * Math.min(1, 1.6 * t), 255 * Math.max(0, 1.6 * t - 0.6), 255 * Math.max(0, Math.sin(Math.PI * t) * 0.6 + (t > 0.85 ? (t - 0.85) * 4 : 0))];
}

// Draws `n` tiles of h×w values (taken from `data` in order) on one canvas,
// `cols` tiles a row, 1-pixel gaps; one colour scale for all tiles.
function tiles(data, n, h, w, cols, signed) {
  cols = Math.max(1, Math.min(cols, n));
  const rows = Math.ceil(n / cols);
  const W = cols * (w + 1) - 1, H = rows * (h + 1) - 1;
  const c = document.createElement('canvas');
  c.width = W; c.height = H; c.className = 'matrix';
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(W, H);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n * h * w; i++) {
    const v = data[i];
    if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  const scale = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const span = hi > lo ? hi - lo : 1;
  for (let k = 0; k < n; k++) {
    const x0 = (k % cols) * (w + 1), y0 = Math.floor(k / cols) * (h + 1);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = data[k * h * w + y * w + x];
        const rgb = signed ? diverging(v, scale) : sequential((v - lo) / span);
        const p = 4 * ((y0 + y) * W + x0 + x);
        img.data[p] = rgb[0]; img.data[p + 1] = rgb[1]; img.data[p + 2] = rgb[2]; img.data[p + 3] = 255;
      }
    }
  }
  for (let p = 3; p < img.data.length; p += 4) if (img.data[p] === 0) { img.data[p - 3] = 40; img.data[p - 2] = 60; img.data[p - 1] = 90; img.data[p] = 255; }
  ctx.putImageData(img, 0, 0);
  // Small matrices are enlarged, large ones shrunk, to about 120-420 px.
  const s = Math.max(1, Math.min(8, Math.floor(420 / Math.max(W, H)))) || 1;
  c.style.width = Math.min(420, W * s) + 'px';
  return c;
}

function figure(caption, canvas, name) {
  const f = document.createElement('figure');
  canvas.dataset.name = name;
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  f.append(canvas, cap);
  return f;
}

const dims = (s) => '[' + s.join('×') + ']';

// One matrix as a picture, laid out by what it is (see views.rs `kind`).
function view(m, rows, cols) {
  const s = m.shape, d = m.data, signed = m.kind === 'weight';
  const prod = (a) => a.reduce((x, y) => x * y, 1);
  let canvas, note = '';
  if (m.kind === 'image') canvas = tiles(d, 1, s[0], s[1], 1, false);
  else if (m.kind === 'maps' || m.kind === 'attention') {
    canvas = tiles(d, s[0], s[1], s[2], m.kind === 'attention' ? s[0] : Math.ceil(Math.sqrt(s[0])), false);
  } else if (m.kind === 'sequence') canvas = tiles(d, 1, s[0], s[1], 1, false);
  else if (s.length === 2 && s[1] === rows * cols) {
    // A first dense layer: each unit's weights drawn as the image it looks for.
    const n = Math.min(s[0], 64);
    if (n < s[0]) note = `, first ${n} of ${s[0]} units`;
    canvas = tiles(d, n, rows, cols, 8, signed);
  } else if (s.length === 4) canvas = tiles(d, s[0] * s[1], s[2], s[3], s[1] > 1 ? s[1] : Math.ceil(Math.sqrt(s[0])), signed);
  else if (s.length === 2) canvas = tiles(d, 1, s[0], s[1], 1, signed);
  else {
    const n = prod(s), w = Math.min(n, 32);
    const padded = Array.from(d);
    while (padded.length % w) padded.push(NaN);
    canvas = tiles(padded, 1, padded.length / w, w, 1, signed);
  }
  return figure(`${m.name} ${dims(s)}${note}`, canvas, m.name);
}

function renderMatrices(target, list, rows, cols) {
  const el = $(target);
  el.replaceChildren(...list.map((m) => view(m, rows, cols)));
}

// ----- drawing -----------------------------------------------------------

const pad = $('pad'), pctx = pad.getContext('2d');
function clearPad() {
  pctx.fillStyle = '#000'; pctx.fillRect(0, 0, pad.width, pad.height);
}

// The drawing as the model's input, prepared as MNIST digits were: cropped to
// the ink, scaled so its longer side is 20 of 28 pixels, centred by its
// centre of mass. Null when nothing is drawn.
function toPixels(rows, cols) {
  const src = pctx.getImageData(0, 0, pad.width, pad.height).data;
  let x0 = pad.width, x1 = -1, y0 = pad.height, y1 = -1;
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (src[4 * (y * pad.width + x)] > 64) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const box = Math.max(1, Math.floor(20 * Math.min(rows, cols) / 28));
  const s = box / Math.max(bw, bh);
  const nw = Math.max(1, Math.round(bw * s)), nh = Math.max(1, Math.round(bh * s));
  const small = document.createElement('canvas');
  small.width = nw; small.height = nh;
  const sctx = small.getContext('2d');
  sctx.imageSmoothingEnabled = true; sctx.imageSmoothingQuality = 'high';
  sctx.drawImage(pad, x0, y0, bw, bh, 0, 0, nw, nh);
  const sd = sctx.getImageData(0, 0, nw, nh).data;
  let m = 0, mx = 0, my = 0;
  for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) {
    const v = sd[4 * (y * nw + x)];
    m += v; mx += v * x; my += v * y;
  }
  const cx = m > 0 ? mx / m : nw / 2, cy = m > 0 ? my / m : nh / 2;
  const ox = Math.round(cols / 2 - cx), oy = Math.round(rows / 2 - cy);
  const out = new Array(rows * cols).fill(0);
  for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) {
    const tx = x + ox, ty = y + oy;
    if (tx >= 0 && tx < cols && ty >= 0 && ty < rows) out[ty * cols + tx] = sd[4 * (y * nw + x)] / 255;
  }
  return out;
}

function current() { return state.models.find((m) => m.name === $('model').value); }

function renderBars(probs, best, model) {
  $('top').textContent = String(best);
  $('bars').replaceChildren(...probs.map((p, c) => {
    const row = document.createElement('div');
    row.className = 'bar' + (c === best ? ' best' : '');
    row.innerHTML = `<b>${c}</b><span class="track"><span class="fill" style="width:${(100 * p).toFixed(1)}%"></span></span><span>${(100 * p).toFixed(1)}%</span>`;
    return row;
  }));
  document.body.dataset.predicted = String(best);
  document.body.dataset.model = model;
}

// Sends the drawing at most once per 60 ms and never two at a time; the
// latest stroke is always sent once the one in flight returns.
function update() {
  const model = current();
  if (!model || model.kind !== 'classifier') return;
  if (state.busy || performance.now() - state.last < 60) {
    state.dirty = true;
    if (!state.busy) setTimeout(update, 60);
    return;
  }
  state.dirty = false;
  const pixels = toPixels(model.rows, model.cols);
  if (!pixels) return;
  state.busy = true; state.last = performance.now();
  post('/api/explain', { model: model.name, pixels, weights: false })
    .then((r) => {
      showError(null);
      renderBars(r.probabilities, r.class, model.name);
      renderMatrices('activations', r.activations, model.rows, model.cols);
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    })
    .catch(showError)
    .finally(() => { state.busy = false; if (state.dirty) update(); });
}

let drawing = false, lastPoint = null;
function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}
pad.addEventListener('pointerdown', (e) => {
  drawing = true; lastPoint = point(e); pad.setPointerCapture(e.pointerId);
  pctx.fillStyle = '#fff'; pctx.beginPath(); pctx.arc(lastPoint[0], lastPoint[1], 9, 0, 2 * Math.PI); pctx.fill();
  update();
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const p = point(e);
  pctx.strokeStyle = '#fff'; pctx.lineWidth = 18; pctx.lineCap = 'round';
  pctx.beginPath(); pctx.moveTo(lastPoint[0], lastPoint[1]); pctx.lineTo(p[0], p[1]); pctx.stroke();
  lastPoint = p;
  update();
});
for (const ev of ['pointerup', 'pointercancel']) pad.addEventListener(ev, () => { drawing = false; update(); });
$('clear').addEventListener('click', () => { clearPad(); $('top').textContent = ''; $('bars').replaceChildren(); loadWeights(); });

// The weights do not depend on the input: fetched once per model, with the
// activations of a blank input.
async function loadWeights() {
  const model = current();
  if (!model || model.kind !== 'classifier') return;
  try {
    const r = await post('/api/explain', { model: model.name, pixels: new Array(model.rows * model.cols).fill(0), weights: true });
    renderMatrices('weights', r.weights, model.rows, model.cols);
    renderMatrices('activations', r.activations, model.rows, model.cols);
    document.body.dataset.weights = model.name;
  } catch (e) { showError(e); }
}

// ----- generating --------------------------------------------------------

function greyCanvas(canvas, images, rows, cols, perRow) {
  perRow = Math.min(perRow, images.length);
  const n = images.length, gridRows = Math.ceil(n / perRow);
  canvas.width = perRow * (cols + 2) + 2; canvas.height = gridRows * (rows + 2) + 2;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let p = 3; p < img.data.length; p += 4) img.data[p] = 255;
  images.forEach((im, k) => {
    const x0 = 2 + (k % perRow) * (cols + 2), y0 = 2 + Math.floor(k / perRow) * (rows + 2);
    im.forEach((v, j) => {
      const p = 4 * ((y0 + Math.floor(j / cols)) * canvas.width + x0 + (j % cols));
      img.data[p] = img.data[p + 1] = img.data[p + 2] = v;
    });
  });
  ctx.putImageData(img, 0, 0);
  canvas.style.width = Math.min(600, canvas.width * 4) + 'px';
}

let digit = null;
async function generate() {
  const model = current();
  if (!model || model.kind !== 'gan') return;
  const seed = Number($('seed-a').value) || 0, to = Number($('seed-b').value) || 0;
  const t = Number($('walk').value);
  const base = { model: model.name, seed };
  if (model.conditional && digit !== null) base.digit = digit;
  try {
    const one = await post('/api/generate', { ...base, interpolate: { to, t: [t] } });
    const c = $('sample');
    greyCanvas(c, one.images, one.rows, one.cols, 1);
    c.style.width = '280px';
    const steps = Array.from({ length: 9 }, (_, i) => i / 8);
    const strip = await post('/api/generate', { ...base, interpolate: { to, t: steps } });
    greyCanvas($('strip'), strip.images, strip.rows, strip.cols, 9);
    const grid = await post('/api/generate', { ...base, count: 16 });
    greyCanvas($('grid'), grid.images, grid.rows, grid.cols, 4);
    showError(null);
  } catch (e) { showError(e); }
}

function digitPicker(model) {
  const el = $('digits');
  if (!model.conditional) { el.textContent = 'unconditional model: no digit to pick'; return; }
  const buttons = [['any', null], ...Array.from({ length: model.classes }, (_, i) => [String(i), i])];
  el.replaceChildren(...buttons.map(([label, d]) => {
    const b = document.createElement('button');
    b.textContent = label;
    b.className = digit === d ? 'on' : '';
    b.onclick = () => { digit = d; digitPicker(model); generate(); };
    return b;
  }));
}
for (const id of ['seed-a', 'seed-b', 'walk']) $(id).addEventListener('input', generate);

// ----- tabs and models ---------------------------------------------------

function showTab(tab) {
  state.tab = tab;
  const kind = tab === 'draw' ? 'classifier' : 'gan';
  $('tab-draw').className = tab === 'draw' ? 'on' : '';
  $('tab-generate').className = tab === 'generate' ? 'on' : '';
  $('draw-panel').classList.toggle('hidden', tab !== 'draw');
  $('generate-panel').classList.toggle('hidden', tab !== 'generate');
  const list = state.models.filter((m) => m.kind === kind);
  $('model').replaceChildren(...list.map((m) => new Option(`${m.name} (${m.arch})`, m.name)));
  selectModel();
}

function selectModel() {
  const model = current();
  $('about').textContent = model ? `${model.parameters.toLocaleString()} parameters: ${model.description}` : '';
  if (!model) return;
  if (model.kind === 'classifier') { clearPad(); $('top').textContent = ''; $('bars').replaceChildren(); loadWeights(); }
  else { digitPicker(model); generate(); }
}

$('tab-draw').onclick = () => showTab('draw');
$('tab-generate').onclick = () => showTab('generate');
$('model').onchange = selectModel;

clearPad();
fetch('/api/models').then((r) => r.json()).then((models) => {
  state.models = models;
  $('tab-draw').disabled = !models.some((m) => m.kind === 'classifier');
  $('tab-generate').disabled = !models.some((m) => m.kind === 'gan');
  showTab($('tab-draw').disabled ? 'generate' : 'draw');
  document.body.dataset.ready = 'true';
}).catch(showError);
