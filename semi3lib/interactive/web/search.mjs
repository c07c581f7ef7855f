// The book's draw-to-search page: the trained sketch encoder (ONNX, exported by `semi3 export`)
// runs in the browser with onnxruntime-web's WebAssembly backend; the gallery's float16
// embeddings are ranked here. No Python server, no CDN: everything is under <base>.
import { isBlank, rgbaToGray, sketchTensor } from './preprocess.mjs';

const CANVAS = 256; // the page's drawing size (Sketchy's sketches are 256 x 256)
const STROKE = 3;
const DEBOUNCE_MS = 250;
const TOP_K = 10;

const NO_MODEL = `No trained model has been exported for this book yet, so there is nothing to search with.
Make one from the repository: <code>make book</code> trains it and builds this page with it; or, with a
checkpoint already trained, <code>.venv/bin/semi3 export --checkpoint runs/sketchy-mini-cpu/last.pt
--out _build/search-export</code> and then <code>.venv/bin/python -m semi3lib.book.site</code>.`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

async function fetchBytes(url, gzip = false) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: ${resp.status} ${resp.statusText}`);
  const body = gzip ? resp.body.pipeThrough(new DecompressionStream('gzip')) : resp.body;
  return new Uint8Array(await new Response(body).arrayBuffer());
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Top-k rows of gallery (N x D, row-major) for query (D): score descending, then position, as `semi3 search`. */
export function rank(gallery, count, dim, query, k) {
  const scores = new Float64Array(count);
  for (let i = 0; i < count; i += 1) {
    let s = 0;
    for (let d = 0; d < dim; d += 1) s += gallery[i * dim + d] * query[d];
    scores[i] = s;
  }
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, k).map((i) => ({ index: i, score: scores[i] }));
}

class SearchPage {
  constructor(root) {
    this.root = root;
    this.base = root.dataset.base || '/search-app/';
    this.timings = [];
    this.status = el('p', { class: 'semi3-status', role: 'status' }, 'Loading the search page…');
    root.replaceChildren(this.status);
    this.setState('loading');
  }

  setState(state, message, isError = false) {
    this.root.dataset.state = state;
    if (message !== undefined) {
      this.status.innerHTML = message;
      this.status.classList.toggle('semi3-error', isError);
    }
  }

  async start() {
    const manifestUrl = `${this.base}model/manifest.json`;
    const resp = await fetch(manifestUrl).catch(() => null);
    if (!resp || !resp.ok) {
      this.setState('no-model', NO_MODEL, true);
      return;
    }
    this.manifest = await resp.json();
    const m = this.manifest;
    this.setState('loading', `Loading the model (${(m.encoder.bytes / 1e6).toFixed(1)} MB) and ${m.count} gallery embeddings…`);
    const ort = await import(`${this.base}ort/ort.wasm.min.mjs`);
    ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads
    ort.env.wasm.wasmPaths = `${this.base}ort/`;
    ort.env.wasm.wasmBinary = await fetchBytes(`${this.base}ort/ort-wasm-simd-threaded.wasm.gz`, true);
    const [encoder, halves] = await Promise.all([
      fetchBytes(`${this.base}model/${m.encoder.file}.gz`, true),
      fetchBytes(`${this.base}model/${m.gallery.file}`),
    ]);
    if ((await sha256(encoder)) !== m.encoder.sha256) {
      throw new Error(`the sketch encoder is not the one the gallery was embedded with (sha256 differs from manifest.json); re-export both with semi3 export`);
    }
    const words = new Uint16Array(halves.buffer, halves.byteOffset, halves.byteLength / 2);
    if (words.length !== m.count * m.embed_dim) {
      throw new Error(`the gallery holds ${words.length} numbers, not ${m.count} x ${m.embed_dim}: re-export it with semi3 export`);
    }
    this.gallery = Float32Array.from(words, halfToFloat);
    this.ort = ort;
    this.session = await ort.InferenceSession.create(encoder, { executionProviders: ['wasm'] });
    this.build();
    this.setState('ready', `Ready: draw a sketch (${m.count} photos of ${m.categories.length} categories; the model is <code>${m.checkpoint}</code>).`);
  }

  build() {
    const m = this.manifest;
    this.canvas = el('canvas', { width: CANVAS, height: CANVAS, class: 'semi3-canvas', 'aria-label': 'Drawing area' });
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    this.clear();
    this.bindPointer();
    this.upload = el('input', { type: 'file', accept: 'image/*', class: 'semi3-upload', onchange: () => this.onUpload() });
    const picker = el('select', { class: 'semi3-examples', onchange: (e) => this.onPick(e.target.value) },
      el('option', { value: '' }, 'pick a query sketch…'),
      ...m.examples.map((x, i) => el('option', { value: String(i) }, `${i + 1}. ${x.category}`)));
    const controls = el('div', { class: 'semi3-controls' },
      el('button', { type: 'button', class: 'semi3-clear', onclick: () => { this.clear(); this.results.replaceChildren(); this.setState('ready', 'Cleared: draw a sketch.'); } }, 'Clear'),
      el('label', {}, 'Upload a sketch: ', this.upload), picker);
    this.results = el('ol', { class: 'semi3-results' });
    this.root.replaceChildren(el('div', { class: 'semi3-search' },
      el('div', { class: 'semi3-left' }, this.canvas, controls), el('div', { class: 'semi3-right' }, this.status, this.results)));
  }

  clear() {
    this.ctx.fillStyle = '#fff';
    this.ctx.fillRect(0, 0, CANVAS, CANVAS);
  }

  bindPointer() {
    let last = null;
    const at = (e) => {
      const r = this.canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * (CANVAS / r.width), (e.clientY - r.top) * (CANVAS / r.height)];
    };
    this.canvas.addEventListener('pointerdown', (e) => {
      this.canvas.setPointerCapture?.(e.pointerId);
      last = at(e);
      clearTimeout(this.timer);
    });
    this.canvas.addEventListener('pointermove', (e) => {
      if (!last) return;
      const p = at(e);
      this.ctx.strokeStyle = '#000';
      this.ctx.lineWidth = STROKE;
      this.ctx.lineCap = 'round';
      this.ctx.beginPath();
      this.ctx.moveTo(...last);
      this.ctx.lineTo(...p);
      this.ctx.stroke();
      last = p;
    });
    const end = () => {
      if (!last) return;
      last = null;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.searchCanvas(), DEBOUNCE_MS);
    };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
  }

  /** The drawing as a PNG data URL: exactly the pixels the page searched with. */
  exportPNG() {
    return this.canvas.toDataURL('image/png');
  }

  searchCanvas() {
    const { data } = this.ctx.getImageData(0, 0, CANVAS, CANVAS);
    return this.search(data, CANVAS, CANVAS, 'The canvas is empty: draw a sketch first.');
  }

  async onUpload() {
    const file = this.upload.files[0];
    if (!file) return;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch {
      this.results.replaceChildren();
      this.setState('error', `${file.name} is not an image this browser can read: upload a PNG or JPEG sketch.`, true);
      return;
    }
    const off = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d', { willReadFrequently: true });
    off.drawImage(bitmap, 0, 0);
    const { data } = off.getImageData(0, 0, bitmap.width, bitmap.height);
    this.clear();
    const s = Math.min(CANVAS / bitmap.width, CANVAS / bitmap.height);
    this.ctx.drawImage(bitmap, (CANVAS - bitmap.width * s) / 2, (CANVAS - bitmap.height * s) / 2, bitmap.width * s, bitmap.height * s);
    await this.search(data, bitmap.width, bitmap.height, `${file.name} is blank (one colour everywhere): there is no sketch in it.`);
  }

  async onPick(value) {
    if (value === '') return;
    const example = this.manifest.examples[Number(value)];
    const blob = await (await fetch(`${this.base}model/${example.file}`)).blob();
    const dt = new DataTransfer();
    dt.items.add(new File([blob], example.file.split('/').pop(), { type: 'image/png' }));
    this.upload.files = dt.files;
    await this.onUpload();
  }

  async search(rgba, width, height, blankMessage) {
    const m = this.manifest;
    if (isBlank(rgbaToGray(rgba, width, height))) {
      this.results.replaceChildren();
      this.setState('error', blankMessage, true);
      return null;
    }
    this.setState('searching');
    const t0 = performance.now();
    const input = new this.ort.Tensor('float32', sketchTensor(rgba, width, height, m.image_size), [1, 3, m.image_size, m.image_size]);
    const output = await this.session.run({ sketch: input });
    const query = output.embedding.data;
    const hits = rank(this.gallery, m.count, m.embed_dim, query, TOP_K);
    const ms = performance.now() - t0;
    this.timings.push(ms);
    this.last = hits.map((h) => ({ ...h, name: m.photos[h.index].name, category: m.categories[m.photos[h.index].category] }));
    this.render();
    this.setState('done', `Top ${TOP_K} of ${m.count} photos, found in ${ms.toFixed(0)} ms.`);
    return this.last;
  }

  render() {
    const pattern = this.manifest.thumbs.pattern;
    this.results.replaceChildren(...this.last.map((h, i) => el('li', { class: 'semi3-hit', 'data-name': h.name, 'data-category': h.category, 'data-score': h.score.toFixed(6) },
      el('img', { src: `${this.base}model/${pattern.replace('{:05d}', String(h.index).padStart(5, '0'))}`, alt: `${h.category} photo`, width: 96, height: 96 }),
      el('span', { class: 'semi3-rank' }, `${i + 1}. ${h.category}`),
      el('span', { class: 'semi3-score' }, h.score.toFixed(3)))));
  }
}

const root = document.getElementById('semi3-search');
if (root) {
  const page = new SearchPage(root);
  window.semi3Search = page;
  page.start().catch((err) => page.setState('error', `The search could not start: ${err.message}`, true));
}
