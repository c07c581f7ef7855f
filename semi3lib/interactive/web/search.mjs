// The book's draw-to-search page: the trained sketch encoder (ONNX, exported by `semi3 export`)
// runs in the browser with onnxruntime-web's WebAssembly backend; the gallery's float16
// embeddings are ranked here. No Python server, no CDN: everything is under <base>.
// Drawing: strokes are kept, so Undo (the button, Ctrl+Z or Cmd+Z) redraws all but the last;
// Clear goes back to the start. Each answer says how sure it is (confidence.mjs).
// Models: <base>models.json lists the installed exports (semi3lib/book/search_page.py); with
// more than one, a selector above the canvas switches model and gallery (the other model is
// loaded when first chosen), keeping the drawing and searching it again. A site built before
// models.json has one model, in <base>model/.
import { isBlank, rgbaToGray, sketchTensor } from './preprocess.mjs';
import { categoryWords, fineGrainedNote, rankingConfidence } from './confidence.mjs';

const CANVAS = 256; // the page's drawing size (Sketchy's sketches are 256 x 256)
const STROKE = 3;
const DEBOUNCE_MS = 250;
const TOP_K = 10;

const NO_MODEL = `No trained model has been exported for this book yet, so there is nothing to search with.
Make one from the repository: <code>make book</code> trains it and builds this page with it; or, with a
checkpoint already trained, <code>.venv/bin/semi3 export --checkpoint runs/sketchy-mini-cpu/last.pt
--out _build/search-export</code> and then <code>.venv/bin/python -m semi3lib.book.site</code>. A fine-grained
checkpoint exported to <code>_build/search-export-fine-grained</code> is offered beside it.`;
const LEGACY_MODELS = [{ id: 'category', dir: 'model/' }];

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

/** A count with thousands separators, as the book writes counts: 3,125. */
const count = (n) => n.toLocaleString('en-US');

/** Ctrl+Z (Cmd+Z on a Mac), without Shift: the usual Undo. */
export function isUndoKey(e) {
  return (e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'z';
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
    const listed = await fetch(`${this.base}models.json`).catch(() => null);
    this.models = listed && listed.ok ? (await listed.json()).models : LEGACY_MODELS;
    this.loaded = new Map(); // model id -> its loaded model, once chosen
    const first = this.models.length ? await this.loadModel(this.models[0]) : null;
    if (!first) {
      this.setState('no-model', NO_MODEL, true);
      return;
    }
    this.useModel(first);
    this.build();
    this.setState('ready', this.readyMessage());
  }

  /** onnxruntime-web, loaded once for every model. */
  async runtime() {
    if (!this.ortLoading) {
      this.ortLoading = (async () => {
        const ort = await import(`${this.base}ort/ort.wasm.min.mjs`);
        ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads
        ort.env.wasm.wasmPaths = `${this.base}ort/`;
        ort.env.wasm.wasmBinary = await fetchBytes(`${this.base}ort/ort-wasm-simd-threaded.wasm.gz`, true);
        return ort;
      })();
    }
    this.ort = await this.ortLoading;
    return this.ort;
  }

  /** A model of models.json (manifest, encoder session, gallery), loaded once; null when its
   * manifest cannot be fetched (no export installed). */
  async loadModel(entry) {
    if (this.loaded.has(entry.id)) return this.loaded.get(entry.id);
    const resp = await fetch(`${this.base}${entry.dir}manifest.json`).catch(() => null);
    if (!resp || !resp.ok) return null;
    const m = await resp.json();
    const which = this.models.length > 1 ? `the ${entry.id} model` : 'the model';
    this.setState('loading', `Loading ${which} (${(m.encoder.bytes / 1e6).toFixed(1)} MB) and ${count(m.count)} gallery embeddings…`);
    const ort = await this.runtime();
    const [encoder, halves] = await Promise.all([
      fetchBytes(`${this.base}${entry.dir}${m.encoder.file}.gz`, true),
      fetchBytes(`${this.base}${entry.dir}${m.gallery.file}`),
    ]);
    if ((await sha256(encoder)) !== m.encoder.sha256) {
      throw new Error(`the sketch encoder is not the one the gallery was embedded with (sha256 differs from manifest.json); re-export both with semi3 export`);
    }
    const words = new Uint16Array(halves.buffer, halves.byteOffset, halves.byteLength / 2);
    if (words.length !== m.count * m.embed_dim) {
      throw new Error(`the gallery holds ${words.length} numbers, not ${m.count} x ${m.embed_dim}: re-export it with semi3 export`);
    }
    const model = {
      entry, manifest: m, dir: entry.dir,
      fineGrained: (m.protocol ?? 'category') === 'instance', // older manifests: a category model
      gallery: Float32Array.from(words, halfToFloat),
      session: await ort.InferenceSession.create(encoder, { executionProviders: ['wasm'] }),
    };
    this.loaded.set(entry.id, model);
    return model;
  }

  useModel(model) {
    this.model = model;
    this.manifest = model.manifest;
    this.root.dataset.model = model.entry.id;
  }

  /** Switch to the model ``id`` of models.json: the drawing (or the shown sketch) stays and is
   * searched again with the other model and its gallery. */
  async switchModel(id) {
    const entry = this.models.find((x) => x.id === id);
    if (!entry || entry.id === this.model.entry.id) return;
    clearTimeout(this.timer);
    this.modelSelect.disabled = true;
    this.setState('loading', `Loading the ${entry.id} model…`, false);
    try {
      const model = await this.loadModel(entry);
      if (!model) throw new Error(`${entry.dir}manifest.json could not be fetched`);
      this.useModel(model);
      this.own = null; // an example's own photo belongs to the other model's gallery
      this.fillExamples();
      await this.searchAgain();
    } catch (err) {
      this.modelSelect.value = this.model.entry.id;
      this.setState('error', `The ${entry.id} model could not be loaded: ${err.message}`, true);
    } finally {
      this.modelSelect.disabled = false;
    }
  }

  /** The current drawing searched again (after a model switch): the strokes as the canvas shows
   * them, else an uploaded or picked sketch with its own pixels, else no answer. */
  searchAgain() {
    if (this.strokes.length > 0) return this.searchCanvas();
    if (this.shownPixels) {
      const { rgba, width, height, blankMessage } = this.shownPixels;
      return this.search(rgba, width, height, blankMessage);
    }
    this.showAnswer(null);
    this.setState('ready', this.readyMessage(), false);
    return null;
  }

  readyMessage() {
    const m = this.manifest;
    return `Ready: draw a sketch (${count(m.count)} photos of ${count(m.categories.length)} categories; the model is <code>${m.checkpoint}</code>).`;
  }

  build() {
    this.canvas = el('canvas', { width: CANVAS, height: CANVAS, class: 'semi3-canvas', tabindex: '0', 'aria-label': 'Drawing area' });
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    this.shown = null; // an uploaded or picked sketch shown on the canvas, drawn under the strokes
    this.strokes = []; // each a list of canvas points
    this.own = null; // a picked query sketch's own photo (its gallery position), fine-grained models only
    this.bindPointer();
    this.upload = el('input', { type: 'file', accept: 'image/*', class: 'semi3-upload', onchange: () => this.onUpload() });
    this.picker = el('select', { class: 'semi3-examples', onchange: (e) => this.onPick(e.target.value) });
    this.fillExamples();
    this.undoButton = el('button', { type: 'button', class: 'semi3-undo', title: 'Undo the last stroke (Ctrl+Z)', onclick: () => this.undo() }, 'Undo');
    const controls = el('div', { class: 'semi3-controls' },
      el('div', { class: 'semi3-buttons' }, this.undoButton,
        el('button', { type: 'button', class: 'semi3-clear', onclick: () => this.clearAll() }, 'Clear')),
      el('label', {}, 'Upload a sketch: ', this.upload), this.picker);
    this.confidence = el('p', { class: 'semi3-confidence' });
    this.results = el('ol', { class: 'semi3-results' });
    const search = el('div', { class: 'semi3-search', onkeydown: (e) => {
      if (!isUndoKey(e) || e.target === this.upload) return;
      e.preventDefault();
      this.undo();
    } }, el('div', { class: 'semi3-left' }, this.canvas, controls),
    el('div', { class: 'semi3-right' }, this.status, this.confidence, this.results));
    if (this.models.length > 1) {
      this.modelSelect = el('select', { id: 'semi3-model', class: 'semi3-model', onchange: (e) => this.switchModel(e.target.value) },
        // the label alone, so that it fits a phone; the status line says how many photos
        ...this.models.map((x) => el('option', { value: x.id }, x.label)));
      this.modelSelect.value = this.model.entry.id;
      const choice = el('div', { class: 'semi3-model-choice' }, el('label', { for: 'semi3-model' }, 'Model'), this.modelSelect);
      this.root.replaceChildren(choice, search);
    } else {
      this.root.replaceChildren(search);
    }
    this.redraw();
  }

  /** The current model's query sketches in the picker, none picked. */
  fillExamples() {
    this.picker.replaceChildren(el('option', { value: '' }, 'pick a query sketch…'),
      ...this.manifest.examples.map((x, i) => el('option', { value: String(i) }, `${i + 1}. ${categoryWords(x.category)}`)));
  }

  /** The canvas from what it holds: white, the shown sketch if any, then every stroke. */
  redraw() {
    this.ctx.fillStyle = '#fff';
    this.ctx.fillRect(0, 0, CANVAS, CANVAS);
    if (this.shown) {
      const b = this.shown;
      const s = Math.min(CANVAS / b.width, CANVAS / b.height);
      this.ctx.drawImage(b, (CANVAS - b.width * s) / 2, (CANVAS - b.height * s) / 2, b.width * s, b.height * s);
    }
    for (const stroke of this.strokes) {
      this.line(stroke[0], stroke[0]); // a stroke that never moved is a dot
      for (let i = 1; i < stroke.length; i += 1) this.line(stroke[i - 1], stroke[i]);
    }
    this.undoButton.disabled = this.strokes.length === 0;
  }

  line(from, to) {
    Object.assign(this.ctx, { strokeStyle: '#000', lineWidth: STROKE, lineCap: 'round', lineJoin: 'round' });
    this.ctx.beginPath();
    this.ctx.moveTo(...from);
    this.ctx.lineTo(...to);
    this.ctx.stroke();
  }

  /** No answer, no strokes, no shown sketch, nothing in the file input: as the page started. */
  clearAll() {
    clearTimeout(this.timer);
    this.shown = null;
    this.shownPixels = null;
    this.own = null;
    this.strokes = [];
    this.redraw();
    this.upload.value = '';
    this.picker.value = '';
    this.showAnswer(null);
    this.setState('ready', this.readyMessage(), false);
  }

  /** Drop the last stroke; the answer is then for what the canvas shows (or none, as Clear). */
  undo() {
    if (this.strokes.length === 0) return;
    this.strokes.pop();
    this.redraw();
    if (this.strokes.length === 0 && !this.shown) {
      this.clearAll();
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.searchCanvas(), DEBOUNCE_MS);
  }

  bindPointer() {
    let last = null;
    const at = (e) => {
      const r = this.canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * (CANVAS / r.width), (e.clientY - r.top) * (CANVAS / r.height)];
    };
    this.canvas.addEventListener('pointerdown', (e) => {
      this.canvas.setPointerCapture?.(e.pointerId);
      last = [at(e)];
      this.strokes.push(last);
      this.line(last[0], last[0]);
      clearTimeout(this.timer);
    });
    this.canvas.addEventListener('pointermove', (e) => {
      if (!last) return;
      const p = at(e);
      this.line(last[last.length - 1], p);
      last.push(p);
    });
    const end = () => {
      if (!last) return;
      last = null;
      this.undoButton.disabled = false;
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
    this.picker.value = '';
    this.own = null;
    await this.searchFile(file, file.name);
  }

  /** A query sketch of the export, searched as a file would be, but not posing as an upload:
   * the file input stays empty. */
  async onPick(value) {
    if (value === '') return;
    const example = this.manifest.examples[Number(value)];
    this.upload.value = '';
    this.own = example.own ?? null; // a fine-grained model's export names the photo it was drawn from
    const resp = await fetch(this.modelUrl(example.file));
    await this.searchFile(await resp.blob(), `query sketch ${Number(value) + 1} (${categoryWords(example.category)})`);
  }

  modelUrl(file) {
    return `${this.base}${this.model.dir}${file}`;
  }

  /** An image file (or blob) shown on the canvas and searched with its own pixels. */
  async searchFile(blob, name) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch {
      this.showAnswer(null);
      this.setState('error', `${name} is not an image this browser can read: upload a PNG or JPEG sketch.`, true);
      return;
    }
    const off = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d', { willReadFrequently: true });
    off.drawImage(bitmap, 0, 0);
    const { data } = off.getImageData(0, 0, bitmap.width, bitmap.height);
    clearTimeout(this.timer);
    this.shown = bitmap;
    const blankMessage = `${name} is blank (one colour everywhere): there is no sketch in it.`;
    this.shownPixels = { rgba: data, width: bitmap.width, height: bitmap.height, blankMessage };
    this.strokes = [];
    this.redraw();
    await this.search(data, bitmap.width, bitmap.height, blankMessage);
  }

  async search(rgba, width, height, blankMessage) {
    const model = this.model;
    const m = model.manifest;
    if (isBlank(rgbaToGray(rgba, width, height))) {
      this.showAnswer(null);
      this.setState('error', blankMessage, true);
      return null;
    }
    this.setState('searching');
    const t0 = performance.now();
    const input = new this.ort.Tensor('float32', sketchTensor(rgba, width, height, m.image_size, m.strokes ?? 'raw'), [1, 3, m.image_size, m.image_size]);
    const output = await model.session.run({ sketch: input });
    if (model !== this.model) return null; // the model was switched meanwhile: its own search answers
    const query = output.embedding.data;
    const hits = rank(model.gallery, m.count, m.embed_dim, query, TOP_K);
    const ms = performance.now() - t0;
    this.timings.push(ms);
    this.last = hits.map((h) => ({ ...h, name: m.photos[h.index].name, category: m.categories[m.photos[h.index].category] }));
    this.showAnswer(this.last);
    this.setState('done', `Top ${TOP_K} of ${count(m.count)} photos, found in ${ms.toFixed(0)} ms.`);
    return this.last;
  }

  /** The hits (or none) and how sure they are. A fine-grained model's answer claims no
   * confidence (its photos share categories by design); for a picked query sketch it says
   * where the photo the sketch was drawn from came. */
  showAnswer(hits) {
    const pattern = this.manifest.thumbs.pattern;
    const own = this.strokes.length === 0 ? this.own : null; // strokes over it: no longer that sketch
    this.results.replaceChildren(...(hits ?? []).map((h, i) => el('li', { class: h.index === own ? 'semi3-hit semi3-own' : 'semi3-hit', 'data-name': h.name, 'data-category': h.category, 'data-score': h.score.toFixed(6) },
      el('img', { src: this.modelUrl(pattern.replace('{:05d}', String(h.index).padStart(5, '0'))), alt: `${categoryWords(h.category)} photo`, width: 96, height: 96 }),
      el('span', { class: 'semi3-rank' }, `${i + 1}. ${categoryWords(h.category)}`),
      el('span', { class: 'semi3-score' }, h.score.toFixed(3)),
      ...(h.index === own ? [el('span', { class: 'semi3-own-mark' }, 'its own photo')] : []))));
    let sure = null;
    if (hits && this.model.fineGrained) {
      sure = fineGrainedNote(own == null ? null : hits.findIndex((h) => h.index === own) + 1, hits.length);
    } else if (hits) {
      sure = rankingConfidence(hits.map((h) => h.category));
    }
    this.confidence.textContent = sure ? sure.text : '';
    this.confidence.dataset.level = sure ? sure.level : '';
  }
}

const root = document.getElementById('semi3-search');
if (root) {
  const page = new SearchPage(root);
  window.semi3Search = page;
  page.start().catch((err) => page.setState('error', `The search could not start: ${err.message}`, true));
}
