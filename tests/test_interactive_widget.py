"""The notebook's draw-to-search widget, through its Python side (no browser): the traits the
front end sets (``sketch``, ``upload``, ``pick``) are answered in ``results`` as ``semi3 search``
would answer, with how sure the answer is in ``confidence``, bad input in ``message``, never by
raising; the front end's Clear message goes back to the start. Its JavaScript (drawing, Undo,
Ctrl+Z, Clear, picking) runs in Chromium in tests/test_interactive_widget_front_end.py."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semi3lib.cli import main as semi3
from semi3lib.interactive.confidence import ranking_confidence
from semi3lib.interactive.widget import WEB_DIR, SketchSearch
from semi3lib.retrieval.index import load_index, save_index
from test_interactive_search_page import found_own_photo


def data_url(path_or_image, fmt: str = "PNG") -> str:
    image = Image.open(path_or_image) if isinstance(path_or_image, (str, Path)) else path_or_image
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def cli_names(index: Path, sketch: Path) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert semi3(["search", "--index", str(index), str(sketch), "--json", "--device", "cpu"]) == 0
    return [Path(r["path"]).name for r in json.loads(out.getvalue())["results"]]


@pytest.fixture(scope="module")
def widget(smoke_run, search_export) -> SketchSearch:
    w = SketchSearch.from_checkpoint(smoke_run / "last.pt", search_export / "index.npz")
    assert not w.error, w.message
    return w


@pytest.mark.data
def test_a_drawing_is_answered_with_the_same_top10_as_semi3_search(widget, search_export):
    sketch = next((search_export / "examples").glob("*.png"))
    widget.sketch = data_url(sketch)
    assert not widget.error, widget.message
    assert [r["name"] for r in widget.results] == cli_names(search_export / "index.npz", sketch)
    first = widget.results[0]
    assert first["rank"] == 1 and first["category"] and first["thumb"].startswith("data:image/jpeg;base64,")
    assert [r["score"] for r in widget.results] == sorted((r["score"] for r in widget.results), reverse=True)


@pytest.mark.data
def test_upload_and_pick_are_answered_and_shown_on_the_canvas(widget, search_export):
    sketch = sorted((search_export / "examples").glob("*.png"))[1]
    widget.upload_name = sketch.name
    widget.upload = data_url(sketch)
    assert not widget.error and widget.shown.startswith("data:image/png")
    assert [r["name"] for r in widget.results] == cli_names(search_export / "index.npz", sketch)
    assert widget.examples and widget.examples[0].startswith("1. ")
    widget.pick = 2
    assert not widget.error and len(widget.results) == 10


@pytest.mark.data
def test_an_answer_says_how_sure_it_is_and_clear_goes_back_to_the_start(widget, search_export):
    sketch = sorted((search_export / "examples").glob("*.png"))[0]
    widget.sketch = data_url(sketch)
    assert not widget.error and widget.message.startswith("Top 10 of ")
    expected = ranking_confidence([r["category"] for r in widget.results])
    assert widget.confidence == expected.as_dict() and widget.confidence["text"] == expected.text
    ready = widget.ready_message()
    assert ready.startswith("Draw a sketch") and f"{len(widget.searcher.index):,} photos" in ready

    widget.pick = 3
    assert widget.results and widget.shown
    widget._handle_custom_msg({"event": "clear"}, [])  # what the Clear button sends
    assert widget.message == ready and not widget.error
    assert widget.results == [] and widget.confidence == {} and widget.shown == "" and widget.pick == -1
    widget.pick = 3  # the same example again is answered again
    assert len(widget.results) == 10 and widget.confidence["k"] == 10
    widget._handle_custom_msg({"event": "something else"}, [])  # ignored
    assert len(widget.results) == 10


@pytest.mark.data
def test_bad_input_is_a_message_not_a_traceback(widget, tmp_path):
    widget.sketch = data_url(Image.new("RGBA", (256, 256), (255, 255, 255, 255)))
    assert widget.error and "canvas is empty" in widget.message and widget.results == [] and widget.confidence == {}
    widget.upload_name = "white.png"
    widget.upload = data_url(Image.new("L", (300, 200), 255))
    assert widget.error and "white.png is blank" in widget.message
    widget.upload_name = "notes.txt"
    widget.upload = "data:text/plain;base64," + base64.b64encode(b"not a sketch").decode()
    assert widget.error and "notes.txt is not an image" in widget.message
    widget.upload_name = "cut.png"
    widget.upload = "data:image/png;base64"  # the header alone
    assert widget.error and "cut.png is not a data URL with data in it" in widget.message and widget.results == []
    widget.sketch = "data:image/png;base64,iVBORw0KGgo=%%%"
    assert widget.error and "The canvas did not arrive as base64 data" in widget.message


@pytest.mark.data
def test_an_index_from_another_model_or_a_missing_checkpoint_is_explained(smoke_run, search_export, tmp_path):
    index = load_index(search_export / "index.npz")
    index.model_identity["weights"] = "0" * 16
    other = save_index(index, tmp_path / "other.npz")
    w = SketchSearch.from_checkpoint(smoke_run / "last.pt", other)
    assert w.error and "does not belong" in w.message and "rebuild it" in w.message
    w.sketch = data_url(next((search_export / "examples").glob("*.png")))
    assert w.results == []
    w = SketchSearch.from_checkpoint(tmp_path / "missing.pt")
    assert w.error and "make book" in w.message


@pytest.mark.data
def test_without_an_index_the_widget_embeds_the_checkpoints_gallery(smoke_run, search_export):
    from semi3lib.interactive.widget import SketchSearcher

    searcher = SketchSearcher.from_checkpoint(smoke_run / "last.pt")
    exported = load_index(search_export / "index.npz")
    assert searcher.index.paths == exported.paths and searcher.index.labels == exported.labels
    np.testing.assert_allclose(searcher.index.embeddings, exported.embeddings, atol=1e-5)


def test_the_front_end_is_one_es_module_with_a_render_function():
    source = (WEB_DIR / "widget.mjs").read_text()
    assert "export default { render }" in source
    html = SketchSearch()._repr_mimebundle_()
    data = html[0] if isinstance(html, tuple) else html
    assert "make lab" in data["text/html"] and "application/vnd.jupyter.widget-view+json" in data


@pytest.mark.parametrize("payload, match", [
    ("data:image/png;base64", "is not a data URL with data in it (no comma after 'data:image/png;base64')"),
    ("data:image/png;base64,iVBORw0KGgo", "did not arrive as base64 data"),  # bad padding
    ("data:image/png;base64,iVBO!!Gg==", "did not arrive as base64 data"),  # not base64 characters
    ("data:image/png;base64,\u00e9t\u00e9", "did not arrive as base64 data"),  # not ASCII
])
def test_a_damaged_data_url_is_a_value_error_with_a_message(payload, match):
    from semi3lib.interactive.widget import InputError, decode_sketch

    with pytest.raises(InputError, match=re.escape(f"the sketch {match}")) as raised:
        decode_sketch(payload, "the sketch")
    assert isinstance(raised.value, ValueError) and len(str(raised.value)) <= 300


@pytest.mark.parametrize("content", ["truncated", "random", "a folder"])
def test_an_unreadable_checkpoint_is_the_widgets_message_not_an_exception(content, tmp_path):
    import torch

    path = tmp_path / "best.pt"
    if content == "truncated":
        torch.save({"model": {"w": torch.zeros(64, 64)}, "config": {}, "num_classes": 2}, path)
        path.write_bytes(path.read_bytes()[:-200])
    elif content == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    else:
        path.mkdir()
    w = SketchSearch.from_checkpoint(path)
    assert w.error and w.searcher is None and str(path) in w.message
    if content != "a folder":
        assert "is not a checkpoint: not a torch.save archive" in w.message
    w.sketch = "data:image/png;base64,iVBORw0KGgo="  # nothing to search with: ignored, no exception
    assert w.results == []


# --------------------------------------------------------------------------- several models


@pytest.fixture(scope="module")
def two_models(smoke_run, search_export, fine_grained_run, fine_grained_export) -> SketchSearch:
    w = SketchSearch.from_checkpoints({
        "Category (chapter 4)": (smoke_run / "last.pt", search_export / "index.npz"),
        "Fine-grained (chapter 10)": (fine_grained_run / "last.pt", fine_grained_export / "index.npz")})
    assert not w.error, w.message
    return w


@pytest.mark.data
def test_the_model_dropdown_answers_from_the_other_searcher(two_models, search_export, fine_grained_export):
    """Switching ``model`` answers the same drawing from the other model's gallery (exactly
    `semi3 search`'s top 10 on that model's index); the fine-grained answer claims no confidence;
    a fine-grained query sketch's own photo is marked and its rank said; back again, the
    category model answers by the confidence rule."""
    from semi3lib.interactive.confidence import fine_grained_note

    w = two_models
    assert w.models == ["Category (chapter 4)", "Fine-grained (chapter 10)"] and w.model == w.models[0]
    category_examples = list(w.examples)
    sketch = next((search_export / "examples").glob("*.png"))
    w.sketch = data_url(sketch)
    assert [r["name"] for r in w.results] == cli_names(search_export / "index.npz", sketch)
    assert w.confidence == ranking_confidence([r["category"] for r in w.results]).as_dict()

    w.model = "Fine-grained (chapter 10)"
    assert not w.error, w.message
    assert [r["name"] for r in w.results] == cli_names(fine_grained_export / "index.npz", sketch)
    assert w.confidence == fine_grained_note(None, 10) and w.message == "Top 10 of 12 photos."
    assert w.examples != category_examples and w.pick == -1
    assert w.ready_message().endswith("12 photos of 3 categories.")

    n, own = found_own_photo(fine_grained_export)
    w.pick = n  # a query sketch of the fine-grained model's (the export's examples are the widget's)
    picked = fine_grained_export / "examples" / f"{n:02d}.png"
    names = [r["name"] for r in w.results]
    assert names == cli_names(fine_grained_export / "index.npz", picked)
    assert w.confidence == fine_grained_note(names.index(own) + 1, 10)
    assert [r["name"] for r in w.results if r.get("own")] == [own]

    w.model = "Category (chapter 4)"  # the picked sketch stays and is answered by the category model
    assert [r["name"] for r in w.results] == cli_names(search_export / "index.npz", picked)
    assert not any(r.get("own") for r in w.results) and w.confidence["level"] in {"clear", "unsure", "unknown"}
    assert w.examples == category_examples

    w._handle_custom_msg({"event": "clear"}, [])
    w.model = "Fine-grained (chapter 10)"  # nothing drawn: no answer, the ready message
    assert w.results == [] and w.confidence == {} and w.message == w.ready_message()
    w.model = "not a model"  # only the dropdown sets it; anything else is put back
    assert w.model == "Fine-grained (chapter 10)" and w.searcher is w.searchers["Fine-grained (chapter 10)"]


@pytest.mark.data
def test_one_model_has_no_dropdown_and_a_broken_one_is_named(widget, smoke_run, tmp_path):
    assert widget.models == [] and widget.model == ""
    w = SketchSearch.from_checkpoints({"Category": smoke_run / "last.pt", "Fine-grained": tmp_path / "missing.pt"})
    assert w.error and w.message.startswith("Fine-grained: ") and "make book" in w.message and w.searcher is None
    with pytest.raises(ValueError, match="not both"):
        SketchSearch(widget.searcher, models={"a": widget.searcher})
