// Tables for a reader on any screen: the rules that make a table fit the column.
//
// - Every table with three or more columns is marked `stack`: below ~36rem of column (a phone)
//   the stylesheet lays each row out as a card of "label: value" lines, so no table scrolls
//   sideways there. The labels come from the header (`data-label` on each body cell).
// - Counts read one way: a bare integer cell of 4+ digits gets thousands separators ("3,125").
// - Category ids read as words: a cell that is one snake_case id ("teddy_bear") shows "teddy bear".
// - Plain-text tables printed by a notebook (pandas' `to_string()`) become real tables, so they
//   wrap and stack instead of being cut at the right edge.
//
// HTML outputs (pandas, the book's reader tables) arrive as strings; they are annotated with a
// small tag scanner rather than a DOM, which is enough for the regular HTML pandas writes.

import { escapeHtml } from './text.mjs';

export const STACK_MIN_COLUMNS = 3;

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&nbsp;': ' ', '&#x27;': "'" };
const unescapeHtml = (s) => s.replace(/&(?:amp|lt|gt|quot|nbsp|#39|#x27);/g, (e) => ENTITIES[e]);

/** The text of an HTML fragment: tags dropped, entities decoded, white space collapsed. */
export function htmlText(fragment) {
  return unescapeHtml(String(fragment).replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
}

/** "3125" -> "3,125"; anything else unchanged. */
export function countText(text) {
  return /^\d{4,}$/.test(text) ? Number(text).toLocaleString('en-US') : text;
}

/** "teddy_bear" -> "teddy bear" for a whole cell that is one lower-case snake_case id. */
export function wordsText(text) {
  return /^[a-z]+(?:_[a-z]+)+$/.test(text) ? text.replace(/_/g, ' ') : text;
}

/** A cell's HTML as the reader should see it: a bare count or category id rewritten. */
function readableCell(inner) {
  const text = htmlText(inner);
  if (/<[a-z]/i.test(inner)) return inner; // marked up (bold, spans): written by the book, keep
  const shown = wordsText(countText(text));
  return shown === text ? inner : escapeHtml(shown);
}

const CELL = /<(t[hd])\b([^>]*)>([\s\S]*?)<\/\1>/g;
const colspanOf = (attrs) => Number((/colspan="?(\d+)/.exec(attrs) ?? [])[1] ?? 1);

/** The column labels of a table's header rows (one per column; spans repeated, rows joined). */
function headerLabels(headHtml) {
  const rows = [...headHtml.matchAll(/<tr\b[^>]*>([\s\S]*?)<\/tr>/g)].map((m) => {
    const labels = [];
    for (const [, , attrs, inner] of m[1].matchAll(CELL)) {
      // A unit line under the name ("mean ± std") is not part of the label.
      const text = htmlText(inner.replace(/<br\s*\/?>[\s\S]*$/, ''));
      for (let i = 0; i < colspanOf(attrs); i += 1) labels.push(text);
    }
    return labels;
  });
  const width = Math.max(0, ...rows.map((r) => r.length));
  return Array.from({ length: width }, (_, i) => {
    const parts = rows.map((r) => r[i] ?? '').filter(Boolean);
    return [...new Set(parts)].join(' ');
  });
}

function addClass(tagAttrs, cls) {
  if (/\bclass="/.test(tagAttrs)) return tagAttrs.replace(/\bclass="([^"]*)"/, (_, c) => `class="${c} ${cls}"`);
  return `${tagAttrs} class="${cls}"`;
}

/** One HTML table annotated for narrow screens (see the module comment). */
function annotateTable(attrs, inner) {
  const head = /<thead\b[^>]*>([\s\S]*?)<\/thead>/.exec(inner);
  const labels = head ? headerLabels(head[1]).map(wordsText) : [];
  // Column names such as `wall_seconds` read as words too, and so may wrap at their spaces.
  const named = inner.replace(/<thead\b[^>]*>[\s\S]*?<\/thead>/, (thead) => thead.replace(CELL, (_, tag, cellAttrs, cellInner) => `<${tag}${cellAttrs}>${readableCell(cellInner)}</${tag}>`));
  const body = named.replace(/<tbody\b([^>]*)>([\s\S]*?)<\/tbody>/g, (_, bodyAttrs, rows) => {
    const annotated = rows.replace(/<tr\b([^>]*)>([\s\S]*?)<\/tr>/g, (__, trAttrs, cells) => {
      let column = 0;
      const out = cells.replace(CELL, (___, tag, cellAttrs, cellInner) => {
        const label = labels[column] ?? '';
        column += colspanOf(cellAttrs);
        const data = tag === 'td' && label && !/data-label=/.test(cellAttrs) ? ` data-label="${escapeHtml(label)}"` : '';
        return `<${tag}${cellAttrs}${data}>${readableCell(cellInner)}</${tag}>`;
      });
      return `<tr${trAttrs}>${out}</tr>`;
    });
    return `<tbody${bodyAttrs}>${annotated}</tbody>`;
  });
  const stack = labels.length >= STACK_MIN_COLUMNS ? addClass(attrs, 'stack') : attrs;
  return `<table${stack}>${body}</table>`;
}

/** Every table of an HTML output annotated; a table without a frame gets a scrolling one. */
export function annotateTables(html) {
  return String(html).replace(/<table\b([^>]*)>([\s\S]*?)<\/table>/g, (_, attrs, inner) => annotateTable(attrs, inner));
}

// ---- plain-text tables ------------------------------------------------------------------------

/**
 * The columns of a block of fixed-width lines (pandas' `to_string()`): [start, end) character
 * ranges, or null when the block is not such a table.
 *
 * pandas pads every column to one width, right-aligns values and headers (the index column
 * is the first, left-aligned) and separates columns by at least one space. So a column
 * boundary is a position blank on every line; a piece between two boundaries with nothing in
 * the header line above it, or nothing below the header, is the left part of a wider column
 * (a value with spaces, "(2, 3, 128, 128)", or a header with spaces) and joins the next piece.
 * A table has 3+ lines and 2+ columns, and every line has something in every column, except
 * pandas' index-name line under the header and its blank index header.
 */
export function textColumns(lines) {
  if (lines.length < 3) return null;
  const width = Math.max(...lines.map((l) => l.length));
  const blank = Array.from({ length: width }, (_, i) => lines.every((l) => i >= l.length || l[i] === ' '));
  const pieces = [];
  for (let i = 0; i < width; i += 1) {
    if (blank[i]) continue;
    const start = i;
    while (i < width && !blank[i]) i += 1;
    pieces.push([start, i]);
  }
  const filled = (line, [a, b]) => line.slice(a, b).trim() !== '';
  const body = lines.slice(1);
  const columns = [];
  let pending = null;
  for (const [n, piece] of pieces.entries()) {
    const span = pending ? [pending[0], piece[1]] : piece;
    const last = n === pieces.length - 1;
    const partial = n > 0 && (!filled(lines[0], span) || !body.some((l) => filled(l, span)));
    if (partial && !last) pending = span;
    else {
      columns.push(span);
      pending = null;
    }
  }
  if (columns.length < 2) return null;
  for (const [n, line] of lines.entries()) {
    const empty = columns.filter((c) => !filled(line, c)).length;
    if (!empty) continue;
    const indexName = n === 1 && filled(line, columns[0]) && empty === columns.length - 1;
    const blankIndexHeader = n === 0 && empty === 1 && !filled(line, columns[0]);
    if (!indexName && !blankIndexHeader) return null;
  }
  return columns;
}

/** A fixed-width text table as an HTML table (header row, then one row per line). */
export function textTableHtml(lines, columns) {
  const cells = (line) => columns.map(([a, b]) => line.slice(a, b).trim());
  const header = cells(lines[0]);
  let rows = lines.slice(1);
  const second = cells(rows[0]);
  if (second.slice(1).every((c) => c === '') && header[0] === '') {
    header[0] = second[0]; // pandas' index name, printed on its own line under the header
    rows = rows.slice(1);
  }
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((line) => `<tr>${cells(line).map((c, i) => (i === 0 ? `<th>${escapeHtml(c)}</th>` : `<td>${escapeHtml(c)}</td>`)).join('')}</tr>`)
    .join('');
  return annotateTables(`<table class="text-table"><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`);
}

/**
 * Printed text split into runs of plain lines and tables: [{table: html}] or [{text}]. A table
 * is the longest run of 3+ consecutive lines that `textColumns` accepts, found greedily.
 */
export function splitTextTables(text, maxLines = 400) {
  const lines = String(text).split('\n');
  if (lines.length > maxLines) return [{ text }];
  const parts = [];
  let plain = [];
  let i = 0;
  while (i < lines.length) {
    let best = null;
    for (let j = i + 3; j <= lines.length; j += 1) {
      const block = lines.slice(i, j);
      if (block.some((l) => l.trim() === '')) break;
      const columns = textColumns(block);
      if (columns) best = { j, columns };
      else if (best) break;
    }
    if (best) {
      if (plain.length) parts.push({ text: `${plain.join('\n')}\n` });
      plain = [];
      parts.push({ table: textTableHtml(lines.slice(i, best.j), best.columns) });
      i = best.j;
    } else {
      plain.push(lines[i]);
      i += 1;
    }
  }
  const rest = plain.join('\n');
  if (rest.trim()) parts.push({ text: rest });
  return parts;
}
