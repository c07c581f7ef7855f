"""Layer ``book``: executing the chapters (:mod:`.runner`), what the chapters compute and
draw, and the rendered site (:mod:`.site`, :mod:`.search_page`). Imports ``study``,
``retrieval`` and below; beside ``interactive``."""
