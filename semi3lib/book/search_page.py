"""The search page's files in the built site: ``_build/html/search-app/``.

- the page's code (``web/search.mjs``, ``web/preprocess.mjs``, ``web/strokes.mjs``, ``web/confidence.mjs``,
  ``web/search.css``);
- onnxruntime-web's WebAssembly runtime, from the npm packages locked in ``web/`` (installed
  with ``npm ci`` when missing; never a CDN), the ``.wasm`` gzipped (the page inflates it with
  the browser's DecompressionStream, so a static server without compression sends 3.5 MB,
  not 15);
- the exports of ``semi3 export`` found among :data:`NAMED_EXPORTS`: the category model's
  (``_build/search-export``, into ``model/`` as before) and a fine-grained model's
  (``_build/search-export-fine-grained``, into ``model-fine-grained/``): manifest, encoder
  (gzipped), float16 gallery, thumbnails, example sketches; each copied only if every file
  verifies against its manifest's sizes and sha256 (else the build stops, naming the wrong
  files, before anything is copied). ``models.json`` lists the installed ones (id, the
  reader's label, folder, protocol, gallery size), category first; the page offers a choice
  when it lists more than one. Without any the page says how to make one.

mystmd keeps a page's ``<div id="semi3-search">`` but drops ``<script>`` and ``<link>``
elements, so the page's script and stylesheet are added to the built pages that hold that div.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any, Mapping

WEB_DIR = Path(__file__).resolve().parents[1] / "interactive" / "web"
APP_DIR = "search-app"
DEFAULT_EXPORT = Path("_build") / "search-export"
# The exports a site installs: id -> (its folder under _build, its folder under search-app/).
# The category model keeps the folder it always had, so earlier links and builds still work.
NAMED_EXPORTS = {"category": ("search-export", "model"),
                 "fine-grained": ("search-export-fine-grained", "model-fine-grained")}
MODELS_FILE = "models.json"
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
    from semi3lib.retrieval.export import MANIFEST_FILE, ExportError, manifest_protocol, verify_export

    if not (export / MANIFEST_FILE).is_file():
        return None
    try:
        manifest = verify_export(export)
        manifest_protocol(manifest)  # a protocol the page knows
        return manifest
    except ExportError as err:
        raise SiteBuildError(f"{err}; run `semi3 export --out {export}` again") from None


def named_exports(build_dir: str | Path) -> dict[str, Path]:
    """Where a site's exports are looked for: ``{id: build_dir / folder}`` of :data:`NAMED_EXPORTS`."""
    return {model_id: Path(build_dir) / folder for model_id, (folder, _) in NAMED_EXPORTS.items()}


def _install_model(export: Path, manifest: dict[str, Any], model: Path) -> None:
    """Copy the verified files of ``export`` (and only those) into ``model``; the encoder gzipped."""
    from semi3lib.retrieval.export import INDEX_FILE, MANIFEST_FILE

    model.mkdir()
    shutil.copy2(export / MANIFEST_FILE, model / MANIFEST_FILE)
    for entry in manifest["files"]:
        name = entry["file"]
        if name == INDEX_FILE:  # for `semi3 search --index`, not the page
            continue
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        if name == manifest["encoder"]["file"]:
            _gzip(export / name, model / f"{name}.gz")
        else:
            shutil.copy2(export / name, model / name)


def install_search_page(html_dir: str | Path, export_dir: str | Path | None = DEFAULT_EXPORT,
                        more_exports: Mapping[str, str | Path | None] | None = None) -> Path:
    """Copy the search page's code, runtime and (if present and verified) models into ``html_dir``.

    ``export_dir`` is the category model's export; ``more_exports`` maps other ids of
    :data:`NAMED_EXPORTS` (``fine-grained``) to their exports (None or a missing folder: not
    installed). An export whose files do not match its manifest (changed, missing, added)
    raises :class:`semi3lib.book.site.SiteBuildError` before anything is copied."""
    from semi3lib.book.site import ensure_template_installed
    from semi3lib.retrieval.export import model_label, manifest_protocol

    exports = {"category": export_dir, **(more_exports or {})}
    unknown = sorted(set(exports) - set(NAMED_EXPORTS))
    if unknown:
        raise ValueError(f"unknown search model id(s) {', '.join(unknown)}; known: {', '.join(NAMED_EXPORTS)}")
    checked = {}
    for model_id in NAMED_EXPORTS:  # every export verified before anything is copied
        folder = exports.get(model_id)
        manifest = _checked_export(Path(folder)) if folder is not None else None
        if manifest is not None:
            checked[model_id] = (Path(folder), manifest)
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
    models = []
    for model_id, (export, manifest) in checked.items():
        folder = NAMED_EXPORTS[model_id][1]
        _install_model(export, manifest, app / folder)
        models.append({"id": model_id, "label": model_label(manifest), "dir": f"{folder}/",
                       "protocol": manifest_protocol(manifest), "count": manifest["count"]})
    if models:
        (app / MODELS_FILE).write_text(json.dumps({"models": models}, indent=1) + "\n")
    return app
