// The site around the pages: reading mystmd's content server, the page layout (sidebar with
// the table of contents, page header, outline, previous/next), and the static build.
// Below 900 px the sidebar folds behind the top bar's "Contents" button: a checkbox and its
// label, so the site still runs no script (static/book.css).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MdastRenderer, escapeHtml } from './mdast.mjs';
import { renumberEmbedded } from './numbering.mjs';

export const TEMPLATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KATEX_DIST = path.join(TEMPLATE_DIR, 'node_modules', 'katex', 'dist');

/** The mystmd content server: config.json, content/<slug>.json and the public files. */
export class ContentServer {
  constructor(baseUrl) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
  }

  async get(urlPath, as = 'json') {
    const url = `${this.baseUrl}${urlPath}`;
    const resp = await fetch(url);
    if (!resp.ok) throw new Error(`GET ${url} answered ${resp.status} ${resp.statusText}`);
    if (as === 'json') return resp.json();
    if (as === 'text') return resp.text();
    return Buffer.from(await resp.arrayBuffer());
  }

  config() {
    return this.get('/config.json');
  }

  page(project, slug) {
    const prefix = project.slug ? `${project.slug}/` : '';
    return this.get(`/content/${prefix}${slug}.json`);
  }
}

/** The pages of a project in reading order: the index first, then the table of contents. */
export function projectPages(project) {
  const index = { slug: project.index, title: project.title, short_title: 'Introduction', level: 1, isIndex: true };
  return [index, ...(project.pages ?? []).filter((p) => p.slug)];
}

export function pageHref(base, project, slug) {
  const prefix = project.slug ? `/${project.slug}` : '';
  return slug === project.index ? `${base}${prefix}/` : `${base}${prefix}/${slug}/`;
}

/**
 * The sidebar: every page in table-of-contents order, parts as headings. Pages inside the
 * part named by the site option `numbered_part` are numbered as chapters.
 */
export function chapterNumbers(config, project) {
  const numbered = config.options?.numbered_part;
  const numbers = new Map();
  let inPart = false;
  let n = 0;
  for (const entry of project.pages ?? []) {
    if (!entry.slug) inPart = numbered != null && entry.title === numbered;
    else if (inPart) numbers.set(entry.slug, (n += 1));
  }
  return numbers;
}

function navigation(base, config, project, current) {
  const numbers = chapterNumbers(config, project);
  const index = projectPages(project)[0];
  const entries = [index, ...(project.pages ?? [])];
  const items = entries.map((p) => {
    if (!p.slug) return `<li class="toc-part">${escapeHtml(p.title)}</li>`;
    const active = p.slug === current ? ' aria-current="page" class="active"' : '';
    const label = escapeHtml(p.short_title || p.title);
    const number = numbers.has(p.slug) ? `<span class="toc-number">${numbers.get(p.slug)}</span>` : '';
    return `<li class="toc-level-${p.level ?? 1}"><a href="${escapeHtml(pageHref(base, project, p.slug))}"${active} title="${escapeHtml(p.title)}">${number}<span class="toc-title">${label}</span></a></li>`;
  });
  return `<ol class="toc">${items.join('\n')}</ol>`;
}

function partOf(project, slug) {
  let part = null;
  for (const entry of project.pages ?? []) {
    if (!entry.slug) part = entry.title;
    else if (entry.slug === slug) return entry.level > 1 ? part : null;
  }
  return null;
}

function outline(mdast) {
  const headings = [];
  const walk = (node) => {
    if (node.type === 'heading' && node.depth === 2 && (node.html_id || node.identifier)) {
      const text = [];
      const collect = (n) => (n.type === 'text' || n.type === 'inlineCode' ? text.push(n.value) : (n.children ?? []).forEach(collect));
      collect(node);
      headings.push({ id: node.html_id ?? node.identifier, text: text.join('') });
    }
    (node.children ?? []).forEach(walk);
  };
  walk(mdast);
  if (headings.length < 2) return '';
  const items = headings.map((h) => `<li><a href="#${escapeHtml(h.id)}">${escapeHtml(h.text)}</a></li>`).join('');
  return `<nav class="outline" aria-label="On this page"><p class="outline-title">On this page</p><ul>${items}</ul></nav>`;
}

function authorsLine(frontmatter) {
  const names = (frontmatter.authors ?? []).map((a) => a.name).filter(Boolean);
  return names.length ? `<p class="page-authors">${escapeHtml(names.join(', '))}</p>` : '';
}

function licenceLine(frontmatter) {
  const { license } = frontmatter;
  if (!license) return '';
  const parts = [];
  if (license.content) parts.push(`Text: ${escapeHtml(license.content.name ?? license.content.id)}`);
  if (license.code) parts.push(`Code: ${escapeHtml(license.code.name ?? license.code.id)}`);
  return parts.join(' · ');
}

/**
 * Render one page to a complete HTML document. `assets` collects the public files the page
 * uses so a static build can copy them.
 */
export async function renderPage({ cdn, config, project, slug, base, assets, warn }) {
  const data = await cdn.page(project, slug);
  renumberEmbedded(data.mdast); // one figure and table numbering per page
  const pages = projectPages(project);
  const position = pages.findIndex((p) => p.slug === slug);
  const fm = data.frontmatter ?? {};
  const assetUrl = (p) => {
    if (!p || /^(https?:|data:|#)/.test(p)) return p;
    const rel = p.replace(/^\//, '');
    assets?.add(rel);
    return `${base}/build/${rel}`;
  };
  const pageUrl = (url) => {
    if (!url || /^(https?:|mailto:|#)/.test(url)) return url;
    const [target, hash] = url.split('#');
    const clean = target.replace(/^\//, '').replace(/\/$/, '');
    const known = pages.find((p) => p.slug === clean || (clean === '' && p.isIndex));
    const href = known ? pageHref(base, project, known.slug) : `${base}/${clean}`;
    return hash ? `${href}#${hash}` : href;
  };
  const renderer = new MdastRenderer({
    assetUrl,
    pageUrl,
    fetchText: (p) => cdn.get(p, 'text'),
    macros: fm.math ?? project.math ?? {},
    warn: (message) => warn?.(`${slug}: ${message}`),
  });
  const body = await renderer.render(data.mdast);

  const siteTitle = config.title || project.short_title || project.title;
  const isIndex = slug === project.index;
  const chapter = chapterNumbers(config, project).get(slug);
  const kicker = chapter ? `Chapter ${chapter}` : escapeHtml(isIndex ? project.title : partOf(project, slug) ?? siteTitle);
  let abstract = '';
  if (isIndex && project.parts?.abstract?.mdast) {
    const abstractHtml = await new MdastRenderer(renderer.ctx).render(project.parts.abstract.mdast);
    abstract = `<section class="abstract" aria-label="Abstract"><h2>Abstract</h2>${abstractHtml}</section>`;
  }
  const notebook = (fm.exports ?? []).find((e) => e.format === 'ipynb' && e.url);
  const source = notebook
    ? `<p class="page-source">Executed notebook: <a href="${escapeHtml(assetUrl(notebook.url))}" download="${escapeHtml(notebook.filename ?? '')}">${escapeHtml(notebook.filename ?? 'download')}</a></p>`
    : '';
  const prev = position > 0 ? pages[position - 1] : null;
  const next = position >= 0 && position < pages.length - 1 ? pages[position + 1] : null;
  const pager = [
    prev ? `<a class="pager-prev" href="${escapeHtml(pageHref(base, project, prev.slug))}"><span>Previous</span>${escapeHtml(prev.short_title || prev.title)}</a>` : '<span></span>',
    next ? `<a class="pager-next" href="${escapeHtml(pageHref(base, project, next.slug))}"><span>Next</span>${escapeHtml(next.short_title || next.title)}</a>` : '<span></span>',
  ].join('');
  const licence = licenceLine(fm);

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(fm.title ?? slug)} · ${escapeHtml(siteTitle)}</title>
${fm.description ? `<meta name="description" content="${escapeHtml(fm.description)}">` : ''}
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${base}/_static/katex/katex.min.css">
<link rel="stylesheet" href="${base}/_static/book.css">
</head>
<body>
<a class="skip-link" href="#content">Skip to the text</a>
<input type="checkbox" id="nav-toggle" class="nav-toggle" aria-controls="site-nav" aria-label="Show the table of contents">
<header class="topbar">
<label for="nav-toggle" class="menu-button" aria-hidden="true"><span class="menu-icon"></span>Contents</label>
<a class="topbar-brand" href="${escapeHtml(pageHref(base, project, project.index))}">${escapeHtml(siteTitle)}</a>
</header>
<div class="layout">
<nav class="sidebar" id="site-nav" aria-label="Table of contents">
<a class="brand" href="${escapeHtml(pageHref(base, project, project.index))}">${escapeHtml(siteTitle)}</a>
<p class="brand-subtitle">${escapeHtml(project.title)}</p>
${navigation(base, config, project, slug)}
</nav>
<main id="content" class="content">
<header class="page-header">
<p class="kicker">${kicker}</p>
<h1 class="page-title">${escapeHtml(fm.title ?? slug)}</h1>
${fm.subtitle ? `<p class="page-subtitle">${escapeHtml(fm.subtitle)}</p>` : ''}
${authorsLine(fm)}
${source}
</header>
${abstract}
<article class="page-body">
${body}
</article>
<nav class="pager" aria-label="Previous and next chapter">${pager}</nav>
<footer class="site-footer">${licence ? `${licence} · ` : ''}Built with MyST (mystmd ${escapeHtml(config.myst ?? '')}) and an offline site template.</footer>
</main>
${outline(data.mdast)}
</div>
</body>
</html>
`;
}

/** The template's own static files: the stylesheet and KaTeX's stylesheet and fonts. */
export function staticFiles() {
  if (!fs.existsSync(KATEX_DIST)) {
    throw new Error(`KaTeX is not installed in ${TEMPLATE_DIR}: run \`npm ci\` there first`);
  }
  const files = [
    { from: path.join(TEMPLATE_DIR, 'static', 'book.css'), to: 'book.css' },
    { from: path.join(KATEX_DIST, 'katex.min.css'), to: 'katex/katex.min.css' },
  ];
  for (const font of fs.readdirSync(path.join(KATEX_DIST, 'fonts'))) {
    if (font.endsWith('.woff2')) files.push({ from: path.join(KATEX_DIST, 'fonts', font), to: `katex/fonts/${font}` });
  }
  return files;
}

function write(outDir, rel, content) {
  const file = path.join(outDir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/** Write the whole static site into outDir; throws (after listing every problem) on failure. */
export async function buildStatic({ cdnUrl, outDir, base = '', log = console.log, warn = console.error }) {
  const cdn = new ContentServer(cdnUrl);
  const config = await cdn.config();
  const problems = [];
  const warnings = [];
  const assets = new Set();
  let written = 0;
  for (const project of config.projects ?? []) {
    for (const page of projectPages(project)) {
      try {
        const html = await renderPage({ cdn, config, project, slug: page.slug, base, assets, warn: (m) => warnings.push(m) });
        const prefix = project.slug ? `${project.slug}/` : '';
        write(outDir, page.slug === project.index ? `${prefix}index.html` : `${prefix}${page.slug}/index.html`, html);
        written += 1;
      } catch (err) {
        problems.push(`page ${page.slug}: ${err.message}`);
      }
    }
  }
  for (const rel of assets) {
    try {
      write(outDir, path.join('build', rel), await cdn.get(`/${rel}`, 'buffer'));
    } catch (err) {
      problems.push(`asset ${rel}: ${err.message}`);
    }
  }
  for (const file of staticFiles()) {
    write(outDir, path.join('_static', file.to), fs.readFileSync(file.from));
  }
  write(outDir, 'config.json', JSON.stringify(config));
  warnings.forEach((w) => warn(w));
  if (problems.length) throw new Error(`the site could not be rendered:\n  - ${problems.join('\n  - ')}`);
  log(`Rendered ${written} pages and ${assets.size} files into ${outDir}`);
  return { written, assets: [...assets], warnings };
}
