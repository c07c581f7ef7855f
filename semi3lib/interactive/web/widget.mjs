// The front end of semi3lib.interactive.widget.SketchSearch (anywidget): a canvas that sends the
// drawing as a PNG when a stroke ends (debounced), Undo (the button, Ctrl+Z or Cmd+Z) and Clear,
// an upload button, a list of query sketches, and the answers the Python side puts in
// `results` / `confidence` / `message`. With more than one model (`models`, labels) a dropdown
// above the canvas sets `model`: the drawing stays, and the Python side answers it again from
// the other model. One file, no imports: anywidget loads it as it is.
const SIZE = 256;
const STROKE = 3;
const DEBOUNCE_MS = 300;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => (k === 'style' ? Object.assign(node.style, v) : node.setAttribute(k, v)));
  node.append(...children);
  return node;
}

/** Ctrl+Z (Cmd+Z on a Mac), without Shift: the usual Undo. */
export function isUndoKey(e) {
  return (e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'z';
}

function render({ model, el }) {
  const canvas = h('canvas', { width: SIZE, height: SIZE, tabindex: '0', 'aria-label': 'Drawing area',
    style: { border: '1px solid #888', touchAction: 'none', cursor: 'crosshair', background: '#fff', maxWidth: '100%' } });
  const ctx = canvas.getContext('2d');
  const status = h('p', { class: 'semi3-widget-status', role: 'status' });
  const confidence = h('p', { class: 'semi3-widget-confidence', style: { fontWeight: 'bold', margin: '0 0 6px' } });
  const results = h('div', { style: { display: 'grid', gridTemplateColumns: 'repeat(auto-fill, minmax(100px, 1fr))', gap: '6px' } });
  const undoButton = h('button', { type: 'button', class: 'semi3-widget-undo', title: 'Undo the last stroke (Ctrl+Z)' }, 'Undo');
  const clearButton = h('button', { type: 'button', class: 'semi3-widget-clear' }, 'Clear');
  const upload = h('input', { type: 'file', accept: 'image/*', class: 'semi3-widget-upload' });
  const picker = h('select', { class: 'semi3-widget-examples' });
  const modelPicker = h('select', { class: 'semi3-widget-model',
    style: { maxWidth: '100%' } });
  const modelChoice = h('label', { style: { display: 'flex', flexWrap: 'wrap', alignItems: 'center', gap: '6px', margin: '0 0 8px', fontWeight: 'bold' } },
    'Model', modelPicker);

  // What the canvas shows: a picked or uploaded sketch (`base`, may be null) and the strokes
  // drawn over it, each a list of points; Undo drops the last stroke and redraws the rest.
  let base = null;
  let strokes = [];
  let current = null;
  let timer = null;
  const line = (from, to) => {
    Object.assign(ctx, { strokeStyle: '#000', lineWidth: STROKE, lineCap: 'round', lineJoin: 'round' });
    ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
  };
  const redraw = () => {
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, SIZE, SIZE);
    if (base) {
      const s = Math.min(SIZE / base.width, SIZE / base.height);
      ctx.drawImage(base, (SIZE - base.width * s) / 2, (SIZE - base.height * s) / 2, base.width * s, base.height * s);
    }
    for (const stroke of strokes) {
      if (stroke.length === 1) line(stroke[0], stroke[0]); // a dot
      for (let i = 1; i < stroke.length; i += 1) line(stroke[i - 1], stroke[i]);
    }
    undoButton.disabled = strokes.length === 0;
  };
  const sendCanvas = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { model.set('sketch', canvas.toDataURL('image/png')); model.save_changes(); }, DEBOUNCE_MS);
  };
  const clearAll = () => {
    clearTimeout(timer);
    base = null; strokes = []; current = null;
    redraw();
    upload.value = '';
    picker.value = '-1';
    results.replaceChildren();
    confidence.textContent = '';
    model.send({ event: 'clear' }); // the Python side resets the answer and the status line
  };
  const undo = () => {
    if (strokes.length === 0) return;
    strokes.pop();
    redraw();
    if (strokes.length === 0 && !base) clearAll(); // nothing left to search with: as Clear
    else sendCanvas(); // the answer is always for what the canvas shows
  };

  const at = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * SIZE / r.width, (e.clientY - r.top) * SIZE / r.height]; };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture?.(e.pointerId);
    current = [at(e)];
    strokes.push(current);
    line(current[0], current[0]);
    clearTimeout(timer);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!current) return;
    const p = at(e);
    line(current[current.length - 1], p);
    current.push(p);
  });
  const end = () => {
    if (!current) return;
    current = null;
    undoButton.disabled = false;
    sendCanvas();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  undoButton.addEventListener('click', undo);
  clearButton.addEventListener('click', clearAll);
  upload.addEventListener('change', () => {
    const file = upload.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { picker.value = '-1'; model.set('upload_name', file.name); model.set('upload', reader.result); model.save_changes(); };
    reader.readAsDataURL(file);
  });
  // A picked sketch is not an upload: the file input is emptied, the pick goes by its index.
  picker.addEventListener('change', () => { upload.value = ''; model.set('pick', Number(picker.value)); model.save_changes(); });
  // Another model: the canvas keeps what it shows; the Python side answers it again.
  modelPicker.addEventListener('change', () => { model.set('model', modelPicker.value); model.save_changes(); });

  const showExamples = () => picker.replaceChildren(h('option', { value: '-1' }, 'pick a query sketch…'),
    ...model.get('examples').map((label, i) => h('option', { value: String(i) }, label)));
  const showModels = () => {
    const labels = model.get('models') || [];
    modelChoice.style.display = labels.length > 1 ? 'flex' : 'none';
    modelPicker.replaceChildren(...labels.map((label) => h('option', { value: label }, label)));
    modelPicker.value = model.get('model');
  };
  const showMessage = () => {
    status.textContent = model.get('message');
    status.style.color = model.get('error') ? '#a40000' : '';
  };
  const showConfidence = () => {
    const c = model.get('confidence') || {};
    confidence.textContent = c.text || '';
    confidence.dataset.level = c.level || '';
    confidence.style.color = c.level === 'unknown' ? '#a40000' : c.level === 'unsure' ? '#8a5a00' : '';
    confidence.style.fontWeight = c.level === 'fine-grained' ? 'normal' : 'bold'; // a description, not a verdict
  };
  // A picked query sketch's own photo (fine-grained models) is outlined and named.
  const showResults = () => results.replaceChildren(...model.get('results').map((r) => h('figure', { class: r.own ? 'semi3-widget-own' : '', style: { margin: 0, textAlign: 'center', fontSize: '12px' } },
    h('img', { src: r.thumb, width: 96, height: 96, alt: r.category, style: r.own ? { outline: '3px solid #1a7f37', outlineOffset: '-3px' } : {} }),
    h('figcaption', {}, `${r.rank}. ${r.category.replaceAll('_', ' ')}`, h('br'), r.score.toFixed(3),
      ...(r.own ? [h('br'), h('span', { style: { color: '#1a7f37', fontWeight: 'bold' } }, 'its own photo')] : [])))));
  const showSketch = () => {
    const url = model.get('shown');
    if (!url) return;
    const img = new Image();
    img.onload = () => { base = img; strokes = []; redraw(); };
    img.src = url;
  };
  model.on('change:examples', showExamples);
  model.on('change:models', showModels);
  model.on('change:model', showModels);
  model.on('change:message', showMessage);
  model.on('change:error', showMessage);
  model.on('change:results', showResults);
  model.on('change:confidence', showConfidence);
  model.on('change:shown', showSketch);
  showModels(); showExamples(); showMessage(); showResults(); showConfidence(); redraw();

  const search = h('div', { style: { display: 'flex', gap: '16px', alignItems: 'flex-start', flexWrap: 'wrap' } },
    h('div', { style: { display: 'flex', flexDirection: 'column', gap: '6px', width: `${SIZE}px`, maxWidth: '100%' } }, canvas,
      h('div', { style: { display: 'flex', gap: '6px' } }, undoButton, clearButton), upload, picker),
    h('div', { style: { flex: 1, minWidth: '240px' } }, status, confidence, results));
  const root = h('div', { class: 'semi3-widget' }, modelChoice, search);
  // JupyterLab's own shortcuts (its notebook undo) stay out of the widget's keys.
  root.setAttribute('data-lm-suppress-shortcuts', 'true');
  root.addEventListener('keydown', (e) => {
    if (!isUndoKey(e) || e.target === upload) return;
    e.preventDefault(); e.stopPropagation();
    undo();
  });
  el.append(root);
}

export default { render };
