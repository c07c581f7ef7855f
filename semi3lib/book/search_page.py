"""The search page's files in the built site: ``_build/html/search-app/``.

- the page's code (``web/search.mjs``, ``web/preprocess.mjs``, ``web/strokes.mjs``, ``web/confidence.mjs``,
  ``web/search.css``);
- onnxruntime-web's WebAssembly runtime, from the npm packages locked in ``web/`` (installed
  with ``npm ci`` when missing; never a CDN), the ``.wasm`` gzipped (the page inflates it with
  the browser's DecompressionStream, so a static server without compression sends 3.5 MB,
  not 15);
- the export of ``semi3 export`` (``_build/search-export`` by default): manifest, encoder
  (gzipped), float16 gallery, thumbnails, example sketches; copied only if every file verifies
  against the manifest's sizes and sha256 (else the build stops, naming the wrong files).
  Without one the page says how to make it.

mystmd keeps a page's ``<div id="semi3-search">`` but drops ``<script>`` and ``<link>``
elements, so the page's script and stylesheet are added to the built pages that hold that div.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parents[1] / "interactive" / "web"
APP_DIR = "search-app"
DEFAULT_EXPORT = Path("_build") / "search-export"
MOUNT = 'id="semi3-search"'
PAGE_TAGS = (f'<link rel="stylesheet" href="/{APP_DIR}/search.css">\n'
             f'<script type="module" src="/{APP_DIR}/search.mjs"></script>\n')
PAGE_FILES = ("search.mjs", "preprocess.mjs", "strokes.mjs", "confidence.mjs", "search.css")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs")
ORT_WASM = "ort-wasm-simd-threaded.wasm"


def _gzip(source: Path, dest: Path) -> None:
    # mtime=0: the same input gives the same bytes, whatever the build's time.
    with source.open("rb") as fin, gzip.GzipFile(dest, "wb", compresslevel=9, mtime=0) as fout:
        shutil.copyfileobj(fin, fout)


def _checked_export(export: Path) -> dict | None:
    """The manifest of the export in ``export`` if it verifies; None if there is no export."""
    from semi3lib.book.site import SiteBuildError
    from semi3lib.retrieval.export import MANIFEST_FILE, ExportError, verify_export

    if not (export / MANIFEST_FILE).is_file():
        return None
    try:
        return verify_export(export)
    except ExportError as err:
        raise SiteBuildError(f"{err}; run `semi3 export --out {export}` again") from None


def install_search_page(html_dir: str | Path, export_dir: str | Path | None = DEFAULT_EXPORT) -> Path:
    """Copy the search page's code, runtime and (if present and verified) model into ``html_dir``.

    An export whose files do not match its manifest (changed, missing, added) raises
    :class:`semi3lib.book.site.SiteBuildError` before anything is copied."""
    from semi3lib.book.site import ensure_template_installed
    from semi3lib.retrieval.export import INDEX_FILE, MANIFEST_FILE

    export = Path(export_dir) if export_dir is not None else None
    manifest = _checked_export(export) if export is not None else None
    ensure_template_installed(WEB_DIR)
    app = Path(html_dir) / APP_DIR
    shutil.rmtree(app, ignore_errors=True)
    (app / "ort").mkdir(parents=True)
    for name in PAGE_FILES:
        shutil.copy2(WEB_DIR / name, app / name)
    dist = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
    for name in ORT_FILES:
        shutil.copy2(dist / name, app / "ort" / name)
    _gzip(dist / ORT_WASM, app / "ort" / f"{ORT_WASM}.gz")
    for page in Path(html_dir).rglob("*.html"):
        text = page.read_text()
        if MOUNT in text and PAGE_TAGS not in text:
            page.write_text(text.replace("</body>", PAGE_TAGS + "</body>", 1))
    if manifest is not None:
        model = app / "model"
        model.mkdir()
        shutil.copy2(export / MANIFEST_FILE, model / MANIFEST_FILE)
        for entry in manifest["files"]:  # the verified files, and only those
            name = entry["file"]
            if name == INDEX_FILE:  # for `semi3 search --index`, not the page
                continue
            (model / name).parent.mkdir(parents=True, exist_ok=True)
            if name == manifest["encoder"]["file"]:
                _gzip(export / name, model / f"{name}.gz")
            else:
                shutil.copy2(export / name, model / name)
    return app
