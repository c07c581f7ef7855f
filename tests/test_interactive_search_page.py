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
    page.locator(".semi3-canvas").scroll_into_view_if_needed()  # below the fold on a phone
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
    with chromium_page() as page:  # a site built before models.json: its one model in model/
        page.route("**/search-app/models.json", lambda route: route.fulfill(status=404))
        open_search(page, site_url)
        assert page.locator(".semi3-model").count() == 0 and page.locator(".semi3-canvas").count() == 1
    with chromium_page() as page:  # an encoder that is not the gallery's
        def other_model(route):
            manifest = json.loads(route.fetch().text())
            manifest["encoder"]["sha256"] = "0" * 64
            route.fulfill(json=manifest)

        page.route("**/model/manifest.json", other_model)
        page.goto(f"{site_url}/interactive/")
        page.wait_for_selector("#semi3-search[data-state='error']", timeout=120_000)
        assert "not the one the gallery was embedded with" in page.inner_text(".semi3-status")


TWO_STROKES = [[(50, 60), (200, 60), (200, 200)], [(60, 180), (120, 120), (180, 190)]]


def canvas_png(page) -> str:
    return page.evaluate("semi3Search.exportPNG()")


def wait_done(page) -> None:
    page.wait_for_selector("#semi3-search[data-state='done']", timeout=60_000)


@pytest.mark.slow
@pytest.mark.data
def test_undo_clear_and_picking_behave_as_a_reader_expects(site_url, export_dir, screenshots):
    """Two strokes, Undo drops the last (the button, then Ctrl+Z the first: back to the start);
    Clear resets the status line; a picked example is searched without posing as an upload;
    every answer says how sure it is, by the same rule as the widget's Python side."""
    manifest = json.loads((export_dir / "manifest.json").read_text())
    with chromium_page(1400, 900) as page:
        open_search(page, site_url)
        ready = page.inner_text(".semi3-status")
        assert ready.startswith("Ready: draw a sketch") and f"{manifest['count']:,} photos" in ready
        assert page.locator(".semi3-model").count() == 0  # one model: no selector, the page as it was
        assert page.is_disabled(".semi3-undo")
        draw(page, TWO_STROKES[:1])
        wait_done(page)
        one_stroke = canvas_png(page)
        draw(page, TWO_STROKES[1:])
        page.wait_for_function("semi3Search.strokes.length === 2")
        wait_done(page)
        assert canvas_png(page) != one_stroke
        assert_confidence_is_pythons(page)

        page.click(".semi3-undo")  # the last stroke goes; the first is searched again
        assert canvas_png(page) == one_stroke
        page.wait_for_function("document.querySelector('#semi3-search').dataset.state === 'done' "
                               "&& semi3Search.strokes.length === 1")
        page.locator(".semi3-canvas").focus()
        page.keyboard.press("Control+z")  # the first stroke goes too: nothing left, as Clear
        page.wait_for_selector("#semi3-search[data-state='ready']")
        assert page.inner_text(".semi3-status") == ready and page.locator(".semi3-hit").count() == 0
        assert page.inner_text(".semi3-confidence") == "" and page.is_disabled(".semi3-undo")

        draw(page, TWO_STROKES)
        wait_done(page)
        assert page.inner_text(".semi3-status").startswith(f"Top 10 of {manifest['count']:,} photos")
        page.click(".semi3-clear")
        assert page.inner_text(".semi3-status") == ready  # not "Top 10 of ..." any more
        assert page.locator(".semi3-hit").count() == 0 and page.inner_text(".semi3-confidence") == ""

        page.select_option(".semi3-examples", "1")
        wait_done(page)
        assert page.evaluate("document.querySelector('.semi3-upload').files.length") == 0
        assert page.input_value(".semi3-upload") == ""  # no "01.png" as if uploaded
        assert page.locator(".semi3-hit").count() == 10
        assert_confidence_is_pythons(page)
        draw(page, [[(20, 20), (60, 40)]])  # a stroke over the example: Undo brings the example back
        page.wait_for_function("semi3Search.strokes.length === 1")
        wait_done(page)
        page.keyboard.press("Meta+z")
        page.wait_for_function("semi3Search.strokes.length === 0")
        assert page.locator(".semi3-canvas").count() == 1 and page.locator(".semi3-hit").count() >= 0
        page.screenshot(path=str(screenshots / "search-page-1400.png"), full_page=True)


def assert_confidence_is_pythons(page) -> None:
    from semi3lib.interactive.confidence import ranking_confidence

    categories = page.eval_on_selector_all(".semi3-hit", "els => els.map(e => e.dataset.category)")
    expected = ranking_confidence(categories)
    assert page.inner_text(".semi3-confidence") == expected.text
    assert page.get_attribute(".semi3-confidence", "data-level") == expected.level


@pytest.mark.slow
@pytest.mark.data
def test_a_scribble_that_matches_nothing_says_so_on_a_phone(site_url, screenshots):
    """Where the closest photos split between categories the page says plainly that the drawing
    looks like nothing the model knows. Made certain here by a manifest in which every photo
    is its own category, so any answer is split; the page is a phone's, 390 x 844."""
    def every_photo_its_own_category(route):
        manifest = json.loads(route.fetch().text())
        manifest["categories"] = [f"{p['name']}_{i}" for i, p in enumerate(manifest["photos"])]
        for i, photo in enumerate(manifest["photos"]):
            photo["category"] = i
        route.fulfill(json=manifest)

    with chromium_page(390, 844) as page:
        page.route("**/model/manifest.json", every_photo_its_own_category)
        open_search(page, site_url)
        draw(page, [[(30, 40), (90, 60), (40, 120)], [(150, 200), (200, 150)]])
        wait_done(page)
        assert page.get_attribute(".semi3-confidence", "data-level") == "unknown"
        assert page.inner_text(".semi3-confidence").startswith("This drawing looks like nothing the model knows")
        widest = page.evaluate("Math.max(...[...document.querySelectorAll('#semi3-search *')]"
                               ".map(e => e.getBoundingClientRect().right))")
        assert widest <= 390, f"the search is wider than a phone: {widest}px"
        page.screenshot(path=str(screenshots / "search-page-390.png"), full_page=True)


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


# --------------------------------------------------------------------------- two models: category and fine-grained


def test_the_site_installs_both_exports_and_lists_them(search_export, fine_grained_export, tmp_path):
    """models.json names each installed model (category first, in its old folder) with the
    reader's label from its manifest; a second export that does not verify stops the build as
    the first's does, before anything is copied."""
    from semi3lib.book.search_page import install_search_page
    from semi3lib.book.site import SiteBuildError
    from semi3lib.retrieval.export import MODEL_LABELS

    html = tmp_path / "html"
    html.mkdir()
    app = install_search_page(html, search_export, {"fine-grained": fine_grained_export})
    listed = json.loads((app / "models.json").read_text())["models"]
    counts = [json.loads((e / "manifest.json").read_text())["count"] for e in (search_export, fine_grained_export)]
    assert listed == [
        {"id": "category", "label": MODEL_LABELS["category"], "dir": "model/", "protocol": "category", "count": counts[0]},
        {"id": "fine-grained", "label": MODEL_LABELS["instance"], "dir": "model-fine-grained/", "protocol": "instance",
         "count": counts[1]}]
    for export, folder in ((search_export, "model"), (fine_grained_export, "model-fine-grained")):
        installed = app / folder
        assert (installed / "manifest.json").read_bytes() == (export / "manifest.json").read_bytes()
        assert (installed / "sketch_encoder.onnx.gz").is_file() and (installed / "gallery.f16").is_file()
        assert not (installed / "index.npz").exists()

    only = install_search_page(tmp_path / "html-fg", tmp_path / "no-category-export", {"fine-grained": fine_grained_export})
    assert [m["dir"] for m in json.loads((only / "models.json").read_text())["models"]] == ["model-fine-grained/"]
    assert not (only / "model").exists()

    tampered = shutil.copytree(fine_grained_export, tmp_path / "tampered")
    (tampered / "gallery.f16").write_bytes(b"\0" * (tampered / "gallery.f16").stat().st_size)
    refused = tmp_path / "html-refused"
    refused.mkdir()
    with pytest.raises(SiteBuildError, match="does not verify") as refusal:
        install_search_page(refused, search_export, {"fine-grained": tampered})
    assert "gallery.f16: sha256 differs" in str(refusal.value) and "semi3 export" in str(refusal.value)
    assert list(refused.iterdir()) == []


@pytest.fixture(scope="module")
def two_model_site(tmp_path_factory, search_export, fine_grained_export) -> Path:
    """The stand-in book built with both exports where `make book` and `semi3 export` put them."""
    _require_tools()
    require_chromium()
    project = write_standin_project(tmp_path_factory.mktemp("two-model-book") / "book")
    shutil.copytree(search_export, project / "_build" / "search-export")
    shutil.copytree(fine_grained_export, project / "_build" / "search-export-fine-grained")
    return build_site(project, strict=True)


def found_own_photo(export: Path) -> tuple[int, str]:
    """The first example sketch of a fine-grained export whose own photo is in `semi3 search`'s
    top 10 (the page marks it): its position in the picker and the photo's name."""
    manifest = json.loads((export / "manifest.json").read_text())
    for n, example in enumerate(manifest["examples"]):
        own = manifest["photos"][example["own"]]["name"]
        if own in [name for name, _ in cli_top10(export / "index.npz", export / example["file"])]:
            return n, own
    raise AssertionError("no example sketch finds its own photo in the top 10")


def switch_model(page, model_id: str) -> None:
    page.select_option(".semi3-model", model_id)
    page.wait_for_function(f"document.querySelector('#semi3-search').dataset.model === '{model_id}' "
                           "&& ['done', 'ready'].includes(document.querySelector('#semi3-search').dataset.state)",
                           timeout=120_000)


@pytest.mark.slow
@pytest.mark.data
def test_the_page_switches_to_the_fine_grained_model_and_answers_as_semi3_search(
        two_model_site, search_export, fine_grained_export, tmp_path, screenshots):
    """With two exports a labelled selector sits above the canvas. Switching keeps the drawing and
    answers it from the other model's gallery: exactly `semi3 search`'s top 10 on that model's
    index; the fine-grained answer makes no confidence claim (a picked query sketch's own photo
    is marked and its rank said), and switching back answers as the category model again."""
    from semi3lib.interactive.confidence import fine_grained_note
    from semi3lib.retrieval.export import MODEL_LABELS

    fg_index, cat_index = fine_grained_export / "index.npz", search_export / "index.npz"
    fg_manifest = json.loads((fine_grained_export / "manifest.json").read_text())
    cat_count = json.loads((search_export / "manifest.json").read_text())["count"]
    sketch = next((search_export / "examples").glob("*.png"))
    with serve(two_model_site) as url, chromium_page(1280, 1000) as page:
        open_search(page, url)
        options = page.eval_on_selector_all(".semi3-model option", "els => els.map(e => [e.value, e.textContent])")
        assert options == [["category", MODEL_LABELS["category"]], ["fine-grained", MODEL_LABELS["instance"]]]
        assert page.inner_text("label[for='semi3-model']") == "Model"
        above = page.locator(".semi3-model").bounding_box()["y"] < page.locator(".semi3-canvas").bounding_box()["y"]
        assert above, "the model selector is not above the canvas"

        page.set_input_files(".semi3-upload", str(sketch))  # answered by the category model first
        wait_done(page)
        assert_same_top10(page_hits(page), cli_top10(cat_index, sketch), dict(cli_top10(cat_index, sketch, cat_count)))
        assert_confidence_is_pythons(page)
        canvas = canvas_png(page)

        switch_model(page, "fine-grained")  # the uploaded sketch, searched again with its own pixels
        assert canvas_png(page) == canvas
        scores = dict(cli_top10(fg_index, sketch, fg_manifest["count"]))
        assert_same_top10(page_hits(page), cli_top10(fg_index, sketch), scores)
        assert page.inner_text(".semi3-confidence") == fine_grained_note(None, 10)["text"]
        assert page.get_attribute(".semi3-confidence", "data-level") == "fine-grained"
        assert "Confident" not in page.inner_text("#semi3-search")
        assert page.locator(".semi3-hit .semi3-rank").first.inner_text().split(". ", 1)[1] in fg_manifest["categories"]

        page.click(".semi3-clear")
        draw(page, HOUSE)  # a drawing on the fine-grained model: the CLI's top 10 for the drawn pixels
        wait_done(page)
        drawn = tmp_path / "drawn.png"
        drawn.write_bytes(base64.b64decode(canvas_png(page).split(",", 1)[1]))
        assert_same_top10(page_hits(page), cli_top10(fg_index, drawn), dict(cli_top10(fg_index, drawn, fg_manifest["count"])))

        page.click(".semi3-clear")
        n, own = found_own_photo(fine_grained_export)
        page.select_option(".semi3-examples", str(n))  # a query sketch of the fine-grained model's
        wait_done(page)
        names = [name for name, _ in page_hits(page)]
        assert own in names, "the CLI's top 10 holds the sketch's own photo; the page's must too"
        assert page.inner_text(".semi3-confidence") == fine_grained_note(names.index(own) + 1, 10)["text"]
        assert page.locator(".semi3-own").count() == 1 and page.get_attribute(".semi3-own", "data-name") == own
        assert page.inner_text(".semi3-own .semi3-own-mark") == "its own photo"
        page.locator("#semi3-search").screenshot(path=str(screenshots / "search-page-two-models.png"))

        switch_model(page, "category")  # back: the example is searched again, by the category rule
        assert page.locator(".semi3-own").count() == 0 and page.locator(".semi3-hit").count() == 10
        assert_confidence_is_pythons(page)


@pytest.mark.slow
@pytest.mark.data
def test_the_model_selector_fits_a_phone(two_model_site, screenshots):
    with serve(two_model_site) as url, chromium_page(390, 844) as page:
        open_search(page, url)
        switch_model(page, "fine-grained")
        draw(page, HOUSE)
        wait_done(page)
        assert page.get_attribute(".semi3-confidence", "data-level") == "fine-grained"
        widest = page.evaluate("Math.max(...[...document.querySelectorAll('#semi3-search *')]"
                               ".map(e => e.getBoundingClientRect().right))")
        assert widest <= 390, f"the search is wider than a phone: {widest}px"
        page.screenshot(path=str(screenshots / "search-page-two-models-390.png"), full_page=True)
