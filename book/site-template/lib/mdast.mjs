// MyST mdast (as served by mystmd's content server) -> HTML.
//
// Handles the node types a book of executed notebooks uses: text and inline markup, headings,
// lists, tables, code, math (KaTeX, rendered here so no script runs in the reader's browser),
// images, figures and their captions, cross-references, admonitions, dropdowns, footnotes,
// notebook cells and their outputs (HTML such as pandas tables, images, text, streams and
// errors). An unknown node renders its children inside a <div> naming its type, and is
// reported, so new content degrades visibly instead of disappearing.
//
// The reader's view of a notebook ("the paper view") follows a few rules, each in one place:
// code is folded unless its cell is tagged `show-input` (`_block`); test directives such as
// `# NBVAL_CHECK_OUTPUT` are dropped from code (`_code`); printed text wraps, its tables become
// tables and a long print is folded after its first lines (`streamHtml`); every table can
// stack on a phone (`tables.mjs`); display maths wraps at its operators (`_math`).

import katex from 'katex';
import { escapeHtml, groupCounts, stripAnsi, stripTestDirectives } from './text.mjs';
import { annotateTables, countText, splitTextTables, STACK_MIN_COLUMNS, wordsText } from './tables.mjs';

export { escapeHtml };

// A printed output longer than this many lines shows its first PREVIEW_LINES and folds the rest
// (chapter 4's resolved config is ~80 lines).
export const LONG_OUTPUT_LINES = 24;
export const PREVIEW_LINES = 8;

const IMAGE_MIMES = ['image/svg+xml', 'image/png', 'image/jpeg', 'image/gif', 'image/webp'];

const ADMONITION_TITLES = {
  note: 'Note',
  tip: 'Tip',
  hint: 'Hint',
  important: 'Important',
  attention: 'Attention',
  caution: 'Caution',
  warning: 'Warning',
  danger: 'Danger',
  error: 'Error',
  seealso: 'See also',
  admonition: 'Note',
};

/**
 * A renderer for one page.
 *
 * ctx: {
 *   assetUrl(path) -> href for a file in mystmd's public folder (images, notebooks),
 *   pageUrl(url) -> href for an internal page url such as "/evaluation",
 *   fetchText(path) -> Promise<string> for outputs mystmd stored as files,
 *   macros: KaTeX macros from the project's `math:` frontmatter,
 *   warn(message)
 * }
 */
export class MdastRenderer {
  constructor(ctx) {
    this.ctx = ctx;
    this.footnotes = [];
  }

  async render(tree) {
    const body = await this.node(tree);
    return body + this.footnoteSection();
  }

  async children(node) {
    const parts = [];
    for (const child of node.children ?? []) parts.push(await this.node(child));
    return parts.join('');
  }

  idAttr(node) {
    const id = node.html_id ?? node.identifier;
    return id ? ` id="${escapeHtml(id)}"` : '';
  }

  math(value, displayMode) {
    const options = { throwOnError: true, macros: { ...(this.ctx.macros ?? {}) }, output: 'htmlAndMathml' };
    try {
      if (displayMode) {
        // Display maths is set in display style but laid out as inline maths, so the browser
        // may break the line after a top-level relation or operator (=, +, \qquad-separated
        // parts) when the column is narrower than the formula; KaTeX's display mode never
        // breaks. Environments that exist only in display mode (align, gather) fall back to it.
        try {
          return katex.renderToString(`\\displaystyle ${value}`, { ...options, displayMode: false });
        } catch {
          return katex.renderToString(value, { ...options, displayMode: true });
        }
      }
      return katex.renderToString(value, { ...options, displayMode: false });
    } catch (err) {
      this.ctx.warn?.(`KaTeX could not render ${JSON.stringify(value)}: ${err.message}`);
      return `<code class="math-error" title="${escapeHtml(err.message)}">${escapeHtml(value)}</code>`;
    }
  }

  async node(node) {
    if (!node) return '';
    if (node.visibility === 'remove') return '';
    const handler = this[`_${node.type}`];
    if (handler) return handler.call(this, node);
    this.ctx.warn?.(`no renderer for MyST node type "${node.type}"; rendering its children`);
    return `<div class="myst-${escapeHtml(node.type)}"${this.idAttr(node)}>${await this.children(node)}</div>`;
  }

  // --- structure ---------------------------------------------------------------------------
  async _root(node) {
    return this.children(node);
  }

  async _block(node) {
    const kind = node.kind === 'notebook-code' ? ' cell-code' : node.kind === 'notebook-content' ? ' cell-markdown' : '';
    const cls = `block${kind}${node.class ? ` ${escapeHtml(node.class)}` : ''}`;
    // Papermill's parameter cells keep their tags: name what their toggle hides.
    const tags = node.data?.tags ?? [];
    const label = tags.includes('injected-parameters') ? 'Show the parameters this page was run with'
      : tags.includes('parameters') ? 'Show the default parameters' : null;
    if (label) for (const child of node.children ?? []) if (child.type === 'code') child.toggleLabel = label;
    // The rule for code: a notebook's code is one click away unless its cell asks to be read
    // (`show-input`); the prose, the outputs and the figures carry the chapter.
    // A `hide-cell` cell is folded whole, so its code is not folded a second time inside.
    if (node.kind === 'notebook-code') markCode(node, tags.includes('show-input') || node.visibility === 'hide' ? 'show' : 'fold');
    const html = `<div class="${cls}"${this.idAttr(node)}>${await this.children(node)}</div>`;
    // A `hide-cell` tag: the whole cell, code and output, one click away.
    if (node.visibility === 'hide') return `<details class="hidden-cell"><summary>Show cell</summary>${html}</details>`;
    return html;
  }

  async _div(node) {
    return `<div class="${escapeHtml(node.class ?? '')}"${this.idAttr(node)}>${await this.children(node)}</div>`;
  }

  async _span(node) {
    return `<span class="${escapeHtml(node.class ?? '')}"${this.idAttr(node)}>${await this.children(node)}</span>`;
  }

  async _paragraph(node) {
    return `<p${this.idAttr(node)}>${await this.children(node)}</p>\n`;
  }

  async _heading(node) {
    const depth = Math.min(Math.max(node.depth ?? 2, 1), 6);
    const id = node.html_id ?? node.identifier;
    const number = node.enumerator && node.enumerated !== false && node.enumerator !== '' ? `<span class="heading-number">${escapeHtml(node.enumerator)}</span> ` : '';
    const anchor = id ? `<a class="heading-anchor" href="#${escapeHtml(id)}" aria-label="Link to this section">#</a>` : '';
    return `<h${depth}${this.idAttr(node)}>${number}${await this.children(node)}${anchor}</h${depth}>\n`;
  }

  async _thematicBreak() {
    return '<hr>\n';
  }

  async _blockquote(node) {
    return `<blockquote${this.idAttr(node)}>${await this.children(node)}</blockquote>\n`;
  }

  async _list(node) {
    const tag = node.ordered ? 'ol' : 'ul';
    const start = node.ordered && node.start && node.start !== 1 ? ` start="${Number(node.start)}"` : '';
    return `<${tag}${start}>${await this.children(node)}</${tag}>\n`;
  }

  async _listItem(node) {
    const check = typeof node.checked === 'boolean' ? `<input type="checkbox" disabled${node.checked ? ' checked' : ''}> ` : '';
    return `<li>${check}${await this.children(node)}</li>\n`;
  }

  async _definitionList(node) {
    return `<dl>${await this.children(node)}</dl>\n`;
  }

  async _definitionTerm(node) {
    return `<dt>${await this.children(node)}</dt>`;
  }

  async _definitionDescription(node) {
    return `<dd>${await this.children(node)}</dd>`;
  }

  // --- inline ------------------------------------------------------------------------------
  async _text(node) {
    return escapeHtml(node.value);
  }

  async _emphasis(node) {
    return `<em>${await this.children(node)}</em>`;
  }

  async _strong(node) {
    return `<strong>${await this.children(node)}</strong>`;
  }

  async _underline(node) {
    return `<u>${await this.children(node)}</u>`;
  }

  async _delete(node) {
    return `<del>${await this.children(node)}</del>`;
  }

  async _subscript(node) {
    return `<sub>${await this.children(node)}</sub>`;
  }

  async _superscript(node) {
    return `<sup>${await this.children(node)}</sup>`;
  }

  async _smallcaps(node) {
    return `<span class="smallcaps">${await this.children(node)}</span>`;
  }

  async _keyboard(node) {
    return `<kbd>${await this.children(node)}</kbd>`;
  }

  async _abbreviation(node) {
    return `<abbr title="${escapeHtml(node.title ?? '')}">${await this.children(node)}</abbr>`;
  }

  async _break() {
    return '<br>';
  }

  async _inlineCode(node) {
    // A long path may break after a slash (in a table cell, on a phone), not inside a name.
    return `<code>${escapeHtml(node.value).replace(/\/(?=.)/g, '/<wbr>')}</code>`;
  }

  async _html(node) {
    return node.value ?? '';
  }

  async _comment() {
    return '';
  }

  async _mystTarget(node) {
    return `<span${this.idAttr(node)}></span>`;
  }

  async _link(node) {
    const url = node.internal ? this.ctx.pageUrl(node.url) : node.url;
    const external = !node.internal && /^https?:/.test(node.url ?? '');
    const rel = external ? ' rel="noopener" class="external"' : '';
    return `<a href="${escapeHtml(url)}"${rel}>${await this.children(node)}</a>`;
  }

  async _crossReference(node) {
    const id = node.html_id ?? node.identifier;
    const page = node.url ? this.ctx.pageUrl(node.url) : '';
    const href = `${page}#${id ?? ''}`;
    const body = (await this.children(node)) || escapeHtml(node.label ?? id ?? '');
    const cls = node.resolved === false ? 'xref unresolved' : 'xref';
    return `<a class="${cls}" href="${escapeHtml(href)}">${body}</a>`;
  }

  async _cite(node) {
    const body = (await this.children(node)) || escapeHtml(node.label);
    return `<cite class="cite" title="${escapeHtml(node.label ?? '')}">${body}</cite>`;
  }

  async _citeGroup(node) {
    const parts = [];
    for (const child of node.children ?? []) parts.push(await this.node(child));
    const text = parts.join('; ');
    return node.kind === 'narrative' ? text : `(${text})`;
  }

  async _footnoteReference(node) {
    const n = node.enumerator ?? node.label ?? node.identifier;
    return `<sup class="footnote-ref"><a href="#fn-${escapeHtml(node.identifier)}" id="fnref-${escapeHtml(node.identifier)}">${escapeHtml(n)}</a></sup>`;
  }

  async _footnoteDefinition(node) {
    this.footnotes.push({ node, html: await this.children(node) });
    return '';
  }

  footnoteSection() {
    if (!this.footnotes.length) return '';
    const items = this.footnotes
      .map(({ node, html }) => `<li id="fn-${escapeHtml(node.identifier)}">${html} <a href="#fnref-${escapeHtml(node.identifier)}" aria-label="Back to the text">↩</a></li>`)
      .join('\n');
    return `<section class="footnotes"><h2>Footnotes</h2><ol>${items}</ol></section>`;
  }

  // --- math --------------------------------------------------------------------------------
  async _inlineMath(node) {
    return `<span class="math-inline">${this.math(node.value, false)}</span>`;
  }

  async _math(node) {
    // The number sits in its own column beside the formula, never over it.
    const number = node.enumerator ? `<span class="equation-number">(${escapeHtml(node.enumerator)})</span>` : '';
    return `<div class="math math-display${number ? ' numbered' : ''}"${this.idAttr(node)}><div class="math-body">${this.math(node.value, true)}</div>${number}</div>\n`;
  }

  // --- code --------------------------------------------------------------------------------
  async _code(node) {
    const lang = node.lang ? ` class="language-${escapeHtml(node.lang)}"` : '';
    const cls = node.executable ? 'code-cell-input' : 'code-block';
    const source = node.executable ? stripTestDirectives(node.value) : String(node.value ?? '');
    const pre = `<pre class="${cls}"${this.idAttr(node)}><code${lang}>${escapeHtml(source.replace(/\n+$/, ''))}</code></pre>\n`;
    const fold = node.visibility === 'hide' || (node.executable && node.readerView === 'fold');
    if (fold) return `<details class="hidden-input"><summary>${escapeHtml(node.toggleLabel ?? 'Show code')}</summary>${pre}</details>`;
    return pre;
  }

  // --- notebook outputs --------------------------------------------------------------------
  async _outputs(node) {
    const inner = await this.children(node);
    if (!inner.trim()) return '';
    const html = `<div class="cell-outputs"${this.idAttr(node)}>${inner}</div>\n`;
    if (node.visibility === 'hide') return `<details class="hidden-output"><summary>Show output</summary>${html}</details>`;
    return html;
  }

  async _output(node) {
    const out = node.jupyter_data;
    if (!out) return this.children(node);
    const id = this.idAttr(node);
    switch (out.output_type) {
      case 'stream': {
        const text = Array.isArray(out.text) ? out.text.join('') : out.text;
        return printedHtml(stripAnsi(text), `output output-stream ${escapeHtml(out.name ?? 'stdout')}`, id);
      }
      case 'error': {
        const tb = (out.traceback ?? [`${out.ename}: ${out.evalue}`]).join('\n');
        return `<pre class="output output-error"${id}>${escapeHtml(stripAnsi(tb))}</pre>`;
      }
      case 'execute_result':
      case 'display_data':
      case 'update_display_data':
        return `<div class="output output-data"${id}>${await this.mimeBundle(out.data ?? {}, out.metadata ?? {})}</div>`;
      default:
        this.ctx.warn?.(`unknown output type ${out.output_type}`);
        return '';
    }
  }

  async mimeValue(entry) {
    if (entry == null) return '';
    if (typeof entry === 'string') return entry;
    if (Array.isArray(entry)) return entry.join('');
    if (entry.content != null) return Array.isArray(entry.content) ? entry.content.join('') : entry.content;
    if (entry.path) return this.ctx.fetchText(entry.path);
    return '';
  }

  async mimeBundle(data, metadata) {
    const mimes = Object.keys(data);
    if (mimes.includes('text/html')) {
      return `<div class="output-html">${annotateTables(await this.mimeValue(data['text/html']))}</div>`;
    }
    const image = IMAGE_MIMES.find((m) => mimes.includes(m));
    if (image) {
      const entry = data[image];
      const meta = metadata?.[image] ?? {};
      let src;
      if (entry && typeof entry === 'object' && entry.path) src = this.ctx.assetUrl(entry.path);
      else if (image === 'image/svg+xml') return `<div class="output-svg">${await this.mimeValue(entry)}</div>`;
      else src = `data:${image};base64,${(await this.mimeValue(entry)).replace(/\s/g, '')}`;
      const alt = data['text/plain'] ? escapeHtml(stripAnsi(await this.mimeValue(data['text/plain']))) : 'output image';
      const width = meta.width ? ` width="${Number(meta.width)}"` : '';
      const img = `<img class="output-image" src="${escapeHtml(src)}" alt="${alt}"${width} loading="lazy">`;
      // On a phone a wide figure is small: it opens full size in the browser, which can zoom.
      if (src.startsWith('data:')) return img;
      return `<a class="image-link" href="${escapeHtml(src)}" title="Open the figure full size">${img}</a><a class="open-full" href="${escapeHtml(src)}">Open the figure full size</a>`;
    }
    if (mimes.includes('text/markdown')) {
      return `<pre class="output-text">${escapeHtml(await this.mimeValue(data['text/markdown']))}</pre>`;
    }
    if (mimes.includes('text/latex')) {
      const tex = (await this.mimeValue(data['text/latex'])).trim().replace(/^\$\$?|\$\$?$/g, '');
      return `<div class="math-display">${this.math(tex, true)}</div>`;
    }
    if (mimes.includes('text/plain')) {
      return printedHtml(stripAnsi(await this.mimeValue(data['text/plain'])), 'output-text', '');
    }
    if (mimes.includes('application/json')) {
      return `<pre class="output-text">${escapeHtml(JSON.stringify(data['application/json'].content ?? data['application/json'], null, 2))}</pre>`;
    }
    return '';
  }

  // --- images, figures, tables -------------------------------------------------------------
  async _image(node) {
    const src = /^(https?:|data:)/.test(node.url ?? '') ? node.url : this.ctx.assetUrl(node.url);
    const attrs = [`src="${escapeHtml(src)}"`, `alt="${escapeHtml(node.alt ?? '')}"`];
    if (node.title) attrs.push(`title="${escapeHtml(node.title)}"`);
    const style = [];
    if (node.width) style.push(`width:${escapeHtml(node.width)}`);
    if (node.height) style.push(`height:${escapeHtml(node.height)}`);
    if (style.length) attrs.push(`style="${style.join(';')}"`);
    const align = node.align ? ` align-${escapeHtml(node.align)}` : '';
    return `<img class="image${align}"${this.idAttr(node)} ${attrs.join(' ')} loading="lazy">`;
  }

  async _container(node) {
    // A notebook cell's code comes first; then a table's caption sits above its body and a
    // figure's below, as in print.
    const children = node.children ?? [];
    const code = children.filter((c) => c.type === 'code');
    const caption = children.filter((c) => c.type === 'caption');
    const body = children.filter((c) => c.type !== 'caption' && c.type !== 'code');
    const html = async (nodes) => (await Promise.all(nodes.map((c) => this.node(c)))).join('');
    let [codeHtml, captionHtml, bodyHtml, sourceHtml] = [await html(code), await html(caption), await html(body), ''];
    if (node.source?.url) {
      // Embedded from another page (`{embed}`): the code stays one click away, the origin is named.
      if (codeHtml) codeHtml = `<details class="hidden-input"><summary>Show the code</summary>${codeHtml}</details>`;
      const href = `${this.ctx.pageUrl(node.source.url)}#${node.source.label ?? ''}`;
      sourceHtml = `<p class="figure-source">From <a href="${escapeHtml(href)}">${escapeHtml(node.source.title ?? node.source.url)}</a></p>`;
    }
    const parts = node.kind === 'table' ? [codeHtml, captionHtml, bodyHtml, sourceHtml] : [codeHtml, bodyHtml, captionHtml, sourceHtml];
    const kind = escapeHtml(node.kind ?? 'figure');
    const cls = `figure figure-${kind}${node.class ? ` ${escapeHtml(node.class)}` : ''}${node.subcontainer ? ' subfigure' : ''}`;
    return `<figure class="${cls}"${this.idAttr(node)}>${parts.join('')}</figure>\n`;
  }

  async _caption(node) {
    return `<figcaption>${await this.children(node)}</figcaption>`;
  }

  async _legend(node) {
    return `<div class="figure-legend">${await this.children(node)}</div>`;
  }

  async _captionNumber(node) {
    return `<span class="caption-number">${await this.children(node)}</span> `;
  }

  async _table(node) {
    // The header row's words label each body cell, for the stacked layout on a phone.
    const rows = node.children ?? [];
    const header = rows[0]?.children?.every((c) => c.header) ? rows[0] : null;
    const labels = header ? header.children.map((c) => plainText(c)) : [];
    const parts = [];
    for (const row of rows) {
      let column = 0;
      const cells = [];
      for (const cell of row.children ?? []) {
        cells.push(await this._tableCell(cell, row === header ? '' : labels[column]));
        column += Number(cell.colspan ?? 1);
      }
      parts.push(`<tr>${cells.join('')}</tr>`);
    }
    const head = header ? `<thead>${parts.shift()}</thead>` : '';
    const stack = labels.length >= STACK_MIN_COLUMNS ? ' class="stack"' : '';
    return `<div class="table-wrap"><table${stack}${this.idAttr(node)}>${head}<tbody>${parts.join('')}</tbody></table></div>\n`;
  }

  async _tableRow(node) {
    return `<tr>${await this.children(node)}</tr>`;
  }

  async _tableCell(node, label = '') {
    const tag = node.header ? 'th' : 'td';
    const attrs = [];
    if (label && !node.header) attrs.push(`data-label="${escapeHtml(label)}"`);
    if (node.align) attrs.push(`style="text-align:${escapeHtml(node.align)}"`);
    if (node.colspan) attrs.push(`colspan="${Number(node.colspan)}"`);
    if (node.rowspan) attrs.push(`rowspan="${Number(node.rowspan)}"`);
    return `<${tag}${attrs.length ? ` ${attrs.join(' ')}` : ''}>${await this.children(node)}</${tag}>`;
  }

  async _iframe(node) {
    return `<div class="iframe-wrap"><iframe src="${escapeHtml(node.src)}" loading="lazy" title="${escapeHtml(node.title ?? 'embedded page')}"></iframe></div>`;
  }

  // --- directives ----------------------------------------------------------------------------
  async _admonition(node) {
    const kind = node.kind ?? 'note';
    const hasTitle = node.children?.[0]?.type === 'admonitionTitle';
    const title = hasTitle ? '' : `<p class="admonition-title">${ADMONITION_TITLES[kind] ?? escapeHtml(kind)}</p>`;
    const body = `${title}${await this.children(node)}`;
    const cls = `admonition admonition-${escapeHtml(kind)}${node.class ? ` ${escapeHtml(node.class)}` : ''}`;
    if (node.class?.includes('dropdown')) return `<details class="${cls}"${this.idAttr(node)}>${body.replace(/^<p class="admonition-title">(.*?)<\/p>/, '<summary class="admonition-title">$1</summary>')}</details>\n`;
    return `<aside class="${cls}"${this.idAttr(node)}>${body}</aside>\n`;
  }

  async _admonitionTitle(node) {
    return `<p class="admonition-title">${await this.children(node)}</p>`;
  }

  async _details(node) {
    return `<details class="dropdown"${node.open ? ' open' : ''}${this.idAttr(node)}>${await this.children(node)}</details>\n`;
  }

  async _summary(node) {
    return `<summary>${await this.children(node)}</summary>`;
  }

  async _aside(node) {
    return `<aside class="margin ${escapeHtml(node.kind ?? '')}"${this.idAttr(node)}>${await this.children(node)}</aside>\n`;
  }

  async _embed(node) {
    return `<div class="embed"${this.idAttr(node)}>${await this.children(node)}</div>`;
  }

  async _include(node) {
    return this.children(node);
  }

  async _mystDirective(node) {
    return `<div class="directive directive-${escapeHtml(node.name)}">${await this.children(node)}</div>`;
  }

  async _mystRole(node) {
    return `<span class="role role-${escapeHtml(node.name)}">${await this.children(node)}</span>`;
  }

  async _tabSet(node) {
    return `<div class="tab-set">${await this.children(node)}</div>`;
  }

  async _tabItem(node) {
    return `<section class="tab-item"><h4 class="tab-title">${escapeHtml(node.title ?? '')}</h4>${await this.children(node)}</section>`;
  }

  async _card(node) {
    return `<div class="card">${await this.children(node)}</div>`;
  }

  async _cardTitle(node) {
    return `<p class="card-title">${await this.children(node)}</p>`;
  }

  async _grid(node) {
    return `<div class="grid">${await this.children(node)}</div>`;
  }

  async _proof(node) {
    const title = `${escapeHtml((node.kind ?? 'proof').replace(/^./, (c) => c.toUpperCase()))}${node.enumerator ? ` ${escapeHtml(node.enumerator)}` : ''}`;
    return `<aside class="admonition admonition-proof"${this.idAttr(node)}><p class="admonition-title">${title}</p>${await this.children(node)}</aside>`;
  }
}

/** The text of an mdast node (its text and inline code, concatenated). */
export function plainText(node) {
  if (node.type === 'text' || node.type === 'inlineCode') return node.value ?? '';
  return (node.children ?? []).map(plainText).join('');
}

/** Mark the executable code of one notebook cell (nested containers included) shown or folded. */
function markCode(node, view) {
  for (const child of node.children ?? []) {
    if (child.type === 'code' && child.executable) child.readerView = view;
    else if (child.type !== 'block') markCode(child, view);
  }
}

/**
 * Printed text (a stream, a plain-text result) for a reader: fixed-width tables become tables,
 * counts get thousands separators, lines wrap (the stylesheet), and a print longer than
 * LONG_OUTPUT_LINES shows its first PREVIEW_LINES with the rest one click away.
 */
export function printedHtml(text, cls, idAttr) {
  const parts = splitTextTables(text);
  const html = parts.map((part) => {
    if (part.table) return `<div class="table-wrap text-table-wrap">${part.table}</div>`;
    const lines = part.text.replace(/\n$/, '').split('\n');
    const pre = (some) => `<pre class="${cls}">${escapeHtml(groupCounts(some.join('\n')))}</pre>`;
    if (lines.length <= LONG_OUTPUT_LINES) return pre(lines);
    const rest = lines.slice(PREVIEW_LINES);
    return `${pre(lines.slice(0, PREVIEW_LINES))}<details class="hidden-output long-output"><summary>Show the other ${rest.length} lines</summary>${pre(rest)}</details>`;
  });
  if (html.length === 1 && !parts[0].table && !html[0].includes('<details')) return html[0].replace('<pre class=', `<pre${idAttr} class=`);
  return `<div class="printed"${idAttr}>${html.join('')}</div>`;
}

// Re-exported for the site's tests of the rules.
export { countText, wordsText };
