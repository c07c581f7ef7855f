// `myst start` runs this (template.yml build.start) for a live preview, with CONTENT_CDN_PORT
// (mystmd's content server) and PORT. Pages are rendered on request by the same code as the
// static build; mystmd reads the "http://" line below to know the server is up.
import fs from 'node:fs';
import http from 'node:http';
import { ContentServer, projectPages, renderPage, staticFiles } from './lib/site.mjs';

const host = process.env.HOST || 'localhost';
const port = Number(process.env.PORT || 3000);
const cdn = new ContentServer(`http://${host}:${process.env.CONTENT_CDN_PORT || 3100}`);
const statics = new Map(staticFiles().map((f) => [`/_static/${f.to}`, f.from]));
const TYPES = { '.css': 'text/css', '.woff2': 'font/woff2', '.png': 'image/png', '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.ipynb': 'application/json' };
const typeOf = (p) => TYPES[p.slice(p.lastIndexOf('.'))] ?? 'application/octet-stream';

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, `http://${host}`);
    try {
      if (statics.has(url.pathname)) {
        res.writeHead(200, { 'content-type': typeOf(url.pathname) });
        return res.end(fs.readFileSync(statics.get(url.pathname)));
      }
      if (url.pathname.startsWith('/build/')) {
        const body = await cdn.get(url.pathname.slice('/build'.length), 'buffer');
        res.writeHead(200, { 'content-type': typeOf(url.pathname) });
        return res.end(body);
      }
      const config = await cdn.config();
      const project = config.projects[0];
      const slug = url.pathname.replace(/^\/|\/$/g, '') || project.index;
      if (!projectPages(project).some((p) => p.slug === slug)) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end(`no page ${slug}`);
      }
      const html = await renderPage({ cdn, config, project, slug, base: '', warn: (m) => console.log(`warning: ${m}`) });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(html);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      return res.end(String(err.stack ?? err));
    }
  })
  .listen(port, host, () => console.log(`Semi3 book preview at http://${host}:${port}`));
