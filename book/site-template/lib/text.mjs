// Text helpers shared by the renderers.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
export const stripAnsi = (s) => String(s ?? '').replace(ANSI, '');

// Comments that steer a notebook's tests (nbval, pytest's notebook plugins) and mean nothing to
// a reader: the notebooks keep them, the rendered code drops their lines.
const TEST_DIRECTIVE = /^[ \t]*#[ \t]*(?:NBVAL_[A-Z_]+|PYTEST_VALIDATE_IGNORE_OUTPUT)\b.*(?:\n|$)/gm;
export const stripTestDirectives = (code) => String(code ?? '').replace(TEST_DIRECTIVE, '');

/**
 * Counts in printed text read as in the book's tables: a free-standing integer of 5+ digits, or
 * of 4 digits that is not a year (1900-2099), gets thousands separators ("3125 photos" ->
 * "3,125 photos"). Digits inside a word, a path, a version, a decimal or a tuple (a tensor's
 * shape) are left alone.
 */
export function groupCounts(text) {
  return String(text).replace(/(?<![\w/\\@#.([-]|\d,|\d, )\d{4,}(?![\w/\\)\]-]|[.,]\d|, ?\d)/g, (digits) => {
    if (digits.length === 4 && /^(19|20)\d\d$/.test(digits)) return digits;
    if (digits.startsWith('0')) return digits;
    return Number(digits).toLocaleString('en-US');
  });
}
