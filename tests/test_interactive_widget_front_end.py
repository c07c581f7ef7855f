"""The widget's JavaScript (``web/widget.mjs``) in headless Chromium, with a stand-in for
anywidget's model: what a person does (two strokes, Undo, Ctrl+Z, Clear, picking an example)
and what the front end sends and shows. The stand-in answers as the Python side does
(``SketchSearch``: a search per ``sketch``, the ready message after the Clear message); the real
kernel is in tests/test_interactive_lab.py, the Python side in tests/test_interactive_widget.py.
Screenshots at 1400 x 900 and 390 x 844 go to ``_build/screenshots/``."""

from __future__ import annotations

import shutil

import pytest

from browser import chromium_page
from semi3lib.interactive.confidence import fine_grained_note, ranking_confidence
from semi3lib.interactive.widget import WEB_DIR
from test_interactive_search_page import serve

READY = "Draw a sketch, upload one or pick one: 3,125 photos of 125 categories."
SURE = ranking_confidence(["cat"] * 8 + ["dog", "cat"]).as_dict()
SPLIT = ranking_confidence(["ray", "blimp", "apple", "cat", "hat", "cup", "ray", "dog", "owl", "bee"]).as_dict()
FINE = fine_grained_note(None, 10)
MODELS = ["Category (chapter 4)", "Fine-grained (chapter 10)"]

# anywidget's model as the front end uses it (get, set, save_changes, on, send), and the
# Python side's answers: a drawing with more than one stroke is "understood", one stroke is not.
# With ?models=2 the widget has two models (``models``, ``model``); choosing the second is
# answered as the fine-grained model answers: other photos, no confidence claim.
PAGE = """<!doctype html><meta charset="utf-8"><body style="margin:8px;font-family:sans-serif"><div id="w"></div>
<script type="module">
import widget from './widget.mjs';
const two = new URLSearchParams(location.search).get('models') === '2';
const traits = {examples: ['1. cat', '2. teddy bear'], message: %(ready)r, error: false, results: [], confidence: {},
                shown: '', sketch: '', pick: -1, upload: '', upload_name: '',
                models: two ? %(models)s : [], model: two ? %(models)s[0] : ''};
let pending = new Set();
const handlers = {};
const log = window.sent = [];
const fire = (k) => (handlers['change:' + k] || []).forEach((f) => f());
const python = {
  answer(strokes) {
    const sure = strokes > 1;
    traits.results = Array.from({length: 10}, (_, i) => ({rank: i + 1, category: sure ? 'cat' : 'ray', score: 0.9 - i / 100,
      name: `p${i}.jpg`, thumb: 'data:image/gif;base64,R0lGODlhAQABAAAAACw='}));
    traits.confidence = sure ? %(sure)s : %(split)s;
    traits.message = 'Top 10 of 3,125 photos.';
    ['results', 'confidence', 'message'].forEach(fire);
  },
  switched() {
    traits.results = Array.from({length: 10}, (_, i) => ({rank: i + 1, category: i %% 2 ? 'cup' : 'shoe', score: 0.8 - i / 100,
      name: `fg${i}.jpg`, thumb: 'data:image/gif;base64,R0lGODlhAQABAAAAACw=', ...(i === 2 ? {own: true} : {})}));
    traits.confidence = %(fine)s;
    traits.examples = ['1. shoe', '2. cup', '3. shoe'];
    ['results', 'confidence', 'examples'].forEach(fire);
  },
  clear() { traits.results = []; traits.confidence = {}; traits.message = %(ready)r; traits.pick = -1;
            ['results', 'confidence', 'message'].forEach(fire); },
};
const model = {
  get: (k) => traits[k],
  set: (k, v) => { traits[k] = v; pending.add(k); log.push(['set', k, typeof v === 'string' && v.length > 40 ? v.slice(0, 22) : v]); },
  save_changes: () => {
    log.push(['save']);
    const changed = pending;
    pending = new Set();
    if (changed.has('model')) { python.switched(); return; }
    if (traits.sketch) python.answer(window.strokesOnCanvas());
    if (traits.pick >= 0) { traits.shown = document.querySelector('canvas').toDataURL(); python.answer(2); fire('shown'); }
  },
  on: (e, f) => (handlers[e] = [...(handlers[e] || []), f]),
  send: (content) => { log.push(['send', content]); if (content.event === 'clear') python.clear(); },
};
window.strokesOnCanvas = () => window.drawn;
widget.render({model, el: document.getElementById('w')});
window.ready = true;
</script>"""


@pytest.fixture(scope="module")
def widget_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("widget-page")
    shutil.copy2(WEB_DIR / "widget.mjs", folder / "widget.mjs")
    (folder / "index.html").write_text(PAGE % {"ready": READY, "sure": _js(SURE), "split": _js(SPLIT), "fine": _js(FINE),
                                                "models": _js(MODELS)})
    with serve(folder) as url:
        yield f"{url}/index.html"


def _js(value) -> str:
    import json

    return json.dumps(value)


def draw(page, strokes) -> None:
    canvas = page.locator(".semi3-widget canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for stroke in strokes:
        page.evaluate("window.drawn = (window.drawn || 0) + 1")
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


def canvas_png(page) -> str:
    return page.evaluate("document.querySelector('.semi3-widget canvas').toDataURL()")


def sketches_sent(page) -> int:
    return page.evaluate("window.sent.filter(e => e[0] === 'set' && e[1] === 'sketch' && e[2]).length")


HOUSE = [[(40, 200), (128, 50), (216, 200), (40, 200)], [(100, 200), (100, 150), (150, 150), (150, 200)]]


@pytest.mark.parametrize("width, height", [(1400, 900), (390, 844)])
def test_undo_ctrl_z_clear_and_pick_in_the_widget(widget_url, width, height, screenshots):
    with chromium_page(width, height) as page:
        page.goto(widget_url)
        page.wait_for_function("window.ready === true")
        status, confidence = page.locator(".semi3-widget-status"), page.locator(".semi3-widget-confidence")
        assert status.inner_text() == READY and page.is_disabled(".semi3-widget-undo")
        assert not page.is_visible(".semi3-widget-model")  # one model: no dropdown
        blank = canvas_png(page)

        draw(page, HOUSE[:1])
        page.wait_for_function("window.sent.some(e => e[1] === 'sketch')")
        one_stroke = canvas_png(page)
        draw(page, HOUSE[1:])
        page.wait_for_function(f"document.querySelector('.semi3-widget-confidence').textContent === {_js(SURE['text'])}")
        assert status.inner_text() == "Top 10 of 3,125 photos." and page.locator(".semi3-widget figure").count() == 10
        assert confidence.get_attribute("data-level") == "clear"
        assert page.locator(".semi3-widget figcaption").first.inner_text().startswith("1. cat")
        sent = sketches_sent(page)

        page.click(".semi3-widget-undo")  # the last stroke goes, the rest is searched again
        assert canvas_png(page) == one_stroke
        page.wait_for_function(f"window.sent.filter(e => e[1] === 'sketch' && e[2]).length > {sent}")
        page.evaluate("window.drawn = 1")
        page.locator(".semi3-widget canvas").focus()
        page.keyboard.press("Control+z")  # the first stroke too: nothing left, as Clear
        assert canvas_png(page) == blank
        page.wait_for_function("window.sent.some(e => e[0] === 'send' && e[1].event === 'clear')")
        assert status.inner_text() == READY and confidence.inner_text() == ""
        assert page.locator(".semi3-widget figure").count() == 0 and page.is_disabled(".semi3-widget-undo")

        page.evaluate("window.drawn = 0")
        draw(page, [[(30, 30), (60, 90)]])  # one quick stroke: the hits split
        page.wait_for_function("document.querySelector('.semi3-widget-confidence').dataset.level === 'unknown'")
        assert confidence.inner_text().startswith("This drawing looks like nothing the model knows")
        page.screenshot(path=str(screenshots / f"widget-{width}.png"))
        page.click(".semi3-widget-clear")
        assert status.inner_text() == READY and confidence.inner_text() == "" and canvas_png(page) == blank

        page.select_option(".semi3-widget-examples", "1")
        page.wait_for_function("window.sent.some(e => e[1] === 'pick' && e[2] === 1)")
        assert page.input_value(".semi3-widget-upload") == ""  # a picked example is not an upload
        assert page.evaluate("document.querySelector('.semi3-widget-upload').files.length") == 0
        assert page.locator(".semi3-widget figure").count() == 10
        widest = page.evaluate("Math.max(...[...document.querySelectorAll('.semi3-widget *')]"
                               ".map(e => e.getBoundingClientRect().right))")
        assert widest <= width, f"the widget is wider than the window: {widest}px"


@pytest.mark.parametrize("width, height", [(1400, 900), (390, 844)])
def test_the_model_dropdown_switches_and_keeps_the_drawing(widget_url, width, height, screenshots):
    """Two models: a labelled dropdown above the canvas; choosing the other sends ``model`` (and
    no new drawing), the canvas keeps its strokes, and the other model's answer is shown with
    its note in place of a confidence and its own photo marked."""
    with chromium_page(width, height) as page:
        page.goto(widget_url + "?models=2")
        page.wait_for_function("window.ready === true")
        assert page.is_visible(".semi3-widget-model")
        assert page.eval_on_selector_all(".semi3-widget-model option", "els => els.map(e => e.value)") == MODELS
        assert page.input_value(".semi3-widget-model") == MODELS[0]
        assert page.inner_text("label:has(.semi3-widget-model)").startswith("Model")
        above = page.locator(".semi3-widget-model").bounding_box()["y"] < page.locator(".semi3-widget canvas").bounding_box()["y"]
        assert above, "the dropdown is not above the canvas"
        draw(page, HOUSE)
        page.wait_for_function(f"document.querySelector('.semi3-widget-confidence').textContent === {_js(SURE['text'])}")
        drawing, sent = canvas_png(page), sketches_sent(page)

        page.select_option(".semi3-widget-model", MODELS[1])
        page.wait_for_function(f"document.querySelector('.semi3-widget-confidence').textContent === {_js(FINE['text'])}")
        assert page.evaluate("window.sent.some(e => e[0] === 'set' && e[1] === 'model' && e[2] === %s)" % _js(MODELS[1]))
        assert canvas_png(page) == drawing and sketches_sent(page) == sent  # the drawing stays; Python answers it again
        assert page.get_attribute(".semi3-widget-confidence", "data-level") == "fine-grained"
        assert page.locator(".semi3-widget figcaption").first.inner_text().startswith("1. shoe")
        assert page.locator(".semi3-widget-own").count() == 1
        assert "its own photo" in page.locator(".semi3-widget-own figcaption").inner_text()
        assert page.eval_on_selector_all(".semi3-widget-examples option", "els => els.length") == 4  # the other examples
        widest = page.evaluate("Math.max(...[...document.querySelectorAll('.semi3-widget *')]"
                               ".map(e => e.getBoundingClientRect().right))")
        assert widest <= width, f"the widget is wider than the window: {widest}px"
        page.screenshot(path=str(screenshots / f"widget-two-models-{width}.png"))
