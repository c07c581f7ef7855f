"""Figures for the book: the shared look and saving helper, and each chapter's plots.

Every figure is drawn here and saved by :func:`save_figure` under ``figures/<name>.png``
(the folder is a notebook parameter, so a smoke run can write elsewhere). Notebooks call
these functions; they do not carry plotting code of their own::

    from semi3lib.book import figures
    figures.use_book_style()
    fig = figures.evaluation.plot_pr_curves(curves)
    figures.save_figure(fig, "05_pr_curves", figures_dir)

:mod:`.common` holds what every chapter shares (style, colours, :func:`save_figure`, image
helpers such as :func:`image_table`), re-exported here; each other module holds one chapter's
plots: :mod:`.data` (1), :mod:`.edgemaps` (2), :mod:`.training` (4), :mod:`.evaluation` (5),
:mod:`.coattention` (6), :mod:`.embeddings` (7), :mod:`.benchmarks` (8), :mod:`.bridge` (9),
:mod:`.fine_grained` (10), :mod:`.why_edgemap` (11).
Chapter 3 shows images only (:func:`image_table`).
"""

from semi3lib.book.figures import (
    benchmarks,
    bridge,
    coattention,
    data,
    edgemaps,
    embeddings,
    evaluation,
    fine_grained,
    training,
    why_edgemap,
)
from semi3lib.book.figures.common import (
    BOOK_STYLE,
    CORRECT_COLOR,
    DOMAIN_COLORS,
    FIGURES_DIR,
    WRONG_COLOR,
    as_image_array,
    image_table,
    save_figure,
    use_book_style,
)

__all__ = [
    "BOOK_STYLE", "CORRECT_COLOR", "DOMAIN_COLORS", "FIGURES_DIR", "WRONG_COLOR", "as_image_array", "image_table",
    "save_figure", "use_book_style",
    "benchmarks", "bridge", "coattention", "data", "edgemaps", "embeddings", "evaluation", "fine_grained", "training",
    "why_edgemap",
]
