// The front end of semi3lib.interactive.widget.SketchSearch (anywidget): a canvas that sends the
// drawing as a PNG when a stroke ends (debounced), an upload button, a list of query sketches,
// and the answers the Python side puts in `results` / `message`.
const SIZE = 256;
const STROKE = 3;
const DEBOUNCE_MS = 300;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => (k === 'style' ? Object.assign(node.style, v) : node.setAttribute(k, v)));
  node.append(...children);
  return node;
}

function render({ model, el }) {
  const canvas = h('canvas', { width: SIZE, height: SIZE, style: { border: '1px solid #888', touchAction: 'none', cursor: 'crosshair', background: '#fff' } });
  const ctx = canvas.getContext('2d');
  const clear = () => { ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, SIZE, SIZE); };
  clear();
  const status = h('p', { class: 'semi3-widget-status' });
  const results = h('div', { style: { display: 'grid', gridTemplateColumns: 'repeat(5, 104px)', gap: '6px' } });
  const clearButton = h('button', { type: 'button' }, 'Clear');
  const upload = h('input', { type: 'file', accept: 'image/*' });
  const picker = h('select', {});

  let last = null;
  let timer = null;
  const at = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * SIZE / r.width, (e.clientY - r.top) * SIZE / r.height]; };
  canvas.addEventListener('pointerdown', (e) => { canvas.setPointerCapture?.(e.pointerId); last = at(e); clearTimeout(timer); });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    Object.assign(ctx, { strokeStyle: '#000', lineWidth: STROKE, lineCap: 'round' });
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = null;
    clearTimeout(timer);
    timer = setTimeout(() => { model.set('sketch', canvas.toDataURL('image/png')); model.save_changes(); }, DEBOUNCE_MS);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  clearButton.addEventListener('click', () => { clear(); model.set('sketch', ''); model.save_changes(); results.replaceChildren(); });
  upload.addEventListener('change', () => {
    const file = upload.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { model.set('upload_name', file.name); model.set('upload', reader.result); model.save_changes(); upload.value = ''; };
    reader.readAsDataURL(file);
  });
  picker.addEventListener('change', () => { model.set('pick', Number(picker.value)); model.save_changes(); });

  const showExamples = () => picker.replaceChildren(h('option', { value: '-1' }, 'pick a query sketch…'),
    ...model.get('examples').map((label, i) => h('option', { value: String(i) }, label)));
  const showMessage = () => {
    status.textContent = model.get('message');
    status.style.color = model.get('error') ? '#a40000' : '';
  };
  const showResults = () => results.replaceChildren(...model.get('results').map((r) => h('figure', { style: { margin: 0, textAlign: 'center', fontSize: '12px' } },
    h('img', { src: r.thumb, width: 96, height: 96, alt: r.category }),
    h('figcaption', {}, `${r.rank}. ${r.category}`, h('br'), r.score.toFixed(3)))));
  const showSketch = () => {
    const url = model.get('shown');
    if (!url) return;
    const img = new Image();
    img.onload = () => { clear(); const s = Math.min(SIZE / img.width, SIZE / img.height); ctx.drawImage(img, (SIZE - img.width * s) / 2, (SIZE - img.height * s) / 2, img.width * s, img.height * s); };
    img.src = url;
  };
  model.on('change:examples', showExamples);
  model.on('change:message', showMessage);
  model.on('change:error', showMessage);
  model.on('change:results', showResults);
  model.on('change:shown', showSketch);
  showExamples(); showMessage(); showResults();

  el.append(h('div', { style: { display: 'flex', gap: '16px', alignItems: 'flex-start', flexWrap: 'wrap' } },
    h('div', { style: { display: 'flex', flexDirection: 'column', gap: '6px', width: `${SIZE}px` } }, canvas, clearButton, upload, picker),
    h('div', { style: { flex: 1, minWidth: '300px' } }, status, results)));
}

export default { render };
