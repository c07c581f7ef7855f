// One figure and table numbering per page.
//
// mystmd numbers a page's own figures and tables; an item embedded from another page (`{embed}`)
// keeps the number it has on its own page, so the results page, which embeds chapters 5 and 9,
// would show two "Figure 1". Here the page's own items keep their numbers and the embedded ones
// are numbered after them, in reading order, per kind; the page's captions and cross-references
// to them follow. Items on other pages are not touched, so links from other pages stay right.

const NUMBERED_KINDS = new Set(['figure', 'table', 'code']);

function walk(node, visit) {
  visit(node);
  for (const child of node.children ?? []) walk(child, visit);
}

/** `{identifier: {kind, from, to}}` for every embedded item that needs a new number. */
export function embeddedNumbers(mdast) {
  const own = new Map(); // kind -> highest own number
  const embedded = [];
  walk(mdast, (node) => {
    if (node.type !== 'container' || !NUMBERED_KINDS.has(node.kind) || !node.enumerator) return;
    const id = node.identifier ?? node.source?.label;
    if (node.source?.url) embedded.push({ id, kind: node.kind, from: String(node.enumerator) });
    else if (/^\d+$/.test(String(node.enumerator))) own.set(node.kind, Math.max(own.get(node.kind) ?? 0, Number(node.enumerator)));
  });
  const next = new Map(own);
  const numbers = {};
  for (const item of embedded) {
    const to = (next.get(item.kind) ?? 0) + 1;
    next.set(item.kind, to);
    if (item.id) numbers[item.id] = { kind: item.kind, from: item.from, to: String(to) };
  }
  return numbers;
}

function renumberText(node, from, to) {
  // A caption number is split into text nodes ("Figure\u00a0", "1", ":"); a reference may be
  // one text ("Figure 1"). Replace the number, never a digit inside another number.
  walk(node, (n) => {
    if (n.type !== 'text' || typeof n.value !== 'string') return;
    if (n.value === from) n.value = to;
    else n.value = n.value.replace(new RegExp(`(^|[\\s\\u00a0])${from}(?![\\d.])`), `$1${to}`);
  });
}

/** Renumber the embedded items of one page in place (see the module comment); returns the map. */
export function renumberEmbedded(mdast) {
  const numbers = embeddedNumbers(mdast);
  if (!Object.keys(numbers).length) return numbers;
  walk(mdast, (node) => {
    if (node.type === 'container' && node.source?.url) {
      const item = numbers[node.identifier ?? node.source?.label];
      if (item) node.enumerator = item.to;
    }
    if (node.type === 'captionNumber' || (node.type === 'crossReference' && !node.remote)) {
      const item = numbers[node.identifier];
      // A cross-reference from this page to another page's item keeps that page's number.
      if (item && !(node.type === 'crossReference' && node.url)) {
        node.enumerator = item.to;
        renumberText(node, item.from, item.to);
      }
    }
  });
  return numbers;
}
