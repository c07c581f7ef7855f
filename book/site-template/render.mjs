// `myst build --html` runs this (template.yml build.render) with CONTENT_CDN, the address of
// mystmd's content server, and BUILD_DIRECTORY, where the static site goes (_build/html).
// BASE_URL, when set, prefixes every link (for a site served below a path).
// Problems go to stderr, which mystmd shows; they carry mystmd's own warning/error marks so
// `semi3lib.book.site.build_site(strict=True)` fails on them.
import { buildStatic } from './lib/site.mjs';

const cdnUrl = process.env.CONTENT_CDN;
const outDir = process.env.BUILD_DIRECTORY;
if (!cdnUrl || !outDir) {
  console.error('\u26d4 render.mjs: CONTENT_CDN and BUILD_DIRECTORY must be set (run it through `myst build --html`)');
  process.exit(2);
}
try {
  await buildStatic({
    cdnUrl,
    outDir,
    base: (process.env.BASE_URL ?? '').replace(/\/$/, ''),
    warn: (message) => console.error(`\u26a0\ufe0f site template: ${message}`),
  });
} catch (err) {
  console.error(`\u26d4 site template: ${err.message}`);
  process.exit(1);
}
