// Stroke-width normalisation, a port of semi3lib/data/strokes.py (normalise_strokes): ink =
// pixels darker than INK_THRESHOLD, thinned to one-pixel centre lines (Zhang & Suen), grown by
// STROKE_RADIUS steps of the 4-neighbour cross, ink 0 and paper 255. Integer work only, and each
// subiteration decides every pixel from the image as it was before it, so the pixels are Python's.
// tests/test_strokes.py runs both on the same images.

export const INK_THRESHOLD = 160;
export const STROKE_RADIUS = 2;

/** Zhang-Suen thinning of a 0/1 mask (width x height), in place; returns the mask. */
export function thin(mask, width, height) {
  const W = width + 2;
  const img = new Uint8Array(W * (height + 2)); // one pixel of paper around the image
  for (let y = 0; y < height; y += 1) img.set(mask.subarray(y * width, (y + 1) * width), (y + 1) * W + 1);
  const remove = [];
  for (;;) {
    let changed = false;
    for (const first of [true, false]) {
      remove.length = 0;
      for (let y = 1; y <= height; y += 1) {
        for (let x = 1; x <= width; x += 1) {
          const i = y * W + x;
          if (img[i] !== 1) continue;
          // P2..P9: north, then clockwise
          const p = [img[i - W], img[i - W + 1], img[i + 1], img[i + W + 1], img[i + W], img[i + W - 1], img[i - 1],
            img[i - W - 1]];
          let count = 0;
          let transitions = 0;
          for (let k = 0; k < 8; k += 1) {
            count += p[k];
            if (p[k] === 0 && p[(k + 1) % 8] === 1) transitions += 1;
          }
          if (count < 2 || count > 6 || transitions !== 1) continue;
          const [p2, , p4, , p6, , p8] = p;
          const side = first ? (p2 & p4 & p6) === 0 && (p4 & p6 & p8) === 0
            : (p2 & p4 & p8) === 0 && (p2 & p6 & p8) === 0;
          if (side) remove.push(i);
        }
      }
      for (const i of remove) img[i] = 0;
      if (remove.length) changed = true;
    }
    if (!changed) break;
  }
  for (let y = 0; y < height; y += 1) mask.set(img.subarray((y + 1) * W + 1, (y + 1) * W + 1 + width), y * width);
  return mask;
}

/** `radius` steps of 4-neighbour growth of a 0/1 mask. */
export function dilate(mask, width, height, radius) {
  let out = mask;
  for (let r = 0; r < radius; r += 1) {
    const grown = Uint8Array.from(out);
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const i = y * width + x;
        if (out[i]) continue;
        if ((y > 0 && out[i - width]) || (y < height - 1 && out[i + width]) || (x > 0 && out[i - 1])
          || (x < width - 1 && out[i + 1])) grown[i] = 1;
      }
    }
    out = grown;
  }
  return out;
}

/** Greyscale bytes (ink dark) -> the drawing redrawn with centre lines 2 * radius + 1 px wide. */
export function normaliseStrokes(gray, width, height, radius = STROKE_RADIUS, threshold = INK_THRESHOLD) {
  const ink = new Uint8Array(gray.length);
  for (let i = 0; i < gray.length; i += 1) ink[i] = gray[i] < threshold ? 1 : 0;
  const lines = dilate(thin(ink, width, height), width, height, radius);
  const out = new Uint8Array(gray.length);
  for (let i = 0; i < out.length; i += 1) out[i] = lines[i] ? 0 : 255;
  return out;
}
