"""The book's draw-to-search page in headless Debian Chromium (playwright's Python package,
no downloaded browser): the stand-in book of tests/test_site.py built with the smoke
checkpoint's export; every answer is compared with ``semi3 search`` on the same checkpoint.

Measured here and written to ``search-page.json`` beside the screenshots (a temporary folder, or
``$SEMI3_SCREENSHOTS``): the search latency in
the browser (preprocessing, ONNX inference and ranking) and the page's total download. With
``SEMI3_SEARCH_EXPORT=DIR`` (e.g. ``_build/search-export`` after ``make book``) the tests run
on that export instead of the smoke checkpoint's, to measure the book's own model."""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import shutil
import statistics
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from browser import chromium_page, require_chromium
from semi3lib.cli import main as semi3
from semi3lib.book.site import build_site
from test_site import _require_tools, write_standin_project

REPO = Path(__file__).resolve().parents[1]
LATENCY_TARGET_MS = 200
DOWNLOAD_LIMIT = 30e6


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def export_dir(request) -> Path:
    chosen = os.environ.get("SEMI3_SEARCH_EXPORT")
    return Path(chosen).resolve() if chosen else request.getfixturevalue("search_export")


@pytest.fixture(scope="module")
def search_site(tmp_path_factory, export_dir) -> Path:
    _require_tools()
    require_chromium()
    project = write_standin_project(tmp_path_factory.mktemp("search-book") / "book")
    shutil.copytree(export_dir, project / "_build" / "search-export")
    return build_site(project, strict=True)


@pytest.fixture(scope="module")
def site_url(search_site):
    with serve(search_site) as url:
        yield url


def cli_top10(index: Path, sketch: Path, k: int = 10) -> list[tuple[str, float]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert semi3(["search", "--index", str(index), str(sketch), "-k", str(k), "--json", "--device", "cpu"]) == 0
    return [(Path(r["path"]).name, r["score"]) for r in json.loads(out.getvalue())["results"]]


def page_hits(page) -> list[tuple[str, float]]:
    return page.eval_on_selector_all(".semi3-hit", "els => els.map(e => [e.dataset.name, +e.dataset.score])")


def assert_same_top10(page: list, cli: list, all_scores: dict[str, float]) -> None:
    """The page's top 10 is the CLI's, in order. The page ranks float16 gallery embeddings,
    the CLI float32 ones, so two photos whose float32 scores differ by less than 1e-3 may
    trade places; nothing else may differ."""
    assert len(page) == len(cli) == 10
    for (name, score), (cli_name, cli_score) in zip(page, cli):
        assert abs(score - all_scores[name]) < 1e-3, (name, score, all_scores[name])
        if name != cli_name:
            assert abs(all_scores[name] - cli_score) < 1e-3, f"page {page}\ncli {cli}"


def open_search(page, url: str, downloads: list | None = None) -> None:
    if downloads is not None:
        page.on("requestfinished", lambda r: downloads.append((r.url, r.sizes()["responseBodySize"])))
    page.goto(f"{url}/interactive/")
    page.wait_for_selector("#semi3-search[data-state='ready']", timeout=120_000)


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    box = page.locator(".semi3-canvas").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


HOUSE = [[(60, 200), (60, 110), (128, 50), (196, 110), (196, 200), (60, 200)],
         [(110, 200), (110, 150), (146, 150), (146, 200)]]


@pytest.mark.slow
@pytest.mark.data
def test_search_page_answers_an_uploaded_sketch_and_a_drawing_with_the_cli_top10(site_url, export_dir, tmp_path,
                                                                                  screenshots):
    search_export = export_dir
    index = search_export / "index.npz"
    manifest = json.loads((search_export / "manifest.json").read_text())
    sketch = next((search_export / "examples").glob("*.png"))
    downloads: list = []
    with chromium_page(1280, 1100) as page:
        open_search(page, site_url, downloads)
        loaded = sum(size for _, size in downloads)

        page.set_input_files(".semi3-upload", str(sketch))
        page.wait_for_selector("#semi3-search[data-state='done']", timeout=60_000)
        scores = dict(cli_top10(index, sketch, k=manifest["count"]))
        cli = cli_top10(index, sketch)
        assert_same_top10(page_hits(page), cli, scores)
        exact = [[n for n, _ in page_hits(page)] == [n for n, _ in cli]]

        page.click(".semi3-clear")
        draw(page, HOUSE)
        page.wait_for_selector("#semi3-search[data-state='done']", timeout=60_000)
        drawn = tmp_path / "drawn.png"
        drawn.write_bytes(base64.b64decode(page.evaluate("semi3Search.exportPNG()").split(",", 1)[1]))
        scores = dict(cli_top10(index, drawn, k=manifest["count"]))
        cli = cli_top10(index, drawn)
        assert_same_top10(page_hits(page), cli, scores)
        exact.append([n for n, _ in page_hits(page)] == [n for n, _ in cli])
        page.locator("#semi3-search").screenshot(path=str(screenshots / "search-page.png"))

        timings = page.evaluate("""async () => {
            for (let i = 0; i < 7; i += 1) await semi3Search.searchCanvas();
            return semi3Search.timings.slice(-7);
        }""")
    latency = statistics.median(timings)
    record = {"export": str(export_dir), "photos": manifest["count"], "same_order_as_cli": exact,
              "search_ms_median": round(latency, 1), "search_ms": [round(t, 1) for t in timings],
              "download_bytes": loaded, "files": sorted(downloads, key=lambda d: -d[1])[:6]}
    (screenshots / "search-page.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"search page: {latency:.0f} ms per search (median of 7), {loaded / 1e6:.1f} MB downloaded")
    assert latency < LATENCY_TARGET_MS, record
    assert loaded < DOWNLOAD_LIMIT, record


@pytest.mark.slow
@pytest.mark.data
def test_search_page_explains_bad_input_instead_of_failing(site_url, tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 150), 255).save(blank)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with chromium_page() as page:
        open_search(page, site_url)
        page.evaluate("semi3Search.searchCanvas()")
        assert "canvas is empty" in page.inner_text(".semi3-status")
        page.set_input_files(".semi3-upload", str(blank))
        page.wait_for_function("document.querySelector('.semi3-status').textContent.includes('blank')")
        page.set_input_files(".semi3-upload", str(text))
        page.wait_for_function("document.querySelector('.semi3-status').textContent.includes('not an image')")
        assert page.locator(".semi3-hit").count() == 0
    with chromium_page() as page:  # an encoder that is not the gallery's
        def other_model(route):
            manifest = json.loads(route.fetch().text())
            manifest["encoder"]["sha256"] = "0" * 64
            route.fulfill(json=manifest)

        page.route("**/model/manifest.json", other_model)
        page.goto(f"{site_url}/interactive/")
        page.wait_for_selector("#semi3-search[data-state='error']", timeout=120_000)
        assert "not the one the gallery was embedded with" in page.inner_text(".semi3-status")


def test_search_page_without_an_export_says_how_to_make_one(tmp_path):
    _require_tools()
    require_chromium()
    project = write_standin_project(tmp_path / "book")
    site = build_site(project, strict=True)
    assert not (site / "search-app" / "model").exists()
    assert (site / "search-app" / "ort" / "ort-wasm-simd-threaded.wasm.gz").is_file()
    with serve(site) as url, chromium_page() as page:
        page.goto(f"{url}/interactive/")
        page.wait_for_selector("#semi3-search[data-state='no-model']", timeout=60_000)
        message = page.inner_text(".semi3-status")
        assert "make book" in message and "semi3 export" in message
