"""Draw-to-search in a notebook: :class:`SketchSearch`, an anywidget (plain ES module, no build
step, works in JupyterLab, Notebook 7 and VS Code) whose Python side runs the trained PyTorch
checkpoint. anywidget rather than ipycanvas: the drawing needs no round trip per stroke (the
canvas lives in the browser and sends one PNG when a stroke ends, debounced), and the whole
front end is one small file in the package (``web/widget.mjs``).

Three ways in: draw with the mouse (``sketch``), upload a sketch file (``upload``) or pick one
of the checkpoint's query sketches (``pick``). Each answer is the top-k gallery photos with
their category and score (``results``), how sure it is (``confidence``, the rule of
:mod:`semi3lib.interactive.confidence`, shared with the book's search page), or a message
(``message``, ``error``): bad input never raises in the cell. The front end undoes the last
stroke (a button, Ctrl+Z or Cmd+Z) and clears (a ``{"event": "clear"}`` message: the answer and
the status go back to the start). The search is the same as ``semi3 search``: the sketch is prepared by
:func:`semi3lib.data.transforms.image_to_tensor` from a greyscale image.

Several models: ``SketchSearch.from_checkpoints({"Category (chapter 4)": ckpt_a, "Fine-grained
(chapter 10)": ckpt_b})`` (or ``SketchSearch(models={label: searcher})``) shows a dropdown
(``models``, the chosen one in ``model``); switching keeps the drawing and answers it again
from the other model and its gallery, as the book's search page does. A fine-grained model's
answer claims no confidence (:func:`semi3lib.interactive.confidence.fine_grained_note`). One
model: no dropdown, the widget as it always was.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import anywidget
import numpy as np
import traitlets

from semi3lib.interactive.confidence import category_words, fine_grained_note, ranking_confidence

WEB_DIR = Path(__file__).with_name("web")
THUMB_SIZE = 96
EXAMPLES = 12


@dataclass
class Hit:
    path: str
    category: str
    score: float


class SketchSearcher:
    """The PyTorch side: a trained model and its gallery, ``(N, D)`` L2-normalised embeddings."""

    def __init__(self, model: Any, cfg: Any, gallery: np.ndarray, paths: Sequence[str | Path],
                 categories: Sequence[str], examples: Sequence[tuple[str, Path]] = (),
                 example_photos: Sequence[str | None] = ()) -> None:
        from semi3lib.retrieval.index import RetrievalIndex
        from semi3lib.engine.checkpoints import model_identity

        self.model, self.cfg = model, cfg
        self.index = RetrievalIndex(embeddings=gallery, paths=[str(p) for p in paths],
                                    model_identity=model_identity(model, cfg), labels=list(categories))
        self.examples = list(examples)
        # Each example sketch's source photo id (Sketchy: the photo's file stem), fine-grained models.
        self.example_photos = list(example_photos)

    @property
    def fine_grained(self) -> bool:
        """Whether the model was trained to find a sketch's own photo (``data.protocol: instance``)."""
        return self.cfg.data.protocol == "instance"

    def own_photo(self, example: int) -> str | None:
        """The gallery path of the photo example sketch ``example`` was drawn from (fine-grained
        models; None when the gallery does not hold it, the sketch's photo is not known or the
        model is a category one)."""
        if not self.fine_grained or example >= len(self.example_photos) or self.example_photos[example] is None:
            return None
        category, photo_id = self.examples[example][0], self.example_photos[example]
        return next((p for p, c in zip(self.index.paths, self.index.labels)
                     if c == category and Path(p).stem == photo_id), None)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, index: str | Path | None = None,
                        progress: bool = False) -> "SketchSearcher":
        """The checkpoint and the gallery it was scored on: from ``index`` (``semi3 index`` or
        ``semi3 export``'s ``index.npz``; refused when another model made it), else embedded now."""
        from semi3lib.engine.evaluate import load_trained
        from semi3lib.retrieval.index import check_compatible, load_index
        from semi3lib.retrieval.search import embed_photo_files
        from semi3lib.engine.checkpoints import model_identity

        model, cfg, _, data = load_trained(checkpoint, "cpu")
        examples, example_photos = _examples(data)
        if index is not None:
            built = load_index(index)
            check_compatible(built, model_identity(model, cfg))
            labels = built.labels or [Path(p).parent.name for p in built.paths]
            return cls(model, cfg, built.embeddings, built.paths, labels, examples, example_photos)
        photos = [data.index.photos[j] for j in data.split.gallery]
        gallery, paths, _ = embed_photo_files(model, cfg, [p.path for p in photos], "cpu", progress=progress)
        by_path = {str(Path(p.path).resolve()): p.category for p in photos}
        return cls(model, cfg, gallery, paths, [by_path[p] for p in paths], examples, example_photos)

    @classmethod
    def from_trained(cls, model: Any, cfg: Any, data: Any, gallery: np.ndarray) -> "SketchSearcher":
        """From what a notebook already holds: the model, its experiment data and the gallery's
        embeddings in ``data.split.gallery`` order (e.g. ``embed_split(...)["gallery"]``)."""
        photos = [data.index.photos[j] for j in data.split.gallery]
        return cls(model, cfg, gallery, [p.path for p in photos], [p.category for p in photos], *_examples(data))

    def search(self, image: Any, k: int = 10) -> list[Hit]:
        """Top-``k`` photos for a greyscale PIL sketch (any size)."""
        import torch

        from semi3lib.data.transforms import sketch_to_tensor
        from semi3lib.retrieval.index import search_arrays

        with torch.no_grad():
            query = self.model.embed_sketch(sketch_to_tensor(image, self.cfg.data.image_size, self.cfg.data.strokes).unsqueeze(0))
        scores, top = search_arrays(self.index.embeddings, query.float().numpy(), k)
        return [Hit(self.index.paths[j], self.index.labels[j], float(s)) for j, s in zip(top[0], scores[0])]


def _examples(data: Any) -> tuple[list[tuple[str, Path]], list[str | None]]:
    """A few of the run's query sketches to pick from, as (category, path) (the same ones
    ``semi3 export`` writes), and each one's source photo id (None where the dataset names none)."""
    queries = [data.index.sketches[i] for i in data.split.query]
    picked = queries[::max(1, len(queries) // EXAMPLES)][:EXAMPLES]
    return [(s.category, s.path) for s in picked], [s.photo_id for s in picked]


class InputError(ValueError):
    """A sketch that cannot be searched with: the message is shown in the widget."""


def _data_url_bytes(payload: str, what: str) -> bytes:
    """The bytes of a base64 data URL (``data:<type>;base64,<data>``) or of bare base64 text;
    :class:`InputError` for a data URL without data or text that is not base64."""
    if payload.startswith("data:"):
        header, comma, payload = payload.partition(",")
        if not comma:
            raise InputError(f"{what} is not a data URL with data in it (no comma after {header[:40]!r}): "
                             "upload a PNG or JPEG sketch.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):  # bad characters or padding; ValueError: non-ASCII text
        raise InputError(f"{what} did not arrive as base64 data (damaged in transfer?): upload it again.") from None


def decode_sketch(payload: str | bytes, what: str, blank: str | None = None) -> Any:
    """A data URL or raw bytes -> greyscale PIL image (as ``semi3 search`` reads a file);
    :class:`InputError` (a ValueError) for a data URL without data, bad base64, a non-image or
    a blank image."""
    from semi3lib.data.images import load_image

    if isinstance(payload, str):
        payload = _data_url_bytes(payload, what)
    try:
        image = load_image(io.BytesIO(payload), "L")
    except Exception:  # noqa: BLE001 (whatever fails to decode, the answer is the same)
        raise InputError(f"{what} is not an image that can be read: upload a PNG or JPEG sketch.") from None
    extrema = image.getextrema()
    if extrema[0] == extrema[1]:
        raise InputError(blank or f"{what} is blank (one colour everywhere): there is no sketch in it.")
    return image


def _data_url(image: Any, fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=82) if fmt == "JPEG" else image.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class SketchSearch(anywidget.AnyWidget):
    """A canvas to draw on, an upload button and a list of query sketches; beside them the
    top-k gallery photos with category and score. ``SketchSearch.from_checkpoint(path)``."""

    _esm = WEB_DIR / "widget.mjs"
    sketch = traitlets.Unicode("").tag(sync=True)  # the canvas as a PNG data URL, sent per stroke
    upload = traitlets.Unicode("").tag(sync=True)  # an uploaded file as a data URL
    upload_name = traitlets.Unicode("").tag(sync=True)
    pick = traitlets.Int(-1).tag(sync=True)  # index into ``examples``
    examples = traitlets.List(traitlets.Unicode()).tag(sync=True)
    shown = traitlets.Unicode("").tag(sync=True)  # a picked or uploaded sketch, for the canvas
    results = traitlets.List(traitlets.Dict()).tag(sync=True)
    confidence = traitlets.Dict().tag(sync=True)  # ranking_confidence(...).as_dict(); {} without an answer
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Bool(False).tag(sync=True)
    k = traitlets.Int(10).tag(sync=True)
    models = traitlets.List(traitlets.Unicode()).tag(sync=True)  # the labels; a dropdown when more than one
    model = traitlets.Unicode("").tag(sync=True)  # the chosen label

    def __init__(self, searcher: SketchSearcher | None = None, message: str = "", *,
                 models: Mapping[str, SketchSearcher] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if searcher is not None and models:
            raise ValueError("give one searcher or models={label: searcher}, not both")
        self.searchers: dict[str, SketchSearcher] = dict(models or {})
        self.searcher = searcher if searcher is not None else next(iter(self.searchers.values()), None)
        self._thumbs: dict[str, str] = {}
        self._query: Any = None  # the last image searched (a greyscale PIL image): a model switch answers it again
        self._own: str | None = None  # the picked example's own photo (fine-grained models)
        if self.searcher is None:
            self.message, self.error = message or "No model to search with.", True
        else:
            if self.searchers:
                self.models = list(self.searchers)
                self.model = self.models[0]
            self._show_examples()
            self.message = self.ready_message()
        self.on_msg(self._on_message)

    def _show_examples(self) -> None:
        self.examples = [f"{i + 1}. {category_words(category)}" for i, (category, _) in enumerate(self.searcher.examples)]

    @traitlets.observe("model")
    def _on_model(self, change: dict) -> None:
        """Another model chosen: its gallery and examples; the last drawing answered again."""
        chosen = self.searchers.get(change["new"])
        if chosen is None:  # not one of the labels (only the front end's dropdown sets it)
            self.model = change["old"]
            return
        if chosen is self.searcher:
            return
        with self.hold_sync():
            self.searcher = chosen
            self.pick = -1  # the picked example was the other model's query sketch
            self._show_examples()
            if self._query is None:
                self.results, self.confidence = [], {}
                self.message, self.error = self.ready_message(), False
        if self._query is not None:
            query = self._query
            self._answer(lambda: query)

    def ready_message(self) -> str:
        """The status before any answer (and after Clear)."""
        index = self.searcher.index
        return f"Draw a sketch, upload one or pick one: {len(index):,} photos of {len(set(index.labels)):,} categories."

    def clear(self) -> None:
        """Back to the start: no answer, no shown sketch, the ready message (the Clear button)."""
        with self.hold_sync():
            self.results, self.confidence, self.shown = [], {}, ""
            self.sketch, self.upload, self.pick = "", "", -1
            self._query, self._own = None, None
            if self.searcher is not None:
                self.message, self.error = self.ready_message(), False

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "clear":
            self.clear()

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, index: str | Path | None = None, **kwargs: Any) -> "SketchSearch":
        """The widget for a checkpoint (see :meth:`SketchSearcher.from_checkpoint`); a missing,
        unreadable or refused checkpoint (one that holds more than data: nothing in it is run)
        or a mismatched index becomes the widget's message, not an exception."""
        searcher = _load_searcher(checkpoint, index)
        return cls(searcher, **kwargs) if isinstance(searcher, SketchSearcher) else cls(None, searcher, **kwargs)

    @classmethod
    def from_checkpoints(cls, checkpoints: Mapping[str, str | Path | tuple[str | Path, str | Path | None]],
                         **kwargs: Any) -> "SketchSearch":
        """The widget with a dropdown of models: ``{label: checkpoint}`` (or ``{label:
        (checkpoint, index)}``), the first one shown. A model that cannot be loaded becomes the
        widget's message, naming it (as :meth:`from_checkpoint`)."""
        searchers = {}
        for label, given in checkpoints.items():
            checkpoint, index = given if isinstance(given, tuple) else (given, None)
            searcher = _load_searcher(checkpoint, index)
            if not isinstance(searcher, SketchSearcher):
                return cls(None, f"{label}: {searcher}", **kwargs)
            searchers[label] = searcher
        return cls(models=searchers, **kwargs)

    @classmethod
    def from_trained(cls, model: Any, cfg: Any, data: Any, gallery: np.ndarray, **kwargs: Any) -> "SketchSearch":
        return cls(SketchSearcher.from_trained(model, cfg, data, gallery), **kwargs)

    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        # What a static page (the rendered book) shows in place of the live widget.
        data["text/html"] = ("<p><em>A draw-to-search widget: run this notebook in JupyterLab "
                             "(<code>make lab</code>) to draw into it. The book's own search page "
                             "runs the same model in the browser: <a href=\"/interactive/\">Interactive</a>.</em></p>")
        return bundle

    # -- answers ---------------------------------------------------------------------------

    @traitlets.observe("sketch")
    def _on_sketch(self, change: dict) -> None:
        if change["new"]:
            self._answer(lambda: decode_sketch(change["new"], "The canvas", "The canvas is empty: draw a sketch first."))

    @traitlets.observe("upload")
    def _on_upload(self, change: dict) -> None:
        if change["new"]:
            name = self.upload_name or "the uploaded file"
            self._answer(lambda: self._show(decode_sketch(change["new"], name)))

    @traitlets.observe("pick")
    def _on_pick(self, change: dict) -> None:
        if self.searcher is not None and 0 <= change["new"] < len(self.searcher.examples):
            from semi3lib.data.images import load_image

            path = self.searcher.examples[change["new"]][1]
            self._answer(lambda: self._show(load_image(path, "L")), own=self.searcher.own_photo(change["new"]))

    def _show(self, image: Any) -> Any:
        self.shown = _data_url(image, "PNG")
        return image

    def _answer(self, make_image: Any, own: str | None = None) -> None:
        """Search with the image ``make_image()`` returns; every failure becomes the message.
        ``own``: the gallery path of the sketch's own photo, when known (a picked example)."""
        if self.searcher is None:
            return
        self._own = own
        try:
            image = make_image()
            self._query = image
            hits = self.searcher.search(image, self.k)
        except InputError as err:
            self._query = None
            self.results, self.confidence, self.message, self.error = [], {}, str(err), True
            return
        except Exception as err:  # noqa: BLE001 (the widget's contract: a message, never a traceback)
            self.results, self.confidence = [], {}
            self.message, self.error = f"The search failed: {type(err).__name__}: {err}", True
            return
        if self.searcher.fine_grained:
            own_rank = None if self._own is None else next((i + 1 for i, h in enumerate(hits) if h.path == self._own), 0)
            confidence = fine_grained_note(own_rank, len(hits))
        else:
            ranked = ranking_confidence([h.category for h in hits])
            confidence = ranked.as_dict() if ranked else {}
        with self.hold_sync():
            self.results = [{"rank": i + 1, "category": h.category, "score": round(h.score, 4),
                             "name": Path(h.path).name, "thumb": self._thumb(h.path),
                             **({"own": True} if h.path == self._own else {})} for i, h in enumerate(hits)]
            self.confidence = confidence
            self.message, self.error = f"Top {len(hits)} of {len(self.searcher.index):,} photos.", False

    def _thumb(self, path: str) -> str:
        if path not in self._thumbs:
            from semi3lib.data.images import load_image
            from semi3lib.data.transforms import resize_center_crop

            self._thumbs[path] = _data_url(resize_center_crop(load_image(path, "RGB"), THUMB_SIZE))
        return self._thumbs[path]


def _load_searcher(checkpoint: str | Path, index: str | Path | None) -> SketchSearcher | str:
    """:meth:`SketchSearcher.from_checkpoint`, or the message that says why it cannot be built
    (a missing, unreadable or refused checkpoint, a dataset not found, a mismatched index)."""
    from semi3lib.engine.checkpoints import CheckpointError
    from semi3lib.paths import DatasetNotFoundError
    from semi3lib.retrieval.index import IndexCompatibilityError, IndexFormatError

    try:
        return SketchSearcher.from_checkpoint(checkpoint, index)
    except DatasetNotFoundError as err:
        return f"The gallery's photos are read from the dataset: {err}"
    except FileNotFoundError as err:
        return f"{err}. Train one first: `make book`, or `semi3 train --config configs/sketchy-mini-cpu.yaml`."
    except (IndexCompatibilityError, IndexFormatError) as err:
        return f"The gallery index {index} does not belong to {checkpoint}: {err}"
    except CheckpointError as err:
        return f"This checkpoint cannot be used: {err}"
    except (ValueError, OSError) as err:  # a bad config in the checkpoint, a folder, no permission
        return f"The widget cannot be built from {checkpoint}: {err}"
