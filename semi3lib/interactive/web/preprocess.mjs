// The sketch preprocessing of semi3lib.data.transforms.image_to_tensor (with load_image(path, "L")),
// ported bit for bit from Pillow so the browser embeds exactly what `semi3 search` embeds:
//   RGBA pixels -> composited on white (Image.alpha_composite) -> greyscale (convert("L"))
//   -> shorter side to S (bicubic, antialiased: Pillow's fixed-point resampling) -> centre crop
//   -> (data.strokes: normalised only) strokes redrawn, web/strokes.mjs -> float32 in [0, 1], repeated to 3 channels. The backbone's mean/std is inside the ONNX model.
// tests/test_interactive_export.py runs this file under node against Pillow.

import { normaliseStrokes } from './strokes.mjs';

const PRECISION_BITS = 32 - 8 - 2; // Pillow's Resample.c, 8 bits per channel
const ALPHA_BITS = 7; // Pillow's AlphaComposite.c

/** Pillow's alpha_composite of one RGBA pixel over opaque white, then convert("L"). */
function compositeGray(r, g, b, a) {
  if (a === 0) return 255;
  if (a !== 255) {
    const blend = 255 * (255 - a);
    const outa255 = a * 255 + blend;
    const coef1 = Math.floor((a * 255 * 255 * (1 << ALPHA_BITS)) / outa255);
    const coef2 = 255 * (1 << ALPHA_BITS) - coef1;
    const mix = (c) => {
      const t = c * coef1 + 255 * coef2 + (0x80 << ALPHA_BITS);
      return Math.floor((Math.floor(t / 256) + t) / 256) >> ALPHA_BITS;
    };
    [r, g, b] = [mix(r), mix(g), mix(b)];
  }
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; // ITU-R 601-2 luma, as Pillow
}

/** RGBA bytes (canvas getImageData) -> greyscale bytes, as load_image(..., "L"). */
export function rgbaToGray(rgba, width, height) {
  const gray = new Uint8Array(width * height);
  for (let i = 0; i < gray.length; i += 1) {
    gray[i] = compositeGray(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2], rgba[4 * i + 3]);
  }
  return gray;
}

function bicubic(x) {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx += 1) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    const w = [];
    for (let x = 0; x < xmax; x += 1) {
      w.push(bicubic((x + xmin - center + 0.5) * ss));
      ww += w[x];
    }
    for (let x = 0; x < xmax; x += 1) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v) {
  if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / 2 ** PRECISION_BITS);
}

/** Pillow's Image.resize((outW, outH), BICUBIC) of a greyscale image: horizontal pass over the
 * rows the vertical pass needs, then the vertical pass; a pass is skipped when its size is kept. */
export function resizeBicubic(gray, width, height, outW, outH) {
  const horiz = coefficients(width, outW);
  const vert = coefficients(height, outH);
  let src = gray;
  let rows = height;
  let first = 0;
  if (outW !== width) {
    first = vert.bounds[0];
    const last = vert.bounds[2 * outH - 2] + vert.bounds[2 * outH - 1];
    rows = last - first;
    const tmp = new Uint8Array(outW * rows);
    for (let yy = 0; yy < rows; yy += 1) {
      const row = (yy + first) * width;
      for (let xx = 0; xx < outW; xx += 1) {
        const xmin = horiz.bounds[2 * xx];
        const xmax = horiz.bounds[2 * xx + 1];
        const k = xx * horiz.ksize;
        let ss = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < xmax; x += 1) ss += src[row + x + xmin] * horiz.kk[k + x];
        tmp[yy * outW + xx] = clip8(ss);
      }
    }
    src = tmp;
  }
  if (outH === height) return outW === width ? Uint8Array.from(src) : src;
  const out = new Uint8Array(outW * outH);
  for (let yy = 0; yy < outH; yy += 1) {
    const ymin = vert.bounds[2 * yy] - first;
    const ymax = vert.bounds[2 * yy + 1];
    const k = yy * vert.ksize;
    for (let xx = 0; xx < outW; xx += 1) {
      let ss = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < ymax; y += 1) ss += src[(y + ymin) * outW + xx] * vert.kk[k + y];
      out[yy * outW + xx] = clip8(ss);
    }
  }
  return out;
}

/** Python's round(): halves to even. */
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** resize_center_crop: shorter side to `size`, then the centre `size` x `size` square. */
export function resizeCenterCrop(gray, width, height, size) {
  const scale = size / Math.min(width, height);
  const nw = Math.max(size, pyRound(width * scale));
  const nh = Math.max(size, pyRound(height * scale));
  const resized = nw === width && nh === height ? gray : resizeBicubic(gray, width, height, nw, nh);
  const left = Math.floor((nw - size) / 2);
  const top = Math.floor((nh - size) / 2);
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y += 1) out.set(resized.subarray((y + top) * nw + left, (y + top) * nw + left + size), y * size);
  return out;
}

/** RGBA pixels -> the model's input, (1, 3, size, size) float32 in [0, 1], as a flat array; with
 * strokes 'normalised' (a model trained with data.strokes: normalised) its strokes redrawn first. */
export function sketchTensor(rgba, width, height, size, strokes = 'raw') {
  if (strokes !== 'raw' && strokes !== 'normalised') throw new Error(`unknown strokes mode ${strokes}`);
  let square = resizeCenterCrop(rgbaToGray(rgba, width, height), width, height, size);
  if (strokes === 'normalised') square = normaliseStrokes(square, size, size);
  const scale = Math.fround(1 / 255);
  const plane = new Float32Array(size * size);
  for (let i = 0; i < plane.length; i += 1) plane[i] = square[i] * scale;
  const tensor = new Float32Array(3 * plane.length);
  for (let c = 0; c < 3; c += 1) tensor.set(plane, c * plane.length);
  return tensor;
}

/** True when every pixel is the same (an empty canvas, a blank upload): nothing to search for. */
export function isBlank(gray) {
  for (let i = 1; i < gray.length; i += 1) if (gray[i] !== gray[0]) return false;
  return true;
}
